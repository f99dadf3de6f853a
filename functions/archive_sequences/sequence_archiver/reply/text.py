"""Text copied from Reply's answers, made safe to keep: bounded, free of the API key, always encodable.

Every string field the client copies out of a Reply body (problem title/detail/code, bulk error and
errorDetails, a sequence's name and status) goes through `clean` before it is stored, so it can reach a
results event, a log line or an exception message without leaking the key, breaking UTF-8 encoding
(lone surrogates from a JSON escape such as "\\ud800") or forging log lines (control characters).

What `clean` returns is the cleaned text itself, not the original with holes: invisible characters
(Unicode format characters: zero-width spaces and joiners, soft hyphens, bidirectional controls, BOMs)
are dropped, the rest is NFKC-normalised (fullwidth letters read as ASCII ones), control characters and
lone surrogates become U+FFFD, line breaks and tabs a space. Only then is the key looked for, so a copy
of it that Reply spread out with invisible characters, wrote in fullwidth or upper case is one run:

- every run of at least MIN_FRAGMENT characters that is a piece of the key, compared case-insensitively
  (a cut-off `rk_live_abc...`, an upper-cased copy), becomes "[redacted]";
- so does every such run of the key's base64 and of the `Bearer <key>` header's (standard and URL-safe
  alphabets, padded or not, at each of the three byte alignments a longer base64 text can put them at),
  and of the key's percent-encoded forms (`%XX` for reserved characters, or for every byte); in
  `Bearer%20<key>` or `Bearer+<key>` the key's form is found and the word "Bearer" stays, so that
  ordinary text such as "the bearer r..." is never taken for a header;
- a text ending in the first 4 to 7 characters of the key (a key cut off by a length limit) has them
  redacted too.

Every form is compared lower-cased, base64 too: one pass, and a superset of base64's exact matches (a
random 8-character run matching by chance is as unlikely either way).

A key shorter than MIN_FRAGMENT characters is no Reply key, and pieces that short are in ordinary words:
only its exact copies (and exact copies of its encoded forms) are redacted.

Cost: the work per key (its MIN_FRAGMENT-character windows and their _CHUNK-character pieces, as sets)
is done once and cached under the key's SHA-256, never the key. Each call reads at most
`_RAW_WINDOW_FACTOR * (limit + longest form)` characters, so a 1 MiB body costs what its first kilobyte
or so costs; the scan is linear (see _Needles.spans). `bench/redaction.py` measures it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

REDACTED: Final = "[redacted]"
REPLACEMENT: Final = "\ufffd"
# A run of the key (or of an encoded form of it) at least this long is redacted wherever it is.
MIN_FRAGMENT: Final = 8
# A trailing piece of the key shorter than this says nothing about the key (keys share short prefixes).
_MIN_PARTIAL_SECRET = 4
# How many raw characters per kept character are read: room for a key spread out by invisible characters.
_RAW_WINDOW_FACTOR = 4
_CACHED_KEYS = 4  # a key and the one it was rotated to, with room to spare
# Unicode's format characters (general category Cf, Unicode 14): nothing a reader sees, and all that hides
# a key from a plain search (U+200B-U+200D, U+2060, U+FEFF, the soft hyphen U+00AD, the bidi controls
# U+200E/F, U+202A-U+202E, U+2066-U+2069). tests/unit/test_reply_text.py checks the list against unicodedata.
_FORMAT_CHARACTERS: Final = (
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
_ALSO_INVISIBLE: Final = (0x034F,)  # the combining grapheme joiner: a mark (Mn) that shows nothing


def _translation_table() -> dict[int, str | None]:
    """Map every character that must not be kept to its stand-in (None: dropped)."""
    table: dict[int, str | None] = {}
    for code in (*range(0x20), *range(0x7F, 0xA0)):
        table[code] = REPLACEMENT  # C0 and C1 control characters, DEL
    for code in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029):
        table[code] = " "  # line breaks and tabs: keep the words apart, never start a new log line
    for first, last in _FORMAT_CHARACTERS:
        for code in range(first, last + 1):
            table[code] = None  # invisible: dropped (bidi controls too, which could make a log line read differently)
    for code in _ALSO_INVISIBLE:
        table[code] = None
    for code in range(0xD800, 0xE000):
        table[code] = REPLACEMENT  # lone surrogates: json.loads lets them through, UTF-8 cannot encode them
    return table


_TABLE: Final = _translation_table()


def clean(text: str, *, secret: str | None, limit: int) -> str:
    """At most `limit` characters of `text`, normalised, made safe, every form of `secret` "[redacted]"."""
    if not secret:
        return normalise(text[: _RAW_WINDOW_FACTOR * limit])[:limit]
    forms = _forms_of(secret)
    # Read past the limit, so a key (or its encoded form) that starts before the limit is found whole.
    kept = normalise(text[: _RAW_WINDOW_FACTOR * (limit + forms.longest)])
    return _without_trailing_part_of(forms.redact(kept)[:limit], forms, limit)


def normalise(text: str) -> str:
    """`text` without invisible characters, NFKC-normalised, control characters and lone surrogates replaced."""
    visible = text.translate(_TABLE)
    if visible.isascii():  # NFKC leaves ASCII as it is; the common case skips the work
        return visible
    # Normalising can bring back nothing the table removed (no NFKC mapping yields a control or format character).
    return unicodedata.normalize("NFKC", visible)


# Any run of MIN_FRAGMENT characters holds a whole _CHUNK-character piece starting at a multiple of _CHUNK
# (its first MIN_FRAGMENT - _CHUNK + 1 positions hold a multiple of _CHUNK): reading the text in such pieces
# finds every window that can match, and the pieces are cut and compared by C code, not a Python loop.
_CHUNK: Final = MIN_FRAGMENT // 2
_CHUNKS: Final = re.compile(f"(?s).{{1,{_CHUNK}}}")


@dataclass(frozen=True, slots=True)
class _Needles:
    """The MIN_FRAGMENT-character windows of some strings, and their _CHUNK-character pieces."""

    windows: frozenset[str]
    pieces: frozenset[str]

    @classmethod
    def of(cls, needles: list[str]) -> _Needles:
        windows = frozenset(
            needle[at : at + MIN_FRAGMENT] for needle in needles for at in range(len(needle) - MIN_FRAGMENT + 1)
        )
        pieces = frozenset(window[at : at + _CHUNK] for window in windows for at in range(MIN_FRAGMENT - _CHUNK + 1))
        return cls(windows, pieces)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Maximal spans of `text` covered by windows of the needles (overlapping windows merge), in order.

        A window starting at `start` holds the piece at the multiple of _CHUNK in start..start + _CHUNK, so
        only the windows starting up to _CHUNK before a matching piece are looked up: innocent text costs
        one C-level pass (cut into pieces, compared as a set), and a match a few look-ups.
        """
        chunks = _CHUNKS.findall(text)
        pieces, windows = self.pieces, self.windows
        if pieces.isdisjoint(chunks):
            return []
        spans: list[tuple[int, int]] = []
        for index, chunk in enumerate(chunks):
            if chunk not in pieces:
                continue
            at = index * _CHUNK
            first = max(at - _CHUNK, spans[-1][1] - MIN_FRAGMENT + 1 if spans else 0, 0)
            for start in range(first, at + 1):
                if text[start : start + MIN_FRAGMENT] in windows:
                    end = start + MIN_FRAGMENT
                    if spans and spans[-1][1] >= start:
                        spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
                    else:
                        spans.append((start, end))
        return spans


