"""Hostile answers from Reply and hostile secrets, through the real handler: bounded, contained, never leaked.
(A whole-call bulk `teamMemberNotFound` falling back to single calls: tests/functional/test_bulk_fallbacks.py.)
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events, secretsmanager_client
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, invoke_with_sqs, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

MAX_SERVER_WAIT_SECONDS = 900  # the documented cap on Retry-After and rate-limit resets
TIME_GIVEN_SECONDS = 3.0
ALLOWED_OVERRUN_SECONDS = 0.3


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("retry-after-400-digits", Fault(kind="status", status=429, times=None, headers=(("Retry-After", "9" * 400),))),
        (
            "retry-after-year-9999",
            Fault(kind="status", status=429, times=None, headers=(("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"),)),
        ),
        (
            "reset-1e308-nothing-left",
            Fault(
                kind="headers",
                times=None,
                headers=(("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "1e308")),
            ),
        ),
        (
            "remaining-superscript-two",
            Fault(kind="headers", times=None, headers=(("x-rate-limit-remaining", "\u00b2"),)),
        ),
        ("body-5000-digit-id", Fault(kind="body", status=200, times=None, body='{"id": ' + "9" * 5_000 + "}")),
        ("body-nested-50000", Fault(kind="body", status=200, times=None, body="[" * 50_000 + "]" * 50_000)),
        (
            "problem-5000-digit-status",
            Fault(kind="body", status=400, times=None, body='{"status": ' + "9" * 5_000 + "}"),
        ),
    ],
)
def test_a_hostile_answer_costs_at_most_its_id_and_never_the_deadline(
    name: str,
    fault: Fault,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_BACKOFF_BASE_SECONDS", "0.01")
    reply_simulator.inject(fault)
    handler = load_handler()
    context = lambda_context(timeout_seconds=TIME_GIVEN_SECONDS)
    had = context.get_remaining_time_in_millis() / 1000.0
    started = time.monotonic()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [107, 108]})], context)

    assert time.monotonic() - started <= had + ALLOWED_OVERRUN_SECONDS + 1.0  # + sending and receiving
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert set(outcomes(detail).values()) <= {"archived", "failed", "invalid"}, name
    assert (detail["counts"]["failed"] > 0) == bool(invocation.failed_message_ids), name
    # A throttled record comes back after the wait Reply asked for, never later than the cap.
    attributes = aws_stack.sqs().get_queue_attributes(
        QueueUrl=aws_stack.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) <= 1


def test_a_20_mb_sequence_name_is_archived_and_reported_in_one_results_event(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    huge_name = json.dumps({"id": 109, "name": "n" * 20_000_000, "status": "paused", "isArchived": True})
    reply_simulator.inject(Fault(kind="body", status=200, times=1, sequence_id=109, body=huge_name))
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [109, 110]})], lambda_context())

    # The first answer is too large to read: a malformed answer, retried within the invocation.
    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert outcomes(detail) == {109: "archived", 110: "archived"} or outcomes(detail)[109] == "already_archived"
    assert len(json.dumps(detail)) < 256 * 1024


def test_a_secret_binary_that_is_not_utf8_fails_the_ids_without_showing_its_bytes(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret_bytes = b"\xff\xfe rk_live_BINARY_SECRET_MARKER \x80"
    secretsmanager_client(aws_stack.endpoint_url, aws_stack.region).put_secret_value(
        SecretId=aws_stack.secret_arn, SecretBinary=secret_bytes
    )
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [113]})], lambda_context())

    assert invocation.failed_message_ids == set(invocation.message_ids)
    assert reply_simulator.api_calls == 0
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert "BINARY_SECRET_MARKER" not in json.dumps(detail)
    captured = capsys.readouterr()
    assert "BINARY_SECRET_MARKER" not in captured.out + captured.err


def test_debug_logging_everywhere_does_not_print_the_key(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)  # the root logger at DEBUG, as a careless log configuration would set it
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [114]})], lambda_context())

    assert invocation.failed_message_ids == set()
    captured = capsys.readouterr()
    assert api_key not in captured.out + captured.err + caplog.text
