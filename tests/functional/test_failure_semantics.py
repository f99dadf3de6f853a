"""What is retried, what is final, and that nothing is lost: a failed ID beside finished ones, a record that
cannot be dead-lettered, results that cannot be published, an invocation with almost no time left."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from local.stand_ins.lambda_context import LocalLambdaContext
from tests.functional.fakes import Pipeline, PipelineBuilder, SqsQueue, failed_items, outcomes, sqs_event

POISON = 105  # Reply answers 503 for it every time


def unsealed(body: str) -> dict[str, Any]:
    """A continuation body without its MAC, after checking it carries one."""
    document: dict[str, Any] = json.loads(body)
    mac = document["continuation"].pop("mac")
    assert mac.startswith("v1:")
    return document


def test_only_the_record_with_a_failed_id_is_carried_on_and_its_neighbour_is_untouched(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    """The second record's 102 is done: it is acknowledged, and one continuation carries only 105 on, counting
    the failure, so 102 is never archived again; the first record is complete; one ID counts as failed."""
    pipeline.reply.poison(POISON)
    first, second = queue.request(101), queue.request(POISON, 102)

    response = pipeline.handle(sqs_event(first, second))

    assert response == {"batchItemFailures": []}
    assert pipeline.publisher.only(first["messageId"])["complete"] is True
    carried = pipeline.publisher.only(second["messageId"])
    assert (carried["complete"], carried["continuation"], carried["deferredIds"]) == (False, 1, [POISON])
    assert outcomes(carried) == {102: "archived"}
    assert pipeline.metrics.total("SequencesFailed") == 1
    [continuation] = pipeline.continuations.sent
    assert unsealed(continuation.body) == {
        "sequenceIds": [POISON],
        "continuation": {"requestId": second["messageId"], "part": 2, "failures": 1},
    }
    assert pipeline.reply.archives == Counter({101: 1, 102: 1})


def test_without_a_dead_letter_queue_url_an_unparseable_record_is_left_to_the_redrive_policy(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """Nothing can park it: the rejected record is asked back (SQS's redrive moves it after its last receive),
    its results are not published yet, and its neighbour is archived and reported."""
    pipeline = pipeline_builder(dead_letter_queue=False)
    rejected, healthy = queue.record('{"sequenceIds": "101"}'), queue.record("117")

    response = pipeline.handle(sqs_event(rejected, healthy))

    assert failed_items(response) == [rejected["messageId"]]
    assert pipeline.dead_letters.parked == []
    assert [detail["requestId"] for detail in pipeline.publisher.events] == [healthy["messageId"]]
    assert outcomes(pipeline.publisher.only(healthy["messageId"])) == {117: "archived"}


def test_an_unreachable_dead_letter_queue_leaves_the_rejected_record_to_sqs_and_the_good_one_is_done(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    """SendMessage to the DLQ fails: the unparseable record is asked back and reported when it is finally
    parked; the good record beside it is archived and published."""
    pipeline.dead_letters.unavailable = True
    unparseable, healthy = queue.record("not json"), queue.request(119)

    response = pipeline.handle(sqs_event(unparseable, healthy))

    assert failed_items(response) == [unparseable["messageId"]]
    assert pipeline.dead_letters.refused == 1
    assert pipeline.publisher.of(unparseable["messageId"]) == []
    assert outcomes(pipeline.publisher.only(healthy["messageId"])) == {119: "archived"}


def test_a_record_whose_results_event_cannot_be_published_is_retried(pipeline: Pipeline, queue: SqsQueue) -> None:
    """PutEvents fails: the record is asked back although its ID is archived (the retry finds it already
    archived: archiving is idempotent)."""
    pipeline.publisher.fail_next = 1
    record = queue.request(118)

    response = pipeline.handle(sqs_event(record))

    assert failed_items(response) == [record["messageId"]]
    assert pipeline.reply.archived == {118}
    assert pipeline.publisher.events == []


def test_no_call_starts_when_the_invocation_has_almost_no_time_left(pipeline: Pipeline, queue: SqsQueue) -> None:
    """0.3 s left: the work deadline leaves less than a Reply call needs. No call starts, and nothing is lost:
    the record is acknowledged and carried on whole by a continuation (it ran out of time, it did not fail)."""
    record = queue.request(119, 120)
    context = LocalLambdaContext(timeout_seconds=0.3, aws_request_id="short-invocation", clock=pipeline.clock)

    response = pipeline.handle(sqs_event(record), context)

    assert response == {"batchItemFailures": []}
    assert pipeline.reply.calls.total() == 0
    detail = pipeline.publisher.only(record["messageId"])
    assert (detail["complete"], detail["continuation"], detail["deferredIds"]) == (False, 1, [119, 120])
    assert detail["results"] == []
    [continuation] = pipeline.continuations.sent
    assert continuation.document["sequenceIds"] == [119, 120]
