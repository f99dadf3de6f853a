"""Records that come again: deferred IDs carried on by sealed continuations, a publish outage over several
deliveries, a poison ID carried on alone, and continuations the function did not make."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from sequence_archiver.core.continuations import derive_key, seal_with
from tests.functional.fakes import (
    BUDGET_WAIT_SECONDS,
    OTHER_API_KEY,
    STANDARD_QUEUE_ARN,
    Pipeline,
    PipelineBuilder,
    SqsQueue,
    failed_items,
    outcomes,
    redelivered,
    sqs_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    Forge = Callable[[Pipeline, dict[str, Any], str], str]

POISON = 900  # Reply answers 503 for it every time
OUTAGE_DELIVERIES = 3  # PutEvents fails for this many deliveries of the record, then recovers


def unsealed(body: str) -> dict[str, Any]:
    """A continuation body without its MAC, after checking it carries one."""
    document: dict[str, Any] = json.loads(body)
    mac = document["continuation"].pop("mac")
    assert mac.startswith("v1:")
    return document


def test_ids_that_only_waited_for_the_rate_budget_are_acknowledged_and_finished_by_one_continuation(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    pipeline.reply.budget = 2  # two calls, then the budget only frees up after the invocation
    record = queue.request(81, 82, 83, 84, 85)
    request_id = record["messageId"]

    response = pipeline.handle(sqs_event(record))

    assert response == {"batchItemFailures": []}  # waiting is no failure: it must not count towards the DLQ
    part_one = pipeline.publisher.only(request_id)
    assert part_one["complete"] is False
    assert part_one["deferredIds"] == [83, 84, 85]
    assert outcomes(part_one) == {81: "archived", 82: "archived"}  # deferred IDs are reported in their part
    [continuation] = pipeline.continuations.sent
    assert (continuation.event_source_arn, continuation.key) == (STANDARD_QUEUE_ARN, request_id)
    assert continuation.delay_seconds == BUDGET_WAIT_SECONDS  # comes back when the budget does
    assert unsealed(continuation.body) == {
        "sequenceIds": [83, 84, 85],
        "continuation": {"requestId": request_id, "part": 2},
    }
    assert pipeline.metrics.total("SequencesDeferred") == 3

    # The budget is there again when the continuation arrives: it finishes the request under its ID.
    pipeline.reply.budget = None
    response = pipeline.handle(sqs_event(queue.continuation(continuation)))

    assert response == {"batchItemFailures": []}
    [_, part_two] = pipeline.publisher.of(request_id)
    assert (part_two["continuation"], part_two["complete"]) == (2, True)
    assert outcomes(part_two) == dict.fromkeys((83, 84, 85), "archived")
    assert len(pipeline.continuations.sent) == 1
    assert pipeline.reply.archives == Counter(dict.fromkeys((81, 82, 83, 84, 85), 1))


def test_a_publish_outage_over_three_deliveries_sends_one_continuation_per_part_and_archives_each_id_once(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    pipeline = pipeline_builder(idempotency=True)
    ids = [101, 102, 103, 104, 105]
    event = sqs_event(queue.request(*ids))
    request_id = event["Records"][0]["messageId"]
    pipeline.publisher.fail_next = OUTAGE_DELIVERIES

    # Each delivery may make 3 calls (its share of the rate budget): 3 IDs archived (or already), 2 deferred.
    for _ in range(OUTAGE_DELIVERIES):
        pipeline.reply.budget = 3
        response = pipeline.handle(event)
        assert failed_items(response) == [request_id]  # results not published: retried, without a continuation
        assert pipeline.continuations.sent == []
        event = redelivered(event)
    pipeline.reply.budget = 3
    response = pipeline.handle(event)  # the 4th receive (maxReceiveCount): published at last
    assert response == {"batchItemFailures": []}

    # Drain the continuations, each delivered once, until none is left.
    delivered = 0
    while delivered < len(pipeline.continuations.sent):
        pipeline.reply.budget = 3
        continuation = pipeline.continuations.sent[delivered]
        delivered += 1
        assert pipeline.handle(sqs_event(queue.continuation(continuation))) == {"batchItemFailures": []}

    parts = Counter((sent.marker["requestId"], sent.marker["part"]) for sent in pipeline.continuations.sent)
    assert parts == Counter({(request_id, 2): 1})
    assert pipeline.reply.archives == Counter(dict.fromkeys(ids, 1))  # one 200 per ID, whatever was redelivered
    details = pipeline.publisher.of(request_id)
    final = {result["sequenceId"]: result["outcome"] for detail in details for result in detail["results"]}
    assert set(final) == set(ids)
    assert set(final.values()) <= {"archived", "already_archived"}
    assert details[-1]["continuation"] == 2
    assert details[-1]["complete"] is True


def test_a_poison_id_among_good_ones_is_carried_on_alone_and_then_left_to_the_redrive_policy(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    pipeline.reply.poison(POISON)
    record = queue.request(91, POISON, 92)
    request_id = record["messageId"]

    response = pipeline.handle(sqs_event(record))

    # The good IDs are done and not archived again: the record is acknowledged, the poison ID carried on.
    assert response == {"batchItemFailures": []}
    part_one = pipeline.publisher.only(request_id)
    assert outcomes(part_one) == {91: "archived", 92: "archived"}
    assert part_one["deferredIds"] == [POISON]
    [continuation] = pipeline.continuations.sent
    assert unsealed(continuation.body) == {
        "sequenceIds": [POISON],
        "continuation": {"requestId": request_id, "part": 2, "failures": 1},
    }
    assert continuation.delay_seconds == 2.0  # backs off like a retry would

    # The continuation holds only the poison ID: nothing to finish, so SQS retries it and counts its receives.
    carried_on = queue.continuation(continuation)
    response = pipeline.handle(sqs_event(carried_on))

    assert failed_items(response) == [carried_on["messageId"]]
    assert len(pipeline.continuations.sent) == 1
    [_, part_two] = pipeline.publisher.of(request_id)
    assert (part_two["continuation"], outcomes(part_two)) == (2, {POISON: "failed"})
    assert pipeline.reply.calls == Counter({91: 1, 92: 1, POISON: 2})


def _altered(pipeline: Pipeline, document: dict[str, Any], victim: str) -> str:
    """Sealed by the function for another request, then its requestId changed to the victim's."""
    sealed = json.loads(pipeline.seal.seal(document))
    sealed["continuation"]["requestId"] = victim
    return json.dumps(sealed)


