"""`make stack`: the local stack comes up, prints its exports, runs a CLI campaign and stops on Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from local.scenarios.stack import READY_LINE, Watcher, describe_batch, describe_event
from local.stand_ins.aws_stack import (
    QueueSettings,
    logs_client,
    provision,
    read_results_log,
    send_messages,
    unique_name_prefix,
    variables_to_unset,
)
from local.stand_ins.event_source import BatchOutcome, EventSourceMapping, EventSourcePoller
from sequence_archiver.core.results_contract import PLAN_DETAIL_TYPE, RESULTS_DETAIL_TYPE, RESULTS_EVENT_SOURCE

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "sequence-archiver"
STARTUP_SECONDS = 60.0
ARCHIVING_SECONDS = 60.0
EXPECTED_EXPORTS = {
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "REPLY_API_KEY",
    "REPLY_BASE_URL",
    "QUEUE_URL",
    "DLQ_URL",
    "RESULTS_LOG_GROUP",
    "RESULTS_SINK_QUEUE_URL",
}
# The simulator's sample: 101-120 paused, 601 and 701-702 paused but refused; the generated ones from 1001
# (--seed-count 10): 1001-1006 paused, 1007-1008 new, 1009 active, 1010 archived.
PAUSED_IDS = [*range(101, 121), 601, 701, 702, *range(1001, 1007)]
REFUSED_IDS = {601, 701, 702}


@dataclass
class RunningStack:
    """`python -m local.scenarios.stack` in its own session, with the exports it printed."""

    process: subprocess.Popen[str]
    stdout_lines: list[str]
    exports: dict[str, str]
    unset: list[str]
    stderr_path: Path

    def environment(self) -> dict[str, str]:
        """This process's environment after pasting the exports, as a user's second terminal would be."""
        environment = {name: value for name, value in os.environ.items() if name not in self.unset}
        for name in variables_to_unset(environment):
            del environment[name]
        return {**environment, **self.exports}

    def stderr(self) -> str:
        """Everything the stack wrote on stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8")


def _read_until_ready(process: subprocess.Popen[str]) -> list[str]:
    """The stdout lines up to the ready line, read on a thread so a stack that hangs fails the test instead."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if line is None:
            raise AssertionError(f"the stack ended before it was ready; stdout: {seen}")
        seen.append(line)
        if line == READY_LINE:
            return seen


def _start_stack(tmp_path: Path, *arguments: str) -> subprocess.Popen[str]:
    stderr = (tmp_path / "stack.stderr").open("w", encoding="utf-8")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "local.scenarios.stack", *arguments],
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the stack's whole process group, not pytest's
        )
    finally:
        stderr.close()


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[RunningStack]:
    """A stack on free ports with a small seed and no batching window, killed if a test leaves it running."""
    process = _start_stack(tmp_path, "--port", "0", "--moto-port", "0", "--seed-count", "10", "--batching-window", "0")
    try:
        lines = _read_until_ready(process)
        exports: dict[str, str] = {}
        unset: list[str] = []
        for line in lines:
            words = shlex.split(line, comments=True)
            if words[:1] == ["export"]:
                name, _, value = words[1].partition("=")
                exports[name] = value
            elif words[:1] == ["unset"]:
                unset += words[1:]
        yield RunningStack(process, lines, exports, unset, tmp_path / "stack.stderr")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def _cli(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *arguments], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


def _select_into_enqueue(stack: RunningStack) -> tuple[subprocess.CompletedProcess[str], str]:
    """`select --status paused | enqueue --queue-url $QUEUE_URL -`, as typed in the second terminal."""
    environment = stack.environment()
    select = subprocess.Popen(
        [str(CLI), "select", "--base-url", stack.exports["REPLY_BASE_URL"], "--status", "paused"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    assert select.stdout is not None
    assert select.stderr is not None
    enqueue = subprocess.run(
        [str(CLI), "enqueue", "--queue-url", stack.exports["QUEUE_URL"], "-"],
        stdin=select.stdout,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    select.stdout.close()
    select_errors = select.stderr.read().decode()
    select.stderr.close()
    assert select.wait(timeout=30) == 0, select_errors
    return enqueue, select_errors


def _logged_results(stack: RunningStack) -> list[dict[str, Any]]:
    """The results details in the stack's results log group, read with FilterLogEvents."""
    logs = logs_client(stack.exports["AWS_ENDPOINT_URL"], stack.exports["AWS_REGION"])
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=stack.exports["RESULTS_LOG_GROUP"])
    envelopes = [json.loads(event["message"]) for page in pages for event in page.get("events", [])]
    return [envelope["detail"] for envelope in envelopes if envelope.get("detail-type") == RESULTS_DETAIL_TYPE]


