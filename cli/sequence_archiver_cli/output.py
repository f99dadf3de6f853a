"""How every command writes: one --output switch, tables that fit the terminal, CSV and JSON lines, and progress.

The words of --output are the same on every command (`table`, `json`, `jsonl`, `csv`, `ids`); each command offers
those that apply to it. Progress (done/total, rate, ETA) goes to stderr through tqdm, and only when stderr is a
terminal, so pipes and logs get nothing but the command's own output. A pause before a Reply call (its rate
budget, a Retry-After, a retry's backoff) is shown on the bar while it lasts; without a terminal, a pause of
LONG_WAIT_SECONDS or more is one line on stderr, so a log does not look frozen either.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

from sequence_archiver.public import WaitReason

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from sequence_archiver.public import ReplyWait
    from sequence_archiver_cli.id_input import RejectedValue

REJECTED_SHOWN = 20
LONG_WAIT_SECONDS = 5.0  # without a terminal, waits this long or longer get a line on stderr; shorter ones none
_MIN_FITTED_COLUMN = 12  # a column cut to fit the terminal keeps at least this many characters
_COLUMN_GAP = 2
_PROGRESS_REDRAW_SECONDS = 0.2


class OutputFormat(StrEnum):
    """The words of --output, the same on every command."""

    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    IDS = "ids"


_MEANINGS = {
    OutputFormat.TABLE: "table: columns for a person",
    OutputFormat.JSON: "json: one document",
    OutputFormat.JSONL: "jsonl: a JSON object per line",
    OutputFormat.CSV: "csv: a header row and a row per item",
    OutputFormat.IDS: "ids: sequence IDs only, one per line",
}


def add_output_option(
    parser: argparse.ArgumentParser,
    *,
    choices: Sequence[OutputFormat],
    default: OutputFormat,
    ids_meaning: str | None = None,
    synonyms: Mapping[str, OutputFormat] | None = None,
) -> None:
    """--output (alias --format) with the formats that apply to this command; the value lands in `args.output`.

    `synonyms` are a command's old words still accepted (enqueue's `text` is `table`).
    """
    meanings = [_MEANINGS[choice] for choice in choices]
    if ids_meaning is not None and OutputFormat.IDS in choices:
        meanings[list(choices).index(OutputFormat.IDS)] = f"ids: {ids_meaning}"
    old_words = dict(synonyms or {})
    meanings.extend(f"{word}: the old name of {meaning}" for word, meaning in old_words.items())

    def parse(text: str) -> OutputFormat:
        if text in old_words:
            return old_words[text]
        if text not in choices:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(choices)})")
        return OutputFormat(text)

    parser.add_argument(
        "--output",
        "--format",
        dest="output",
        type=parse,
        choices=list(choices),
        default=default,
        metavar="{" + ",".join(choices) + "}",
        help="; ".join(meanings) + f" (default: {default}; --format is an alias)",
    )


def output_width(stream: TextIO, environ: Mapping[str, str]) -> int | None:
    """The width tables must fit: $COLUMNS, else the terminal's; None when the output is not a terminal."""
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not stream.isatty():
        return None
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return None


