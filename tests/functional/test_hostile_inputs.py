"""Failure containment: one hostile delivery fails only itself, never its neighbours.

The corpus (tests/integration/hostile_inputs.py) holds over a hundred SQS bodies and direct payloads. SQS bodies
arrive in batches beside a healthy message; direct payloads are handed over as Lambda would hand them. In every
case the pipeline returns normally, every delivery gets a final, schema-valid results event, the healthy
neighbours are archived and acknowledged, hostile input costs no Reply call, and no Python error type escapes.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.functional.fakes import RESULTS_SCHEMA, TEST_API_KEY, Pipeline, SqsQueue, outcomes, sqs_event
from tests.integration.hostile_inputs import HOSTILE_DIRECT_PAYLOADS, HOSTILE_SQS_BODIES

HOSTILE_PER_BATCH = 9  # and one healthy message: SQS hands Lambda at most 10 per receive
FIRST_HEALTHY_ID = 900_001


def test_the_corpus_is_large_enough() -> None:
    """At least a hundred hostile inputs, SQS bodies and direct payloads together."""
    assert len(HOSTILE_SQS_BODIES) + len(HOSTILE_DIRECT_PAYLOADS) >= 100


def test_hostile_sqs_bodies_fail_only_themselves(pipeline: Pipeline, queue: SqsQueue) -> None:
    """No record of any batch is asked back; each healthy neighbour is archived with the only Reply calls made;
    every hostile body gets a complete results event whose items are all invalid; a body that is not a request
    at all is parked in the DLQ untouched, one holding bad items is not; the API key appears in no results."""
    names = list(HOSTILE_SQS_BODIES)
    batches = [names[start : start + HOSTILE_PER_BATCH] for start in range(0, len(names), HOSTILE_PER_BATCH)]
    healthy_ids = [FIRST_HEALTHY_ID + number for number in range(len(batches))]
    hostile_message_ids: dict[str, str] = {}
    delivered = 0

    for batch, healthy_id in zip(batches, healthy_ids, strict=True):
        healthy = queue.request(healthy_id)
        hostile = [queue.record(HOSTILE_SQS_BODIES[name]) for name in batch]

        response = pipeline.handle(sqs_event(healthy, *hostile))

        # Nothing is retried: the healthy record is done and every hostile one has a final outcome.
        assert response == {"batchItemFailures": []}, batch
        assert outcomes(pipeline.publisher.only(healthy["messageId"])) == {healthy_id: "archived"}
        hostile_message_ids.update(zip(batch, (record["messageId"] for record in hostile), strict=True))
        delivered += 1 + len(hostile)

    assert pipeline.reply.archived == set(healthy_ids)
    assert pipeline.reply.calls.total() == len(healthy_ids)  # the hostile bodies cost no Reply call
    assert len(pipeline.publisher.events) == delivered
    parked = {message.message_id: message for message in pipeline.dead_letters.parked}
    for name, message_id in hostile_message_ids.items():
        detail = pipeline.publisher.only(message_id)
        assert detail["complete"] is True, name
        assert all(result["outcome"] == "invalid" for result in detail["results"]), name
        first = detail["results"][0]
        rejected = first["sequenceId"] is None and first["error"].startswith("request rejected: ")
        # A body that is not a request at all is parked in the DLQ, untouched; a request with bad items is not.
        assert (message_id in parked) is rejected, name
        if rejected:
            assert parked[message_id].body == HOSTILE_SQS_BODIES[name]
    assert len(parked) == len(pipeline.dead_letters.parked)  # each parked once
    assert TEST_API_KEY not in json.dumps(pipeline.publisher.events)


@pytest.mark.parametrize("name", list(HOSTILE_DIRECT_PAYLOADS))
def test_hostile_direct_payloads_get_a_final_answer(name: str, pipeline: Pipeline) -> None:
    """A hostile payload costs no Reply call and returns normally: an SQS-shaped one with nothing SQS could
    redeliver retried, any other with schema-valid, complete results whose items are all invalid."""
    payload = HOSTILE_DIRECT_PAYLOADS[name]

    response = pipeline.handle(payload)

    assert isinstance(response, dict)
    assert pipeline.reply.calls.total() == 0
    if "batchItemFailures" in response:
        assert response == {"batchItemFailures": []}  # nothing SQS could redeliver, nothing retried
        return
    for detail in response.get("requests", [response]):
        jsonschema.validate(detail, RESULTS_SCHEMA)
        assert detail["complete"] is True
        assert {result["outcome"] for result in detail["results"]} == {"invalid"}
