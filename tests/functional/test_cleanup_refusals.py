"""Clean-up requests (a selection instead of IDs) that never reach a listing: from a trigger
CLEANUP_ALLOWED_TRIGGERS does not name (by default every one but direct), a schedule input that smuggles more
than its fields, a bad selection, and a clean-up continuation forged onto the queue. Each is reported as one
invalid item saying why, with no Reply call; its neighbours are unaffected."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.functional.fakes import RESULTS_SCHEMA, Pipeline, SqsQueue, outcomes, sqs_event

SNS_TOPIC = "arn:aws:sns:us-east-1:123456789012:requests"
TRIGGER_SHAPES = ["eventbridge-detail-string", "sqs-body", "sqs-sns-notification", "sns-record"]


def deliver(pipeline: Pipeline, queue: SqsQueue, shape: str, request: str) -> tuple[str, str, dict[str, Any]]:
    """Hand `request` to the pipeline as `shape` delivers it: its request ID, its reported trigger, the response."""
    if shape == "eventbridge-detail-string":
        event = {"id": "evt-1", "detail-type": "Archive Sequences", "source": "producer", "detail": request}
        return "evt-1", "eventbridge", pipeline.handle(event)
    if shape == "sns-record":
        notification = {"Type": "Notification", "MessageId": "sns-1", "TopicArn": SNS_TOPIC, "Message": request}
        return "sns-1", "direct", pipeline.handle({"Records": [{"EventSource": "aws:sns", "Sns": notification}]})
    body = request
    if shape == "sqs-sns-notification":
        body = json.dumps({"Type": "Notification", "TopicArn": SNS_TOPIC, "Message": request})
    record = queue.record(body)
    return str(record["messageId"]), "sqs", pipeline.handle(sqs_event(record))


@pytest.mark.parametrize("shape", TRIGGER_SHAPES)
def test_by_default_a_clean_up_request_from_a_producer_is_refused_before_anything_is_listed(
    pipeline: Pipeline, queue: SqsQueue, shape: str
) -> None:
    """Nothing is listed, archived, parked or continued; an SQS record is acknowledged; the results event is a
    complete, rejected request naming the setting and the trigger, and the refusal is counted."""
    request = json.dumps({"select": {"olderThanDays": 0}, "dryRun": False, "pauseFirst": True})

    request_id, trigger, response = deliver(pipeline, queue, shape, request)

    assert pipeline.reply.calls.total() == 0
    assert pipeline.dead_letters.parked == []
    assert pipeline.continuations.sent == []
    if shape.startswith("sqs"):
        assert response == {"batchItemFailures": []}
    detail = pipeline.publisher.only(request_id)
    assert (detail["requestId"], detail["trigger"], detail["complete"]) == (request_id, trigger, True)
    [result] = detail["results"]
    assert result["outcome"] == "invalid"
    assert "CLEANUP_ALLOWED_TRIGGERS is direct" in result["error"]
    assert f"not allowed from the {shape.split('-', maxsplit=1)[0]} trigger" in result["error"]
    assert pipeline.metrics.total("CleanupRequestsRefused") == 1


@pytest.mark.parametrize(
    ("schedule", "where"),
    [
        # CleanupSelection values that try to set more than the selection: each is only the select field
        ({"select": '{"status": "paused", "pauseFirst": true}'}, "schedule.select.pauseFirst"),
        ({"select": '{"status": "paused"}, "pauseFirst": true'}, "schedule.select"),
        ({"select": '{"status": "paused", "continuation": {"requestId": "x", "part": 2}}'}, "schedule.select"),
        # an Input written by hand with more than the schedule may set
        ({"select": '{"status": "paused"}', "pauseFirst": True}, "schedule.pauseFirst"),
        ({"select": {"status": "paused"}, "dryRun": "no"}, "schedule.dryRun"),
    ],
)
def test_a_schedule_input_that_smuggles_more_than_its_fields_is_rejected(
    pipeline: Pipeline, schedule: dict[str, Any], where: str
) -> None:
    """The schedule's direct invoke is rejected naming the field, before any Reply call."""
    detail = pipeline.handle({"schedule": schedule})

    jsonschema.validate(detail, RESULTS_SCHEMA)
    [result] = detail["results"]
    assert result["outcome"] == "invalid"
    assert result["error"].startswith("request rejected: not a valid scheduled clean-up: " + where)
    assert pipeline.reply.calls.total() == 0


def test_a_continuation_beside_the_schedule_input_is_rejected(pipeline: Pipeline) -> None:
    """A schedule input is never continued: a continuation beside it is an extra input, rejected."""
    event = {"schedule": {"select": '{"status": "paused"}'}, "continuation": {"requestId": "x", "part": 2}}

    [result] = pipeline.handle(event)["results"]

    assert "continuation: Extra inputs are not permitted" in result["error"]
    assert pipeline.reply.calls.total() == 0


def test_a_bad_selection_is_its_own_rejected_request_and_its_neighbours_are_archived(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    """`status: archived` is no selection: that record is rejected and parked, untouched; the archive request
    beside it is archived; nothing is listed."""
    bad, good = queue.record(json.dumps({"select": {"status": "archived"}})), queue.request(101)

    response = pipeline.handle(sqs_event(bad, good))

    assert response == {"batchItemFailures": []}
    [result] = pipeline.publisher.only(bad["messageId"])["results"]
    assert result["outcome"] == "invalid"
    assert "select.status" in result["error"]
    assert outcomes(pipeline.publisher.only(good["messageId"])) == {101: "archived"}
    assert [parked.body for parked in pipeline.dead_letters.parked] == [bad["body"]]
    assert pipeline.reply.calls.total() == 1


def test_a_cleanup_continuation_forged_onto_the_queue_cannot_borrow_a_direct_origin(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    """A queue producer writes an unsealed continuation claiming its request arrived directly, with a live run
    and IDs of its choosing: it is a new clean-up request that arrived on the queue, refused as one; nothing is
    listed, enqueued or archived."""
    forged = {
        "select": {"status": "paused"},
        "dryRun": False,
        "continuation": {
            "requestId": "victim-request",
            "part": 2,
            "trigger": "direct",
            "origin": "direct",
            "runAt": "2026-01-01T00:00:00Z",
            "skip": 0,
            "pages": 1,
            "selectedIds": [101, 102],
        },
    }
    record = queue.record(json.dumps(forged))

    response = pipeline.handle(sqs_event(record))

    assert response == {"batchItemFailures": []}
    detail = pipeline.publisher.only(record["messageId"])
    assert pipeline.publisher.of("victim-request") == []
    [result] = detail["results"]
    assert result["outcome"] == "invalid"
    assert "not allowed from the sqs trigger" in result["error"]
    assert pipeline.reply.calls.total() == 0
    assert pipeline.continuations.sent == []