@dataclass(frozen=True, slots=True)
class _KeyForms:
    """Everything `clean` looks for to redact one key, worked out once per key."""

    folded_prefix: str  # the key's start, lower-cased: a text ending in 4+ characters of it is cut off there ("": none)
    longest: int  # the longest form: how far past the limit a form that starts before it may reach
    needles: _Needles | None  # every form, lower-cased (base64 too: one pass; a superset of its exact matches)
    whole: tuple[str, ...]  # a short key: its forms, redacted only whole and exactly

    def redact(self, text: str) -> str:
        """`text` with every span that is a form of the key replaced by REDACTED."""
        if self.needles is None:
            for form in self.whole:
                text = text.replace(form, REDACTED)
            return text
        folded = text.lower()
        if len(folded) != len(text):  # a few characters lower-case to two (U+0130): fold ASCII only
            folded = text.translate(_ASCII_LOWER)
        spans = self.needles.spans(folded)
        if not spans:
            return text
        pieces: list[str] = []
        at = 0
        for start, end in spans:
            pieces += (text[at:start], REDACTED)
            at = end
        pieces.append(text[at:])
        return "".join(pieces)


_ASCII_LOWER: Final = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_FORMS: dict[bytes, _KeyForms] = {}


def _forms_of(secret: str) -> _KeyForms:
    """The key's forms, from a small cache keyed by the key's SHA-256 (the key itself is no dictionary key)."""
    digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
    forms = _FORMS.get(digest)
    if forms is None:
        if len(_FORMS) >= _CACHED_KEYS:
            _FORMS.clear()
        forms = _FORMS[digest] = _work_out_forms(secret)
    return forms


def _work_out_forms(secret: str) -> _KeyForms:
    header = "Bearer " + secret
    # The header's plain and percent-encoded forms (`Bearer%20<key>`, `Bearer+<key>`) are "Bearer" and a form
    # of the key: the key's forms find them, and "Bearer" stays, so `the bearer r...` is never taken for one.
    raw = secret.encode("utf-8", "surrogatepass")
    forms = [secret, quote(secret, safe=""), "".join(f"%{byte:02X}" for byte in raw)]
    forms += base64_forms(raw) + base64_forms(header.encode("utf-8", "surrogatepass"))
    longest = max(map(len, forms))
    if len(secret) < MIN_FRAGMENT:
        whole = (secret, *(form for form in forms[1:] if len(form) >= MIN_FRAGMENT))
        return _KeyForms("", longest, None, tuple(dict.fromkeys(whole)))
    return _KeyForms(secret[:MIN_FRAGMENT].lower(), longest, _Needles.of([form.lower() for form in forms]), ())


def base64_forms(data: bytes) -> list[str]:
    """The base64 texts any base64 holding `data` contains: its 3 alignments, both alphabets, padding kept.

    Inside a longer base64 text, `data` starting at byte offset 1 (mod 3) shares its first group with a byte
    before it; from `data[2:]` on, the encoding is `b64(data[2:])`'s. Offset 2 (mod 3): `data[1:]`. The
    last group depends on what follows, so a needle ending there matches only up to it, which is enough.
    """
    forms: list[str] = []
    for skip in range(3):
        standard = base64.b64encode(data[skip:]).decode("ascii")
        forms += (standard, standard.replace("+", "-").replace("/", "_"))
    return forms


def _without_trailing_part_of(text: str, forms: _KeyForms, limit: int) -> str:
    """Redact a start of the key that the text ends with (a key cut off by a length limit, ours or Reply's)."""
    prefix = forms.folded_prefix
    tail = text[-len(prefix) :].lower() if prefix else ""
    for size in range(min(len(tail), len(prefix)), _MIN_PARTIAL_SECRET - 1, -1):
        if tail[-size:] == prefix[:size]:
            return (text[:-size] + REDACTED)[:limit]
    return text
