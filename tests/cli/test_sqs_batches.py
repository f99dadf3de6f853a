"""Packing IDs into messages and batches within SQS's limits, and retrying the entries SQS failed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from sequence_archiver.archive_request import parse_message_body
from sequence_archiver_cli.sqs_batches import (
    MAX_ENTRIES_PER_CALL,
    MAX_PAYLOAD_BYTES,
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

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:  # noqa: N803
        self.calls.append([entry["Id"] for entry in Entries])
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
