"""Mixed SQS batches archived with bulk calls: one call (or one per REPLY_BULK_MAX_IDS chunk) spans the batch,
each item of Reply's answers is mapped back to its record, and the metrics count every outcome."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sequence_archiver.archiving.archiver import ArchiveMode
from tests.functional.fakes import Answer, Pipeline, PipelineBuilder, SqsQueue, outcomes, sqs_event
from tests.sample_events import eventbridge_envelope, sns_envelope

ALREADY_ARCHIVED, RUNNING, NOT_FOUND, FORBIDDEN = 401, 301, 999_999, 501  # Reply's answers for these IDs


def seeded(pipeline: Pipeline) -> Pipeline:
    """Reply as the simulator's seed has it: one sequence archived already, one still running, one missing, one
    the key's user may not archive."""
    pipeline.reply.archived.add(ALREADY_ARCHIVED)
    pipeline.reply.script(RUNNING, Answer.RUNNING)
    pipeline.reply.script(NOT_FOUND, Answer.NOT_FOUND)
    pipeline.reply.script(FORBIDDEN, Answer.FORBIDDEN)
    return pipeline


def test_a_mixed_bulk_batch_archives_reports_every_id_and_dead_letters_the_unparseable_message(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """REPLY_ARCHIVE_MODE auto: one bulk call for the batch. Every record gets final outcomes (none asked back),
    items of the bulk answer carry no HTTP status of their own, invalid items keep their input, the
    unparseable record is parked with its reason, and the metrics count each outcome and one Reply call."""
    pipeline = seeded(pipeline_builder(mode=ArchiveMode.AUTO))
    records = [
        queue.record(json.dumps({"sequenceIds": [101, 102, "103", 103, ALREADY_ARCHIVED, RUNNING, NOT_FOUND]})),
        queue.record("104"),
        queue.record(eventbridge_envelope({"sequenceIds": [105, FORBIDDEN]})),
        queue.record(sns_envelope({"sequenceId": 201})),
        queue.record(json.dumps({"sequenceIds": [106, 0, True, "abc", 1.5]})),
        queue.record("not json at all"),
    ]
    ids = [str(record["messageId"]) for record in records]

    response = pipeline.handle(sqs_event(*records))

    assert response == {"batchItemFailures": []}
    assert pipeline.reply.archived >= {101, 102, 103, 104, 105, 106, 201}
    assert len(pipeline.reply.bulk_calls) == 1
    details = {request_id: pipeline.publisher.only(request_id) for request_id in ids}
    assert outcomes(details[ids[0]]) == {
        101: "archived",
        102: "archived",
        103: "archived",
        ALREADY_ARCHIVED: "already_archived",
        RUNNING: "conflict",
        NOT_FOUND: "not_found",
    }
    assert outcomes(details[ids[1]]) == {104: "archived"}
    assert outcomes(details[ids[2]]) == {105: "archived", FORBIDDEN: "forbidden"}
    assert outcomes(details[ids[3]]) == {201: "archived"}
    assert details[ids[4]]["counts"]["invalid"] == 4
    assert details[ids[4]]["counts"]["archived"] == 1
    invalid = [result["input"] for result in details[ids[4]]["results"] if result["outcome"] == "invalid"]
    assert invalid == ["0", "true", '"abc"', "1.5"]
    assert all(detail["trigger"] == "sqs" and detail["complete"] for detail in details.values())
    archived_result, conflict_result = details[ids[0]]["results"][0], details[ids[0]]["results"][-2]
    assert (archived_result["httpStatus"], archived_result["via"], archived_result["sequence"]) == (None, "bulk", None)
    assert (conflict_result["sequenceId"], conflict_result["httpStatus"], conflict_result["via"]) == (
        RUNNING,
        None,
        "bulk",
    )
    assert conflict_result["error"].startswith("sequenceAction.invalidState: Sequence is active. Pause it first")
    assert all(result["via"] is None for result in details[ids[4]]["results"] if result["outcome"] == "invalid")
    [parked] = pipeline.dead_letters.parked
    assert (parked.body, parked.message_id) == ("not json at all", ids[5])
    assert "not JSON" in parked.reason
    assert outcomes(details[ids[5]]) == {None: "invalid"}
    expected_metrics = {
        "SequencesArchived": 7,
        "SequencesAlreadyArchived": 1,
        "SequencesConflict": 1,
        "SequencesNotFound": 1,
        "SequencesForbidden": 1,
        "SequencesInvalid": 5,
        "SequencesFailed": 0,
        "ReplyApiCalls": 1,
    }
    assert {name: pipeline.metrics.total(name) for name in expected_metrics} == expected_metrics


@pytest.mark.parametrize("bulk_max_ids", [3, 100])
def test_bulk_archives_a_whole_batch_in_chunks_and_maps_each_item_back_to_its_record(
    bulk_max_ids: int, pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """The batch's unique IDs go out in chunks of REPLY_BULK_MAX_IDS, never as single calls; each item of the
    answers is reported in its own record, an ID named by two records in both (archived once)."""
    pipeline = seeded(pipeline_builder(mode=ArchiveMode.AUTO, bulk_max_ids=bulk_max_ids))
    pipeline.reply.script(601, Answer.FORBIDDEN)
    pipeline.reply.script(701, Answer.SALES_AGENT)
    records = [
        queue.request(101, RUNNING, ALREADY_ARCHIVED),
        queue.request(FORBIDDEN, 601, 701),
        queue.request(102, NOT_FOUND, 101),  # 101 again: archived once, reported in both records
    ]

    response = pipeline.handle(sqs_event(*records))

    assert response == {"batchItemFailures": []}
    first, second, third = (pipeline.publisher.only(record["messageId"]) for record in records)
    assert outcomes(first) == {101: "archived", RUNNING: "conflict", ALREADY_ARCHIVED: "already_archived"}
    assert outcomes(second) == {FORBIDDEN: "forbidden", 601: "forbidden", 701: "conflict"}
    assert outcomes(third) == {102: "archived", NOT_FOUND: "not_found", 101: "archived"}
    assert "salesAgentNotAllowed" in second["results"][2]["error"]
    expected_sizes = [3, 3, 2] if bulk_max_ids == 3 else [8]
    assert [len(call) for call in pipeline.reply.bulk_calls] == expected_sizes
    assert pipeline.reply.archives == Counter({101: 1, 102: 1})
    assert pipeline.metrics.total("ReplyApiCalls") == len(expected_sizes)
