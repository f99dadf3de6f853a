"""The Reply side of a command: the API key (environment or Secrets Manager) and the base URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import BotoCoreError, ClientError

from sequence_archiver.public import (
    ApiKeyError,
    ApiKeyMalformedError,
    ReplyAuthenticationError,
    SecretsManagerApiKey,
    Settings,
    parse_secret_string,
    validate_reply_base_url,
)
from sequence_archiver_cli.aws import describe_aws_error, secretsmanager_client
from sequence_archiver_cli.errors import UnavailableError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import SecretStr

    from sequence_archiver.public import Deadline
    from sequence_archiver_cli.aws import AwsOptions

DEFAULT_API_KEY_VARIABLE = "REPLY_API_KEY"
BASE_URL_VARIABLE = "REPLY_BASE_URL"  # what `make stack` exports: the default of --base-url
DEFAULT_BASE_URL: str = Settings.model_fields["reply_api_base_url"].default
SECRET_MAX_AGE_SECONDS: int = Settings.model_fields["secret_max_age_seconds"].default


class KeyRejectedError(ReplyAuthenticationError):
    """Reply rejected a key there is nothing to read again for (an environment variable's): the 401 is final."""


class CommandApiKey(Protocol):
    """A key source that can say where its key came from when Reply rejects it."""

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The current API key (see the function's ApiKeySource)."""
        ...

    def rejection(self) -> str:
        """What to tell the person when Reply rejects the key (401), naming where it came from."""
        ...


class EnvironmentApiKey:
    """A key given once, in an environment variable: a refresh after a 401 has nothing to re-read, so it is final."""

    def __init__(self, key: SecretStr, *, variable: str) -> None:
        self._key = key
        self._variable = variable

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The key; asked to refresh it (Reply answered 401), KeyRejectedError instead of a second useless call."""
        del deadline
        if refresh:
            raise KeyRejectedError(self.rejection(), http_status=401)
        return self._key

    def rejection(self) -> str:
        """Names the variable."""
        return f"Reply rejected the API key from ${self._variable} (401)"

    def __repr__(self) -> str:
        return f"EnvironmentApiKey(variable={self._variable!r})"


class SecretApiKey(SecretsManagerApiKey):
    """The key in a Secrets Manager secret, read as the function reads it (and re-read once after a 401)."""

    def __init__(self, *, secret_id: str, provider: SecretsProvider, max_age_seconds: int) -> None:
        super().__init__(secret_id=secret_id, provider=provider, max_age_seconds=max_age_seconds)
        self._named_secret = secret_id

    def rejection(self) -> str:
        """Names the secret."""
        return f"Reply rejected the API key from the secret {self._named_secret} (401), even after re-reading it"


def api_key_from_environment(environ: Mapping[str, str], variable: str) -> EnvironmentApiKey:
    """The key in an environment variable: the bare key or `{"apiKey": "..."}`, as in the secret."""
    value = environ.get(variable)
    if value is None:
        raise UnavailableError(f"{variable} is not set: export the Reply API key there, or use --secret-id")
    if not value.strip():  # what it holds is not said: only that nothing but whitespace is there
        state = "empty" if not value else "set to whitespace only"
        raise UnavailableError(f"{variable} is {state}: put the Reply API key in it, or use --secret-id")
    try:
        return EnvironmentApiKey(parse_secret_string(value), variable=variable)
    except ApiKeyMalformedError as exc:
        raise UnavailableError(f"{variable}: {exc}") from None


def api_key_from_secret(secret_id: str, aws: AwsOptions) -> SecretApiKey:
    """The key in a Secrets Manager secret, read as the function reads it."""
    provider = SecretsProvider(boto3_client=secretsmanager_client(aws))
    return SecretApiKey(secret_id=secret_id, provider=provider, max_age_seconds=SECRET_MAX_AGE_SECONDS)


def check_key_options(*, secret_id: str | None, variable: str | None) -> None:
    """--secret-id and an explicit --api-key-env name two different keys: a usage error, not a silent choice."""
    if secret_id and variable is not None:
        raise UsageError(f"--secret-id and --api-key-env {variable} name two sources of the API key: give only one")


def api_key_source(
    *, secret_id: str | None, variable: str | None, environ: Mapping[str, str], aws: AwsOptions
) -> CommandApiKey:
    """The key from --secret-id, or from --api-key-env (default REPLY_API_KEY); read once to fail fast."""
    check_key_options(secret_id=secret_id, variable=variable)
    source: CommandApiKey = (
        api_key_from_secret(secret_id, aws)
        if secret_id
        else api_key_from_environment(environ, variable or DEFAULT_API_KEY_VARIABLE)
    )
    try:
        source.api_key()
    except ApiKeyError as exc:
        raise UnavailableError(_describe_key_error(exc, secret_id=secret_id)) from None
    return source


def _describe_key_error(exc: ApiKeyError, *, secret_id: str | None) -> str:
    """The secret's problem in one line, naming the secret (never its key); for an unreadable secret, the AWS error
    underneath."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ClientError | BotoCoreError):
            return "cannot read the API key secret: " + describe_aws_error("Secrets Manager", cause)
        cause = cause.__cause__ or cause.__context__
    return f"the API key secret{f' {secret_id}' if secret_id else ''}: {exc}"


def validate_base_url(value: str, source: str = "--base-url") -> str:
    """The function's rule for REPLY_API_BASE_URL: https, or plain http to a loopback host only.

    `source` is where the value came from (the flag or $REPLY_BASE_URL), named in the error.
    """
    try:
        return validate_reply_base_url(value)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None  # the value is not echoed: it may hold credentials


def reply_unreachable(base_url: str, reason: object, *, after_retries: bool = False) -> UnavailableError:
    """`cannot reach Reply at URL: reason`; a validated base URL holds no credentials, query or fragment."""
    return UnavailableError(f"cannot reach Reply at {base_url}{' after retries' if after_retries else ''}: {reason}")
