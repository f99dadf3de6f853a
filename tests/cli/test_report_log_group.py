"""`report --log-group`: results events read back from the results log group, as often as you like."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_log
from sequence_archiver.core.results_contract import RESULTS_EVENT_SOURCE
from tests.cli.terminal import TerminalSession, run_without_terminal
from tests.integration.harness import invoke_with_sqs

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = pytest.mark.integration

# What the two requests below come to (the simulator's seeded sequences): 301 conflicts, 501 is forbidden,
# "abc" is not an ID; the others are archived, were archived already, or do not exist.
REQUESTS = [{"sequenceIds": [101, 102, 401]}, {"sequenceIds": [301, 501, 999, "abc"]}]
ATTENTION = [(301, None, "conflict"), (501, None, "forbidden"), (None, '"abc"', "invalid")]  # input: the value as JSON


@pytest.fixture
def logged(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    cli_env: dict[str, str],
) -> LocalStack:
    """Two SQS records through the real handler; the rule has written their results events to the log group."""
    handler = load_handler()
    invoke_with_sqs(handler, aws_stack, [json.dumps(body) for body in REQUESTS], lambda_context())
    assert len(read_results_log(aws_stack, expected=2, timeout_seconds=10)) == 2
    return aws_stack


def environment() -> dict[str, str]:
    """The test process's environment (cli_env put the local endpoint and the key there) for a real process."""
    return dict(os.environ)  # the terminal helpers leave out COLUMNS themselves


def test_two_reports_from_the_log_group_agree_and_consume_nothing(logged: LocalStack) -> None:
    arguments = ["report", "--log-group", logged.results_log_group_name]

    first = run_without_terminal(arguments, env=environment())
    second = run_without_terminal(arguments, env=environment())

    assert first.returncode == second.returncode == 1  # a conflict, a forbidden ID and an invalid value
    assert first.stdout == second.stdout
    lines = first.stdout.splitlines()
    assert lines[0] == "results events: 2; requests: 2 (2 complete, 0 incomplete)"
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[3:10]}
    assert counts == {"archived": 2, "already_archived": 1, "not_found": 1, "forbidden": 1, "conflict": 1,
                      "invalid": 1, "failed": 0}  # fmt: skip
    assert "needs attention: 3" in lines
    assert first.stderr == second.stderr == ""  # no terminal: no progress bar, and nothing to warn about
    assert len(read_results_log(logged)) == 2


def test_the_ids_that_need_another_try_go_straight_into_enqueue(logged: LocalStack) -> None:
    report = run_without_terminal(
        ["report", "--log-group", logged.results_log_group_name, "--needs-attention", "--output", "ids"],
        env=environment(),
    )
    enqueue = run_without_terminal(
        ["enqueue", "--queue-url", logged.queue_url, "-"], env=environment(), stdin=report.stdout.encode()
    )

    assert report.returncode == 1
    assert report.stdout.splitlines() == ["301", "501"]  # the invalid value has no ID to try again
    assert "1 invalid input needs attention but has no sequence ID" in report.stderr
    assert enqueue.returncode == 0, enqueue.stderr
    bodies = [json.loads(m["Body"]) for m in logged.sqs().receive_message(QueueUrl=logged.queue_url)["Messages"]]
    assert [sequence_id for body in bodies for sequence_id in body["sequenceIds"]] == [301, 501]


@pytest.mark.parametrize("output", ["json", "jsonl", "csv"])
def test_needs_attention_restricts_every_format_to_those_items(
    cli: Callable[..., Run], logged: LocalStack, output: str
) -> None:
    run = cli("report", "--log-group", logged.results_log_group_name, "--needs-attention", "--output", output)

    if output == "json":
        items = json.loads(run.out)
    elif output == "jsonl":
        items = [json.loads(line) for line in run.lines]
    else:
        items = list(csv.DictReader(io.StringIO(run.out)))
        for item in items:
            item["sequenceId"] = int(item["sequenceId"]) if item["sequenceId"] else None
            item["input"] = item["input"] or None
    assert run.code == 1
    assert [(item["sequenceId"], item["input"], item["outcome"]) for item in items] == ATTENTION
    assert all(item["requestId"] for item in items)


