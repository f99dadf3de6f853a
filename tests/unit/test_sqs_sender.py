"""The one SQS send policy: entries, FIFO rules, batches, and failed entries sent again within the deadline."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from sequence_archiver.aws.sqs import (
    MAX_ENTRIES_PER_CALL,
    OutgoingMessage,
    SqsSender,
    batch_entry,
    batches,
    deduplication_id,
    is_fifo_queue,
)
from sequence_archiver.core.deadline import Deadline

STANDARD = "https://sqs.us-east-1.amazonaws.com/123456789012/requests"
FIFO = "https://sqs.us-east-1.amazonaws.com/123456789012/requests.fifo"


class FakeSqs:
    """SendMessageBatch that fails the entries named in `fail_first` on their first call only."""

    def __init__(self, fail_first: set[str] | None = None, *, broken: bool = False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self._fail_first = set(fail_first or ())
        self._broken = broken

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        if self._broken:
            raise ConnectionError("no route to SQS")
        successful, failed = [], []
        for entry in Entries:
            if entry["MessageBody"] in self._fail_first:
                self._fail_first.discard(entry["MessageBody"])
                failed.append({"Id": entry["Id"], "Code": "InternalError", "SenderFault": False})
            else:
                successful.append({"Id": entry["Id"], "MessageId": f"sqs-{entry['MessageBody']}"})
        return {"Successful": successful, "Failed": failed}


def far_deadline() -> Deadline:
    return Deadline(expires_at=time.monotonic() + 60.0)


def test_a_standard_entry_has_its_delay_in_sqs_range_and_no_fifo_fields() -> None:
    assert batch_entry("0", OutgoingMessage("k", "b", delay_seconds=12.2), fifo=False) == {
        "Id": "0",
        "MessageBody": "b",
        "DelaySeconds": 13,
    }
    assert batch_entry("0", OutgoingMessage("k", "b", delay_seconds=5000), fifo=False)["DelaySeconds"] == 900
    assert "DelaySeconds" not in batch_entry("0", OutgoingMessage("k", "b", delay_seconds=math.nan), fifo=False)
    assert "DelaySeconds" not in batch_entry("0", OutgoingMessage("k", "b", delay_seconds=-3), fifo=False)


def test_a_fifo_entry_has_a_group_and_a_deduplication_id_and_no_delay() -> None:
    entry = batch_entry("0", OutgoingMessage("k", "body", delay_seconds=30, message_group_id="g"), fifo=True)

    assert entry == {
        "Id": "0",
        "MessageBody": "body",
        "MessageGroupId": "g",
        "MessageDeduplicationId": deduplication_id("g", "body"),
    }
    parked = batch_entry("0", OutgoingMessage("k", "body", deduplication_id="m" * 200), fifo=True)
    assert (parked["MessageGroupId"], len(parked["MessageDeduplicationId"])) == ("sequence-archiver", 128)


def test_attributes_are_string_message_attributes() -> None:
    entry = batch_entry("0", OutgoingMessage("k", "b", attributes={"RejectionReason": "bad"}), fifo=False)

    assert entry["MessageAttributes"] == {"RejectionReason": {"DataType": "String", "StringValue": "bad"}}


@pytest.mark.parametrize(
    ("queue", "fifo"), [(FIFO, True), (STANDARD, False), ("arn:aws:sqs:us-east-1:123456789012:q.fifo", True)]
)
def test_fifo_queues_are_told_by_their_name(queue: str, fifo: bool) -> None:
    assert is_fifo_queue(queue) is fifo


def test_batches_hold_at_most_ten_entries_and_256_kib() -> None:
    small = [OutgoingMessage(str(index), "x") for index in range(25)]
    large = [OutgoingMessage(str(index), "x" * 100_000) for index in range(5)]

    assert [len(batch) for batch in batches(small)] == [MAX_ENTRIES_PER_CALL, MAX_ENTRIES_PER_CALL, 5]
    assert [len(batch) for batch in batches(large)] == [2, 2, 1]


def test_entries_sqs_failed_are_sent_again_and_every_message_id_is_reported_by_key() -> None:
    sqs = FakeSqs(fail_first={"b"})
    pauses: list[float] = []
    sender = SqsSender(sqs_client=lambda: sqs, sleep=pauses.append)  # type: ignore[arg-type,return-value]
    messages = [OutgoingMessage("1", "a"), OutgoingMessage("2", "b"), OutgoingMessage("3", "c")]

    taken = sender.send(STANDARD, messages, far_deadline())

    assert taken == {"1": "sqs-a", "2": "sqs-b", "3": "sqs-c"}
    assert [[entry["MessageBody"] for entry in call] for call in sqs.calls] == [["a", "b", "c"], ["b"]]
    assert len(pauses) == 1


def test_a_queue_that_cannot_be_reached_takes_nothing_after_three_attempts() -> None:
    sqs = FakeSqs(broken=True)
    sender = SqsSender(sqs_client=lambda: sqs, sleep=lambda _: None)  # type: ignore[arg-type,return-value]

    assert sender.send(STANDARD, [OutgoingMessage("1", "a")], far_deadline()) == {}
    assert len(sqs.calls) == 3


def test_no_attempt_starts_once_the_deadline_has_passed() -> None:
    sqs = FakeSqs(fail_first={"a"})
    sender = SqsSender(sqs_client=lambda: sqs, sleep=lambda _: None)  # type: ignore[arg-type,return-value]

    assert sender.send(STANDARD, [OutgoingMessage("1", "a")], Deadline(expires_at=time.monotonic() - 1.0)) == {}
    assert len(sqs.calls) <= 1
