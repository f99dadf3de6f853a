"""Text copied from Reply's answers, made safe to keep: bounded, free of the API key, always encodable.

Every string field the client copies out of a Reply body (problem title/detail/code, bulk error and
errorDetails, a sequence's name and status) goes through `clean` before it is stored, so it can reach a
results event, a log line or an exception message without leaking the key, breaking UTF-8 encoding
(lone surrogates from a JSON escape such as "\\ud800") or forging log lines (control characters).
"""

from __future__ import annotations

from typing import Final

REDACTED: Final = "[redacted]"
REPLACEMENT: Final = "\ufffd"
# A trailing piece of the key shorter than this says nothing about the key (keys share short prefixes).
_MIN_PARTIAL_SECRET = 4


def _translation_table() -> dict[int, str]:
    """Map every character that must not be kept to its stand-in."""
    table: dict[int, str] = {}
    for code in (*range(0x20), *range(0x7F, 0xA0)):
        table[code] = REPLACEMENT  # C0 and C1 control characters, DEL
    for code in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029):
        table[code] = " "  # line breaks and tabs: keep the words apart, never start a new log line
    for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        table[code] = REPLACEMENT  # bidirectional overrides, which can make a log line read differently
    for code in range(0xD800, 0xE000):
        table[code] = REPLACEMENT  # lone surrogates: json.loads lets them through, UTF-8 cannot encode them
    return table


_TABLE: Final = _translation_table()


def clean(text: str, *, secret: str | None, limit: int) -> str:
    """At most `limit` characters of `text`, with `secret` replaced by "[redacted]" and unsafe characters replaced."""
    if secret:
        # Look a key's length past the limit, so a key that starts before the limit is found whole.
        window = text[: limit + len(secret)]
        kept = window.replace(secret, REDACTED).translate(_TABLE)[:limit]
        return _without_trailing_part_of(kept, secret, limit)
    return text[:limit].translate(_TABLE)


def _without_trailing_part_of(text: str, secret: str, limit: int) -> str:
    """Redact a start of the key that the text ends with (a key cut off by a length limit, ours or Reply's)."""
    start = text.find(secret[0], max(0, len(text) - len(secret) + 1))
    while start != -1:
        piece = text[start:]
        if len(piece) >= _MIN_PARTIAL_SECRET and secret.startswith(piece):
            return (text[:start] + REDACTED)[:limit]
        start = text.find(secret[0], start + 1)
    return text
