"""Sequence IDs from arguments, files, stdin or a CSV column, validated with the function's own rules."""

from __future__ import annotations

import csv
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from sequence_archiver.public import InvalidSequenceIdError, parse_sequence_id, preview
from sequence_archiver_cli.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

STDIN = "-"


@dataclass(frozen=True, slots=True)
class RawValue:
    """One input value and where it came from (`ids.txt:3`, `argument 2`)."""

    where: str
    text: str


@dataclass(frozen=True, slots=True)
class RejectedValue:
    """An input value that is not a sequence ID, with the function's reason."""

    where: str
    value: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """The JSON summary representation."""
        return {"where": self.where, "input": self.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class IdInput:
    """The valid, distinct IDs in input order, the rejected values and how many duplicates were dropped."""

    sequence_ids: tuple[int, ...]
    rejected: tuple[RejectedValue, ...]
    duplicates: int

    @property
    def values_read(self) -> int:
        """Every value seen, valid or not."""
        return len(self.sequence_ids) + len(self.rejected) + self.duplicates


@dataclass(frozen=True, slots=True)
class InputSources:
    """Where a command reads IDs from; several sources are combined in this order."""

    arguments: Sequence[str] = ()
    files: Sequence[str] = ()
    csv_file: str | None = None
    csv_column: str | None = None


def values_from_lines(lines: Iterable[str], *, source: str) -> Iterator[RawValue]:
    """One value per line; blank lines and `#` comments (whole-line or trailing) are skipped."""
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            yield RawValue(f"{source}:{number}", text)


def values_from_csv(stream: TextIO, *, column: str, source: str) -> Iterator[RawValue]:
    """The values of one CSV column (by header name); empty cells are skipped."""
    reader = csv.DictReader(stream)
    headers = [name.strip() for name in reader.fieldnames or []]
    if column not in headers:
        available = ", ".join(repr(name) for name in headers) or "none (the file is empty)"
        raise UsageError(f"{source} has no column {column!r}; available columns: {available}")
    key = (reader.fieldnames or [])[headers.index(column)]
    try:
        for row in reader:
            text = (row.get(key) or "").strip()
            if text:
                yield RawValue(f"{source}:{reader.line_num} ({column})", text)
    except csv.Error as exc:
        raise UsageError(f"{source} is not valid CSV near line {reader.line_num}: {exc}") from None


def validate(values: Iterable[RawValue]) -> IdInput:
    """Validate each value as the function does, keep the first of duplicates, collect the rejects."""
    ids: dict[int, None] = {}
    rejected: list[RejectedValue] = []
    duplicates = 0
    for value in values:
        try:
            sequence_id = parse_sequence_id(value.text)
        except InvalidSequenceIdError as exc:
            rejected.append(RejectedValue(value.where, preview(value.text), str(exc)))
            continue
        if sequence_id in ids:
            duplicates += 1
        else:
            ids[sequence_id] = None
    return IdInput(tuple(ids), tuple(rejected), duplicates)


def read_id_input(sources: InputSources, *, stdin: TextIO) -> IdInput:
    """Read and validate every source; an unreadable file or a missing column is a UsageError."""
    names = [*(a for a in sources.arguments if a == STDIN), *(f for f in sources.files if f == STDIN)]
    if sources.csv_file == STDIN:
        names.append(STDIN)
    if len(names) > 1:
        raise UsageError("stdin ('-') can be read only once")
    if (sources.csv_file is None) != (sources.csv_column is None):
        raise UsageError("--csv and --column go together")
    with ExitStack() as stack:

        def open_text(path: str) -> TextIO:
            if path == STDIN:
                return stdin
            try:
                return stack.enter_context(open(path, encoding="utf-8-sig", newline=""))
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None

        def every_value() -> Iterator[RawValue]:
            for position, argument in enumerate(sources.arguments, start=1):
                if argument == STDIN:
                    yield from values_from_lines(stdin, source="stdin")
                elif argument.strip():
                    yield RawValue(f"argument {position}", argument.strip())
            for path in sources.files:
                yield from values_from_lines(open_text(path), source="stdin" if path == STDIN else path)
            if sources.csv_file is not None and sources.csv_column is not None:
                name = "stdin" if sources.csv_file == STDIN else sources.csv_file
                yield from values_from_csv(open_text(sources.csv_file), column=sources.csv_column, source=name)

        try:
            result = validate(every_value())
        except UnicodeDecodeError:
            raise UsageError("the input is not UTF-8 text") from None
    if result.values_read == 0:
        raise UsageError("no sequence IDs in the input (give IDs as arguments, --file, --csv or '-' for stdin)")
    return result
