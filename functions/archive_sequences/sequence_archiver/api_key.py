"""The Reply API key, read from Secrets Manager through Powertools Parameters (cached, re-read on demand)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import SecretStr

from sequence_archiver.exceptions import ApiKeyMalformedError, ApiKeyUnavailableError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from sequence_archiver.deadline import Deadline

_FORBIDDEN_KEY_CHARS = frozenset("\r\n\t \x00")


class ApiKeySource(Protocol):
    """Where the Reply client gets its key; `refresh=True` bypasses any cache (after a 401)."""

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The current API key, read within `deadline` when one is given."""
        ...


def parse_secret_string(secret_string: str) -> SecretStr:
    """Accept the bare key or `{"apiKey": "..."}`; the error never quotes the secret."""
    text = secret_string.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise ApiKeyMalformedError("the secret looks like JSON but does not parse") from None
        key = document.get("apiKey") if isinstance(document, dict) else None
        if not isinstance(key, str):
            raise ApiKeyMalformedError('the secret is JSON without a string "apiKey" field')
        text = key.strip()
    if not text:
        raise ApiKeyMalformedError("the secret holds an empty API key")
    if any(char in _FORBIDDEN_KEY_CHARS for char in text):
        raise ApiKeyMalformedError("the API key contains whitespace or control characters")
    return SecretStr(text)


class SecretsManagerApiKey:
    """Reads the key from one secret, caching it for `max_age_seconds`."""

    def __init__(self, *, secret_id: str, provider: SecretsProvider, max_age_seconds: int) -> None:
        self._secret_id = secret_id
        self._provider = provider
        self._max_age_seconds = max_age_seconds
        self._parsed: tuple[str, SecretStr] | None = None  # the last secret string and its key

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The key, from cache unless `refresh` or the cache is older than the max age."""
        try:
            value = self._provider.get(self._secret_id, max_age=self._max_age_seconds, force_fetch=refresh)
        except GetParameterError as exc:  # Powertools wraps every SDK failure in it
            raise ApiKeyUnavailableError(f"could not read the API key secret ({type(exc).__name__})") from exc
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="strict")
        if not isinstance(value, str):
            raise ApiKeyMalformedError("the secret is not a string")
        if self._parsed is None or self._parsed[0] != value:
            self._parsed = (value, parse_secret_string(value))
        return self._parsed[1]

    def __repr__(self) -> str:
        return f"SecretsManagerApiKey(secret_id={self._secret_id!r})"