# Text from results events (request IDs, errors, input values) is someone else's text: in a table a control
# character would move the cursor, clear the screen or set the window title, and a bidi override would make it
# read differently than it is; in a spreadsheet a CSV cell that starts with a formula prefix runs as a formula.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# OWASP's CSV injection guidance: a cell starting with one of these gets a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character (and line separator, bidi control) as a visible escape: `\\x1b`."""
    return _INVISIBLE.sub(_escape, text)


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: visible escapes, and a leading `'` before a formula prefix."""
    if not isinstance(value, str):
        return "" if value is None else value
    return ("'" if value.startswith(FORMULA_PREFIXES) else "") + visible(value)


def clip(value: object, width: int) -> str:
    """The text of a value, cut to `width` characters with an ellipsis."""
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _fitted_widths(widths: list[int], numeric: list[bool], limit: int) -> list[int]:
    """Narrow the widest text columns, one character at a time, until the row fits `limit` (numbers are never cut)."""
    fitted = list(widths)
    excess = sum(fitted) + _COLUMN_GAP * (len(fitted) - 1) - limit
    while excess > 0:
        candidates = [i for i, width in enumerate(fitted) if not numeric[i] and width > _MIN_FITTED_COLUMN]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: fitted[i])
        fitted[widest] -= 1
        excess -= 1
    return fitted


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "", width: int | None = None
) -> str:
    """Columns padded to their widest cell, numbers right-aligned; with `width`, text columns are cut to fit it.

    Every cell is shown with its control characters as visible escapes (see `visible`).
    """
    headers = [visible(header) for header in headers]
    cells = [["" if cell is None else visible(str(cell)) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    numeric = [bool(cells) and all(row[i].isdigit() for row in cells if row[i]) for i in range(len(headers))]
    if width is not None:
        widths = _fitted_widths(widths, numeric, width - len(indent))

    def line(values: Sequence[str]) -> str:
        padded = [
            clip(value, width).rjust(width) if is_number else clip(value, width).ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=True)
        ]
        return (indent + (" " * _COLUMN_GAP).join(padded)).rstrip()

    rule = indent + (" " * _COLUMN_GAP).join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in cells)])


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """RFC 4180 CSV with a header row (None is an empty cell), without the final newline; every text cell is
    neutralised (`csv_cell`): control characters escaped, formula prefixes behind a `'`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(header) for header in headers])
    writer.writerows([[csv_cell(cell) for cell in row] for row in rows])
    return buffer.getvalue().rstrip("\n")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 sequence ID`, `2 sequence IDs`, `1,000 entries`: a count with its noun in the right number."""
    noun = singular if count == 1 else plural_form or singular + "s"
    return f"{count:,} {noun}"


def describe_wait(wait: ReplyWait) -> str:
    """`waiting 34 s for Reply's rate budget`, `waiting 7 s as Reply asked (HTTP 429)`, `waiting 1.0 s to retry …`."""
    seconds = f"{wait.seconds:.0f} s" if wait.seconds >= 10 else f"{wait.seconds:.1f} s"
    answer = f"HTTP {wait.http_status}" if wait.http_status is not None else "no answer"
    if wait.reason is WaitReason.RATE_BUDGET:
        return f"waiting {seconds} for Reply's rate budget" + (f" (after {answer})" if wait.http_status else "")
    if wait.reason is WaitReason.RETRY_AFTER:
        return f"waiting {seconds} as Reply asked ({answer})"
    return f"waiting {seconds} to retry after {answer}"


def json_line(document: Any) -> str:
    """One compact JSON object on one line (for --output jsonl)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def rejected_lines(rejected: Sequence[RejectedValue], *, limit: int = REJECTED_SHOWN) -> list[str]:
    """`where: value: reason` for the first `limit` rejected values, then how many more there are."""
    lines = [f"  {item.where}: {item.value}: {item.reason}" for item in rejected[:limit]]
    if len(rejected) > limit:
        lines.append(f"  … and {len(rejected) - limit} more")
    return lines


class Progress:
    """done/total, rate and ETA on stderr while a command works: a tqdm bar, drawn only when `stream` is a terminal."""

    def __init__(self, stream: TextIO, *, label: str, total: int | None, unit: str, enabled: bool = True) -> None:
        self.shown = enabled and stream.isatty()
        self._bar: tqdm[Any] = tqdm(
            total=total,
            desc=label,
            unit=f" {unit}",
            file=stream,
            disable=not self.shown,
            leave=False,
            dynamic_ncols=True,
            mininterval=_PROGRESS_REDRAW_SECONDS,
        )

    def set_total(self, total: int | None) -> None:
        """The total became known (or changed): the bar shows a fraction and an ETA from now on."""
        if self.shown:
            self._bar.total = total
            self._bar.refresh()

    def note(self, text: str) -> None:
        """Show `text` after the counts now (a wait that starts: the bar is not redrawn while the command sleeps)."""
        if self.shown:
            self._bar.set_postfix_str(text, refresh=True)

    def update(self, done: int, *, note: str = "") -> None:
        """`done` units are done; `note` is shown after the counts."""
        if not self.shown:
            return
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(done - self._bar.n)
        if self._bar.total is not None and done >= self._bar.total:
            self._bar.refresh()  # the last step is always drawn, whatever the redraw interval

    @contextmanager
    def cleared(self) -> Iterator[None]:
        """The bar taken off the terminal while lines are written there (stdout on the same terminal), then redrawn."""
        if not self.shown:
            yield
            return
        self._bar.clear()
        try:
            yield
        finally:
            self._bar.refresh()

    def finish(self) -> None:
        """Clear the bar: the summary follows on its own lines."""
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()
