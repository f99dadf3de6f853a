"""FIFO sources keep their order: a record waiting for the budget is retried in place (never continued), another
message group is not held back, and a poison head given up at its last receive frees its group, over the
receives an event source with a redrive policy makes."""

from __future__ import annotations

import json

from tests.functional.fakes import MAX_RECEIVE_COUNT, EventSource, Pipeline, SqsQueue, failed_items, outcomes, sqs_event

POISON = 102  # Reply answers 503 for it every time


def test_a_fifo_record_waiting_for_the_budget_is_retried_in_place_not_continued(
    pipeline: Pipeline, fifo_queue: SqsQueue
) -> None:
    """One call left in the budget: the record is asked back (a continuation would join the back of its
    group), and the record behind it waits too; no continuation is sent."""
    pipeline.reply.budget = 1
    m1, m2 = fifo_queue.request(104, 105, group="campaign-1"), fifo_queue.request(106, group="campaign-1")

    response = pipeline.handle(sqs_event(m1, m2))

    assert failed_items(response) == [m1["messageId"], m2["messageId"]]
    assert pipeline.reply.calls.total() == 1
    assert pipeline.continuations.sent == []


def test_another_message_group_is_not_held_back_by_a_record_that_must_be_retried(
    pipeline: Pipeline, fifo_queue: SqsQueue
) -> None:
    """Group a's head fails: it and a's later record are asked back; group b goes on, in order."""
    pipeline.reply.poison(POISON)
    a1, b1 = fifo_queue.request(POISON, group="a"), fifo_queue.request(103, group="b")
    a2, b2 = fifo_queue.request(104, group="a"), fifo_queue.request(105, group="b")

    response = pipeline.handle(sqs_event(a1, b1, a2, b2))

    assert failed_items(response) == [a1["messageId"], a2["messageId"]]
    assert pipeline.reply.archive_order == [103, 105]  # 104 did not overtake 102


def test_a_poison_head_is_dead_lettered_alone_and_the_records_behind_it_are_archived_in_order(
    pipeline: Pipeline, fifo_queue: SqsQueue
) -> None:
    """Delivered until the queue is empty: only the poison record is parked, by the function, with its reason
    (nothing reaches the redrive); every healthy ID is archived, its group's in order; the poison's last results
    say it failed."""
    pipeline.reply.poison(POISON)
    poison = fifo_queue.request(POISON, group="campaign-a")
    healthy = [103, 104, 105, 106]
    group_a = [fifo_queue.request(id_, group="campaign-a") for id_ in healthy]
    group_b = [fifo_queue.request(id_, group="b") for id_ in (107, 108)]
    source = EventSource(fifo_queue, pipeline, max_receive_count=MAX_RECEIVE_COUNT)
    source.send(poison, *group_a, *group_b)

    source.drain()

    [parked] = pipeline.dead_letters.parked
    assert json.loads(parked.body) == {"sequenceIds": [POISON]}
    assert "SQS_MAX_RECEIVE_COUNT" in parked.reason
    assert (parked.message_id, parked.message_group_id) == (poison["messageId"], "campaign-a")
    assert source.redriven == []
    assert pipeline.reply.archived == {*healthy, 107, 108}
    assert [id_ for id_ in pipeline.reply.archive_order if id_ in healthy] == healthy
    assert len(source.batches) == MAX_RECEIVE_COUNT
    assert outcomes(pipeline.publisher.of(poison["messageId"])[-1]) == {POISON: "failed"}
