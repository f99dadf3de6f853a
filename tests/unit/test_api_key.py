"""The API key secret: bare or JSON, and errors that never quote it."""

from __future__ import annotations

import pytest

from sequence_archiver.api_key import parse_secret_string
from sequence_archiver.exceptions import ApiKeyMalformedError

KEY = "rk_live_SECRET_MARKER_0123456789"


@pytest.mark.parametrize("secret", [KEY, f"  {KEY}\n", f'{{"apiKey": "{KEY}"}}', f'{{"apiKey": " {KEY} ", "note": 1}}'])
def test_bare_and_json_secrets_give_the_key(secret: str) -> None:
    key = parse_secret_string(secret)
    assert key.get_secret_value() == KEY
    assert KEY not in repr(key)
    assert KEY not in str(key)


@pytest.mark.parametrize(
    "secret",
    ["", "   ", f'{{"apiKey": "{KEY}"', f'{{"key": "{KEY}"}}', '{"apiKey": 5}', f"{KEY} extra", f"{KEY}\r\nX-Evil: 1"],
)
def test_malformed_secrets_are_rejected_without_quoting_them(secret: str) -> None:
    with pytest.raises(ApiKeyMalformedError) as excinfo:
        parse_secret_string(secret)
    assert KEY not in str(excinfo.value)
    assert excinfo.value.__cause__ is None
