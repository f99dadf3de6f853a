"""Text copied from Reply: bounded, the API key redacted, always encodable as UTF-8 JSON."""

from __future__ import annotations

import base64
import json
import random
import string
import sys
import unicodedata
from urllib.parse import quote, quote_plus

import pytest

from sequence_archiver.reply.text import MIN_FRAGMENT, REDACTED, base64_forms, clean, normalise

KEY = "rk_unit_SECRET_MARKER_123"


def encodes(text: str) -> bool:
    return bool(json.dumps({"text": text}, ensure_ascii=False).encode("utf-8"))


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {KEY}",
        f"{KEY}{KEY}",
        f"bad key '{KEY}' (Bearer {KEY})",
        "x" * 150 + KEY,  # starts before the limit, ends after it
        "x" * 199 + KEY,
    ],
)
def test_the_key_is_redacted_wherever_it_appears(text: str) -> None:
    cleaned = clean(text, secret=KEY, limit=200)
    assert KEY not in cleaned
    assert KEY[:4] not in cleaned
    assert REDACTED[:1] in cleaned
    assert len(cleaned) <= 200


@pytest.mark.parametrize("cut", [4, 10, len(KEY) - 1])
def test_a_key_cut_off_at_the_end_is_redacted_too(cut: int) -> None:
    cleaned = clean("detail: Bearer " + KEY[:cut], secret=KEY, limit=200)
    assert cleaned == "detail: Bearer " + REDACTED


def test_short_tails_that_merely_look_like_a_key_start_are_kept() -> None:
    assert clean("error rk_", secret=KEY, limit=200) == "error rk_"


def test_without_a_secret_text_is_only_bounded_and_made_safe() -> None:
    assert clean("plain", secret=None, limit=200) == "plain"
    assert clean("x" * 20_000_000, secret=None, limit=200) == "x" * 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\ud800b", "a\ufffdb"),
        ("\udfff", "\ufffd"),
        ("line1\nline2\r\tend", "line1 line2  end"),
        ("nul\x00 esc\x1b del\x7f c1\x85", "nul\ufffd esc\ufffd del\ufffd c1 "),
        ("bidi\u202eevil\u2066", "bidievil"),
        ("Séquence 🚀 ü", "Séquence 🚀 ü"),
    ],
)
def test_unsafe_characters_are_replaced_and_the_rest_kept(text: str, expected: str) -> None:
    cleaned = clean(text, secret=KEY, limit=200)
    assert cleaned == expected
    assert encodes(cleaned)


def test_a_huge_text_with_the_key_far_inside_is_cut_before_any_work() -> None:
    text = "y" * 20_000_000 + KEY
    cleaned = clean(text, secret=KEY, limit=200)
    assert cleaned == "y" * 200


# ---------------------------------------------------------------- fragments and encoded copies of the key

RANDOM_KEY = "kQ7vX2mZp9LwR4tB8nY3cH6jD1fS5gAe"  # 32 characters, as random as a real key
FULLWIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}  # "A" -> U+FF21


def b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


def fragments(text: str, size: int = MIN_FRAGMENT) -> set[str]:
    return {text[start : start + size] for start in range(len(text) - size + 1)}


def leaked_fragments(cleaned: str, key: str) -> set[str]:
    """Each MIN_FRAGMENT-character piece of the key, or of its base64 at any alignment, that `cleaned` still holds."""
    seen = normalise(cleaned)
    caseless = {piece for piece in fragments(key.lower()) if piece in seen.lower()}
    encoded = {
        piece
        for form in base64_forms(key.encode()) + base64_forms(f"Bearer {key}".encode())
        for piece in fragments(form.rstrip("="))
        if piece in seen
    }
    return caseless | encoded


