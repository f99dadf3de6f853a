"""Text copied from Reply: bounded, the API key redacted, always encodable as UTF-8 JSON."""

from __future__ import annotations

import json

import pytest

from sequence_archiver.reply_text import REDACTED, clean

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
        ("bidi\u202eevil\u2066", "bidi\ufffdevil\ufffd"),
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
