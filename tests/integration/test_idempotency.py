"""At-least-once delivery, effectively once: a redelivered request does not call Reply or publish twice."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events, sqs_event_from_messages
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, load_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration


def sqs_event(stack: LocalStack, body: str) -> dict:
    """One SQS record as Lambda would deliver it; delivering the same dict twice is a redelivery."""
    sqs = stack.sqs()
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    messages = sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    return sqs_event_from_messages(messages, stack.queue_arn, stack.region)


def test_a_redelivered_message_is_acknowledged_without_calling_reply_or_publishing_again(
    idempotency_table: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    handler = load_handler()
    event = sqs_event(aws_stack, json.dumps({"sequenceIds": [101, 102]}))

    first = handler.lambda_handler(event, lambda_context())
    calls_after_first = reply_simulator.api_calls
    second = handler.lambda_handler(event, lambda_context())

    assert first == second == {"batchItemFailures": []}
    assert reply_simulator.api_calls == calls_after_first == 1
    assert len(read_results_events(aws_stack, expected=1, timeout_seconds=3)) == 1


def test_a_request_that_must_be_retried_gives_its_claim_back(
    idempotency_table: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=503))
    handler = load_handler()
    event = sqs_event(aws_stack, json.dumps({"sequenceId": 103}))

    first = handler.lambda_handler(event, lambda_context())
    second = handler.lambda_handler(event, lambda_context())

    message_id = event["Records"][0]["messageId"]
    assert first == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert second == {"batchItemFailures": []}
    envelopes = read_results_events(aws_stack, expected=2)
    assert [e["detail"]["complete"] for e in envelopes] == [False, True]


def test_a_redelivered_eventbridge_event_is_done_once(
    idempotency_table: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    handler = load_handler()
    event = load_event("eventbridge-event.json")

    detail = handler.lambda_handler(event, lambda_context())
    duplicate = handler.lambda_handler(event, lambda_context())

    assert detail["complete"] is True
    assert duplicate == {"requestId": event["id"], "trigger": "eventbridge", "duplicate": True}
    assert list(details_by_request(read_results_events(aws_stack, expected=1, timeout_seconds=3))) == [event["id"]]


def test_without_a_table_redeliveries_are_processed_again(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    handler = load_handler()
    event = sqs_event(aws_stack, json.dumps({"sequenceIds": [104, 105]}))

    handler.lambda_handler(event, lambda_context())
    handler.lambda_handler(event, lambda_context())

    envelopes = read_results_events(aws_stack, expected=2)
    assert [e["detail"]["counts"]["archived"] for e in envelopes] == [2, 0]  # the second finds them archived
    assert [e["detail"]["counts"]["already_archived"] for e in envelopes] == [0, 2]