def _signed_elsewhere(pipeline: Pipeline, document: dict[str, Any], victim: str) -> str:
    """Sealed with a key the function does not hold, naming the victim."""
    del pipeline
    forged = {**document, "continuation": {**document["continuation"], "requestId": victim}}
    return json.dumps(seal_with(forged, derive_key(OTHER_API_KEY)))


def _without_mac(pipeline: Pipeline, document: dict[str, Any], victim: str) -> str:
    """No MAC at all, naming the victim."""
    del pipeline
    return json.dumps({**document, "continuation": {**document["continuation"], "requestId": victim}})


@pytest.mark.parametrize("forge", [_altered, _signed_elsewhere, _without_mac], ids=lambda forge: forge.__name__)
def test_a_continuation_the_function_did_not_seal_is_not_reported_under_the_request_id_it_names(
    pipeline: Pipeline, queue: SqsQueue, forge: Forge
) -> None:
    victim_record = queue.request(201)
    pipeline.handle(sqs_event(victim_record))
    victim = victim_record["messageId"]
    document = {"sequenceIds": [202], "continuation": {"requestId": "some-other-request", "part": 2}}
    forged = queue.record(forge(pipeline, document, victim))

    response = pipeline.handle(sqs_event(forged))

    assert response == {"batchItemFailures": []}
    assert len(pipeline.publisher.of(victim)) == 1  # only the victim's own results, from its own delivery
    assert pipeline.publisher.of("some-other-request") == []
    detail = pipeline.publisher.only(forged["messageId"])  # a new request under its own message ID
    assert "continuation" not in detail
    assert outcomes(detail) == {202: "archived"}  # its IDs are still IDs someone asked to archive
    assert pipeline.metrics.total("ContinuationsForged") == 1
