"""`report` on clean-up plans: a policy's dry run and live run through the real handler, the queue archiving what
the live run enqueued, then the real console script reading it all back from the results log group."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import drain_queue, read_results_log
from local.stand_ins.event_source import EventSourceMapping
from sequence_archiver.core.results_contract import PLAN_DETAIL_TYPE, RESULTS_DETAIL_TYPE, RESULTS_EVENT_SOURCE
from tests.cli.terminal import run_without_terminal

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = pytest.mark.integration

POLICY = {"select": {"status": "new"}}
NEW_SEQUENCES = [*range(201, 206), *range(60_001, 60_146)]  # the seed's 5 new sequences and 145 more: 150


def environment() -> dict[str, str]:
    """The test process's environment (cli_env put the local endpoint and the key there) for a real process."""
    return dict(os.environ)  # the terminal helpers leave out COLUMNS themselves


def test_a_policys_plans_and_what_its_live_run_archived_are_reported_from_the_log_group(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 150 new sequences, and the archive queue set as the template sets it
    reply_simulator.add_sequences(range(60_001, 60_146), status="new")
    monkeypatch.setenv("ARCHIVE_QUEUE_URL", aws_stack.queue_url)
    handler = load_handler()

    # When the policy's dry run and then its live run are invoked, and the queue's event source archives the IDs
    dry = handler.lambda_handler({**POLICY, "dryRun": True}, lambda_context())
    live = handler.lambda_handler({**POLICY, "dryRun": False}, lambda_context())
    mapping = EventSourceMapping(aws_stack, handler.lambda_handler, batch_size=10, batching_window_seconds=0)
    drain = mapping.drain(until_empty_for=0.5, max_seconds=30)
    assert (drain.stopped, drain.handler_errors, drain.failed_records) == ("empty", 0, 0)
    assert (dry["outcome"], live["outcome"], live["enqueued"]["messages"]) == ("planned", "enqueued", 2)
    logged = [event.envelope for event in read_results_log(aws_stack, expected=4, timeout_seconds=10)]
    assert len(logged) == 4  # 2 plans, 2 results events

    # Then the report from the log group shows both plans, and that the live one's 150 IDs were archived
    report = run_without_terminal(["report", "--log-group", aws_stack.results_log_group_name], env=environment())

    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert lines[0] == "results events: 2; requests: 2 (2 complete, 0 incomplete)"
    assert "nothing needs attention" in lines
    section = report.stdout.split("clean-up plans: 2 (1 live, 1 dry run)\n", 1)[1].splitlines()
    assert section == [
        f"plan {dry['requestId'][:8]} (dry run, direct): planned",
        "  selected 150; nothing enqueued (dry run)",
        f"plan {live['requestId'][:8]} (live, direct): enqueued",
        "  selected 150; enqueued 150 IDs in 2 messages",
        "  archived 150; already archived 0; not found 0",
        "  need attention 0; not yet reported 0 (results of 2 of 2 messages read)",
    ]
    assert report.stderr == ""
    # ... and the JSON document carries the same, with every ID of the plan
    document = json.loads(
        run_without_terminal(
            ["report", "--log-group", aws_stack.results_log_group_name, "--output", "json"], env=environment()
        ).stdout
    )
    planned, enqueued = document["plans"]
    assert (planned["dryRun"], planned["selected"], planned["archive"]["idsNotYetReported"]) == (True, 150, 0)
    assert sorted(enqueued["sequenceIds"]) == NEW_SEQUENCES
    assert enqueued["archive"]["counts"]["archived"] == 150
    assert enqueued["archive"]["messagesReported"] == 2
    assert sorted(enqueued["enqueued"]["messageIds"]) == sorted(
        envelope["detail"]["requestId"] for envelope in logged if envelope["detail-type"] == RESULTS_DETAIL_TYPE
    )


def test_plan_events_on_a_sink_queue_are_read_and_drained_with_the_results(
    cli: Callable[..., Run], aws_stack: LocalStack, cli_env: dict[str, str]
) -> None:
    plan = {
        "requestId": "policy-run-1",
        "trigger": "eventbridge",
        "dryRun": False,
        "outcome": "over_limit",
        "complete": False,
        "reason": "the selection holds more than maxSequences (10) sequences: nothing was enqueued",
        "selected": 11,
        "enqueued": {"messages": 0, "ids": 0, "messageIds": []},
        "sequenceIds": [],
    }
    results = {"requestId": "r-1", "complete": True, "counts": {"archived": 1}, "results": []}
    sqs = aws_stack.sqs()
    for detail_type, detail in ((PLAN_DETAIL_TYPE, plan), (RESULTS_DETAIL_TYPE, results)):
        envelope = {"detail-type": detail_type, "source": RESULTS_EVENT_SOURCE, "detail": detail}
        sqs.send_message(QueueUrl=aws_stack.results_sink_queue_url, MessageBody=json.dumps(envelope))

    run = cli("report", "--queue-url", aws_stack.results_sink_queue_url, "--wait-seconds", "0")

    assert run.code == 1  # the plan stopped over its limit
    assert "plan policy-r (live, eventbridge): over_limit" in run.lines
    assert f"  needs attention: {plan['reason']}" in run.lines
    assert "deleted the 2 results events read from the queue" in run.err
    assert drain_queue(aws_stack.results_sink_queue_url, endpoint_url=aws_stack.endpoint_url) == []
