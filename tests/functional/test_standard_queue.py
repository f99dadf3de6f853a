"""A standard SQS queue's batches through the whole pipeline: what the partial batch response says, which results
events are published, what is parked or postponed, and how often Reply is called for each ID."""

from __future__ import annotations

from collections import Counter

from sequence_archiver.archiving.archiver import ArchiveMode
from sequence_archiver.aws.retry_timing import Postponement
from tests.functional.fakes import (
    STANDARD_QUEUE_ARN,
    THROTTLE_RETRY_AFTER_SECONDS,
    Answer,
    Pipeline,
    PipelineBuilder,
    SqsQueue,
    failed_items,
    outcomes,
    sqs_event,
)

POISON = 900  # Reply answers 503 for it every time


def test_a_batch_whose_ids_are_all_archived_acknowledges_every_record_with_one_results_event_each(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    records = [queue.request(1, 2), queue.request(3), queue.request(4, 5, 6)]

    response = pipeline.handle(sqs_event(*records))

    assert response == {"batchItemFailures": []}
    for record, ids in zip(records, [(1, 2), (3,), (4, 5, 6)], strict=True):
        detail = pipeline.publisher.only(record["messageId"])
        assert detail["trigger"] == "sqs"
        assert detail["complete"] is True
        assert outcomes(detail) == dict.fromkeys(ids, "archived")
    assert len(pipeline.publisher.events) == 3
    assert pipeline.reply.calls == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1})
    assert pipeline.dead_letters.parked == []
    assert pipeline.continuations.sent == []


def test_a_poison_id_fails_only_its_own_record_and_its_neighbours_are_archived_once(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    pipeline.reply.poison(POISON)
    before, poisoned, after = queue.request(1, 2), queue.request(POISON), queue.request(3)

    response = pipeline.handle(sqs_event(before, poisoned, after))

    assert failed_items(response) == [poisoned["messageId"]]
    assert pipeline.reply.calls == Counter({1: 1, 2: 1, 3: 1, POISON: 1})
    assert pipeline.reply.archives == Counter({1: 1, 2: 1, 3: 1})
    assert outcomes(pipeline.publisher.only(before["messageId"])) == {1: "archived", 2: "archived"}
    assert outcomes(pipeline.publisher.only(after["messageId"])) == {3: "archived"}
    failed = pipeline.publisher.only(poisoned["messageId"])
    assert failed["complete"] is False
    assert outcomes(failed) == {POISON: "failed"}
    assert failed["results"][0]["httpStatus"] == 503
    assert pipeline.dead_letters.parked == []  # SQS's redrive policy takes it to the DLQ after its last receive
    assert pipeline.continuations.sent == []  # nothing of it was archived: retried whole, not continued


def test_a_poison_id_in_a_bulk_call_is_isolated_and_every_other_id_of_the_batch_is_archived_once(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    pipeline = pipeline_builder(mode=ArchiveMode.BULK, bulk_max_ids=10)
    pipeline.reply.poison(POISON)
    first, poisoned, last = queue.request(1, 2, 3), queue.request(POISON), queue.request(4, 5)

    response = pipeline.handle(sqs_event(first, poisoned, last))

    assert failed_items(response) == [poisoned["messageId"]]
    assert pipeline.reply.bulk_calls[0] == (1, 2, 3, POISON, 4, 5)  # one bulk call spans the batch
    assert pipeline.reply.archives == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1})
    assert POISON not in pipeline.reply.archived
    assert outcomes(pipeline.publisher.only(first["messageId"])) == dict.fromkeys((1, 2, 3), "archived")
    assert outcomes(pipeline.publisher.only(last["messageId"])) == dict.fromkeys((4, 5), "archived")
    assert outcomes(pipeline.publisher.only(poisoned["messageId"])) == {POISON: "failed"}


