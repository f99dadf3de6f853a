"""Snapshots before archiving: who was in a sequence, recorded before Reply removes them (issue 22).

Reply's spec: archiving "removes every contact currently in it", and unarchiving does not put them back. So
before an archive call, the sequence (GET /v3/sequences/{id}) and every contact
(GET /v3/sequences/{id}/contacts, 1,000 a page) are read and stored as one object (schemas/sequence-snapshot.json).
Each of those calls is a Reply call like the archive: it waits for the same rate budget, is bounded by the same
deadline and acts as the same user (a master key's owner).

Under the `required` policy an ID whose snapshot cannot be taken is not archived: its result is `failed` (retried
like any failure), or the answer Reply gave about the sequence (`not_found`, `forbidden`). Under `best-effort`
the archive goes ahead and the result says what is missing (`snapshotError`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sequence_archiver.archiving.classification import REQUEST_WIDE_ERRORS, classify_response, failed_result
from sequence_archiver.core.exceptions import (
    ReplyRefusedError,
    RetryableReplyError,
    SequenceArchiverError,
    SnapshotError,
    SnapshotStoreError,
)
from sequence_archiver.core.outcomes import SequenceResult, Via
from sequence_archiver.core.reply_answers import ReplyResponse
from sequence_archiver.reply.contacts import (
    CONTACTS_PAGE_SIZE,
    ContactsListingApi,
    list_contacts,
    parse_sequence_document,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.core.reply_answers import Problem
    from sequence_archiver.reply.client import ListAnswer

logger = logging.getLogger(__name__)

SNAPSHOT_SCHEMA_VERSION = 1


class SnapshotPolicy(StrEnum):
    """What to do when a sequence's snapshot cannot be taken (SNAPSHOT_POLICY)."""

    REQUIRED = "required"  # no snapshot, no archive: the ID is `failed` (retried) and says why
    BEST_EFFORT = "best-effort"  # archive anyway; the result's `snapshotError` says what is missing
    OFF = "off"  # take none (an archive leaves no record of who was in the sequence)


_PREFIX = "not archived, no snapshot: "


class SnapshotReplyApi(ContactsListingApi, Protocol):
    """The Reply calls a snapshot makes."""

    def describe_sequence(
        self, sequence_id: int, deadline: Deadline, parse_document: Callable[[bytes, str], dict[str, Any]]
    ) -> ListAnswer[dict[str, Any]]: ...


class SnapshotStore(Protocol):
    """Where snapshot objects go (S3, or a local folder for the CLI); `store` returns the object's URI and raises
    SnapshotStoreError when it cannot."""

    def store(self, key: str, document: Mapping[str, Any], deadline: Deadline) -> str: ...


@dataclass(frozen=True, slots=True)
class SnapshotMissing:
    """Best effort: the archive went ahead without a snapshot, for this reason."""

    reason: str


# What taking a snapshot of one ID came to: the object's URI, a result that replaces the archive (the ID is
# not archived), or, best effort, why there is none.
SnapshotTaken = str | SequenceResult | SnapshotMissing


class SnapshotKeys(Protocol):
    """The object key of one snapshot."""

    def __call__(self, *, workspace: str | None, sequence_id: int, taken_at: datetime, request_id: str) -> str: ...


class SequenceSnapshots:
    """Takes the snapshot of one sequence before it is archived, for one workspace's archiver."""

    def __init__(
        self,
        api: SnapshotReplyApi,
        store: SnapshotStore,
        *,
        key_of: SnapshotKeys,
        required: bool = True,
        workspace: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._store = store
        self._key_of = key_of
        self._required = required  # False: best effort, the archive goes ahead without one
        self._workspace = workspace
        self._clock = clock

    def take(
        self, sequence_id: int, request_ids: Sequence[str], deadline: Deadline, *, acted_as: int | None = None
    ) -> SnapshotTaken:
        """The URI of the stored snapshot, or what happens instead. Raises the errors that stop the whole request
        (REQUEST_WIDE_ERRORS: the key, the deadline, and under `required` a store that cannot be written)."""
        try:
            return self._take(sequence_id, request_ids, deadline, acted_as=acted_as)
        except SnapshotStoreError as exc:
            if self._required:
                raise
            return self._missing(sequence_id, exc)
        except REQUEST_WIDE_ERRORS:
            raise
        except (RetryableReplyError, SnapshotError) as exc:
            if self._required:
                return failed_result(sequence_id, exc, prefix=_PREFIX)
            return self._missing(sequence_id, exc)

    def _take(
        self, sequence_id: int, request_ids: Sequence[str], deadline: Deadline, *, acted_as: int | None
    ) -> SnapshotTaken:
        taken_at = self._clock()
        described = self._api.describe_sequence(sequence_id, deadline, parse_sequence_document)
        if described.page is None:
            return _refused(sequence_id, "reading the sequence", described.http_status, described.problem)
        if described.page.get("id") != sequence_id:
            raise SnapshotError("Reply described another sequence than the one asked for")
        try:
            contacts = list_contacts(self._api, sequence_id, deadline)
        except ReplyRefusedError as exc:
            return _refused(sequence_id, "listing its contacts", exc.http_status or 0, exc.problem)
        request_id = request_ids[0] if request_ids else "direct"
        key = self._key_of(workspace=self._workspace, sequence_id=sequence_id, taken_at=taken_at, request_id=request_id)
        document = {
            "schemaVersion": SNAPSHOT_SCHEMA_VERSION,
            "sequenceId": sequence_id,
            "takenAt": taken_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "requestIds": list(request_ids),
            "workspace": self._workspace,
            "actedAs": acted_as,
            "sequence": described.page,
            "contactCount": len(contacts),
            "contacts": contacts,
            "source": {"endpoint": "GET /v3/sequences/{id}/contacts", "pageSize": CONTACTS_PAGE_SIZE},
        }
        uri = self._store.store(key, document, deadline)
        logger.info("sequence snapshot stored", extra={"sequence_id": sequence_id, "contacts": len(contacts)})
        return uri

    def _missing(self, sequence_id: int, error: SequenceArchiverError) -> SnapshotMissing:
        logger.warning(
            "archiving without a snapshot (best effort)",
            extra={"sequence_id": sequence_id, "reason": type(error).__name__},
        )
        return SnapshotMissing(str(error))


def _refused(sequence_id: int, step: str, status: int, problem: Problem | None) -> SequenceResult:
    """Reply's final 4xx about the sequence while taking its snapshot. A 404 or 403 is the ID's answer, as an
    archive call's would be (`not_found`, `forbidden`); any other refusal is no snapshot, hence `failed`."""
    if status in {403, 404}:
        result = classify_response(sequence_id, ReplyResponse(status, problem=problem), via=Via.SINGLE)
        return replace(result, error=f"before archiving, {step}: {result.error}")
    reason = (problem.short_reason() if problem else None) or f"HTTP {status}"
    raise SnapshotError(f"Reply refused {step} ({status}): {reason}")
