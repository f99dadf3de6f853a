"""Failure containment through the real handler: a malformed SQS record fails only itself, and a short
invocation still archives, against the local stack.

The hostile corpus (hostile_inputs.py: over a hundred SQS bodies and direct payloads) runs in the functional
tier, tests/functional/test_hostile_inputs.py, through the same pipeline in-process.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import drain_queue, read_results_events
from tests.integration.harness import details_by_request, invoke_with_sqs, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration


def test_a_malformed_sqs_record_does_not_stop_its_healthy_neighbour_and_parks_nothing(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    healthy: dict[str, Any] = {
        "eventSource": "aws:sqs",
        "messageId": "healthy-1",
        "body": json.dumps({"sequenceIds": [111]}),
        "receiptHandle": "r-1",
        "eventSourceARN": aws_stack.queue_arn,
    }
    event = {"Records": [{"eventSource": "aws:sqs", "body": "{}"}, 7, healthy]}

    response = load_handler().lambda_handler(event, lambda_context())

    assert response == {"batchItemFailures": []}
    sequence = reply_simulator.sequence(111)
    assert sequence is not None
    assert sequence.is_archived
    details = details_by_request(read_results_events(aws_stack, expected=3))
    assert outcomes(details["healthy-1"]) == {111: "archived"}
    assert "no messageId" in details["record-0"]["results"][0]["error"]
    assert "not an object" in details["record-1"]["results"][0]["error"]
    assert drain_queue(aws_stack.dead_letter_queue_url, endpoint_url=aws_stack.endpoint_url) == []


@pytest.mark.parametrize("seconds_left", [8.0, 2.5])
def test_a_short_invocation_still_archives(
    seconds_left: float,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    handler = load_handler()
    context = lambda_context(timeout_seconds=seconds_left)

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [112]})], context)

    assert invocation.failed_message_ids == set()
    sequence = reply_simulator.sequence(112)
    assert sequence is not None
    assert sequence.is_archived
    assert context.get_remaining_time_in_millis() > 0