def _wait_for_final_outcomes(stack: RunningStack, expected_ids: int) -> list[dict[str, Any]]:
    """Poll the results log group until every enqueued ID has its final outcome there."""
    deadline = time.monotonic() + ARCHIVING_SECONDS
    while True:
        details = _logged_results(stack)
        final = sum(1 for detail in details for result in detail["results"] if result["outcome"] != "failed")
        if final >= expected_ids or time.monotonic() > deadline:
            return details
        time.sleep(0.2)


def _wait_for_stderr(stack: RunningStack, text: str) -> str:
    """The stack's stderr once it holds `text` (or whatever it holds after ARCHIVING_SECONDS)."""
    deadline = time.monotonic() + ARCHIVING_SECONDS
    while text not in (stderr := stack.stderr()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return stderr


def _port_is_closed(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        return probe.connect_ex((parts.hostname or "", parts.port or 0)) != 0


def test_a_campaign_runs_by_hand_against_the_stack_and_ctrl_c_stops_it(running_stack: RunningStack) -> None:
    # Given the stack is up and has printed what a second terminal pastes
    assert set(running_stack.exports) == EXPECTED_EXPORTS
    assert "AWS_PROFILE" in running_stack.unset
    assert any(line.startswith("#   sequence-archiver select") for line in running_stack.stdout_lines)

    # When the user selects the paused sequences and enqueues them
    enqueue, select_errors = _select_into_enqueue(running_stack)

    # Then they go to the queue, the function archives them, and the results land in the log group
    assert enqueue.returncode == 0, enqueue.stderr
    assert f"({len(PAUSED_IDS)} IDs)" in enqueue.stdout + enqueue.stderr
    details = _wait_for_final_outcomes(running_stack, len(PAUSED_IDS))
    outcomes = {result["sequenceId"]: result["outcome"] for detail in details for result in detail["results"]}
    assert sorted(outcomes) == sorted(PAUSED_IDS)
    assert {sequence_id for sequence_id, outcome in outcomes.items() if outcome != "archived"} == REFUSED_IDS
    # ... and the stack's terminal shows the batch, then its results (printed once the batch is settled)
    stderr = _wait_for_stderr(running_stack, "results for request")
    assert "stack: batch 1: 1 message(s)" in stderr
    assert f"{len(PAUSED_IDS) - len(REFUSED_IDS)} archived" in stderr
    # ... and `select` now finds only the sequences Reply refused to archive
    again = _cli(
        "select",
        "--base-url",
        running_stack.exports["REPLY_BASE_URL"],
        "--status",
        "paused",
        environment=running_stack.environment(),
    )
    assert sorted(int(line) for line in again.stdout.split()) == sorted(REFUSED_IDS)

    # When the user asks for the report
    report = _cli(
        "report",
        "--log-group",
        running_stack.exports["RESULTS_LOG_GROUP"],
        "--output",
        "json",
        environment=running_stack.environment(),
    )

    # Then it counts every outcome and exits 1: three IDs need attention
    assert report.returncode == 1, report.stderr
    summary = json.loads(report.stdout)
    assert summary["counts"]["archived"] == len(PAUSED_IDS) - len(REFUSED_IDS)
    assert sum(summary["counts"].values()) == len(PAUSED_IDS)
    assert summary["requests"] == {"total": 1, "complete": 1, "incomplete": 0}
    assert "local-dev-key" not in select_errors + enqueue.stdout + enqueue.stderr + report.stdout + stderr

    # When the user presses Ctrl-C in the stack's terminal
    os.killpg(running_stack.process.pid, signal.SIGINT)

    # Then it shuts everything down and exits 0
    assert running_stack.process.wait(timeout=30) == 0
    assert running_stack.stderr().rstrip().endswith("bye")
    assert _port_is_closed(running_stack.exports["AWS_ENDPOINT_URL"])
    assert _port_is_closed(running_stack.exports["REPLY_BASE_URL"])


def test_sigterm_stops_the_stack_cleanly_too(running_stack: RunningStack) -> None:
    running_stack.process.send_signal(signal.SIGTERM)

    assert running_stack.process.wait(timeout=30) == 0
    assert _port_is_closed(running_stack.exports["AWS_ENDPOINT_URL"])
    assert _port_is_closed(running_stack.exports["REPLY_BASE_URL"])


@pytest.mark.parametrize(("option", "server"), [("--port", "Reply simulator"), ("--moto-port", "moto server")])
def test_a_taken_port_is_named_with_its_server_and_a_way_out_instead_of_hanging(
    tmp_path: Path, option: str, server: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        other = "--moto-port" if option == "--port" else "--port"
        process = _start_stack(tmp_path, option, port, other, "0", "--seed-count", "0")
        try:
            stdout, _ = process.communicate(timeout=STARTUP_SECONDS)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    assert process.returncode == 1
    assert stdout == ""
    errors = (tmp_path / "stack.stderr").read_text(encoding="utf-8")
    assert f"stack: cannot start: the {server} ({option} {port}): cannot listen on 127.0.0.1:{port}: " in errors
    assert "in use" in errors
    assert f"make stack STACK_ARGS='{option} 0'" in errors


def test_make_stack_runs_the_stack_module_with_its_arguments() -> None:
    # A make of its own, not a sub-make of `make test` (which would print "Entering directory" lines).
    environment = {
        name: value for name, value in os.environ.items() if name not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    }
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "stack", "STACK_ARGS=--port 0 --seed-count 5"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )

    assert dry_run.stdout.splitlines()[-1] == ".venv/bin/python -m local.scenarios.stack --port 0 --seed-count 5"


def test_the_stack_explains_its_options() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "local.scenarios.stack", "--help"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )

    for option in ("--port", "--moto-port", "--seed-count", "--visibility-timeout", "--function-logs"):
        assert option in shown.stdout


def test_every_event_of_the_function_reaches_the_results_log_group(aws_stack: LocalStack) -> None:
    # Given the provisioned stack, when the function's source publishes a results event and a plan event
    for detail_type, detail in ((RESULTS_DETAIL_TYPE, {"requestId": "r-1"}), (PLAN_DETAIL_TYPE, {"planId": "p-1"})):
        response = aws_stack.events().put_events(
            Entries=[
                {
                    "Source": RESULTS_EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": aws_stack.results_bus_name,
                }
            ]
        )
        assert response["FailedEntryCount"] == 0

    # Then both are in the log group the template names, as FilterLogEvents reads them
    assert aws_stack.results_log_group_name.startswith("/aws/events/")
    assert aws_stack.results_log_group_name.endswith("/sequence-archive-results")
    page = aws_stack.logs().filter_log_events(logGroupName=aws_stack.results_log_group_name)
    logged = [json.loads(event["message"]) for event in page["events"]]
    assert [(envelope["detail-type"], envelope["detail"]) for envelope in logged] == [
        (RESULTS_DETAIL_TYPE, {"requestId": "r-1"}),
        (PLAN_DETAIL_TYPE, {"planId": "p-1"}),
    ]
    # ... and read_results_log gives the same envelopes, oldest first, leaving them there
    assert [event.envelope for event in read_results_log(aws_stack, expected=2)] == logged
    assert len(read_results_log(aws_stack)) == 2


def test_other_sources_stay_out_of_the_results_log_group(aws_stack: LocalStack) -> None:
    aws_stack.events().put_events(
        Entries=[
            {
                "Source": "someone.else",
                "DetailType": RESULTS_DETAIL_TYPE,
                "Detail": json.dumps({"requestId": "r-2"}),
                "EventBusName": aws_stack.results_bus_name,
            }
        ]
    )

    assert read_results_log(aws_stack) == []


def test_the_poller_keeps_polling_after_a_failed_invocation_until_stopped(moto_server: MotoServer) -> None:
    # Given a queue whose failed messages come back after a second, and a function that fails its first call
    stack = provision(
        moto_server.endpoint_url,
        api_key="unused",
        name_prefix=unique_name_prefix("poller"),
        queue_settings=QueueSettings(1, 5, "test"),
    )
    calls: list[int] = []

    def handler(event: dict[str, Any], context: LocalLambdaContext) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("the first invocation fails")
        return {"batchItemFailures": []}

    batches: queue.Queue[BatchOutcome] = queue.Queue()
    mapping = EventSourceMapping(stack, handler, batching_window_seconds=0, function_timeout_seconds=1)
    send_messages(stack, [json.dumps({"sequenceIds": [101]})])

    # When the poller runs
    with EventSourcePoller(mapping, after_batch=lambda number, outcome: batches.put(outcome)) as poller:
        failed, retried = batches.get(timeout=30), batches.get(timeout=30)
        assert poller.running

    # Then the failed batch came back and was handled; stopping ended the thread
    assert failed.whole_batch_failed
    assert failed.handler_error == "RuntimeError: the first invocation fails"
    assert not retried.whole_batch_failed
    assert retried.deleted == 1
    assert not poller.running
    assert poller.totals.batches == 2
    assert mapping.queue_depth() == (0, 0)


def test_the_watcher_prints_each_published_event_once(aws_stack: LocalStack) -> None:
    printed = io.StringIO()
    watcher = Watcher(aws_stack, printed, 60)

    def publish(request_id: str) -> None:
        detail = {"requestId": request_id, "complete": True, "counts": {"archived": 2, "not_found": 1}}
        aws_stack.events().put_events(
            Entries=[
                {
                    "Source": RESULTS_EVENT_SOURCE,
                    "DetailType": RESULTS_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "EventBusName": aws_stack.results_bus_name,
                }
            ]
        )

    publish("r-1")
    publish("r-2")
    first = [event.envelope["detail"]["requestId"] for event in watcher.new_events()]
    publish("r-3")
    second = [event.envelope["detail"]["requestId"] for event in watcher.new_events()]

    assert (first, second, watcher.new_events()) == (["r-1", "r-2"], ["r-3"], [])


def _batch(**fields: Any) -> BatchOutcome:
    outcome = BatchOutcome(message_ids=["m-1", "m-2", "m-3"], seconds=0.5)
    for name, value in fields.items():
        setattr(outcome, name, value)
    return outcome


@pytest.mark.parametrize(
    ("outcome", "line"),
    [
        (_batch(deleted=3), "batch 1: 3 message(s) in 0.50 s, 3 deleted from the queue"),
        (
            _batch(deleted=2, failed_message_ids={"m-3"}),
            "batch 1: 3 message(s) in 0.50 s, 2 deleted from the queue, 1 left for a retry in 60 s",
        ),
        (
            _batch(handler_error="RuntimeError: boom", failed_message_ids={"m-1", "m-2", "m-3"}),
            "batch 1: 3 message(s) in 0.50 s, FAILED (RuntimeError: boom); all of them come back in 60 s",
        ),
    ],
)
def test_each_batch_is_one_line(outcome: BatchOutcome, line: str) -> None:
    assert describe_batch(0, outcome, 60) == line


@pytest.mark.parametrize(
    ("detail_type", "detail", "line"),
    [
        (
            RESULTS_DETAIL_TYPE,
            {"requestId": "r-1", "complete": True, "counts": {"archived": 40, "not_found": 2, "failed": 0}},
            "results for request r-1: 40 archived, 2 not found (complete)",
        ),
        (
            RESULTS_DETAIL_TYPE,
            {"requestId": "r-2", "complete": False, "counts": {"archived": 1, "failed": 2}},
            "results for request r-2: 1 archived, 2 failed (incomplete: the failed IDs will be retried)",
        ),
        (
            RESULTS_DETAIL_TYPE,
            {"requestId": "r-3", "complete": False, "deferredIds": [7, 8], "counts": {"archived": 5}},
            "results for request r-3: 5 archived (2 ID(s) carried on to a continuation)",
        ),
        (
            RESULTS_DETAIL_TYPE,
            {"requestId": "r-4", "complete": True, "part": 1, "parts": 2, "counts": {"already_archived": 3}},
            "results for request r-4, part 1 of 2: 3 already archived (complete)",
        ),
        (PLAN_DETAIL_TYPE, {"planId": "p-1"}, f"{PLAN_DETAIL_TYPE} event"),
    ],
)
def test_each_published_event_is_one_line(detail_type: str, detail: dict[str, Any], line: str) -> None:
    envelope = {"source": RESULTS_EVENT_SOURCE, "detail-type": detail_type, "detail": detail}

    assert describe_event(envelope) == line
