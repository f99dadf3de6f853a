"""A record that waits for the rate budget is carried on by a continuation: no receive spent, no ID done twice;
a real failure beside finished IDs rides along, counting the failure, and a record that only failed is retried
whole. (The budget's continuation finished by its next delivery is test_redeliveries.py's.)"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.functional.fakes import STANDARD_QUEUE_ARN, Pipeline, SqsQueue, failed_items, outcomes, sqs_event

POISON = 106  # Reply answers 503 for it every time


def unsealed(body: str) -> dict[str, Any]:
    """A continuation body without its MAC, after checking it carries one."""
    document: dict[str, Any] = json.loads(body)
    mac = document["continuation"].pop("mac")
    assert mac.startswith("v1:")
    return document


def test_a_record_waiting_for_the_budget_is_acknowledged_and_reports_its_finished_ids_in_order(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    """Part 1 holds the three IDs the budget allowed, in order, and defers the other two to one continuation;
    the metrics count one record and two IDs deferred, and three Reply calls."""
    pipeline.reply.budget = 3
    record = queue.request(101, 102, 103, 104, 105)
    request_id = record["messageId"]

    response = pipeline.handle(sqs_event(record))

    assert response == {"batchItemFailures": []}
    part_one = pipeline.publisher.only(request_id)
    assert (part_one["requestId"], part_one["continuation"], part_one["complete"]) == (request_id, 1, False)
    assert [result["sequenceId"] for result in part_one["results"]] == [101, 102, 103]
    assert part_one["deferredIds"] == [104, 105]
    [continuation] = pipeline.continuations.sent
    assert unsealed(continuation.body) == {
        "sequenceIds": [104, 105],
        "continuation": {"requestId": request_id, "part": 2},
    }
    assert pipeline.metrics.total("RecordsDeferred") == 1
    assert pipeline.metrics.total("SequencesDeferred") == 2
    assert pipeline.metrics.total("ReplyApiCalls") == 3


def test_a_real_failure_beside_finished_ids_is_carried_on_without_redoing_them(
    pipeline: Pipeline, queue: SqsQueue
) -> None:
    """106 fails for real, 107 and 108 are archived, 109 waits for the budget: the record is acknowledged and one
    continuation carries 106 and 109 on, counting the failure, so 107 and 108 are never archived again."""
    pipeline.reply.poison(POISON)
    pipeline.reply.budget = 3
    record = queue.request(POISON, 107, 108, 109)
    request_id = record["messageId"]

    response = pipeline.handle(sqs_event(record))

    assert response == {"batchItemFailures": []}
    detail = pipeline.publisher.only(request_id)
    assert (detail["continuation"], detail["deferredIds"]) == (1, [POISON, 109])
    assert outcomes(detail) == {107: "archived", 108: "archived"}
    [continuation] = pipeline.continuations.sent
    assert continuation.event_source_arn == STANDARD_QUEUE_ARN
    assert unsealed(continuation.body)["continuation"] == {"requestId": request_id, "part": 2, "failures": 1}
    assert pipeline.reply.archives == Counter({107: 1, 108: 1})


def test_a_record_that_only_failed_is_retried_whole_and_counts_a_receive(pipeline: Pipeline, queue: SqsQueue) -> None:
    """Nothing finished, nothing to keep: the record is asked back (its receive counts towards the redrive
    policy), its results say it is not complete, and no continuation is sent."""
    pipeline.reply.poison(POISON)
    pipeline.reply.budget = 3
    record = queue.request(POISON)

    response = pipeline.handle(sqs_event(record))

    assert failed_items(response) == [record["messageId"]]
    detail = pipeline.publisher.only(record["messageId"])
    assert "deferredIds" not in detail
    assert detail["complete"] is False
    assert pipeline.continuations.sent == []