# The 8 forms of issue 20: 2 that were redacted before (the key, a start of it that ends the text), 6 that leaked.
ISSUE_FORMS = {
    "exact": f"invalid key {RANDOM_KEY}",
    "prefix-ending-the-text": f"key rejected: {RANDOM_KEY[:20]}",
    "24-of-32-then-dots": f"the key {RANDOM_KEY[:24]}... is not valid",
    "upper-case": f"KEY {RANDOM_KEY.upper()} UNKNOWN",
    "zero-width-spaces": "bad key " + "\u200b".join(RANDOM_KEY) + " here",
    "soft-hyphens": "bad key " + "\u00ad".join(RANDOM_KEY) + " here",
    "fullwidth": "bad key " + RANDOM_KEY.translate(FULLWIDTH),
    "base64-of-the-header": f"Authorization: Basic? no: {b64('Bearer ' + RANDOM_KEY)}",
}


@pytest.mark.parametrize("text", list(ISSUE_FORMS.values()), ids=list(ISSUE_FORMS))
def test_every_form_of_the_issue_is_redacted(text: str) -> None:
    cleaned = clean(text, secret=RANDOM_KEY, limit=200)

    assert leaked_fragments(cleaned, RANDOM_KEY) == set()
    assert REDACTED in cleaned
    assert encodes(cleaned)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("lower-case-middle", f"echo {RANDOM_KEY[5:19].lower()} done"),
        ("mixed-invisibles", "\u2060".join(RANDOM_KEY[:12]) + "\ufeff" + "\u200d".join(RANDOM_KEY[12:])),
        ("bidi-controls", "\u202e" + "\u2066".join(RANDOM_KEY) + "\u202c"),
        ("fullwidth-upper", RANDOM_KEY.upper().translate(FULLWIDTH)),
        ("base64-key", b64(RANDOM_KEY)),
        ("base64-key-urlsafe-unpadded", base64.urlsafe_b64encode(RANDOM_KEY.encode()).decode().rstrip("=")),
        ("base64-header-offset-1", b64("x" + "Bearer " + RANDOM_KEY)),
        ("base64-header-offset-2", b64("xy" + "Bearer " + RANDOM_KEY)),
        ("base64-key-inside-json", b64('{"token": "' + RANDOM_KEY + '"}')),
        ("base64-header-cut-short", b64("Bearer " + RANDOM_KEY)[:20] + "..."),
        ("percent-encoded-header", quote("Bearer " + RANDOM_KEY, safe="")),
        ("percent-every-byte", "".join(f"%{byte:02x}" for byte in RANDOM_KEY.encode())),
    ],
)
def test_other_copies_of_the_key_and_header_are_redacted(name: str, text: str) -> None:
    cleaned = clean(text, secret=RANDOM_KEY, limit=200)

    assert leaked_fragments(cleaned, RANDOM_KEY) == set(), name
    assert REDACTED in cleaned, name


SPECIAL_KEY = "ab/cd+ef=gh_ij-kl~mn.op!qr*st'uv"


@pytest.mark.parametrize(
    "text",
    [
        quote(SPECIAL_KEY, safe=""),
        quote("Bearer " + SPECIAL_KEY, safe=""),
        quote_plus("Bearer " + SPECIAL_KEY),
        quote(SPECIAL_KEY, safe="").lower(),
        base64.urlsafe_b64encode(("Bearer " + SPECIAL_KEY).encode()).decode(),
    ],
)
def test_percent_and_base64_forms_of_a_key_with_reserved_characters_are_redacted(text: str) -> None:
    cleaned = clean(f"got {text} back", secret=SPECIAL_KEY, limit=200)

    assert REDACTED in cleaned
    assert leaked_fragments(cleaned, SPECIAL_KEY) == set()
    assert not any(piece in cleaned.lower() for piece in fragments(quote(SPECIAL_KEY, safe="").lower()))


def test_seven_characters_of_the_key_are_kept_and_eight_are_not() -> None:
    seven, eight = RANDOM_KEY[3:10], RANDOM_KEY[3:11]

    assert clean(f"id {seven} ok", secret=RANDOM_KEY, limit=200) == f"id {seven} ok"
    assert clean(f"id {eight} ok", secret=RANDOM_KEY, limit=200) == f"id {REDACTED} ok"


