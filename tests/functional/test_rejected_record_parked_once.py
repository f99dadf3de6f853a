"""Effects once: a publish outage over several deliveries of a rejected record parks it in the dead-letter queue
once. (The outage over the deliveries of an archive request, one continuation per part and each ID archived
once, is test_redeliveries.py's.)"""

from __future__ import annotations

from tests.functional.fakes import PipelineBuilder, SqsQueue, failed_items, outcomes, redelivered, sqs_event

FAILED_DELIVERIES = 3  # PutEvents fails for three deliveries of the record, then recovers


def test_a_publish_outage_over_three_deliveries_of_a_rejected_record_parks_it_once(
    pipeline_builder: PipelineBuilder, queue: SqsQueue
) -> None:
    """Each delivery during the outage is asked back (its results event is owed); the DLQ ends with one copy of
    the body, and the one results event published says the request was invalid."""
    pipeline = pipeline_builder(idempotency=True)
    event = sqs_event(queue.record("this is not JSON"))
    request_id = event["Records"][0]["messageId"]
    pipeline.publisher.fail_next = FAILED_DELIVERIES

    for _ in range(FAILED_DELIVERIES):
        assert failed_items(pipeline.handle(event)) == [request_id]
        event = redelivered(event)
    assert pipeline.handle(event) == {"batchItemFailures": []}

    assert [parked.body for parked in pipeline.dead_letters.parked] == ["this is not JSON"]
    assert pipeline.dead_letters.parked[0].message_id == request_id
    detail = pipeline.publisher.only(request_id)
    assert outcomes(detail) == {None: "invalid"}
    assert pipeline.publisher.failed_calls == FAILED_DELIVERIES
