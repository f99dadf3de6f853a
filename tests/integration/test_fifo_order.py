"""FIFO sources keep their order: at the first record that must be retried the batch stops, and that record and
every later one go back unprocessed (AWS's rule for FIFO event sources)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import read_results_events
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

FIFO_ARN = "arn:aws:sqs:us-east-1:123456789012:archive-requests.fifo"


def fifo_record(message_id: str, sequence_ids: list[int], group: str = "campaign-1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "receipt-" + message_id,
        "body": json.dumps({"sequenceIds": sequence_ids}),
        "attributes": {"MessageGroupId": group, "MessageDeduplicationId": message_id, "SequenceNumber": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": FIFO_ARN,
        "awsRegion": "us-east-1",
    }


def test_the_first_record_to_retry_stops_the_batch_and_later_records_stay_unprocessed(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], ModuleType],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=102))
    event = {"Records": [fifo_record("m1", [101]), fifo_record("m2", [102]), fifo_record("m3", [103])]}

    response = load_handler().lambda_handler(event, lambda_context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}
    archived = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
    assert {101, 102, 103} & archived == {101}  # 103 did not overtake 102
    details = details_by_request(read_results_events(aws_stack, expected=2))
    assert outcomes(details["m1"]) == {101: "archived"}
    assert outcomes(details["m2"]) == {102: "failed"}
    assert "m3" not in details  # unprocessed: it is reported when it is processed


def test_a_fifo_record_waiting_for_the_budget_is_retried_in_place_not_continued(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], ModuleType],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_HOUR", "1")
    event = {"Records": [fifo_record("m1", [104, 105]), fifo_record("m2", [106])]}

    # Reply's hour is a real one here: any timeout is shorter, so the record waits; 30 s keeps a loaded machine's
    # cold start (its clients built within the invocation) from using up the time before the first call.
    response = load_handler().lambda_handler(event, lambda_context(timeout_seconds=30.0))

    # A continuation would join the back of the group: the record is retried in place, and m2 waits behind it.
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert reply_simulator.api_calls == 1
