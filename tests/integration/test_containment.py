"""Failure containment through the real handler: one hostile delivery fails only itself, never its neighbours.

The corpus (hostile_inputs.py) holds over a hundred SQS bodies and direct payloads. SQS bodies go through the
real queue beside healthy messages; direct payloads are invoked as Lambda would hand them over. In every case
the handler returns normally, every delivery gets a final, schema-valid results event, the healthy neighbours
are archived and acknowledged, and no Python error type escapes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import drain_queue, read_results_events
from tests.integration.harness import details_by_request, invoke_with_sqs, outcomes, validate_results_detail
from tests.integration.hostile_inputs import HOSTILE_DIRECT_PAYLOADS, HOSTILE_SQS_BODIES

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

HOSTILE_PER_BATCH = 9  # and one healthy message: SQS hands Lambda at most 10 per receive here
FIRST_HEALTHY_ID = 900_001


def test_the_corpus_is_large_enough() -> None:
    assert len(HOSTILE_SQS_BODIES) + len(HOSTILE_DIRECT_PAYLOADS) >= 100


def test_hostile_sqs_bodies_fail_only_themselves(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    api_key: str,
) -> None:
    handler = load_handler()
    names = list(HOSTILE_SQS_BODIES)
    batches = [names[start : start + HOSTILE_PER_BATCH] for start in range(0, len(names), HOSTILE_PER_BATCH)]
    healthy_ids = [FIRST_HEALTHY_ID + number for number in range(len(batches))]
    reply_simulator.add_sequences(healthy_ids)
    hostile_message_ids: dict[str, str] = {}
    published = 0

    for batch, healthy_id in zip(batches, healthy_ids, strict=True):
        bodies = [json.dumps({"sequenceIds": [healthy_id]}), *(HOSTILE_SQS_BODIES[name] for name in batch)]

        invocation = invoke_with_sqs(handler, aws_stack, bodies, lambda_context())

        # Nothing is retried: the healthy record is done and every hostile one has a final outcome.
        assert invocation.failed_message_ids == set(), batch
        hostile_message_ids.update(zip(batch, invocation.message_ids[1:], strict=True))
        published += len(bodies)

    for healthy_id in healthy_ids:
        sequence = reply_simulator.sequence(healthy_id)
        assert sequence is not None
        assert sequence.is_archived
    assert reply_simulator.api_calls == len(healthy_ids)  # the hostile bodies cost no Reply call
    details = details_by_request(read_results_events(aws_stack, expected=published, timeout_seconds=20))
    assert len(details) == published
    parked = {
        message["MessageAttributes"]["OriginalMessageId"]["StringValue"]: message
        for message in drain_queue(aws_stack.dead_letter_queue_url, endpoint_url=aws_stack.endpoint_url)
    }
    for name, message_id in hostile_message_ids.items():
        detail = details[message_id]
        assert detail["complete"] is True, name
        assert all(result["outcome"] == "invalid" for result in detail["results"]), name
        rejected = detail["results"][0]["sequenceId"] is None and detail["results"][0]["error"].startswith(
            "request rejected: "
        )
        # A body that is not a request at all is parked in the DLQ, untouched; a request with bad items is not.
        assert (message_id in parked) is rejected, name
        if rejected:
            assert parked[message_id]["Body"] == HOSTILE_SQS_BODIES[name]
    assert "None" not in parked
    for detail in details.values():
        assert api_key not in json.dumps(detail)


@pytest.mark.parametrize("name", list(HOSTILE_DIRECT_PAYLOADS))
def test_hostile_direct_payloads_get_a_final_answer(
    name: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    payload = HOSTILE_DIRECT_PAYLOADS[name]
    handler = load_handler()

    response = handler.lambda_handler(payload, lambda_context())

    assert isinstance(response, dict)
    assert reply_simulator.api_calls == 0
    if "batchItemFailures" in response:
        assert response == {"batchItemFailures": []}  # nothing SQS could redeliver, nothing retried
        return
    for detail in response.get("requests", [response]):
        validate_results_detail(detail)
        assert detail["complete"] is True
        assert {result["outcome"] for result in detail["results"]} == {"invalid"}


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
