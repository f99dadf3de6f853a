"""The Reply API key, read from Secrets Manager through Powertools Parameters (cached, re-read on demand).

Only the parsed key is kept, as a pydantic SecretStr, so no object of ours shows it in `repr()` or
`vars()`. A key is checked when it is read, once for the whole request: one that no HTTP header can
carry as it is (anything but visible ASCII, 0x21-0x7E, inside it) is an ApiKeyMalformedError before any
call to Reply, saying which kind of character and where, never which key.

Powertools' own cache is switched off (`max_age=0` is never stored in the provider's `store`): this
class caches the key for SECRET_MAX_AGE_SECONDS instead, so the raw secret string lives nowhere but for
the moment of one read.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import SecretStr

from sequence_archiver.aws.calls import call_within
from sequence_archiver.core.exceptions import ApiKeyMalformedError, ApiKeyUnavailableError, AwsCallTimeoutError
from sequence_archiver.reply.header_value import check_header_safe

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from sequence_archiver.core.deadline import Deadline

# What a key may be made of: the visible ASCII an HTTP header value carries unchanged (RFC 9110 field-vchar).
# Stripped from both ends of the secret and of its "apiKey": what `echo` and editors add (a final newline).
# Any other character there (a BOM, U+2028, a form feed, a no-break space) is refused like one inside.
_EDGE_WHITESPACE = " \t\r\n"
PREVIOUS_STAGE = "AWSPREVIOUS"  # the staging label Secrets Manager moves the replaced version to on rotation
EARLIER_KEYS_MIN_AGE_SECONDS = 60.0


class ApiKeySource(Protocol):
    """Where the Reply client gets its key; `refresh=True` bypasses any cache (after a 401)."""

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The current API key, read within `deadline` when one is given."""
        ...


def parse_secret_string(secret_string: str) -> SecretStr:
    """Accept the bare key or `{"apiKey": "..."}`; the error never quotes the secret, nor chains what does."""
    text = secret_string.strip(_EDGE_WHITESPACE)
    if text.startswith("{"):
        document = _json_or_none(text)
        if document is None:
            # Raised outside the except block: a JSONDecodeError's `doc` is the whole secret.
            raise ApiKeyMalformedError("the secret looks like JSON but does not parse")
        key = document.get("apiKey") if isinstance(document, dict) else None
        if not isinstance(key, str):
            raise ApiKeyMalformedError('the secret is JSON without a string "apiKey" field')
        text = key.strip(_EDGE_WHITESPACE)
    if not text:
        raise ApiKeyMalformedError("the secret holds an empty API key")
    check_header_safe(text)
    return SecretStr(text)


def decode_secret_binary(secret_binary: bytes) -> str:
    """A SecretBinary as text; ApiKeyMalformedError (holding no bytes, chaining nothing) when it is not UTF-8."""
    try:
        text: str | None = secret_binary.decode("utf-8", errors="strict")
    except UnicodeDecodeError:  # its `object` is the secret itself: dropped before raising ours
        text = None
    if text is None:
        raise ApiKeyMalformedError("the secret is binary and not UTF-8 text")
    return text


def _json_or_none(text: str) -> object | None:
    try:
        document: object = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, too many digits, nested too deep
        return None
    return document


class SecretsManagerApiKey:
    """Reads the key from one secret, caching it (and only it) for `max_age_seconds`."""

    def __init__(
        self,
        *,
        secret_id: str,
        provider: SecretsProvider,
        max_age_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._provider = provider
        self._max_age_seconds = max_age_seconds
        self._clock = clock
        self._key: SecretStr | None = None
        self._read_at = 0.0
        self._earlier: tuple[SecretStr, ...] = ()
        self._earlier_read_at: float | None = None

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The key, from cache unless `refresh` or the cache is older than the max age."""
        if self._key is not None and not refresh and self._clock() - self._read_at < self._max_age_seconds:
            return self._key
        value = self._read(deadline)
        if isinstance(value, bytes):
            value = decode_secret_binary(value)
        if not isinstance(value, str):
            raise ApiKeyMalformedError("the secret is not a string")
        self._key = parse_secret_string(value)
        self._read_at = self._clock()
        return self._key

    def earlier_api_keys(self, *, deadline: Deadline | None = None) -> tuple[SecretStr, ...]:
        """Values other than the cached one that a continuation in flight may be sealed with: the current version
        read again (another instance may have a newer one) and the previous version (AWSPREVIOUS) while the
        secret still has it. Read at most once per EARLIER_KEYS_MIN_AGE_SECONDS, so forged messages cost no reads.
        """
        now = self._clock()
        if self._earlier_read_at is not None and now - self._earlier_read_at < EARLIER_KEYS_MIN_AGE_SECONDS:
            return self._earlier
        keys = [self.api_key(refresh=True, deadline=deadline)]
        previous = self._previous(deadline)
        if previous is not None:
            keys.append(previous)
        self._earlier, self._earlier_read_at = tuple(keys), now
        return self._earlier

    def _previous(self, deadline: Deadline | None) -> SecretStr | None:
        """The previous version's key; None when the secret has none (never rotated) or it does not parse."""
        try:
            value = self._read(deadline, stage=PREVIOUS_STAGE)
        except ApiKeyUnavailableError as exc:
            if isinstance(exc.__cause__, AwsCallTimeoutError):
                raise  # out of time: the delivery is retried rather than its continuation dropped
            return None  # no AWSPREVIOUS version (ResourceNotFoundException), or not readable: only current counts
        try:
            text = decode_secret_binary(value) if isinstance(value, bytes) else value
            return parse_secret_string(text) if isinstance(text, str) else None
        except ApiKeyMalformedError:
            return None

    def _read(self, deadline: Deadline | None, *, stage: str | None = None) -> object:
        def get() -> object:
            # max_age=0: Powertools keeps nothing in its cache (see the module docstring).
            if stage is None:
                return self._provider.get(self._secret_id, max_age=0)
            return self._provider.get(self._secret_id, max_age=0, VersionStage=stage)

        try:
            return call_within(deadline, "GetSecretValue", get)
        except GetParameterError as exc:  # Powertools wraps every SDK failure in it
            raise ApiKeyUnavailableError(f"could not read the API key secret ({type(exc).__name__})") from exc
        except AwsCallTimeoutError as exc:
            raise ApiKeyUnavailableError("could not read the API key secret in the time left") from exc

    def __repr__(self) -> str:
        return f"SecretsManagerApiKey(secret_id={self._secret_id!r})"