def test_jsonl_and_csv_list_every_id_of_every_request(cli: Callable[..., Run], logged: LocalStack) -> None:
    jsonl = cli("report", "--log-group", logged.results_log_group_name, "--output", "jsonl")
    as_csv = cli("report", "--log-group", logged.results_log_group_name, "--format", "csv")

    items = [json.loads(line) for line in jsonl.lines]
    assert sorted(item["sequenceId"] or 0 for item in items) == [0, 101, 102, 301, 401, 501, 999]
    assert as_csv.lines[0] == "requestId,sequenceId,input,outcome,httpStatus,via,error,latest,paused,workspace"
    assert len(as_csv.lines) == 1 + len(items)


def test_tables_fit_the_width_they_are_given(
    cli: Callable[..., Run], logged: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    wide = cli("report", "--log-group", logged.results_log_group_name, "--needs-attention")
    monkeypatch.setenv("COLUMNS", "64")
    narrow = cli("report", "--log-group", logged.results_log_group_name, "--needs-attention")

    errors = [item["error"] for item in json.loads(cli("report", "--log-group", logged.results_log_group_name,
                                                       "--needs-attention", "--output", "json").out)]  # fmt: skip
    assert all(error in wide.out for error in errors if error)  # room enough: every error in full
    assert max(len(line) for line in narrow.lines) <= 64
    assert max(len(line) for line in wide.lines) > 64
    assert "…" in narrow.out  # the errors were cut to fit


def test_since_bounds_the_window(cli: Callable[..., Run], logged: LocalStack) -> None:
    recent = cli("report", "--log-group", logged.results_log_group_name, "--since", "30m", "--output", "json")
    future = cli("report", "--log-group", logged.results_log_group_name, "--since", "2999-01-01")
    unreadable = cli("report", "--log-group", logged.results_log_group_name, "--since", "yesterday")

    assert json.loads(recent.out)["events"] == 2
    assert future.code == 1
    assert future.lines == ["results events: 0; requests: 0 (0 complete, 0 incomplete)"]
    assert f"no results events in log group {logged.results_log_group_name} since 2999-01-01T00:00:00Z" in future.err
    assert unreadable.code == 2
    assert "--since" in unreadable.err


def test_an_empty_log_group_warns_instead_of_reporting_success(
    cli: Callable[..., Run], aws_stack: LocalStack, cli_env: dict[str, str]
) -> None:
    run = cli("report", "--log-group", aws_stack.results_log_group_name)

    assert run.code == 1
    assert "nothing needs attention" not in run.out
    assert "warning: no results events in log group" in run.err


def test_a_report_cut_short_by_max_events_says_so(cli: Callable[..., Run], logged: LocalStack) -> None:
    run = cli("report", "--log-group", logged.results_log_group_name, "--max-events", "1", "--output", "json")

    assert run.code == 1
    assert json.loads(run.out)["events"] == 1
    assert "read the first 1 event since" in run.err


def test_other_events_of_the_function_are_skipped_not_counted_as_unreadable(
    cli: Callable[..., Run], logged: LocalStack
) -> None:
    audit = {"runId": "r-1", "sequenceIds": [101]}  # a detail type this report does not read
    logged.events().put_events(
        Entries=[
            {
                "Source": RESULTS_EVENT_SOURCE,
                "DetailType": "Sequence Archive Audit",
                "Detail": json.dumps(audit),
                "EventBusName": logged.results_bus_name,
            }
        ]
    )
    read_results_log(logged, expected=3, timeout_seconds=10)

    run = cli("report", "--log-group", logged.results_log_group_name, "--output", "json")

    document = json.loads(run.out)
    assert (document["events"], document["unrecognised"], document["otherEvents"]) == (2, 0, 1)


def test_a_missing_log_group_is_exit_3_and_named(
    cli: Callable[..., Run], aws_stack: LocalStack, cli_env: dict[str, str]
) -> None:
    run = cli("report", "--log-group", "/aws/events/no-such-stack/sequence-archive-results")

    assert run.code == 3
    assert "log group /aws/events/no-such-stack/sequence-archive-results does not exist" in run.err


def test_an_unreachable_logs_endpoint_is_exit_3(cli: Callable[..., Run]) -> None:
    from tests.cli.test_enqueue import closed_port

    run = cli("report", "--log-group", "/aws/events/x/y", "--endpoint-url", f"http://127.0.0.1:{closed_port()}")

    assert run.code == 3
    assert "cannot reach CloudWatch Logs" in run.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--file", "-", "--since", "7d"], "add --log-group"),
        (["--file", "-", "--keep"], "add --queue-url"),
    ],
)
def test_options_of_another_source_are_usage_errors(
    cli: Callable[..., Run], arguments: list[str], message: str
) -> None:
    run = cli("report", *arguments, stdin="{}")

    assert run.code == 2
    assert message in run.err


