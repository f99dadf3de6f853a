"""Packing IDs into messages and batches within SQS's limits, and retrying the entries SQS failed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from sequence_archiver.core.archive_request import parse_message_body
from sequence_archiver.public import MAX_ENTRIES_PER_CALL, MAX_PAYLOAD_BYTES, deduplication_id, is_fifo_queue
from sequence_archiver_cli.sqs_batches import (
    BatchSender,
    plan_batches,
    plan_messages,
)

pytestmark = pytest.mark.usefixtures("no_network")


def test_ids_are_chunked_into_request_bodies_the_function_parses() -> None:
    messages = plan_messages(list(range(1, 251)), ids_per_message=100, pause_first=True)

    assert [len(m.sequence_ids) for m in messages] == [100, 100, 50]
    assert json.loads(messages[2].body) == {"sequenceIds": list(range(201, 251)), "pauseFirst": True}
    assert parse_message_body(messages[0].body).sequence_ids == tuple(range(1, 101))


def test_without_pause_first_the_body_is_a_plain_request() -> None:
    [message] = plan_messages([7, 8], ids_per_message=100)

    assert message.body == '{"sequenceIds":[7,8]}'


def test_a_body_over_the_size_limit_is_split_in_halves() -> None:
    messages = plan_messages(list(range(1_000_000, 1_000_100)), ids_per_message=100, max_message_bytes=300)

    assert all(m.size <= 300 for m in messages)
    assert [i for m in messages for i in m.sequence_ids] == list(range(1_000_000, 1_000_100))


def test_batches_hold_at_most_ten_entries_and_256_kib() -> None:
    messages = plan_messages(list(range(1, 2_501)), ids_per_message=100)

    batches = plan_batches(messages)

    assert [len(b) for b in batches] == [MAX_ENTRIES_PER_CALL, MAX_ENTRIES_PER_CALL, 5]
    assert all(sum(m.size for m in batch) <= MAX_PAYLOAD_BYTES for batch in batches)
    small = plan_batches(messages[1:5], max_batch_bytes=messages[1].size * 2)  # equal sizes: 101-200, 201-300...
    assert [len(b) for b in small] == [2, 2]


@pytest.mark.parametrize("ids_per_message", [0, 1001])
def test_ids_per_message_is_bounded_by_the_functions_request_limit(ids_per_message: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 1000"):
        plan_messages([1], ids_per_message=ids_per_message)


class FakeSqs:
    """send_message_batch answering from a script of responses (or exceptions)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []
        self.entries: list[list[dict[str, str]]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:  # noqa: N803
        self.calls.append([entry["Id"] for entry in Entries])
        self.entries.append(Entries)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(Entries) if callable(answer) else answer


def accept_all(entries: list[dict[str, str]]) -> dict[str, Any]:
    return {"Successful": [{"Id": e["Id"], "MessageId": "x"} for e in entries], "Failed": []}


def test_entries_sqs_failed_on_its_side_are_retried_with_backoff() -> None:
    batches = plan_batches(plan_messages(list(range(1, 31)), ids_per_message=10))
    first = {
        "Successful": [{"Id": "m0", "MessageId": "a"}, {"Id": "m2", "MessageId": "c"}],
        "Failed": [{"Id": "m1", "SenderFault": False, "Code": "InternalError", "Message": "try again"}],
    }
    sqs = FakeSqs(first, accept_all)
    sleeps: list[float] = []
    sender = BatchSender(sqs, "q", sleep=sleeps.append, jitter=lambda low, high: high)  # type: ignore[arg-type]

    report = sender.send(batches)

    assert sqs.calls == [["m0", "m1", "m2"], ["m1"]]
    assert report.sent_ids == 30
    assert report.failed == []
    assert report.retried_entries == 1
    assert sleeps == [0.5]


def test_sender_faults_are_not_retried_and_attempts_are_bounded() -> None:
    refuse = {"Successful": [], "Failed": [{"Id": "m0", "SenderFault": True, "Code": "InvalidMessageContents"}]}
    sender = BatchSender(FakeSqs(refuse), "q", sleep=lambda _: None)  # type: ignore[arg-type]

    refused = sender.send(plan_batches(plan_messages([1], ids_per_message=1)))

    assert [(f.message.sequence_ids, f.reason) for f in refused.failed] == [((1,), "InvalidMessageContents")]
    flaky: dict[str, Any] = {
        "Successful": [{"Id": "m0", "MessageId": "a"}],
        "Failed": [{"Id": "m1", "SenderFault": False, "Code": "InternalError"}],
    }
    still_flaky = {"Successful": [], "Failed": [{"Id": "m1", "SenderFault": False, "Code": "InternalError"}]}
    sender = BatchSender(FakeSqs(flaky, still_flaky), "q", max_attempts=2, sleep=lambda _: None)  # type: ignore[arg-type]

    bounded = sender.send(plan_batches(plan_messages([1, 2], ids_per_message=1)))

    assert bounded.sent_ids == 1
    assert [(f.message.sequence_ids, f.reason) for f in bounded.failed] == [((2,), "InternalError")]


def test_an_unreachable_queue_stops_sending_and_reports_what_was_not_sent() -> None:
    batches = plan_batches(plan_messages(list(range(1, 16)), ids_per_message=1))
    sqs = FakeSqs(accept_all, EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"))
    sender = BatchSender(sqs, "q")  # type: ignore[arg-type]

    report = sender.send(batches)

    assert report.sent_ids == 10
    assert [m.sequence_ids[0] for m in report.unsent] == list(range(11, 16))
    assert report.aborted == 'cannot reach SQS: Could not connect to the endpoint URL: "http://127.0.0.1:9/"'
    assert report.aborted_call == 2  # the second SendMessageBatch call could not be made


def test_the_messages_not_sent_are_those_sqs_failed_and_those_never_sent() -> None:
    refuse_first = {"Successful": [{"Id": "m1", "MessageId": "b"}], "Failed": [{"Id": "m0", "SenderFault": True}]}
    batches = plan_batches(plan_messages(list(range(1, 13)), ids_per_message=1))
    sqs = FakeSqs(refuse_first, EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"))
    batches = [batches[0][:2], batches[0][2:], batches[1]]

    report = BatchSender(sqs, "q", sleep=lambda _: None).send(batches)  # type: ignore[arg-type]

    assert [m.sequence_ids[0] for m in report.sent] == [2]
    assert [m.sequence_ids[0] for m in report.not_sent] == [1, *range(3, 13)]
    assert report.aborted_call == 2


# ------------------------------------------------------------------ FIFO queues


@pytest.mark.parametrize(
    ("queue_url", "fifo"),
    [
        ("https://sqs.us-east-1.amazonaws.com/123456789012/requests.fifo", True),
        ("http://127.0.0.1:5000/123456789012/rsa-ArchiveRequestsQueue.fifo", True),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/requests.fifo/", True),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/requests", False),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/fifo-requests", False),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/requests.fifo.old", False),
    ],
)
def test_a_fifo_queue_is_told_by_its_name(queue_url: str, fifo: bool) -> None:
    assert is_fifo_queue(queue_url) is fifo


def test_fifo_entries_carry_the_group_and_a_deduplication_id_from_group_and_body() -> None:
    messages = plan_messages([1, 2, 3], ids_per_message=1)
    sqs = FakeSqs(accept_all)

    BatchSender(sqs, "q.fifo", message_group_id="campaign-7").send(plan_batches(messages))  # type: ignore[arg-type]

    [entries] = sqs.entries
    assert [entry["MessageGroupId"] for entry in entries] == ["campaign-7"] * 3
    assert [entry["MessageDeduplicationId"] for entry in entries] == [
        deduplication_id("campaign-7", message.body) for message in messages
    ]
    assert [entry["MessageBody"] for entry in entries] == [message.body for message in messages]  # in order


def test_a_deduplication_id_is_stable_per_group_and_body_and_fits_sqs() -> None:
    body = '{"sequenceIds":[101]}'

    same = deduplication_id("g", body)

    assert same == deduplication_id("g", body)
    assert same != deduplication_id("h", body)
    assert same != deduplication_id("g", '{"sequenceIds":[102]}')
    assert len(same) <= 128
    assert same.isascii()
    assert same.isalnum()


def test_a_retried_fifo_entry_keeps_its_deduplication_id() -> None:
    # If SQS had in fact queued the entry it reported failed, the retry is deduplicated, not queued twice.
    failed_once = {"Successful": [], "Failed": [{"Id": "m0", "SenderFault": False, "Code": "InternalError"}]}
    sqs = FakeSqs(failed_once, accept_all)
    sender = BatchSender(sqs, "q.fifo", message_group_id="g", sleep=lambda _: None)  # type: ignore[arg-type]

    report = sender.send(plan_batches(plan_messages([1], ids_per_message=1)))

    assert report.sent_ids == 1
    first, retry = (entries[0]["MessageDeduplicationId"] for entries in sqs.entries)
    assert first == retry


def test_a_standard_queue_gets_neither_group_nor_deduplication_id() -> None:
    sqs = FakeSqs(accept_all)

    BatchSender(sqs, "q").send(plan_batches(plan_messages([1], ids_per_message=1)))  # type: ignore[arg-type]

    assert set(sqs.entries[0][0]) == {"Id", "MessageBody"}


@pytest.mark.parametrize("group", ["", "with space", "é", "x" * 129])
def test_a_message_group_id_sqs_would_refuse_is_refused(group: str) -> None:
    with pytest.raises(ValueError, match="message group ID"):
        BatchSender(FakeSqs(), "q.fifo", message_group_id=group)  # type: ignore[arg-type]
