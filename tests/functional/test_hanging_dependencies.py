"""No invocation outlives its deadline, whichever dependency hangs; healthy work still gets done.

A hanging fake takes all the time its call is given (the fake clock jumps to that call's deadline) and then
fails, as a bounded call to an endpoint that never answers does (the bound itself, against real hanging
endpoints, is tests/integration/test_aws_hangs.py's). What is checked is how the pipeline shares the time out:
a hanging dependency costs its own step, never the Reply work or the publishing of the others, and the
invocation ends with time left on Lambda's clock.
"""

from __future__ import annotations

from collections import Counter

from local.stand_ins.lambda_context import LocalLambdaContext
from tests.functional.fakes import Pipeline, PipelineBuilder, SqsQueue, failed_items, outcomes, sqs_event

TIME_GIVEN_SECONDS = 3.0


def short_context(pipeline: Pipeline) -> LocalLambdaContext:
    """A 3 s invocation whose countdown runs on the pipeline's fake clock."""
    return LocalLambdaContext(timeout_seconds=TIME_GIVEN_SECONDS, aws_request_id="short-one", clock=pipeline.clock)


def test_a_hanging_eventbridge_costs_no_more_than_the_time_left(pipeline: Pipeline, queue: SqsQueue) -> None:
    """The ID is archived, but its results event is owed: the record is asked back, before Lambda's deadline."""
    pipeline.publisher.hangs = True
    record = queue.request(117)
    context = short_context(pipeline)

    response = pipeline.handle(sqs_event(record), context)

    assert failed_items(response) == [record["messageId"]]
    assert pipeline.reply.archived == {117}
    assert pipeline.publisher.events == []
    assert 0 < context.get_remaining_time_in_millis() < TIME_GIVEN_SECONDS * 1000  # it hung, and ended in time


def test_a_hanging_sqs_while_parking_never_delays_archiving_or_publishing_the_good_record(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    """Parking may take its share of the final time only: the unparseable record is not parked, so SQS keeps it;
    the good record is archived and its results published."""
    pipeline.dead_letters.hangs = True
    unparseable, healthy = queue.record("not json"), queue.request(119)
    context = short_context(pipeline)

    response = pipeline.handle(sqs_event(unparseable, healthy), context)

    assert failed_items(response) == [unparseable["messageId"]]
    assert pipeline.dead_letters.parked == []
    assert pipeline.reply.archived == {119}
    assert outcomes(pipeline.publisher.only(healthy["messageId"])) == {119: "archived"}
    assert 0 < context.get_remaining_time_in_millis() < TIME_GIVEN_SECONDS * 1000  # it hung, and ended in time


def test_a_hanging_idempotency_table_never_starves_the_reply_work(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """Claiming may take a quarter of the work time: the table is then unavailable and the records are
    processed at least once, as without one: all archived, none asked back."""
    pipeline = pipeline_builder(idempotency=True)
    assert pipeline.idempotency is not None
    pipeline.idempotency.hangs = True
    records = [queue.request(sequence_id) for sequence_id in (101, 102, 103)]
    context = short_context(pipeline)

    response = pipeline.handle(sqs_event(*records), context)

    assert response == {"batchItemFailures": []}
    assert pipeline.reply.archives == Counter({101: 1, 102: 1, 103: 1})
    for record, sequence_id in zip(records, (101, 102, 103), strict=True):
        assert outcomes(pipeline.publisher.only(record["messageId"])) == {sequence_id: "archived"}
    assert 0 < context.get_remaining_time_in_millis() < TIME_GIVEN_SECONDS * 1000  # it hung, and ended in time


def test_an_unreadable_api_key_fails_the_ids_for_a_later_retry_without_calling_reply(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    """Secrets Manager cannot be read: no Reply call is made, every ID fails (the first for the secret, the
    others not attempted), and the record is asked back."""
    pipeline.reply.key_unreadable = True
    record = queue.request(115, 116)

    response = pipeline.handle(sqs_event(record), short_context(pipeline))

    assert failed_items(response) == [record["messageId"]]
    assert pipeline.reply.calls.total() == 0
    detail = pipeline.publisher.only(record["messageId"])
    assert [result["outcome"] for result in detail["results"]] == ["failed", "failed"]
    assert "secret" in detail["results"][0]["error"]
    assert detail["results"][1]["error"].startswith("not attempted")
    assert detail["counts"]["failed"] == 2
