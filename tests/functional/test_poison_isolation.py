"""A poison ID harms only its own record: five records share one bulk call through the event source, the
poison's record is acknowledged with its healthy IDs archived, and the continuation carrying the poison ID alone
goes to the dead-letter queue through the queue's redrive policy."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sequence_archiver.archiving.archiver import ArchiveMode
from tests.functional.fakes import EventSource, PipelineBuilder, SqsQueue, outcomes

RECORDS, IDS_PER_RECORD = 5, 10
FIRST_ID = 30_001
POISON_ID = FIRST_ID + 2 * IDS_PER_RECORD + 3  # the 4th ID of the 3rd record
MAX_RECEIVE_COUNT = 3  # the queue's redrive policy (and SQS_MAX_RECEIVE_COUNT)


def unsealed(body: str) -> dict[str, Any]:
    """A continuation body without its MAC, after checking it carries one."""
    document: dict[str, Any] = json.loads(body)
    mac = document["continuation"].pop("mac")
    assert mac.startswith("v1:")
    return document


def test_a_poison_id_dead_letters_only_its_record_and_every_other_id_is_archived(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """The first batch: one bulk call for all 50 IDs, no record asked back. The continuation holding only the
    poison ID is asked back on each of its receives until the redrive policy moves it to the DLQ; the results:
    every healthy record all archived, the poison's request 9 archived in part 1 and the poison failed in each
    delivery of part 2."""
    pipeline = pipeline_builder(mode=ArchiveMode.BULK, max_receive_count=MAX_RECEIVE_COUNT)
    pipeline.reply.poison(POISON_ID)
    ids = list(range(FIRST_ID, FIRST_ID + RECORDS * IDS_PER_RECORD))
    records = [queue.request(*ids[start : start + IDS_PER_RECORD]) for start in range(0, len(ids), IDS_PER_RECORD)]
    message_ids = [str(record["messageId"]) for record in records]
    poison_message = message_ids[2]
    source = EventSource(queue, pipeline, max_receive_count=MAX_RECEIVE_COUNT)
    source.send(*records)

    source.drain()

    # The five records shared one bulk call; none was asked back, the poison's record included
    first, *later = source.batches
    assert list(first.message_ids) == message_ids
    assert first.bulk_calls[0] == tuple(ids)
    assert first.failed == ()
    # ... the continuation was asked back on every delivery, until the redrive policy moved it to the DLQ
    [continuation_id] = {message_id for batch in later for message_id in batch.message_ids}
    assert [batch.failed for batch in later] == [(continuation_id,)] * MAX_RECEIVE_COUNT
    assert not source.visible
    [dead_letter] = source.redriven
    assert dead_letter["messageId"] == continuation_id
    assert unsealed(dead_letter["body"]) == {
        "sequenceIds": [POISON_ID],
        "continuation": {"requestId": poison_message, "part": 2, "failures": 1},
    }
    assert pipeline.dead_letters.parked == []  # SQS moved it, not the function
    # ... all 49 other IDs are archived, each exactly once, the poison ID is not; later calls name only the poison
    assert pipeline.reply.archives == Counter(dict.fromkeys(set(ids) - {POISON_ID}, 1))
    assert {call for batch in later for call in batch.bulk_calls} == {(POISON_ID,)}
    # ... the healthy records reported every ID archived; the poison's request its 9 other IDs in part 1, then the
    # poison failed on every delivery of part 2
    for message_id, record in zip(message_ids, records, strict=True):
        if message_id == poison_message:
            continue
        detail = pipeline.publisher.only(message_id)
        assert outcomes(detail) == dict.fromkeys(json.loads(record["body"])["sequenceIds"], "archived")
    first_part, *later_parts = pipeline.publisher.of(poison_message)
    assert first_part["continuation"] == 1
    assert first_part["deferredIds"] == [POISON_ID]
    assert outcomes(first_part) == dict.fromkeys(set(ids[20:30]) - {POISON_ID}, "archived")
    assert len(later_parts) == MAX_RECEIVE_COUNT
    for detail in later_parts:
        assert (detail["continuation"], outcomes(detail)) == (2, {POISON_ID: "failed"})
    assert len(pipeline.publisher.events) == RECORDS + MAX_RECEIVE_COUNT
