"""Whether an API key can travel as an HTTP header value: visible ASCII only, checked once where the key is read.

Kept apart from `api_key` (which needs pydantic and Powertools' parameters) so the Reply client can check a
key from any source right where it builds the header, without importing the secret-reading machinery.
"""

from __future__ import annotations

import unicodedata

from sequence_archiver.core.exceptions import ApiKeyMalformedError

_KEY_CHARACTERS = frozenset(chr(code) for code in range(0x21, 0x7F))


def check_header_safe(key: str) -> None:
    """ApiKeyMalformedError unless every character of `key` is visible ASCII; the message names the first other
    character's kind and position (1-based), never a character of the key."""
    if key.isascii() and _KEY_CHARACTERS.issuperset(key):
        return
    position, char = next((index, char) for index, char in enumerate(key, 1) if char not in _KEY_CHARACTERS)
    raise ApiKeyMalformedError(
        f"the API key has {_kind_of(char)} at character {position} of {len(key)}: an HTTP header carries only "
        "visible ASCII (0x21-0x7E); check how the secret was written"
    )


def _kind_of(char: str) -> str:
    """The kind of a character a key cannot hold, in words that do not say which character it is."""
    code = ord(char)
    kinds = (
        (char == " ", "a space"),
        (code < 0x20 or 0x7F <= code < 0xA0, "a control character"),
        (char == "\ufeff", "a byte order mark"),
        (char in "\u2028\u2029", "a line or paragraph separator"),
        (unicodedata.category(char) == "Cf", "an invisible formatting character"),
        (char.isspace(), "a non-ASCII space"),
    )
    return next((kind for matches, kind in kinds if matches), "a non-ASCII character")
