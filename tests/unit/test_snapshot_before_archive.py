"""Snapshots before archiving (issue 22): no snapshot, no archive; every stored snapshot is named in its result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

from sequence_archiver.archiving.archiver import SNAPSHOT_BULK_CHUNK, ArchiveMode, SequenceArchiver
from sequence_archiver.archiving.snapshots import SequenceSnapshots
from sequence_archiver.core.archive_request import parse_archive_request
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import (
    DeadlineExceededError,
    ReplyServerError,
    SnapshotStoreError,
)
from sequence_archiver.core.outcomes import Outcome, SequenceSummary
from sequence_archiver.core.reply_answers import BulkArchiveResponse, Problem, ReplyResponse
from sequence_archiver.reply.client import ListAnswer
from sequence_archiver.reply.contacts import MAX_LISTED_CONTACTS, ContactsPage

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tests.unit.conftest import FakeClock

KEY = "sk-test-0123456789"
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SNAPSHOT_SCHEMA = json.loads((SCHEMAS / "sequence-snapshot.json").read_text())
RESULTS_SCHEMA = json.loads((SCHEMAS / "sequence-archive-results.json").read_text())
ARCHIVED = ReplyResponse(200, sequence=SequenceSummary("S", "paused", True))


def contact(contact_id: int, status: str = "finished") -> dict[str, Any]:
    return {
        "contactId": contact_id,
        "statusInSequence": status,
        "currentStep": 2,
        "addingDate": "2026-01-02T03:04:05Z",
        "email": f"person{contact_id}@example.com",
    }


class RecordingReply:
    """Reply as the archiver and the snapshots see it: every call in order, in one list."""

    def __init__(self, contacts: Mapping[int, list[dict[str, Any]]]) -> None:
        self.contacts = dict(contacts)
        self.calls: list[tuple[str, Any]] = []
        self.describe_answers: dict[int, ListAnswer[dict[str, Any]] | Exception] = {}
        self.contacts_errors: dict[int, Exception] = {}
        self.raw_pages: dict[int, bytes] = {}  # a page body to parse instead of the contacts

    def describe_sequence(
        self, sequence_id: int, deadline: Deadline, parse_document: Callable[[bytes, str], dict[str, Any]]
    ) -> ListAnswer[dict[str, Any]]:
        self.calls.append(("describe", sequence_id))
        answer = self.describe_answers.get(sequence_id)
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
        body = json.dumps({"id": sequence_id, "name": f"S{sequence_id}", "status": "paused", "ownerUserId": 7})
        return ListAnswer(200, page=parse_document(body.encode(), KEY))

    def list_sequence_contacts(
        self,
        sequence_id: int,
        query: Mapping[str, str],
        deadline: Deadline,
        parse_page: Callable[[bytes, str], ContactsPage],
    ) -> ListAnswer[ContactsPage]:
        top, skip = int(query["top"]), int(query["skip"])
        self.calls.append(("contacts", (sequence_id, skip)))
        if sequence_id in self.contacts_errors:
            raise self.contacts_errors[sequence_id]
        if sequence_id in self.raw_pages:
            return ListAnswer(200, page=parse_page(self.raw_pages[sequence_id], KEY))
        if sequence_id not in self.contacts:
            return ListAnswer(404, problem=Problem(code="sequenceContact.sequenceNotFound"))
        items = self.contacts[sequence_id][skip : skip + top]
        more = skip + top < len(self.contacts[sequence_id])
        return ListAnswer(200, page=parse_page(json.dumps({"items": items, "hasMore": more}).encode(), KEY))

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.calls.append(("archive", sequence_id))
        self.contacts[sequence_id] = []  # as Reply says: archiving removes every contact
        return ARCHIVED

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        self.calls.append(("bulk", tuple(sequence_ids)))
        return BulkArchiveResponse(200, failures={})

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        raise AssertionError("not used")

    def release_unused_budget(self, deadline: Deadline) -> None:
        """No shared budget here."""


class MemoryStore:
    def __init__(self, error: Exception | None = None) -> None:
        self.objects: dict[str, Mapping[str, Any]] = {}
        self.error = error
        self.attempts = 0

    def store(self, key: str, document: Mapping[str, Any], deadline: Deadline) -> str:
        self.attempts += 1
        if self.error is not None:
            raise self.error
        self.objects[key] = json.loads(json.dumps(document))
        return f"s3://snapshots-bucket/{key}"


def key_of(*, workspace: str | None, sequence_id: int, taken_at: datetime, request_id: str) -> str:
    return f"snapshots/{workspace or 'default'}/{sequence_id}/{taken_at:%Y%m%dT%H%M%S}-{request_id}.json.gz"


def archiver(
    reply: RecordingReply, store: MemoryStore, *, required: bool = True, mode: ArchiveMode = ArchiveMode.SINGLE
) -> SequenceArchiver:
    snapshots = SequenceSnapshots(
        reply, store, key_of=key_of, required=required, clock=lambda: datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    )
    return SequenceArchiver(reply, mode=mode, snapshots=snapshots)


def test_1500_contacts_are_listed_in_two_pages_before_the_archive_call_and_the_result_names_the_object(
    clock: FakeClock,
) -> None:
    reply = RecordingReply({42: [contact(i, "active" if i % 3 else "finished") for i in range(1, 1501)]})
    store = MemoryStore()

    [result] = archiver(reply, store).archive_all(
        [parse_archive_request({"sequenceIds": [42]})], Deadline(clock.now + 60, clock), request_ids=["req-1"]
    )[0]

    assert reply.calls == [("describe", 42), ("contacts", (42, 0)), ("contacts", (42, 1000)), ("archive", 42)]
    assert result.outcome is Outcome.ARCHIVED
    [(key, document)] = store.objects.items()
    assert result.snapshot == f"s3://snapshots-bucket/{key}"
    assert result.to_json()["snapshot"] == result.snapshot
    assert document["contactCount"] == 1500
    assert [item["contactId"] for item in document["contacts"]] == list(range(1, 1501))
    assert document["contacts"][0] == contact(1, "active")
    assert document["sequenceId"] == 42
    assert document["requestIds"] == ["req-1"]
    assert document["sequence"]["name"] == "S42"
    assert document["takenAt"] == "2026-12-07T12:00:00Z"
    jsonschema.validate(document, SNAPSHOT_SCHEMA)
    jsonschema.validate(result.to_json(), {**RESULTS_SCHEMA["$defs"]["result"], "$defs": RESULTS_SCHEMA["$defs"]})


def test_a_store_that_fails_archives_nothing_and_says_why(clock: FakeClock) -> None:
    reply = RecordingReply({1: [contact(1)], 2: [contact(2)], 3: []})
    store = MemoryStore(SnapshotStoreError("snapshot bucket snapshots-bucket: NoSuchBucket"))

    results = archiver(reply, store).archive(
        parse_archive_request({"sequenceIds": [1, 2, 3]}), Deadline(clock.now + 60, clock)
    )

    assert not [call for call in reply.calls if call[0] in {"archive", "bulk"}]
    assert [r.outcome for r in results] == [Outcome.FAILED] * 3
    assert all("NoSuchBucket" in (r.error or "") for r in results)
    assert store.attempts == 1  # the store's failure stops the request: no listing is spent on the others
    assert all(r.snapshot is None for r in results)


def test_a_listing_that_fails_leaves_that_id_unarchived_and_the_others_go_on(clock: FakeClock) -> None:
    reply = RecordingReply({1: [contact(1)], 2: [contact(2)]})
    reply.contacts_errors[1] = ReplyServerError("Reply answered 503", http_status=503)

    results = archiver(reply, MemoryStore()).archive(
        parse_archive_request({"sequenceIds": [1, 2]}), Deadline(clock.now + 60, clock)
    )

    assert ("archive", 1) not in reply.calls
    assert results[0].outcome is Outcome.FAILED
    assert results[0].error == "not archived, no snapshot: Reply answered 503"
    assert results[1].outcome is Outcome.ARCHIVED
    assert results[1].snapshot is not None


def test_a_listing_that_does_not_add_up_is_no_snapshot(clock: FakeClock) -> None:
    reply = RecordingReply({1: []})
    reply.raw_pages[1] = b'{"items": [], "hasMore": true}'

    [result] = archiver(reply, MemoryStore()).archive(
        parse_archive_request({"sequenceIds": [1]}), Deadline(clock.now + 60, clock)
    )

    assert result.outcome is Outcome.FAILED
    assert "listed none" in (result.error or "")
    assert ("archive", 1) not in reply.calls


def test_a_contact_without_an_id_is_a_malformed_page_not_a_shorter_snapshot(clock: FakeClock) -> None:
    reply = RecordingReply({1: []})
    reply.raw_pages[1] = b'{"items": [{"statusInSequence": "active"}], "hasMore": false}'

    [result] = archiver(reply, MemoryStore()).archive(
        parse_archive_request({"sequenceIds": [1]}), Deadline(clock.now + 60, clock)
    )

    assert result.outcome is Outcome.FAILED
    assert ("archive", 1) not in reply.calls


def test_reply_saying_not_found_is_the_ids_answer_without_an_archive_call(clock: FakeClock) -> None:
    reply = RecordingReply({})
    reply.describe_answers[5] = ListAnswer(404, problem=Problem(code="sequence.notFound"))

    [result] = archiver(reply, MemoryStore()).archive(
        parse_archive_request({"sequenceIds": [5]}), Deadline(clock.now + 60, clock)
    )

    assert result.outcome is Outcome.NOT_FOUND
    assert (result.error or "").startswith("before archiving, reading the sequence:")
    assert reply.calls == [("describe", 5)]


def test_best_effort_archives_without_a_snapshot_and_says_so(clock: FakeClock) -> None:
    reply = RecordingReply({1: [contact(1)]})
    store = MemoryStore(SnapshotStoreError("snapshot bucket b: AccessDenied"))

    [result] = archiver(reply, store, required=False).archive(
        parse_archive_request({"sequenceIds": [1]}), Deadline(clock.now + 60, clock)
    )

    assert result.outcome is Outcome.ARCHIVED
    assert result.snapshot is None
    assert result.to_json()["snapshotError"] == "snapshot bucket b: AccessDenied"


def test_bulk_chunks_hold_only_ids_with_a_snapshot(clock: FakeClock) -> None:
    ids = list(range(1, 2 * SNAPSHOT_BULK_CHUNK + 3))
    reply = RecordingReply({i: [contact(i)] for i in ids if i != 4})  # 4: Reply does not find it
    reply.describe_answers[4] = ListAnswer(404, problem=Problem(code="sequence.notFound"))

    results = archiver(reply, MemoryStore(), mode=ArchiveMode.BULK).archive(
        parse_archive_request({"sequenceIds": ids}), Deadline(clock.now + 60, clock)
    )

    bulk_calls = [call[1] for call in reply.calls if call[0] == "bulk"]
    assert [len(call) for call in bulk_calls] == [SNAPSHOT_BULK_CHUNK - 1, SNAPSHOT_BULK_CHUNK, 2]
    assert 4 not in {i for call in bulk_calls for i in call}
    first_bulk = reply.calls.index(("bulk", bulk_calls[0]))
    assert {call[1] for call in reply.calls[:first_bulk] if call[0] == "describe"} == set(
        range(1, SNAPSHOT_BULK_CHUNK + 1)
    )
    by_id = {r.sequence_id: r for r in results}
    assert by_id[4].outcome is Outcome.NOT_FOUND
    assert all(by_id[i].snapshot for i in ids if i != 4)


def test_time_running_out_during_snapshots_archives_nothing_unrecorded(clock: FakeClock) -> None:
    reply = RecordingReply({1: [contact(1)], 2: [contact(2)], 3: [contact(3)]})
    reply.describe_answers[2] = DeadlineExceededError("not enough time left")

    results = archiver(reply, MemoryStore()).archive(
        parse_archive_request({"sequenceIds": [1, 2, 3]}), Deadline(clock.now + 60, clock)
    )

    assert [r.outcome for r in results] == [Outcome.ARCHIVED, Outcome.FAILED, Outcome.FAILED]
    assert ("archive", 2) not in reply.calls
    assert ("archive", 3) not in reply.calls
    assert results[2].error == "not attempted: not enough time left"


def test_the_api_key_echoed_in_a_contact_never_reaches_the_snapshot(clock: FakeClock) -> None:
    reply = RecordingReply({1: [{**contact(1), "title": f"key {KEY}"}]})
    store = MemoryStore()

    archiver(reply, store).archive(parse_archive_request({"sequenceIds": [1]}), Deadline(clock.now + 60, clock))

    [document] = store.objects.values()
    assert KEY not in json.dumps(document)
    assert document["contacts"][0]["title"] == "key [redacted]"


def test_the_listing_stops_past_its_bound() -> None:
    assert MAX_LISTED_CONTACTS >= 100_000  # a sequence that large is refused, never kept half listed


@pytest.mark.parametrize("required", [True, False])
def test_without_snapshots_nothing_changes(clock: FakeClock, required: bool) -> None:
    reply = RecordingReply({1: [contact(1)]})
    [result] = SequenceArchiver(reply).archive(
        parse_archive_request({"sequenceIds": [1]}), Deadline(clock.now + 60, clock)
    )
    assert reply.calls == [("archive", 1)]
    assert "snapshot" not in result.to_json()