def test_an_unparseable_body_is_parked_once_and_reported_invalid_while_its_neighbours_are_archived(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    before, garbage, after = queue.request(1), queue.record('{"sequenceIds": [1, 2'), queue.request(2)

    response = pipeline.handle(sqs_event(before, garbage, after))

    assert response == {"batchItemFailures": []}  # parked by the function, never retried in vain
    [parked] = pipeline.dead_letters.parked
    assert parked.message_id == garbage["messageId"]
    assert parked.body == garbage["body"]
    assert "not JSON" in parked.reason
    rejected = pipeline.publisher.only(garbage["messageId"])
    assert rejected["complete"] is True
    assert rejected["counts"]["invalid"] == 1
    [result] = rejected["results"]
    assert (result["sequenceId"], result["outcome"]) == (None, "invalid")
    assert result["error"].startswith("request rejected: ")
    assert outcomes(pipeline.publisher.only(before["messageId"])) == {1: "archived"}
    assert outcomes(pipeline.publisher.only(after["messageId"])) == {2: "archived"}
    assert pipeline.reply.calls == Counter({1: 1, 2: 1})
    assert pipeline.metrics.total("RequestsRejected") == 1


def test_a_200_whose_body_says_not_archived_is_reported_unconfirmed_never_archived(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    pipeline.reply.script(61, Answer.NOT_ARCHIVED)
    record = queue.request(61, 62)

    response = pipeline.handle(sqs_event(record))

    assert response == {"batchItemFailures": []}  # final: a person checks it in Reply, a retry would not tell
    detail = pipeline.publisher.only(record["messageId"])
    assert outcomes(detail) == {61: "unconfirmed", 62: "archived"}
    assert detail["counts"]["archived"] == 1
    assert detail["counts"]["unconfirmed"] == 1
    unconfirmed = detail["results"][0]
    assert unconfirmed["httpStatus"] == 200
    assert "isArchived false" in unconfirmed["error"]
    assert unconfirmed["sequence"]["isArchived"] is False
    assert pipeline.metrics.total("SequencesArchived") == 1
    assert pipeline.metrics.total("SequencesUnconfirmed") == 1


def test_a_429_retries_the_record_when_reply_said_to_come_back(pipeline: Pipeline, queue: SqsQueue) -> None:
    pipeline.reply.script(41, Answer.THROTTLED)
    throttled, neighbour = queue.request(41), queue.request(42)

    response = pipeline.handle(sqs_event(throttled, neighbour))

    assert failed_items(response) == [throttled["messageId"]]
    assert pipeline.visibility.postponed == [
        Postponement(STANDARD_QUEUE_ARN, throttled["receiptHandle"], THROTTLE_RETRY_AFTER_SECONDS)
    ]
    assert outcomes(pipeline.publisher.only(throttled["messageId"])) == {41: "failed"}
    assert outcomes(pipeline.publisher.only(neighbour["messageId"])) == {42: "archived"}


def test_a_pause_first_request_whose_pause_worked_but_archive_failed_reports_paused(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    # Reply refuses to archive the active sequence (409), the pause works, the archive after it fails (503).
    pipeline.reply.script(51, Answer.RUNNING, Answer.UNAVAILABLE)
    record = queue.request(51, pause_first=True)

    response = pipeline.handle(sqs_event(record))

    assert failed_items(response) == [record["messageId"]]
    assert pipeline.reply.pauses == Counter({51: 1})
    assert pipeline.reply.calls == Counter({51: 2})  # the archive, then the archive after the pause
    detail = pipeline.publisher.only(record["messageId"])
    [result] = detail["results"]
    assert result["outcome"] == "failed"
    assert result["paused"] is True  # the sequence has stopped sending, although it is not archived
    assert result["httpStatus"] == 503
    assert 51 in pipeline.reply.paused
    assert 51 not in pipeline.reply.archived
    assert detail["complete"] is False


def test_a_duplicate_delivery_is_acknowledged_without_calling_reply_or_publishing_again(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    pipeline = pipeline_builder(idempotency=True)
    done, fresh = queue.request(71, 72), queue.request(73)
    assert pipeline.idempotency is not None
    pipeline.idempotency.completed_before(done["messageId"])

    response = pipeline.handle(sqs_event(done, fresh))

    assert response == {"batchItemFailures": []}
    assert pipeline.reply.calls == Counter({73: 1})
    assert pipeline.publisher.of(done["messageId"]) == []
    assert outcomes(pipeline.publisher.only(fresh["messageId"])) == {73: "archived"}
    assert pipeline.metrics.total("RequestsSkippedAsDuplicate") == 1


def test_a_record_another_invocation_is_processing_is_retried_without_calling_reply(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    pipeline = pipeline_builder(idempotency=True)
    busy, fresh = queue.request(74), queue.request(75)
    assert pipeline.idempotency is not None
    pipeline.idempotency.held_elsewhere(busy["messageId"])

    response = pipeline.handle(sqs_event(busy, fresh))

    assert failed_items(response) == [busy["messageId"]]
    assert pipeline.reply.calls == Counter({75: 1})
    assert pipeline.publisher.of(busy["messageId"]) == []
    assert pipeline.idempotency.records[busy["messageId"]].status == "in_progress"  # still the other one's claim
    assert pipeline.idempotency.records[fresh["messageId"]].status == "completed"