def test_every_fragment_of_eight_or_more_anywhere_is_redacted() -> None:
    chance = random.Random(20)
    for _ in range(300):
        start = chance.randrange(0, len(RANDOM_KEY) - MIN_FRAGMENT + 1)
        piece = RANDOM_KEY[start : chance.randrange(start + MIN_FRAGMENT, len(RANDOM_KEY) + 1)]
        if chance.random() < 0.5:
            piece = piece.upper()
        before = "".join(chance.choices(string.ascii_letters + " .,:", k=chance.randrange(0, 150)))
        text = before + piece + " and the rest"

        cleaned = clean(text, secret=RANDOM_KEY, limit=200)

        assert leaked_fragments(cleaned, RANDOM_KEY) == set(), text


def test_a_key_spread_out_by_invisible_characters_from_just_before_the_limit_is_found_whole() -> None:
    text = "x" * 190 + "\u200b".join(RANDOM_KEY)

    cleaned = clean(text, secret=RANDOM_KEY, limit=200)

    assert cleaned == "x" * 190 + REDACTED


INNOCENT = (
    "Sequence 'International onboarding (Q3)' could not be archived: configuration mismatch between the "
    "requested status and the current one. See https://docs.reply.io/api/v3/sequences#archive for details; "
    "requestId 7f3c2a9e-41b8-4d2e-9a61-0c5e8b7d3f10, contacts=1234567890, Authorization header missing. "
    "Base64 example: SGVsbG8sIHdvcmxkIQ== and Bearer tokens are described in RFC 6750."
)


def test_innocent_text_is_not_redacted_when_the_key_is_random() -> None:
    assert clean(INNOCENT, secret=RANDOM_KEY, limit=2_000) == INNOCENT
    assert clean(INNOCENT, secret=SPECIAL_KEY, limit=2_000) == INNOCENT


@pytest.mark.parametrize("short_key", ["abc12", "Zx9!q_T"])
def test_a_key_shorter_than_eight_characters_is_redacted_only_whole_and_exactly(short_key: str) -> None:
    text = f"key {short_key}, {short_key.upper()}, {short_key[:4]} and {short_key[1:]}"

    cleaned = clean(text, secret=short_key, limit=200)

    assert cleaned == f"key {REDACTED}, {short_key.upper()}, {short_key[:4]} and {short_key[1:]}"


def test_the_output_is_the_normalised_text() -> None:
    text = "\uff26\uff55\uff4c\uff4c\u00adwidth\u200b \ufb01le \u2460"  # fullwidth "Full", soft hyphen, "fi"
    assert clean(text, secret=RANDOM_KEY, limit=200) == "Fullwidth file 1"


# The invisible characters issue 20 names: zero-width, word joiner, BOM, soft hyphen, bidi controls and marks.
NAMED_INVISIBLES = {*range(0x200B, 0x200E), 0x2060, 0xFEFF, 0x00AD, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
NAMED_INVISIBLES |= {0x200E, 0x200F}


def test_the_invisible_characters_dropped_are_unicodes_format_characters() -> None:
    format_characters = {code for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Cf"}
    dropped = {code for code in range(sys.maxunicode + 1) if normalise(chr(code)) == ""}

    assert NAMED_INVISIBLES.issubset(dropped)
    assert dropped <= format_characters | {0x034F}
    if unicodedata.unidata_version == "14.0.0":  # Python 3.11's, the function's runtime: the table is that list
        assert dropped == format_characters | {0x034F}


def test_a_text_made_of_invisible_characters_is_read_only_up_to_its_window() -> None:
    text = "\u200b" * 20_000_000 + RANDOM_KEY

    assert clean(text, secret=RANDOM_KEY, limit=200) == ""
