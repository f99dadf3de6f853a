"""The Reply side of a command: the API key (environment or Secrets Manager) and the base URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import BotoCoreError, ClientError

from sequence_archiver.api_key import SecretsManagerApiKey, parse_secret_string
from sequence_archiver.exceptions import ApiKeyError, ApiKeyMalformedError
from sequence_archiver.settings import Settings, validate_reply_base_url
from sequence_archiver_cli.aws import describe_aws_error, secretsmanager_client
from sequence_archiver_cli.errors import UnavailableError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import SecretStr

    from sequence_archiver.api_key import ApiKeySource
    from sequence_archiver.deadline import Deadline
    from sequence_archiver_cli.aws import AwsOptions

DEFAULT_API_KEY_VARIABLE = "REPLY_API_KEY"
DEFAULT_BASE_URL: str = Settings.model_fields["reply_api_base_url"].default
SECRET_MAX_AGE_SECONDS: int = Settings.model_fields["secret_max_age_seconds"].default


class StaticApiKey:
    """A key given once (from an environment variable); a refresh after a 401 yields the same key."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The key (nothing to read, so no deadline to keep)."""
        del refresh, deadline
        return self._key

    def __repr__(self) -> str:
        return "StaticApiKey(**********)"


def api_key_from_environment(environ: Mapping[str, str], variable: str) -> StaticApiKey:
    """The key in an environment variable: the bare key or `{"apiKey": "..."}`, as in the secret."""
    value = environ.get(variable)
    if not value:
        raise UnavailableError(f"{variable} is not set: export the Reply API key there, or use --secret-id")
    try:
        return StaticApiKey(parse_secret_string(value))
    except ApiKeyMalformedError as exc:
        raise UnavailableError(f"{variable}: {exc}") from None


def api_key_from_secret(secret_id: str, aws: AwsOptions) -> SecretsManagerApiKey:
    """The key in a Secrets Manager secret, read as the function reads it."""
    provider = SecretsProvider(boto3_client=secretsmanager_client(aws))
    return SecretsManagerApiKey(secret_id=secret_id, provider=provider, max_age_seconds=SECRET_MAX_AGE_SECONDS)


def api_key_source(
    *, secret_id: str | None, variable: str, environ: Mapping[str, str], aws: AwsOptions
) -> ApiKeySource:
    """The key from --secret-id when given, else from the environment variable; read once to fail fast."""
    source: ApiKeySource = (
        api_key_from_secret(secret_id, aws) if secret_id else api_key_from_environment(environ, variable)
    )
    try:
        source.api_key()
    except ApiKeyError as exc:
        raise UnavailableError(_describe_key_error(exc)) from None
    return source


def _describe_key_error(exc: ApiKeyError) -> str:
    """The secret's problem in one line; for an unreadable secret, the AWS error underneath."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ClientError | BotoCoreError):
            return "cannot read the API key secret: " + describe_aws_error("Secrets Manager", cause)
        cause = cause.__cause__ or cause.__context__
    return f"the API key secret: {exc}"


def validate_base_url(value: str) -> str:
    """The function's rule for REPLY_API_BASE_URL: https, or plain http to a loopback host only."""
    try:
        return validate_reply_base_url(value)
    except ValueError as exc:
        raise UsageError(f"--base-url: {exc}") from None  # the value is not echoed: it may hold credentials
