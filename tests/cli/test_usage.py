"""The command line itself: help, usage errors as one line with exit 2, config errors with exit 3, progress."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from sequence_archiver.reply.listing import SequenceFilter, SequenceItem
from sequence_archiver_cli.output import Progress, csv_text, plural, table

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.cli.conftest import Run

pytestmark = pytest.mark.usefixtures("no_network")


@pytest.mark.parametrize("command", [[], ["select"], ["enqueue"], ["archive"], ["report"], ["restore"]])
def test_every_command_has_help_with_the_exit_codes(cli: Callable[..., Run], command: list[str]) -> None:
    run = cli(*command, "--help")

    assert run.code == 0
    assert "exit codes:" in run.out
    assert "3  AWS or Reply unreachable" in run.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "choose a command"),
        (["enqueue", "1"], "give --queue-url URL (the stack's queue), or set QUEUE_URL"),
        (["enqueue", "--queue-url", "q", "--ids-per-message", "1001", "1"], "must be between 1 and 1000"),
        (["select", "--status", "archived"], "must be one of new, active, paused"),
        (["select", "--created-before", "last tuesday"], "not an ISO 8601 date or time"),
        (["select", "--folder", "inbox"], "not a folder ID"),
        (["select", "--archived", "--not-archived"], "not allowed with argument"),
        (["select", "--created-after", "2025-01-01", "--created-before", "2024-01-01"], "must be earlier than"),
        (["select", "--base-url", "http://api.reply.io"], "plain http is only allowed to a loopback host"),
        (["select", "--base-url", "https://user:pw@api.reply.io"], "must not carry credentials"),
        (["archive", "--mode", "fast", "1"], "invalid choice: 'fast'"),
        (["archive", "--output", "yaml", "1"], "invalid choice: 'yaml' (choose from table, json, jsonl, csv, ids)"),
        (["enqueue", "--queue-url", "q", "--format", "xml", "1"], "invalid choice: 'xml'"),
        (["archive", "--secret-id", "s", "--api-key-env", "K", "1"], "--secret-id and --api-key-env K name two"),
        (["select", "--secret-id", "s", "--api-key-env", "K"], "--secret-id and --api-key-env K name two"),
        (["report"], "choose a source: --log-group NAME (or set RESULTS_LOG_GROUP), --queue-url URL or --file FILE"),
        (["report", "--queue-url"], "--queue-url without a URL reads $RESULTS_SINK_QUEUE_URL, which is not set"),
        (["report", "--log-group", "g", "--file", "f"], "not allowed with argument"),
        (["select", "--base-url", "https://x.example/v3?key=1"], "--base-url: must not have a query string"),
        (["restore", "--to-sequence", "1"], "the following arguments are required: --snapshot"),
        (["restore", "--snapshot", "s.json.gz", "--to-sequence", "0"], "argument --to-sequence:"),
        (["restore", "--snapshot", "s.json.gz", "--to-sequence", "1", "--contacts-per-call", "10001"], "between 1"),
        (["restore", "--snapshot", "s.json.gz", "--to-sequence", "1", "--output", "ids"], "invalid choice: 'ids'"),
    ],
)
def test_usage_errors_are_one_line_on_stderr_with_exit_2(
    cli: Callable[..., Run], args: list[str], message: str
) -> None:
    run = cli(*args)

    assert run.code == 2
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert message in run.err
    assert "pw@" not in run.err


def test_bad_input_files_exit_2_with_the_reason(cli: Callable[..., Run], tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n", encoding="utf-8")
    export = tmp_path / "export.csv"
    export.write_text("id,name\n1,a\n", encoding="utf-8")

    no_ids = cli("enqueue", "--queue-url", "http://127.0.0.1:9/1/q", "--file", str(empty))
    no_column = cli("archive", "--csv", str(export), "--column", "sequence")
    no_events = cli("report", "--file", str(empty))

    assert (no_ids.code, no_column.code, no_events.code) == (2, 2, 2)
    assert "no sequence IDs in the input" in no_ids.err
    assert "has no column 'sequence'; available columns: 'id', 'name'" in no_column.err
    assert "is not JSON" in no_events.err


def test_only_invalid_ids_are_listed_and_exit_2(cli: Callable[..., Run]) -> None:
    run = cli("enqueue", "--queue-url", "http://127.0.0.1:9/1/q", "abc", "1.5", "-", stdin="0\n")

    assert run.code == 2
    assert "rejected 3 input values" in run.out
    assert 'stdin:1: "0": a sequence ID must be a positive whole number (1 to 2147483647)' in run.out
    assert run.err.strip() == "sequence-archiver enqueue: error: no valid sequence IDs in the input (3 values rejected)"


def test_a_missing_api_key_is_a_configuration_error(cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLY_API_KEY", raising=False)
    monkeypatch.setenv("MY_KEY", '{"apiKey": ""}')

    missing = cli("select", "--base-url", "http://127.0.0.1:9")
    malformed = cli("archive", "--api-key-env", "MY_KEY", "--base-url", "http://127.0.0.1:9", "1")

    assert missing.code == malformed.code == 3
    assert "REPLY_API_KEY is not set" in missing.err
    assert "MY_KEY: the secret holds an empty API key" in malformed.err


@pytest.mark.parametrize(
    ("value", "state"), [("", "is empty"), ("   ", "is set to whitespace only"), ("\t\n", "is set to whitespace only")]
)
def test_an_empty_api_key_variable_says_it_is_empty_not_unset(
    cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, value: str, state: str
) -> None:
    monkeypatch.setenv("REPLY_API_KEY", value)

    run = cli("select", "--base-url", "http://127.0.0.1:9")

    assert run.code == 3
    assert run.err.strip() == (
        f"sequence-archiver select: error: REPLY_API_KEY {state}: put the Reply API key in it, or use --secret-id"
    )


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 sequence IDs"), (1, "1 sequence ID"), (2, "2 sequence IDs"), (1500, "1,500 sequence IDs")],
)
def test_counts_are_printed_with_the_noun_in_the_right_number(count: int, expected: str) -> None:
    assert plural(count, "sequence ID") == expected
    assert plural(count, "entry", "entries") == expected.replace("sequence IDs", "entries").replace(
        "sequence ID", "entry"
    )


@pytest.mark.parametrize(
    ("values", "lines"),
    [
        (
            ["101", "x", "101"],
            ["dry run: would archive 1 sequence ID (one call per ID); nothing was sent to Reply",
             "rejected 1 input value (not sequence IDs, never sent):", "skipped 1 duplicate ID"],
        ),
        (
            ["101", "102", "x", "y", "101", "102"],
            ["dry run: would archive 2 sequence IDs (1 bulk call of up to 100 IDs); nothing was sent to Reply",
             "rejected 2 input values (not sequence IDs, never sent):", "skipped 2 duplicate IDs"],
        ),
    ],
)  # fmt: skip
def test_archive_counts_say_one_id_and_two_ids(cli: Callable[..., Run], values: list[str], lines: list[str]) -> None:
    run = cli("archive", "--dry-run", "--output", "ids", *values)

    assert run.code == 1  # the rejected values need attention
    assert [line for line in run.err.splitlines() if not line.startswith("  ")] == lines


@pytest.mark.parametrize(("values", "rejected"), [(["x"], "1 value rejected"), (["x", "-5"], "2 values rejected")])
def test_no_valid_id_says_how_many_values_were_rejected(
    cli: Callable[..., Run], values: list[str], rejected: str
) -> None:
    run = cli("archive", "--dry-run", *values)

    assert run.code == 2
    assert f"no valid sequence IDs in the input ({rejected})" in run.err


def test_a_negative_id_on_the_command_line_is_named_and_said_to_be_negative(cli: Callable[..., Run]) -> None:
    run = cli("enqueue", "--queue-url", "http://127.0.0.1:9/1/q", "--dry-run", "101", "-5", "+7", "5.0")

    assert run.code == 1
    assert "rejected 3 input values (not sequence IDs, not sent):" in run.out
    assert (
        '  argument 2: "-5": a sequence ID must be a positive whole number (1 to 2147483647), not negative' in run.out
    )
    assert '  argument 3: "+7": a sequence ID string must be digits only, without a + sign' in run.out
    assert '  argument 4: "5.0": a sequence ID must be a whole number, without a decimal point or exponent' in run.out


def test_dry_run_validates_and_sends_nothing(cli: Callable[..., Run]) -> None:
    run = cli("enqueue", "--queue-url", "http://127.0.0.1:9/1/q", "--dry-run", "--ids-per-message", "2", "1", "2", "3")

    assert run.code == 0
    assert run.lines[0] == "dry run: would send 2 messages (3 IDs) in 1 SendMessageBatch call to http://127.0.0.1:9/1/q"
    assert run.lines[1:] == ["  message 1: 2 IDs (1 … 2), 21 bytes", "  message 2: 1 ID (3), 19 bytes"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_done_total_rate_and_eta_on_a_terminal_and_nothing_elsewhere() -> None:
    terminal, pipe = FakeTerminal(), io.StringIO()

    for stream in (terminal, pipe):
        progress = Progress(stream, label="enqueue", total=200, unit="IDs")
        progress.update(50)
        progress.set_total(400)
        progress.update(400, note="last: message 4")
        progress.finish()

    drawn = terminal.getvalue()
    assert "enqueue" in drawn
    assert "400/400" in drawn
    assert "IDs/s" in drawn
    assert "<" in drawn  # elapsed<remaining: the ETA
    assert "last: message 4" in drawn
    assert pipe.getvalue() == ""


def test_tables_fit_the_width_they_are_given_cutting_text_never_numbers() -> None:
    rows = [[101, "failed", 500, "Reply answered 500 Internal Server Error: " + "x" * 80]]

    wide = table(["sequenceId", "outcome", "http", "detail"], rows)
    narrow = table(["sequenceId", "outcome", "http", "detail"], rows, width=60)

    assert max(map(len, wide.splitlines())) > 100
    assert max(map(len, narrow.splitlines())) <= 60
    assert narrow.splitlines()[2].startswith("       101  failed    500  Reply answered 500")
    assert narrow.splitlines()[2].endswith("…")


def test_csv_quotes_what_needs_quoting() -> None:
    assert csv_text(["sequenceId", "error"], [[1, 'said "no", twice'], [2, None]]) == (
        'sequenceId,error\n1,"said ""no"", twice"\n2,'
    )


def test_created_before_lists_oldest_first_and_stops_at_the_bound() -> None:
    bound = datetime(2024, 6, 1, tzinfo=UTC)
    sequence_filter = SequenceFilter(status="paused", created_before=bound)

    assert sequence_filter.query() == {
        "status": "paused",
        "isArchived": "false",
        "sortBy": "created",
        "sortDirection": "asc",
    }
    older = SequenceItem(1, status="paused", is_archived=False, created=datetime(2024, 5, 1, tzinfo=UTC))
    newer = SequenceItem(2, status="paused", is_archived=False, created=bound)
    assert sequence_filter.matches(older)
    assert not sequence_filter.matches(newer)
    assert sequence_filter.past_the_end(newer)
    assert not SequenceFilter(status="paused").matches(SequenceItem(3, status="active", is_archived=False))
