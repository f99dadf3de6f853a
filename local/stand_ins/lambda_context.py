"""A stand-in for the context object the Lambda runtime passes to a Python handler."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.typing import LambdaContext
from aws_lambda_powertools.utilities.typing.lambda_cognito_identity import LambdaCognitoIdentity

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing.lambda_client_context import LambdaClientContext

LOCAL_ACCOUNT_ID = "123456789012"


class LocalLambdaContext(LambdaContext):
    """The Lambda context attributes Powertools and the handler read, with a real countdown."""

    def __init__(
        self,
        function_name: str = "reply-sequence-archiver",
        timeout_seconds: float = 120.0,
        aws_request_id: str | None = None,
        memory_limit_in_mb: int = 512,
        clock: Callable[[], float] = time.monotonic,
        *,
        region: str = "us-east-1",
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._clock = clock
        self._deadline = clock() + timeout_seconds
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{function_name}"
        self._memory_limit_in_mb = memory_limit_in_mb
        self._aws_request_id = aws_request_id or str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        # Like the real runtime: an identity object with no fields set outside Cognito invocations.
        self._identity = LambdaCognitoIdentity()

    @property
    def client_context(self) -> LambdaClientContext | None:  # type: ignore[override]
        """None, as in the real runtime when the caller sent no client context."""
        return None

    # The base class declares a staticmethod returning 0; a countdown needs the instance.
    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        """Milliseconds left until the timeout, counting down from creation; never negative."""
        return max(0, int((self._deadline - self._clock()) * 1000))

    def __repr__(self) -> str:
        return f"LocalLambdaContext({self._function_name!r}, aws_request_id={self._aws_request_id!r})"
