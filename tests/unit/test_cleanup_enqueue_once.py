"""A live clean-up enqueues each selected ID once: what a delivery sent is recorded, and its redelivery sends
only the rest, lists nothing and reports the run the first delivery made."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from sequence_archiver.archiving.cleanup import IDS_PER_MESSAGE, CleanupPolicies
from sequence_archiver.archiving.selection import parse_cleanup_request
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.request_report import Trigger
from sequence_archiver.core.results_contract import PlanOutcome
from sequence_archiver.reply.listing import SequenceItem

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

FIRST_RUN = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SELECTED = list(range(1_000, 1_250))  # 250 IDs: 3 archive messages
LIVE = {"select": {"status": "paused"}, "dryRun": False}


class Pages:
    """Every listed sequence paused, on one page; counts the list calls."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.calls = 0

    def get_page(self, params: Mapping[str, str], deadline: Deadline) -> tuple[list[SequenceItem], bool]:
        self.calls += 1
        return [SequenceItem(id=id_, status="paused", is_archived=False) for id_ in self.ids], False


class Queue:
    """The archive queue: takes bodies, except those whose index (among all bodies sent so far) is refused."""

    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/requests"

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.refuse_next: set[int] = set()  # positions in the next send call to answer as not sent

    def send(self, bodies: Sequence[str], deadline: Deadline, *, delay_seconds: float = 0.0) -> list[str | None]:
        answer: list[str | None] = []
        for position, body in enumerate(bodies):
            if position in self.refuse_next:
                answer.append(None)
                continue
            self.sent.append(body)
            answer.append(f"message-{len(self.sent)}")
        self.refuse_next = set()
        return answer


class Records:
    """The idempotency table's records, in memory; `broken` makes every call fail as the table would."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.broken = False

    def recall(self, key: str, deadline: Deadline | None = None) -> dict[str, Any] | None:
        return None if self.broken else self.states.get(key)

    def remember(self, key: str, state: dict[str, Any], deadline: Deadline | None = None) -> bool:
        if self.broken:
            return False
        self.states[key] = state
        return True


class Clock:
    def __init__(self) -> None:
        self.now = FIRST_RUN

    def __call__(self) -> datetime:
        return self.now


def deliver(
    policies: CleanupPolicies, request: dict[str, Any] = LIVE, *, delivery_id: str = "message-of-the-request"
) -> Any:
    """One delivery of the request: start, list, settle (as the service does)."""
    deadline = Deadline(expires_at=time.monotonic() + 60)
    run = policies.start(
        parse_cleanup_request(request), delivery_id=delivery_id, trigger=Trigger.SQS, recall_within=deadline
    )
    policies.list_pages(run, deadline)
    return policies.settle(run, deadline)


@pytest.fixture
def parts() -> tuple[Pages, Queue, Records, Clock, CleanupPolicies]:
    pages, queue, records, clock = Pages(SELECTED), Queue(), Records(), Clock()
    policies = CleanupPolicies(
        pages=pages,  # type: ignore[arg-type]
        archive_queue=queue,  # type: ignore[arg-type]
        seal=None,  # type: ignore[arg-type]  # a finished listing seals no continuation
        records=records,
        now=clock,
    )
    return pages, queue, records, clock, policies


def enqueued_ids(queue: Queue) -> list[int]:
    return [id_ for body in queue.sent for id_ in json.loads(body)["sequenceIds"]]


def test_a_redelivery_after_every_message_was_sent_sends_nothing_and_reports_the_first_run(
    parts: tuple[Pages, Queue, Records, Clock, CleanupPolicies],
) -> None:
    pages, queue, _, clock, policies = parts
    first = deliver(policies)  # its plan is then not published: the record is redelivered
    clock.now = FIRST_RUN + timedelta(minutes=5)
    pages.ids = [*SELECTED, 5_000]  # a sequence paused since: the first run did not select it

    again = deliver(policies)

    assert enqueued_ids(queue) == SELECTED  # each ID once
    assert pages.calls == 1  # the redelivery listed nothing
    assert again.outcome is PlanOutcome.ENQUEUED
    assert again.detail() == first.detail()  # the same plan: selection, run time, message IDs
    assert (first.enqueued_now, again.enqueued_now) == (len(SELECTED), 0)


def test_messages_not_sent_are_sent_by_the_redelivery_and_only_those(
    parts: tuple[Pages, Queue, Records, Clock, CleanupPolicies],
) -> None:
    _, queue, _, _, policies = parts
    queue.refuse_next = {1}  # the second of three messages is not taken

    assert deliver(policies) is None  # retried: not all enqueued

    plan = deliver(policies)

    assert sorted(enqueued_ids(queue)) == SELECTED
    assert plan.outcome is PlanOutcome.ENQUEUED
    assert plan.enqueued_now == IDS_PER_MESSAGE  # the one message the first delivery could not send
    assert plan.detail()["enqueued"] == {
        "messages": 3,
        "ids": len(SELECTED),
        "messageIds": ["message-1", "message-3", "message-2"],  # per archive message, in the selection's order
    }


def test_without_a_readable_table_a_redelivery_enqueues_again_at_least_once(
    parts: tuple[Pages, Queue, Records, Clock, CleanupPolicies],
) -> None:
    pages, queue, records, _, policies = parts
    records.broken = True

    deliver(policies)
    deliver(policies)

    assert enqueued_ids(queue) == SELECTED + SELECTED  # the documented bound: once per delivery
    assert pages.calls == 2


def test_another_request_or_another_part_is_not_taken_for_this_one(
    parts: tuple[Pages, Queue, Records, Clock, CleanupPolicies],
) -> None:
    pages, queue, _, _, policies = parts
    deliver(policies, delivery_id="first-request")

    deliver(policies, delivery_id="second-request")  # someone asked again: a new request

    assert enqueued_ids(queue) == SELECTED + SELECTED
    assert pages.calls == 2


def test_a_dry_run_records_and_recalls_nothing(parts: tuple[Pages, Queue, Records, Clock, CleanupPolicies]) -> None:
    pages, queue, records, _, policies = parts

    deliver(policies, {**LIVE, "dryRun": True})
    deliver(policies, {**LIVE, "dryRun": True})

    assert (records.states, queue.sent, pages.calls) == ({}, [], 2)


@pytest.mark.parametrize(
    "state",
    [
        {"selectedIds": [1, 2], "pages": 1, "skip": 2, "runAt": "2026-12-01T03:00:00Z", "messageIds": []},
        {"selectedIds": ["1"], "pages": 1, "skip": 1, "runAt": "2026-12-01T03:00:00Z", "messageIds": [None]},
        {"selectedIds": [1], "pages": 1, "skip": 1, "runAt": "not a time", "messageIds": [None]},
        {"unexpected": True},
    ],
)
def test_a_record_this_function_did_not_write_is_ignored(
    parts: tuple[Pages, Queue, Records, Clock, CleanupPolicies], state: dict[str, Any]
) -> None:
    pages, queue, records, _, policies = parts
    records.states["cleanup-enqueued#message-of-the-request#1"] = state

    plan = deliver(policies)

    assert plan.outcome is PlanOutcome.ENQUEUED
    assert (pages.calls, enqueued_ids(queue)) == (1, SELECTED)
