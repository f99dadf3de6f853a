"""Text from results events is someone else's text: tables show control characters as escapes, CSV cells that
start like a formula get a leading apostrophe (OWASP's CSV injection guidance)."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from sequence_archiver_cli.output import csv_text, table
from tests.cli.terminal import run_without_terminal

if TYPE_CHECKING:
    from pathlib import Path

HOSTILE_REQUEST_ID = '=HYPERLINK("http://evil.example/?x","click")\x1b]0;owned\x07\x1b[2J'
ZERO = dict.fromkeys(
    ["archived", "already_archived", "not_found", "forbidden", "conflict", "invalid", "failed", "unconfirmed"], 0
)


def hostile_detail() -> dict[str, Any]:
    """A results event (not one the function wrote: it validates request IDs) with text meant for a terminal or a
    spreadsheet in its request ID, an error and an input value."""
    return {
        "requestId": HOSTILE_REQUEST_ID,
        "trigger": "sqs",
        "complete": False,
        "counts": {**ZERO, "invalid": 1, "conflict": 1, "failed": 1},
        "results": [
            {"sequenceId": None, "outcome": "invalid", "input": '"+cmd|/c calc"', "error": "@SUM(1)\rbad\x9b"},
            {"sequenceId": 301, "outcome": "conflict", "httpStatus": 409, "error": "-2+3\u202eevil"},
            {"sequenceId": 302, "outcome": "failed", "httpStatus": 503, "error": "=1+1"},
        ],
    }


@pytest.fixture
def hostile_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(hostile_detail()) + "\n", encoding="utf-8")
    return path


def no_raw_controls(text: str) -> bool:
    """True when `text` holds no control character but newlines (and no bidi override)."""
    return not any(
        (ord(char) < 0x20 and char != "\n") or 0x7F <= ord(char) <= 0x9F or char == "\u202e" for char in text
    )


def test_the_table_shows_control_characters_of_a_results_event_as_visible_escapes(hostile_file: Path) -> None:
    completed = run_without_terminal(["report", "--file", str(hostile_file)], env=dict(os.environ))

    assert completed.returncode == 1, completed.stderr  # a conflict and an invalid value need attention
    assert no_raw_controls(completed.stdout)
    # the request is incomplete: its whole ID is named, escaped
    assert "\\x1b]0;owned\\x07\\x1b[2J" in completed.stdout
    assert "\\x0dbad\\x9b" in completed.stdout
    assert "\\u202eevil" in completed.stdout


def test_csv_cells_that_start_like_a_formula_get_an_apostrophe_and_keep_no_control_characters(
    hostile_file: Path,
) -> None:
    completed = run_without_terminal(["report", "--file", str(hostile_file), "--output", "csv"], env=dict(os.environ))

    assert no_raw_controls(completed.stdout)
    rows = list(csv.DictReader(io.StringIO(completed.stdout)))
    assert len(rows) == 3
    cells = [value for row in rows for value in row.values() if value]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert {row["requestId"] for row in rows} == {
        "'" + HOSTILE_REQUEST_ID.replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    }
    errors = {row["error"] for row in rows}
    assert errors == {"'@SUM(1)\\x0dbad\\x9b", "'-2+3\\u202eevil", "'=1+1"}


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_prefix_is_neutralised_and_numbers_are_left_alone(prefix: str) -> None:
    text = csv_text(["value", "n"], [[prefix + "1+1", -5]])

    [row] = list(csv.reader(io.StringIO(text)))[1:]
    assert row[0].startswith("'")
    assert row[1] == "-5"  # a number is data, not text someone typed


def test_table_cells_and_headers_are_escaped_wherever_they_are() -> None:
    shown = table(["request\x1b"], [["a\x00b"], [None]])

    assert shown.splitlines()[0] == "request\\x1b"
    assert "a\\x00b" in shown