def test_a_person_at_a_terminal_sees_the_events_read_count_and_rate(logged: LocalStack) -> None:
    with TerminalSession(["report", "--log-group", logged.results_log_group_name], env=environment()) as session:
        finished = session.finish()

    assert finished.code == 1
    assert "report: reading" in finished.terminal
    assert "events/s" in finished.terminal
    assert finished.lines[0] == "results events: 2; requests: 2 (2 complete, 0 incomplete)"


@pytest.fixture
def sent_twice(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    cli_env: dict[str, str],
) -> LocalStack:
    """The IDs that need attention sent again (before anyone paused 301 or fixed 501), in a second invocation."""
    handler = load_handler()
    invoke_with_sqs(handler, aws_stack, [json.dumps(body) for body in REQUESTS], lambda_context())
    invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [301, 501]})], lambda_context())
    assert len(read_results_log(aws_stack, expected=3, timeout_seconds=10)) == 3
    return aws_stack


def test_totals_count_ids_once_and_every_format_agrees(cli: Callable[..., Run], sent_twice: LocalStack) -> None:
    group = ["report", "--log-group", sent_twice.results_log_group_name]

    table_run = cli(*group)
    document = json.loads(cli(*group, "--output", "json").out)
    lines = [json.loads(line) for line in cli(*group, "--output", "jsonl").lines]
    rows = list(csv.DictReader(io.StringIO(cli(*group, "--output", "csv").out)))
    ids = cli(*group, "--output", "ids")

    # The table: each ID once by its latest outcome, the attempts beside it, and needs attention agreeing with both
    by_outcome = {line.split()[0]: line.split()[1:] for line in table_run.lines[3:11]}
    assert by_outcome == {"archived": ["2", "2"], "already_archived": ["1", "1"], "not_found": ["1", "1"],
                          "forbidden": ["1", "2"], "conflict": ["1", "2"], "invalid": ["1", "1"],
                          "failed": ["0", "0"], "unconfirmed": ["0", "0"]}  # fmt: skip
    assert table_run.lines[11] == (
        "6 sequence IDs and 1 invalid input value in 9 attempts; each ID counts once above, by its latest outcome"
    )
    assert "needs attention: 3" in table_run.lines
    # json says the same, and jsonl and csv list every attempt, marking each ID's latest
    assert document["counts"] == {outcome: int(shown[0]) for outcome, shown in by_outcome.items()}
    assert document["attempts"]["counts"] == {outcome: int(shown[1]) for outcome, shown in by_outcome.items()}
    assert (document["ids"], document["attempts"]["total"], len(document["needsAttention"])) == (6, 9, 3)
    assert len(lines) == len(rows) == 9
    latest = [(line["sequenceId"], line["outcome"]) for line in lines if line["latest"]]
    assert len(latest) == 7
    assert sorted(latest, key=str) == sorted(
        [
            (int(row["sequenceId"]) if row["sequenceId"] else None, row["outcome"])
            for row in rows
            if row["latest"] == "true"
        ],
        key=str,
    )
    assert ids.lines == ["301", "501"]  # each once, as the needs-attention list has them
    assert [item["sequenceId"] for item in document["needsAttention"]] == [None, 301, 501]
