"""At-least-once delivery, effectively once: a retried request gives its claim back, a redelivered EventBridge
event is done once, and without an idempotency table a redelivery is processed again."""

from __future__ import annotations

from tests.functional.fakes import (
    Answer,
    Pipeline,
    PipelineBuilder,
    SqsQueue,
    failed_items,
    outcomes,
    redelivered,
    sqs_event,
)
from tests.sample_events import load_event


def test_a_request_that_must_be_retried_gives_its_claim_back(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """The first delivery fails (503) and releases its claim, so the redelivery is processed, not skipped as a
    duplicate: two results events, incomplete then complete."""
    pipeline = pipeline_builder(idempotency=True)
    pipeline.reply.script(103, Answer.UNAVAILABLE, Answer.ARCHIVE)
    event = sqs_event(queue.request(103))
    message_id = event["Records"][0]["messageId"]

    first = pipeline.handle(event)
    second = pipeline.handle(redelivered(event))

    assert failed_items(first) == [message_id]
    assert second == {"batchItemFailures": []}
    assert [detail["complete"] for detail in pipeline.publisher.of(message_id)] == [False, True]


def test_a_redelivered_eventbridge_event_is_done_once(pipeline_builder: PipelineBuilder) -> None:
    """The same event again is answered as a duplicate, without a Reply call or a second results event."""
    pipeline = pipeline_builder(idempotency=True)
    pipeline.reply.archived.add(402)
    pipeline.reply.script(502, Answer.FORBIDDEN)
    event = load_event("eventbridge-event.json")

    detail = pipeline.handle(event)
    calls = pipeline.reply.calls.total()
    duplicate = pipeline.handle(event)

    assert detail["complete"] is True
    assert outcomes(detail) == {106: "archived", 107: "archived", 402: "already_archived", 502: "forbidden"}
    assert duplicate == {"requestId": event["id"], "trigger": "eventbridge", "duplicate": True}
    assert pipeline.reply.calls.total() == calls
    assert [detail["requestId"] for detail in pipeline.publisher.events] == [event["id"]]


def test_without_a_table_redeliveries_are_processed_again(pipeline: Pipeline, queue: SqsQueue) -> None:
    """No idempotency table: the redelivery calls Reply again and finds both IDs already archived."""
    event = sqs_event(queue.request(104, 105))
    message_id = event["Records"][0]["messageId"]

    pipeline.handle(event)
    pipeline.handle(redelivered(event))

    counts = [detail["counts"] for detail in pipeline.publisher.of(message_id)]
    assert [count["archived"] for count in counts] == [2, 0]
    assert [count["already_archived"] for count in counts] == [0, 2]
