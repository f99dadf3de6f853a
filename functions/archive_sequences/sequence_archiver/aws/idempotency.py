"""Effectively-once processing of redelivered requests (Powertools idempotency, DynamoDB persistence).

SQS and EventBridge deliver at least once. With a table configured, each request (keyed on the SQS
message ID or the EventBridge event ID) is claimed before any work: a request whose earlier processing
completed is acknowledged without calling Reply or publishing a second results event. A request that
must be retried (some ID `failed`, results not published) releases its claim so the retry can run.
The archiver archives several records together (bulk calls), so the persistence layer is used directly
rather than through the `@idempotent` decorator, which wraps one function call per record.
Every table call ends by the deadline it is given; one that does not counts as the table being unavailable.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS
from botocore.exceptions import BotoCoreError, ClientError

from sequence_archiver.aws.calls import call_within
from sequence_archiver.core.exceptions import AwsCallTimeoutError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from sequence_archiver.core.deadline import Deadline

logger = logging.getLogger(__name__)

# Failures of the table itself: the function then falls back to at-least-once processing. Anything else a
# table call raises (say a summary the SDK cannot serialize) is handled the same way: it concerns one request.
_PERSISTENCE_ERRORS = (BotoCoreError, ClientError, IdempotencyPersistenceLayerError, AwsCallTimeoutError, Exception)

IDEMPOTENCY_KEY_PATH = "requestId"


class Claim(Enum):
    """What a claim on a request found."""

    NEW = "new"  # ours to process
    COMPLETED = "completed"  # processed before: acknowledge, do nothing
    IN_PROGRESS = "in_progress"  # another invocation holds it right now: retry later
    UNAVAILABLE = "unavailable"  # the table could not be reached: process anyway (at least once)


class RequestIdempotency:
    """Claims, completes and releases requests by ID in the idempotency table."""

    def __init__(self, persistence: BasePersistenceLayer) -> None:
        self._persistence = persistence
        self._context: LambdaContext | None = None

    def start_invocation(self, context: LambdaContext) -> None:
        """Claims made from now on expire with this invocation if it dies mid-way."""
        self._context = context

    def claim(self, request_id: str, deadline: Deadline | None = None) -> Claim:
        """Mark the request in progress, unless it is already done or being done."""
        data = _data(request_id)
        remaining = self._context.get_remaining_time_in_millis() if self._context else None
        try:
            call_within(
                deadline,
                "PutItem",
                self._persistence.save_inprogress,
                data=data,
                remaining_time_in_millis=remaining,
            )
        except IdempotencyItemAlreadyExistsError as exc:
            return self._existing_claim(request_id, exc, deadline)
        except _PERSISTENCE_ERRORS as exc:
            logger.warning(
                "idempotency table unavailable", extra={"request_id": request_id, "error": type(exc).__name__}
            )
            return Claim.UNAVAILABLE
        return Claim.NEW

    def _existing_claim(
        self, request_id: str, exc: IdempotencyItemAlreadyExistsError, deadline: Deadline | None
    ) -> Claim:
        record = exc.old_data_record
        if record is None:
            try:
                record = call_within(deadline, "GetItem", self._persistence.get_record, data=_data(request_id))
            except IdempotencyItemNotFoundError:
                return self.claim(request_id, deadline)  # it expired between the two calls
            except _PERSISTENCE_ERRORS as error:
                logger.warning(
                    "idempotency table unavailable", extra={"request_id": request_id, "error": type(error).__name__}
                )
                return Claim.UNAVAILABLE
        if record is not None and record.status == STATUS_CONSTANTS["COMPLETED"]:
            logger.info("request already processed; skipping", extra={"request_id": request_id})
            return Claim.COMPLETED
        logger.info("request is being processed elsewhere; retrying later", extra={"request_id": request_id})
        return Claim.IN_PROGRESS

    def complete(self, request_id: str, summary: dict[str, Any], deadline: Deadline | None = None) -> None:
        """Record the request as done (a redelivery is then skipped until the record expires)."""
        try:
            call_within(deadline, "UpdateItem", self._persistence.save_success, data=_data(request_id), result=summary)
        except _PERSISTENCE_ERRORS as exc:  # the work is done; a redelivery would only repeat it
            logger.warning("could not record completion", extra={"request_id": request_id, "error": type(exc).__name__})

    def release(self, request_id: str, reason: str, deadline: Deadline | None = None) -> None:
        """Drop the claim so the retry of this request is processed."""
        try:
            call_within(
                deadline,
                "DeleteItem",
                self._persistence.delete_record,
                data=_data(request_id),
                exception=RuntimeError(reason),
            )
        except _PERSISTENCE_ERRORS as exc:  # the claim then expires with the invocation
            logger.warning("could not release claim", extra={"request_id": request_id, "error": type(exc).__name__})

    def recall(self, key: str, deadline: Deadline | None = None) -> dict[str, Any] | None:
        """The state an earlier delivery recorded under `key` (see remember); None when there is none, it expired,
        or the table cannot be read (the caller then does the work again: at least once)."""
        try:
            record = call_within(deadline, "GetItem", self._persistence.get_record, data=_data(key))
        except IdempotencyItemNotFoundError:
            return None
        except _PERSISTENCE_ERRORS as exc:
            logger.warning("idempotency table unavailable", extra={"record": key, "error": type(exc).__name__})
            return None
        if record is None or record.is_expired:
            return None
        state = record.response_json_as_dict()
        return state if isinstance(state, dict) else None

    def remember(self, key: str, state: dict[str, Any], deadline: Deadline | None = None) -> bool:
        """Record the state of an effect done (for example the messages sent), so a redelivery can find it; False
        when the table could not be written (a redelivery then does the effect again)."""
        try:
            call_within(deadline, "UpdateItem", self._persistence.save_success, data=_data(key), result=state)
        except _PERSISTENCE_ERRORS as exc:
            logger.warning("could not record an effect", extra={"record": key, "error": type(exc).__name__})
            return False
        return True


def _data(request_id: str) -> dict[str, Any]:
    return {IDEMPOTENCY_KEY_PATH: request_id}


def build_request_idempotency(
    *, table_name: str, expires_after_seconds: int, dynamodb_client: DynamoDBClient, function_name: str
) -> RequestIdempotency:
    """A RequestIdempotency on a DynamoDB table with Powertools' attribute names (id, expiration, ...)."""
    from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415 - only when a table is configured
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
    )

    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
    persistence.configure(
        IdempotencyConfig(event_key_jmespath=IDEMPOTENCY_KEY_PATH, expires_after_seconds=expires_after_seconds),
        function_name=function_name,
    )
    return RequestIdempotency(persistence)
