"""At-least-once delivery, effectively once, on a real DynamoDB table: a redelivered request does not call Reply
or publish twice. A retried request giving its claim back, a redelivered EventBridge event and redeliveries
without a table are functional cases (tests/functional/test_at_least_once.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events
from tests.integration.harness import received_sqs_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration


def test_a_redelivered_message_is_acknowledged_without_calling_reply_or_publishing_again(
    idempotency_table: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    handler = load_handler()
    event = received_sqs_event(aws_stack, json.dumps({"sequenceIds": [101, 102]}))

    first = handler.lambda_handler(event, lambda_context())
    calls_after_first = reply_simulator.api_calls
    second = handler.lambda_handler(event, lambda_context())

    assert first == second == {"batchItemFailures": []}
    assert reply_simulator.api_calls == calls_after_first == 1
    assert len(read_results_events(aws_stack, expected=1, timeout_seconds=3)) == 1
