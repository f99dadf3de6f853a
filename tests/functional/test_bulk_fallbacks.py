"""When the bulk endpoint refuses a whole call: a key without the bulk scope falls back to single calls and the
instance remembers it; a whole-call `teamMemberNotFound` falls back to single calls for that chunk only."""

from __future__ import annotations

from collections import Counter

from sequence_archiver.archiving.archiver import ArchiveMode
from tests.functional.fakes import Answer, PipelineBuilder, SqsQueue, outcomes, sqs_event


def test_a_key_without_the_bulk_scope_falls_back_to_single_calls_and_remembers(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """The bulk endpoint answers 403 to this key: the first batch's IDs are archived by single calls, and the
    next batch goes straight to single calls (one refused bulk call in all)."""
    pipeline = pipeline_builder(mode=ArchiveMode.AUTO)
    pipeline.reply.refuse_bulk(403, "sequenceAction.forbidden")
    pipeline.reply.archived.add(402)
    first, second = queue.request(103, 104, 402), queue.request(105, 106)

    responses = [pipeline.handle(sqs_event(first)), pipeline.handle(sqs_event(second))]

    assert responses == [{"batchItemFailures": []}] * 2
    assert outcomes(pipeline.publisher.only(first["messageId"])) == {
        103: "archived",
        104: "archived",
        402: "already_archived",
    }
    assert outcomes(pipeline.publisher.only(second["messageId"])) == {105: "archived", 106: "archived"}
    assert pipeline.reply.bulk_calls == [(103, 104, 402)]  # refused once, never asked again
    assert pipeline.reply.calls == Counter({103: 2, 104: 2, 402: 2, 105: 1, 106: 1})  # the bulk call, then singles


def test_a_whole_call_team_member_not_found_falls_back_to_single_calls(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """One bulk call refused with 400 teamMemberNotFound: its IDs are tried one by one, and only the ID whose
    team member is gone ends `forbidden`; the others are archived, and no record is asked back."""
    pipeline = pipeline_builder(mode=ArchiveMode.BULK)
    pipeline.reply.refuse_bulk(400, "sequenceAction.teamMemberNotFound", times=1)
    pipeline.reply.script(601, Answer.TEAM_MEMBER_GONE)
    first, second = queue.request(111, 601), queue.request(112)

    response = pipeline.handle(sqs_event(first, second))

    assert response == {"batchItemFailures": []}
    assert outcomes(pipeline.publisher.only(first["messageId"])) == {111: "archived", 601: "forbidden"}
    assert outcomes(pipeline.publisher.only(second["messageId"])) == {112: "archived"}
    assert pipeline.reply.archived == {111, 112}
