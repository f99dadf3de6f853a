"""Logs people can follow: structured lines that carry the correlation id, the level from the environment."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import read_results_events
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import invoke_with_sqs
from tests.sample_events import load_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration


def log_lines(stdout: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if "level" in line and "message" in line]


def test_every_line_of_an_sqs_invocation_carries_its_correlation_id(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_BACKOFF_BASE_SECONDS", "0.01")
    reply_simulator.inject(Fault(kind="status", status=503, sequence_id=102))
    handler = load_handler()

    invocation = invoke_with_sqs(
        handler, aws_stack, [json.dumps({"sequenceIds": [101, 102]}), "not json"], lambda_context()
    )

    lines = log_lines(capsys.readouterr().out)
    assert lines
    assert all("correlation_id" in line for line in lines), [
        line["message"] for line in lines if "correlation_id" not in line
    ]
    finished = [line for line in lines if line["message"] == "archive request finished"]
    assert sorted(line["correlation_id"] for line in finished) == sorted(invocation.message_ids)
    [retry] = [line for line in lines if line["message"] == "retrying reply call"]
    assert retry["sequence_id"] == 102
    assert retry["correlation_id"] == invocation.message_ids  # batch-wide work names the whole batch
    [parked] = [line for line in lines if line["message"] == "rejected record sent to the dead-letter queue"]
    assert parked["correlation_id"] == invocation.message_ids[1]
    assert all(line["service"] == "sequence-archiver" and line["function_request_id"] for line in lines)
    read_results_events(aws_stack, expected=2)


def test_eventbridge_lines_carry_the_event_id_and_the_level_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = load_event("eventbridge-event.json")
    load_handler().lambda_handler(event, lambda_context())
    lines = log_lines(capsys.readouterr().out)
    assert lines
    assert {line["correlation_id"] for line in lines} == {event["id"]}

    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    load_handler().lambda_handler({"sequenceId": 118}, lambda_context())
    assert log_lines(capsys.readouterr().out) == []
    read_results_events(aws_stack, expected=2)
