"""FIFO batches (order within each message group, a poison head at and before its last receive) and direct
invocations (the detail returned, or an error the caller retries on)."""

from __future__ import annotations

from collections import Counter

import pytest

from sequence_archiver.core.exceptions import SequenceArchiveIncomplete
from tests.functional.fakes import MAX_RECEIVE_COUNT, Pipeline, SqsQueue, failed_items, outcomes, sqs_event

POISON = 900  # Reply answers 503 for it every time
GROUP_A_IDS = (11, 12, 13, 14)  # the records behind the poison head, one ID each, in their order
GROUP_B_IDS = (21, 22)


def _fifo_batch(fifo_queue: SqsQueue, receive_count: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Group A's records (the poison head first) and group B's, interleaved in the batch as SQS delivers them."""
    head = fifo_queue.request(POISON, group="A", receive_count=receive_count)
    a1, a2, a3, a4 = (fifo_queue.request(i, group="A", receive_count=receive_count) for i in GROUP_A_IDS)
    b1, b2 = (fifo_queue.request(i, group="B", receive_count=receive_count) for i in GROUP_B_IDS)
    batch = [head, b1, a1, a2, b2, a3, a4]
    return batch, [head, a1, a2, a3, a4]


def test_fifo_poison_head_at_its_last_receive_is_parked_and_the_records_behind_it_are_archived_in_order(
    pipeline: Pipeline, fifo_queue: SqsQueue
) -> None:
    pipeline.reply.poison(POISON)
    batch, group_a = _fifo_batch(fifo_queue, receive_count=MAX_RECEIVE_COUNT)
    head = group_a[0]

    response = pipeline.handle(sqs_event(*batch))

    # Parked by the function: SQS's redrive would have moved the records behind it to the DLQ with it.
    assert response == {"batchItemFailures": []}
    [parked] = pipeline.dead_letters.parked
    assert (parked.message_id, parked.message_group_id, parked.body) == (head["messageId"], "A", head["body"])
    assert "SQS_MAX_RECEIVE_COUNT" in parked.reason
    archived_a = [i for i in pipeline.reply.archive_order if i in GROUP_A_IDS]
    assert archived_a == list(GROUP_A_IDS)
    assert pipeline.reply.archive_order == [21, 11, 12, 22, 13, 14]  # group B was never held back
    for record, sequence_id in zip(group_a[1:], GROUP_A_IDS, strict=True):
        assert outcomes(pipeline.publisher.only(str(record["messageId"]))) == {sequence_id: "archived"}
    reported = pipeline.publisher.only(str(head["messageId"]))
    assert (reported["complete"], outcomes(reported)) == (False, {POISON: "failed"})


def test_fifo_poison_head_before_its_last_receive_holds_back_its_own_group_only(
    pipeline: Pipeline, fifo_queue: SqsQueue
) -> None:
    pipeline.reply.poison(POISON)
    batch, group_a = _fifo_batch(fifo_queue, receive_count=1)

    response = pipeline.handle(sqs_event(*batch))

    # Nothing overtakes the head: it and every record behind it in group A come back, in their order.
    assert failed_items(response) == [record["messageId"] for record in group_a]
    assert pipeline.dead_letters.parked == []
    assert pipeline.reply.calls == Counter({POISON: 1, 21: 1, 22: 1})  # group A's later IDs never reached Reply
    assert pipeline.reply.archive_order == [21, 22]
    for record in group_a[1:]:
        assert pipeline.publisher.of(str(record["messageId"])) == []
    for record, sequence_id in zip(batch, (None, 21, None, None, 22, None, None), strict=True):
        if sequence_id is not None:
            assert outcomes(pipeline.publisher.only(str(record["messageId"]))) == {sequence_id: "archived"}
    assert pipeline.continuations.sent == []  # a FIFO record is never continued (it would join the back)


def test_a_direct_request_with_a_failed_id_raises_sequence_archive_incomplete_with_the_detail(
    pipeline: Pipeline,
) -> None:
    pipeline.reply.poison(POISON)
    context = pipeline.context()

    with pytest.raises(SequenceArchiveIncomplete) as raised:
        pipeline.handle({"sequenceIds": [31, POISON]}, context)

    detail = raised.value.detail
    assert detail["requestId"] == context.aws_request_id
    assert detail["trigger"] == "direct"
    assert detail["complete"] is False
    assert outcomes(detail) == {31: "archived", POISON: "failed"}
    assert "1 sequence ID(s)" in str(raised.value)
    assert pipeline.publisher.only(context.aws_request_id) == detail  # the caller sees what was published
    assert pipeline.continuations.sent == []  # the caller's retry takes over, not a continuation


def test_a_direct_request_all_archived_returns_the_published_detail(pipeline: Pipeline) -> None:
    context = pipeline.context()

    detail = pipeline.handle({"sequenceIds": [32, "33", "x"]}, context)

    assert detail == pipeline.publisher.only(context.aws_request_id)
    assert detail["complete"] is True
    assert outcomes(detail) == {32: "archived", 33: "archived", None: "invalid"}
    assert pipeline.reply.calls == Counter({32: 1, 33: 1})
