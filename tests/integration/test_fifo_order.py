"""FIFO sources keep their order, through the real handler: at the first record of a message group that must be
retried, that record and every later one of its group go back unprocessed (AWS's rule for FIFO event sources).
Other groups going on, a record waiting for the budget retried in place, and a poison head dead-lettered by the
function at its last receive are functional cases (tests/functional/test_fifo_groups.py,
test_fifo_and_direct.py); the real FIFO dead-letter queue is test_aws_event_shapes.py's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import (
    read_results_events,
)
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
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


def test_the_first_record_to_retry_stops_its_group_and_later_records_of_the_group_stay_unprocessed(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
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
