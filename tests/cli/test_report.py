"""`report` on results events: from the sink queue (drained) after the real handler ran, and from files."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import drain_queue, read_results_events
from tests.cli.terminal import console_script, run_without_terminal
from tests.integration.harness import invoke_with_sqs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = pytest.mark.integration


@pytest.fixture
def handled(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    cli_env: dict[str, str],
) -> LocalStack:
    """Two SQS records through the real handler; their results events wait on the sink queue."""
    handler = load_handler()
    bodies = [json.dumps({"sequenceIds": [101, 102, 401]}), json.dumps({"sequenceIds": [301, 501, 999, "abc"]})]
    invoke_with_sqs(handler, aws_stack, bodies, lambda_context())
    return aws_stack


def test_report_from_the_sink_queue_after_the_handler_ran(cli: Callable[..., Run], handled: LocalStack) -> None:
    run = cli("report", "--queue-url", handled.results_sink_queue_url, "--wait-seconds", "1")

    assert run.code == 1, run.err  # a conflict, a forbidden ID and an invalid value need attention
    assert run.lines[0] == "results events: 2; requests: 2 (2 complete, 0 incomplete)"
    counts = {line.split()[0]: int(line.split()[1]) for line in run.lines[3:10]}
    assert counts == {"archived": 2, "already_archived": 1, "not_found": 1, "forbidden": 1, "conflict": 1,
                      "invalid": 1, "failed": 0}  # fmt: skip
    assert "needs attention: 3" in run.lines
    attention = run.out.split("needs attention: 3\n", 1)[1]
    assert [line.split()[1:3] for line in attention.splitlines()[2:]] == [
        ["301", "conflict"],
        ["501", "forbidden"],
        ['("abc")', "invalid"],
    ]
    assert drain_queue(handled.results_sink_queue_url, endpoint_url=handled.endpoint_url) == []  # read and deleted
    assert "deleted the 2 results events read from the queue" in run.err


def test_keep_leaves_the_events_for_the_next_reader(cli: Callable[..., Run], handled: LocalStack) -> None:
    kept = cli("report", "--queue-url", handled.results_sink_queue_url, "--keep", "--format", "json")

    document = json.loads(kept.out)
    assert document["requests"] == {"total": 2, "complete": 2, "incomplete": 0}
    assert document["counts"]["archived"] == 2
    assert [item["sequenceId"] for item in document["needsAttention"]] == [301, 501, None]
    assert len(read_results_events(handled, expected=2, timeout_seconds=3)) == 2
    assert "deleted" not in kept.err


def test_report_from_a_file_of_envelopes_or_bare_details(
    cli: Callable[..., Run], handled: LocalStack, tmp_path: Path
) -> None:
    envelopes = read_results_events(handled, expected=2)
    lines = tmp_path / "results.jsonl"
    lines.write_text("".join(json.dumps(e) + "\n" for e in envelopes), encoding="utf-8")
    array = tmp_path / "details.json"
    clean = [e["detail"] for e in envelopes if e["detail"]["counts"]["conflict"] == 0]
    array.write_text(json.dumps(clean), encoding="utf-8")

    from_lines = cli("report", "--file", str(lines), "--format", "json")
    from_array = cli("report", "--file", str(array))
    from_stdin = cli("report", "--file", "-", stdin=json.dumps(clean))

    assert from_lines.code == 1
    assert json.loads(from_lines.out)["counts"]["forbidden"] == 1
    assert from_array.code == from_stdin.code == 0
    assert "nothing needs attention" in from_array.lines
    assert from_array.out == from_stdin.out


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "holds no results events"), ('{"requestId": "r1"}\nnot json\n', ":2 is not JSON")],
)
def test_bad_report_files_exit_2(cli: Callable[..., Run], tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(content, encoding="utf-8")

    run = cli("report", "--file", str(path))

    assert run.code == 2
    assert message in run.err


def test_an_unreachable_sink_queue_is_exit_3(cli: Callable[..., Run]) -> None:
    from tests.cli.test_enqueue import closed_port

    run = cli("report", "--queue-url", f"http://127.0.0.1:{closed_port()}/123456789012/sink")

    assert run.code == 3
    assert "cannot reach SQS" in run.err


def test_messages_that_are_not_results_events_are_counted_and_left_on_the_queue(
    cli: Callable[..., Run], aws_stack: LocalStack, cli_env: dict[str, str]
) -> None:
    sqs = aws_stack.sqs()
    for body in ("not json", json.dumps({"detail-type": "Something Else", "source": "x", "detail": {}})):
        sqs.send_message(QueueUrl=aws_stack.results_sink_queue_url, MessageBody=body)

    run = cli("report", "--queue-url", aws_stack.results_sink_queue_url, "--wait-seconds", "0")

    assert run.code == 1
    assert (
        run.lines[0] == "results events: 0; requests: 0 (0 complete, 0 incomplete); 2 items that are not results events"
    )
    left = drain_queue(aws_stack.results_sink_queue_url, endpoint_url=aws_stack.endpoint_url)
    assert len(left) == 2
    assert "not json" in [m["Body"] for m in left]


def test_a_second_report_from_the_sink_queue_warns_that_the_first_drained_it(handled: LocalStack) -> None:
    arguments = ["report", "--queue-url", handled.results_sink_queue_url, "--wait-seconds", "1"]

    first = run_without_terminal(arguments, env=dict(os.environ))
    second = run_without_terminal(arguments, env=dict(os.environ))

    assert first.returncode == 1  # a conflict, a forbidden ID and an invalid value need attention
    assert "needs attention: 3" in first.stdout.splitlines()
    assert "deleted the 2 results events" in first.stderr
    assert second.returncode == 1  # not success: the events were there, and the first report took them
    assert second.stdout.splitlines() == ["results events: 0; requests: 0 (0 complete, 0 incomplete)"]
    assert "warning: no results events on the queue" in second.stderr
    assert "drained by every report without --keep; use --log-group" in second.stderr


def test_help_says_which_source_drains_and_which_can_be_read_again() -> None:
    run = run_without_terminal(["report", "--help"], env=dict(os.environ))

    text = " ".join(run.stdout.split())
    assert run.returncode == 0
    assert "DRAINED: what is read is deleted unless --keep" in text
    assert (
        "--log-group NAME the results log group (the stack's ResultsLogGroupName output); nothing is consumed" in text
    )
    assert "--needs-attention --output ids" in text


def test_two_reports_with_keep_in_a_row_see_the_same_events(handled: LocalStack) -> None:
    arguments = ["report", "--queue-url", handled.results_sink_queue_url, "--keep", "--output", "json"]

    first = run_without_terminal(arguments, env=dict(os.environ))
    second = run_without_terminal(arguments, env=dict(os.environ))  # at once: well within any visibility timeout

    assert first.returncode == second.returncode == 1  # the same IDs need attention both times
    assert json.loads(first.stdout)["events"] == json.loads(second.stdout)["events"] == 2
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert first.stderr == second.stderr == ""  # no "no results events on the queue" warning, nothing deleted
    assert len(drain_queue(handled.results_sink_queue_url, endpoint_url=handled.endpoint_url)) == 2


def test_a_report_whose_output_is_closed_deletes_nothing_and_hides_nothing(handled: LocalStack) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the report prints (`report ... | head -0`)
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # as in a shell
    try:
        subprocess.run(
            [console_script(), "report", "--queue-url", handled.results_sink_queue_url, "--wait-seconds", "1"],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.DEVNULL,
            env=buffered,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)

    # The events were not reported, so they are neither deleted nor left invisible for the next reader
    assert len(drain_queue(handled.results_sink_queue_url, endpoint_url=handled.endpoint_url)) == 2


def test_a_pause_that_happened_is_shown_beside_a_failed_archive(
    cli: Callable[..., Run], handled: LocalStack, tmp_path: Path
) -> None:
    # Given a results event (as the handler published it) whose pauseFirst request paused an ID, then failed it
    detail = read_results_events(handled, expected=2)[0]["detail"]
    result = detail["results"][0]
    result.update(outcome="failed", httpStatus=503, error="Reply answered 503", paused=True)
    path = tmp_path / "results.json"
    path.write_text(json.dumps([detail]), encoding="utf-8")

    table_run = cli("report", "--file", str(path), "--needs-attention")
    rows = cli("report", "--file", str(path), "--output", "csv").lines
    items = [json.loads(line) for line in cli("report", "--file", str(path), "--output", "jsonl").lines]

    # Then every format says the sequence was paused in Reply although its archive needs another try
    [failed] = [line for line in table_run.lines if str(result["sequenceId"]) in line.split()]
    assert failed.split()[2] == "failed"
    assert "paused in Reply; Reply answered 503" in failed
    assert rows[0].endswith(",latest,paused,workspace")
    assert [row.split(",")[-2] for row in rows[1:]].count("true") == 1
    assert [item["sequenceId"] for item in items if item["paused"]] == [result["sequenceId"]]
