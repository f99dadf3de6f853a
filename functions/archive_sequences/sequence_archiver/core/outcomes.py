"""Outcomes are data: each sequence ID ends with exactly one Outcome, and counts derive from them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable


class Outcome(StrEnum):
    """The final state of one sequence ID in one request."""

    ARCHIVED = "archived"
    ALREADY_ARCHIVED = "already_archived"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    INVALID = "invalid"
    FAILED = "failed"
    # Reply answered 2xx, but its answer does not confirm the archive (it says not archived, is empty, is about
    # another ID, or a bulk answer names IDs not sent), even after retries: final, a person checks it in Reply.
    UNCONFIRMED = "unconfirmed"


class Via(StrEnum):
    """Which Reply endpoint answered for an ID: the bulk one, or one about that sequence alone."""

    BULK = "bulk"  # POST /v3/sequences/archive
    SINGLE = "single"  # POST /v3/sequences/{id}/archive (or /pause, for pauseFirst)


@dataclass(frozen=True, slots=True)
class SequenceSummary:
    """The few fields of a Reply Sequence that results events carry."""

    name: str | None
    status: str | None
    is_archived: bool | None
    owner_user_id: int | None = None  # who owns it in Reply (read for a master key; not published here)

    def to_json(self) -> dict[str, Any]:
        """The results-event representation."""
        return {"name": self.name, "status": self.status, "isArchived": self.is_archived}


@dataclass(frozen=True, slots=True)
class SequenceResult:
    """What happened to one sequence ID (or one invalid value) of a request.

    `via` is the endpoint whose answer the result reports; None when no answer from Reply is behind it (an
    invalid value, a rejected request, an ID not attempted or deferred, no answer at all). `http_status` is
    the status Reply gave for this ID: None for an item of a 200 bulk answer, which has no status of its own
    (the item's `error` carries its code, `sequenceAction.forbidden: ...`, as a single call's would).
    """

    sequence_id: int | None
    outcome: Outcome
    http_status: int | None = None
    error: str | None = None
    sequence: SequenceSummary | None = None
    input_value: str | None = None
    retry_after_seconds: float | None = None  # a hint for when to retry a `failed` ID; not published
    # The pause call of a pauseFirst request succeeded, whatever archiving did next (`failed` or `unconfirmed`
    # too): the sequence has stopped sending in Reply.
    paused: bool = False
    # `failed` only because the rate budget or the invocation's time ran out before the ID could be tried:
    # such IDs are carried on to a continuation of the request, not retried as failures. Not published.
    deferred: bool = False
    via: Via | None = None
    # With a master key: the Reply user the call for this ID acted as (X-User-Id), the sequence's owner. For an
    # archived ID, the user it was archived as.
    acted_as: int | None = None
    # The snapshot of the sequence's contacts taken before the archive call (an s3:// or file:// URI), and, when
    # the snapshot policy is best effort and none could be taken, why not.
    snapshot: str | None = None
    snapshot_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The results-event representation (`input` only for values that were not valid IDs)."""
        data: dict[str, Any] = {
            "sequenceId": self.sequence_id,
            "outcome": self.outcome.value,
            "httpStatus": self.http_status,
            "via": self.via.value if self.via is not None else None,
            "error": self.error,
            "sequence": self.sequence.to_json() if self.sequence else None,
        }
        if self.input_value is not None:
            data["input"] = self.input_value
        if self.paused:
            data["paused"] = True
        if self.acted_as is not None:
            data["actedAs"] = self.acted_as
        if self.snapshot is not None:
            data["snapshot"] = self.snapshot
        if self.snapshot_error is not None:
            data["snapshotError"] = self.snapshot_error
        return data


def count_outcomes(results: Iterable[SequenceResult]) -> dict[str, int]:
    """Counts per outcome, every outcome present (zero when absent), in the enum's order."""
    counts = dict.fromkeys((outcome.value for outcome in Outcome), 0)
    for result in results:
        counts[result.outcome.value] += 1
    return counts


def any_failed(results: Iterable[SequenceResult]) -> bool:
    """True when at least one result is retryable (`failed`)."""
    return any(result.outcome is Outcome.FAILED for result in results)
