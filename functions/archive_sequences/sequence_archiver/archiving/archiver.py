"""The archiving strategy: requests' sequence IDs in, one outcome per ID out. No AWS, no event shapes.

Which calls to make (single or bulk chunks spanning requests, a bulk refusal falling back to single calls, a
poison ID isolated by halving, pausing first) is decided here; what each answer means is classification.py's.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Protocol

from sequence_archiver.archiving.classification import (
    REQUEST_WIDE_ERRORS,
    TEAM_MEMBER_NOT_FOUND_CODE,
    classify_bulk_response,
    classify_response,
    failed_result,
    pausing_may_help,
    unexpected_failure,
)
from sequence_archiver.archiving.snapshots import SnapshotMissing
from sequence_archiver.core.archive_request import InvalidSequenceId
from sequence_archiver.core.exceptions import (
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyThrottledError,
    ReplyUnconfirmedError,
    RetryableReplyError,
    SequenceArchiverError,
)
from sequence_archiver.core.outcomes import Outcome, SequenceResult, Via
from sequence_archiver.core.reply_answers import BulkArchiveResponse, ReplyResponse

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager

    from sequence_archiver.archiving.snapshots import SequenceSnapshots, SnapshotTaken
    from sequence_archiver.core.archive_request import ArchiveRequest
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.core.reply_answers import Problem

logger = logging.getLogger(__name__)

# The validation error's pointer Reply names when a bulk call holds too many IDs ("'ids' must contain between
# 1 and 100 items."): the chunk is halved, never the message read.
BULK_IDS_POINTER = "/ids"
# A bulk call refused as a whole with these means "not for this key or this API": use single calls.
BULK_UNAVAILABLE_STATUSES = frozenset({403, 404, 405})
# Retryable errors about Reply's (or our own) rate budget, not about the IDs a call named: splitting the
# call would only spend more of the budget on the same refusal.
_NOT_ABOUT_CONTENT = (ReplyThrottledError, RateBudgetExhaustedError)
# Isolating a poison ID splits a failing bulk call in halves. When two levels of halves (2 + 4 calls) all
# failed too, the failure is not about a few IDs (Reply fails everything, or at least one ID in every
# quarter is bad): stop, rather than multiply the calls into a failing service.
_SPLIT_CALLS_WITHOUT_SUCCESS = 6
# With snapshots, a bulk call holds at most this many IDs: their snapshots (2 calls or more each) are taken just
# before it, so an invocation that runs out of time loses at most this many snapshots' calls (they are taken
# again when the IDs come back), and no contact list waits minutes between its snapshot and its archive.
SNAPSHOT_BULK_CHUNK = 20


class ArchiveMode(StrEnum):
    """Which Reply endpoint archives: the bulk one, single calls, or bulk when a batch holds several IDs."""

    AUTO = "auto"
    SINGLE = "single"
    BULK = "bulk"


class OwnerRouting(Protocol):
    """With a Master key: who owns each sequence, and acting as that user (archiving/owners.py)."""

    def owners_of(self, sequence_ids: Sequence[int], deadline: Deadline) -> dict[int, int | SequenceResult]:
        """Each ID's owner (a Reply user ID), or the result of an ID whose owner could not be read."""
        ...

    def acting_as(self, user_id: int) -> AbstractContextManager[None]:
        """Every Reply call inside acts as `user_id`, on that user's rate budget."""
        ...

    def budget_wait(self, user_id: int, deadline: Deadline) -> float:
        """Seconds before a call as `user_id` may start; 0 means it may now (and is booked, in a shared budget)."""
        ...

    def release_budget(self, user_id: int, deadline: Deadline) -> None:
        """Give back what `user_id`'s budget holds for calls that will not be made (its work here is done)."""
        ...


class _Turns:
    """The turns still to take, in order; an owner whose budget is spent is passed over until it is ready again."""

    def __init__(self, turns: Sequence[tuple[int, list[int]]], *, clock: Callable[[], float]) -> None:
        self._pending = list(turns)
        self._ready_at: dict[int, float] = {}
        self._clock = clock

    def next(self) -> tuple[int, list[int], bool] | None:
        """The first turn of an owner that may be ready (and whether another owner's may be too); when none is,
        the turn of the owner ready soonest (its call then waits for its budget). None when no turn is left."""
        if not self._pending:
            return None
        now = self._clock()
        ready = [index for index, (owner, _) in enumerate(self._pending) if self._ready_at.get(owner, 0.0) <= now]
        if ready:
            owner, chunk = self._pending[ready[0]]
            others = any(self._pending[index][0] != owner for index in ready[1:])
            del self._pending[ready[0]]
            return owner, chunk, others
        index = min(range(len(self._pending)), key=lambda i: self._ready_at.get(self._pending[i][0], 0.0))
        owner, chunk = self._pending.pop(index)
        return owner, chunk, False

    def has_more(self, owner: int) -> bool:
        """Whether a turn of this owner is still to come."""
        return any(other == owner for other, _ in self._pending)

    def put_back(self, owner: int, chunk: list[int], *, ready_in: float) -> None:
        """Take this turn again once the owner's budget may have room (its place among the owner's turns kept)."""
        self._ready_at[owner] = self._clock() + ready_in
        position = next((i for i, (other, _) in enumerate(self._pending) if other == owner), len(self._pending))
        self._pending.insert(position, (owner, chunk))


class SequenceArchiveApi(Protocol):
    """The Reply operations the core needs."""

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """Archive one sequence or raise a ReplyApiError / DeadlineExceededError / ApiKeyError; a 2xx whose body
        does not confirm the archive is a ReplyUnconfirmedError holding it (or a response with `unconfirmed`)."""
        ...

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        """Archive many sequences in one call, with the same errors as archive_sequence (an answer whose keys are
        not the IDs sent is unconfirmed)."""
        ...

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """Pause one sequence, with the same errors as archive_sequence."""
        ...

    def release_unused_budget(self, deadline: Deadline) -> None:
        """Give back rate budget booked for calls that will not be made (the work is done); never raises."""
        ...


@dataclass(frozen=True, slots=True)
class _Group:
    """IDs to archive in one call; `cause` is the failure of the larger call they were split from."""

    ids: tuple[int, ...]
    cause: SequenceResult | None = None  # a `failed` result; its sequence_id is not used


@dataclass
class _SplitTally:
    """Calls made for split-off groups in one run, and how many of them got an answer for some ID."""

    calls: int = 0
    answers: int = 0

    @property
    def hopeless(self) -> bool:
        """True when two levels of halves all failed: the failure is not about a few IDs."""
        return self.calls >= _SPLIT_CALLS_WITHOUT_SUCCESS and not self.answers


def _not_isolated(group: _Group, reason: str) -> dict[int, SequenceResult]:
    """Split-off IDs whose failing call could not be narrowed down further keep its failure, saying why."""
    cause = group.cause or SequenceResult(None, Outcome.FAILED, error="bulk call failed")
    return {
        sequence_id: replace(cause, sequence_id=sequence_id, error=f"not isolated ({reason}): {cause.error}")
        for sequence_id in group.ids
    }


def _unfinished(group: _Group, stop: SequenceArchiverError) -> dict[int, SequenceResult]:
    """Results for the IDs of a group a stop left unarchived."""
    if group.cause is not None:
        return _not_isolated(group, str(stop))
    return {sequence_id: failed_result(sequence_id, stop, prefix="not attempted: ") for sequence_id in group.ids}


def _split(group: _Group, cause: SequenceResult, groups: deque[_Group], results: dict[int, SequenceResult]) -> None:
    """Queue the halves of a group whose call failed retryably; a group of one cannot be split: it fails."""
    if len(group.ids) == 1:
        [sequence_id] = group.ids
        results[sequence_id] = replace(cause, sequence_id=sequence_id)
        return
    middle = (len(group.ids) + 1) // 2
    groups.extend((_Group(group.ids[:middle], cause), _Group(group.ids[middle:], cause)))
    logger.info(
        "bulk call failed; splitting it to isolate the failing ids",
        extra={"ids": len(group.ids), "http_status": cause.http_status},
    )


class _Resend(Enum):
    """A bulk call Reply refused for its size: send its IDs again in smaller calls."""

    SMALLER = "smaller"


def _chunk_too_large(ids: Sequence[int], status: int, problem: Problem | None) -> bool:
    """A 400 validation error on `/ids` itself (not `/ids/<n>`, one bad item) for a call that can be halved."""
    return (
        status == 400
        and problem is not None
        and problem.has_validation_errors
        and BULK_IDS_POINTER in problem.error_pointers
        and len(ids) > 1
    )


def _recut(groups: Sequence[_Group], size: int) -> deque[_Group]:
    """The groups' IDs, in order, in groups of at most `size`: neighbours with the same cause (halves of one
    failing call, or parts of a chunk) are joined first, so no needless small call is left over."""
    runs: list[_Group] = []
    for group in groups:
        if runs and runs[-1].cause is group.cause:
            runs[-1] = _Group(runs[-1].ids + group.ids, group.cause)
        else:
            runs.append(group)
    return deque(
        _Group(run.ids[start : start + size], run.cause) for run in runs for start in range(0, len(run.ids), size)
    )


@dataclass
class _Snapshotting:
    """One archive_all call's snapshots: who asked for each ID, and what its snapshot came to."""

    snapshots: SequenceSnapshots
    asked_by: dict[int, list[str]]
    taken: dict[int, SnapshotTaken] = field(default_factory=dict)

    def attach(self, result: SequenceResult) -> SequenceResult:
        """The result naming the ID's snapshot (or, best effort, why there is none)."""
        taken = self.taken.get(result.sequence_id) if result.sequence_id is not None else None
        if isinstance(taken, str):
            return replace(result, snapshot=taken)
        if isinstance(taken, SnapshotMissing):
            return replace(result, snapshot_error=taken.reason)
        return result


class SequenceArchiver:
    """Archives the IDs of one or more requests and never lets an exception escape per ID."""

    def __init__(
        self,
        api: SequenceArchiveApi,
        *,
        mode: ArchiveMode = ArchiveMode.SINGLE,
        bulk_max_ids: int = 100,
        owners: OwnerRouting | None = None,
        snapshots: SequenceSnapshots | None = None,
    ) -> None:
        self._api = api
        self._snapshots = snapshots  # each ID's contacts are recorded before its archive call
        self._mode = mode
        self._owners = owners  # a Master key: each sequence is archived as its owner
        # Both remembered for the life of the instance: Reply's own bulk size limit, when it turns out smaller
        # than the configured one, and whether the bulk endpoint is refused to this key.
        self._bulk_max_ids = bulk_max_ids
        self._bulk_unavailable = False

    @property
    def bulk_max_ids(self) -> int:
        """The most IDs one bulk call holds now: the configured size, or the smaller one Reply accepted."""
        return self._bulk_max_ids

    @property
    def bulk_unavailable(self) -> bool:
        """True once Reply refused the bulk endpoint to this key: every later ID goes to the single endpoint."""
        return self._bulk_unavailable

    def archive(self, request: ArchiveRequest, deadline: Deadline) -> list[SequenceResult]:
        """One result per item of the request, in input order."""
        return self.archive_all([request], deadline)[0]

    def archive_all(
        self, requests: Sequence[ArchiveRequest], deadline: Deadline, *, request_ids: Sequence[str] = ()
    ) -> list[list[SequenceResult]]:
        """Results per request; an ID in several requests (e.g. SQS records of one batch) is archived once.
        `request_ids` (one per request) are recorded in the snapshots of the IDs each asked for."""
        unique_ids = list(dict.fromkeys(sequence_id for request in requests for sequence_id in request.sequence_ids))
        pause_first = {
            sequence_id for request in requests if request.pause_first for sequence_id in request.sequence_ids
        }
        snapshotting = None
        if self._snapshots is not None:
            asked_by: dict[int, list[str]] = {}
            labels: list[str | None] = list(request_ids) if request_ids else [None] * len(requests)
            for request, request_id in zip(requests, labels, strict=True):
                for sequence_id in request.sequence_ids:
                    asked_by.setdefault(sequence_id, []).extend([request_id] if request_id else [])
            snapshotting = _Snapshotting(self._snapshots, asked_by)
        try:
            if self._owners is None:
                by_id = self._archive_until_stopped(unique_ids, deadline, snapshotting)[0]
                self._pause_and_retry_conflicts(by_id, pause_first, deadline)
            else:
                by_id = self._archive_as_owners(self._owners, unique_ids, pause_first, deadline, snapshotting)
        finally:
            self._api.release_unused_budget(deadline)
        if snapshotting is not None:
            by_id = {sequence_id: snapshotting.attach(result) for sequence_id, result in by_id.items()}
        return [
            [
                SequenceResult(None, Outcome.INVALID, error=item.reason, input_value=item.input_value)
                if isinstance(item, InvalidSequenceId)
                else by_id[item]
                for item in request.items
            ]
            for request in requests
        ]

    def _archive_as_owners(
        self,
        owners: OwnerRouting,
        sequence_ids: list[int],
        pause_first: set[int],
        deadline: Deadline,
        snapshotting: _Snapshotting | None,
    ) -> dict[int, SequenceResult]:
        """Each ID archived as its owner. Owners take turns, a call each (a bulk chunk of one owner's IDs), so
        every owner's budget is drawn on at once; one whose budget or pause outlasts the deadline stops alone."""
        found = owners.owners_of(sequence_ids, deadline)
        results: dict[int, SequenceResult] = {}
        by_owner: dict[int, list[int]] = {}
        for sequence_id in sequence_ids:
            owner = found[sequence_id]
            if isinstance(owner, SequenceResult):
                results[sequence_id] = owner
            else:
                by_owner.setdefault(owner, []).append(sequence_id)
        stopped: dict[int | None, SequenceArchiverError] = {}  # by owner; None: every owner
        turns = _Turns(self._turns(by_owner), clock=deadline.clock)
        while (turn := turns.next()) is not None:
            owner, chunk, others_ready = turn
            stop = stopped.get(None) or stopped.get(owner)
            if stop is not None:
                results.update({i: failed_result(i, stop, prefix="not attempted: ") for i in chunk})
                continue
            if others_ready:  # an owner whose budget is spent waits while the others' calls go on
                wait = owners.budget_wait(owner, deadline)
                if wait > 0:
                    turns.put_back(owner, chunk, ready_in=wait)
                    continue
            with owners.acting_as(owner):
                chunk_results, stop = self._archive_until_stopped(list(chunk), deadline, snapshotting, acted_as=owner)
                self._pause_and_retry_conflicts(chunk_results, pause_first, deadline)
            results.update({i: replace(result, acted_as=owner) for i, result in chunk_results.items()})
            if not turns.has_more(owner):  # what its budget holds for it, the other instances may use now
                owners.release_budget(owner, deadline)
            if stop is not None:
                stopped[None if isinstance(stop, REQUEST_WIDE_ERRORS) else owner] = stop
        return results

    def _turns(self, by_owner: dict[int, list[int]]) -> list[tuple[int, list[int]]]:
        """The calls to make, owner after owner in turn: single IDs, or bulk chunks of one owner's IDs."""
        queues: list[deque[tuple[int, list[int]]]] = []
        for owner, ids in by_owner.items():
            bulk = not self._bulk_unavailable and (
                self._mode is ArchiveMode.BULK or (self._mode is ArchiveMode.AUTO and len(ids) > 1)
            )
            size = self._bulk_max_ids if bulk else 1
            queues.append(deque((owner, ids[start : start + size]) for start in range(0, len(ids), size)))
        turns: list[tuple[int, list[int]]] = []
        while queues:
            turns.extend(queue.popleft() for queue in queues)
            queues = [queue for queue in queues if queue]
        return turns

    def _archive_until_stopped(
        self,
        sequence_ids: list[int],
        deadline: Deadline,
        snapshotting: _Snapshotting | None = None,
        *,
        acted_as: int | None = None,
    ) -> tuple[dict[int, SequenceResult], SequenceArchiverError | None]:
        """Results of every ID, and the error that stopped the calls before some of them (they are `failed`).
        With snapshots, each call's IDs are recorded just before it, and only the recorded ones are archived."""
        results: dict[int, SequenceResult] = {}
        use_bulk = self._mode is ArchiveMode.BULK or (self._mode is ArchiveMode.AUTO and len(sequence_ids) > 1)
        pending = list(sequence_ids)
        tally = _SplitTally()  # shared by the chunks: after an outage, later chunks are not split either
        while pending:
            bulk = use_bulk and not self._bulk_unavailable
            size = (min(self._bulk_max_ids, SNAPSHOT_BULK_CHUNK) if snapshotting else self._bulk_max_ids) if bulk else 1
            chunk, pending = pending[:size], pending[size:]
            if snapshotting is not None:
                chunk, stop = self._snapshot_first(chunk, deadline, results, snapshotting, acted_as=acted_as)
            else:
                stop = None
            if stop is None and chunk:
                if bulk:
                    stop = self._archive_bulk_chunk(chunk, deadline, results, tally)
                else:
                    stop = self._archive_single(chunk[0], deadline, results)
            if stop is not None:
                results.update(
                    {sequence_id: failed_result(sequence_id, stop, prefix="not attempted: ") for sequence_id in pending}
                )
                return results, stop
        return results, None

    def _snapshot_first(
        self,
        chunk: list[int],
        deadline: Deadline,
        results: dict[int, SequenceResult],
        snapshotting: _Snapshotting,
        *,
        acted_as: int | None,
    ) -> tuple[list[int], SequenceArchiverError | None]:
        """The chunk's IDs whose snapshot is taken (or, best effort, given up), in order; the others get their
        results here. A request-wide error stops it: the IDs not yet recorded are `not attempted`."""
        cleared: list[int] = []
        for position, sequence_id in enumerate(chunk):
            try:
                taken = snapshotting.snapshots.take(
                    sequence_id, snapshotting.asked_by.get(sequence_id, []), deadline, acted_as=acted_as
                )
            except REQUEST_WIDE_ERRORS as exc:
                logger.warning("archiving stopped", extra={"sequence_id": sequence_id, "reason": type(exc).__name__})
                for other in [*cleared, *chunk[position:]]:
                    results[other] = failed_result(other, exc, prefix="not attempted: ")
                return [], exc
            except Exception as exc:  # a bug in one snapshot fails that ID only
                results.update(unexpected_failure([sequence_id], exc, "snapshot"))
                continue
            if isinstance(taken, SequenceResult):
                results[sequence_id] = taken
            else:
                snapshotting.taken[sequence_id] = taken
                cleared.append(sequence_id)
        return cleared, None

    def _pause_and_retry_conflicts(
        self, results: dict[int, SequenceResult], pause_first: set[int], deadline: Deadline
    ) -> None:
        """For pauseFirst requests: a sequence Reply would not archive (still running) is paused, then archived."""
        candidates = [
            sequence_id
            for sequence_id in results
            if sequence_id in pause_first and pausing_may_help(results[sequence_id])
        ]
        for position, sequence_id in enumerate(candidates):
            stop = self._pause_then_archive(sequence_id, deadline, results)
            if stop is not None:
                for other in candidates[position + 1 :]:
                    results[other] = failed_result(other, stop, prefix="not attempted: ")
                return

    def _pause_then_archive(
        self, sequence_id: int, deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceArchiverError | None:
        """Pause (idempotent in Reply) and archive again; once the pause worked, the result says `paused` whatever
        the archive call did (archived, failed, unconfirmed...): the sequence has stopped sending either way."""
        try:
            paused = self._api.pause_sequence(sequence_id, deadline)
        except REQUEST_WIDE_ERRORS as exc:
            results[sequence_id] = failed_result(sequence_id, exc, via=Via.SINGLE)
            return exc
        except RetryableReplyError as exc:
            results[sequence_id] = failed_result(sequence_id, exc, via=Via.SINGLE)
            return None
        except Exception as exc:  # a bug in one call fails that ID only
            results.update(unexpected_failure([sequence_id], exc, "pause_sequence"))
            return None
        if not 200 <= paused.http_status < 300:
            results[sequence_id] = classify_response(sequence_id, paused)
            return None
        logger.info("sequence paused before archiving", extra={"sequence_id": sequence_id})
        stop = self._archive_single(sequence_id, deadline, results)
        results[sequence_id] = replace(results[sequence_id], paused=True)
        return stop

    def _archive_call(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """The single archive's answer; one still unconfirmed after the client's retries is final too: it is
        classified (`unconfirmed`), not retried again."""
        try:
            return self._api.archive_sequence(sequence_id, deadline)
        except ReplyUnconfirmedError as exc:
            if isinstance(exc.answer, ReplyResponse):
                return exc.answer
            raise

    def _bulk_call(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        """The bulk call's answer; one still unconfirmed after the client's retries is final too: its IDs are
        classified (those it leaves out end `unconfirmed`), not split nor retried again."""
        try:
            return self._api.bulk_archive(sequence_ids, deadline)
        except ReplyUnconfirmedError as exc:
            if isinstance(exc.answer, BulkArchiveResponse):
                return exc.answer
            raise

    def _archive_single(
        self, sequence_id: int, deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceArchiverError | None:
        """Archive one ID into `results`; return the error that should stop the rest, if any."""
        try:
            response = self._archive_call(sequence_id, deadline)
        except REQUEST_WIDE_ERRORS as exc:
            results[sequence_id] = failed_result(sequence_id, exc, via=Via.SINGLE)
            logger.warning("archiving stopped", extra={"sequence_id": sequence_id, "reason": type(exc).__name__})
            return exc
        except RetryableReplyError as exc:
            results[sequence_id] = failed_result(sequence_id, exc, via=Via.SINGLE)
        except Exception as exc:  # a bug in one call fails that ID only
            results.update(unexpected_failure([sequence_id], exc, "archive_sequence"))
        else:
            results[sequence_id] = classify_response(sequence_id, response)
        return None

    def _archive_singly(
        self, sequence_ids: Sequence[int], deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceArchiverError | None:
        """Archive IDs one call each; a stop fails the IDs not yet tried as `not attempted`."""
        for position, sequence_id in enumerate(sequence_ids):
            stop = self._archive_single(sequence_id, deadline, results)
            if stop is not None:
                rest = sequence_ids[position + 1 :]
                results.update({other: failed_result(other, stop, prefix="not attempted: ") for other in rest})
                return stop
        return None

    def _archive_bulk_chunk(
        self, chunk: list[int], deadline: Deadline, results: dict[int, SequenceResult], tally: _SplitTally
    ) -> SequenceArchiverError | None:
        """Archive up to bulk_max_ids IDs in one call; isolate the IDs that make it fail.

        A call that still fails after the client's retries, for a reason that may lie in the IDs it names
        (5xx, no answer, a malformed or unexpected answer), is split in halves, breadth first, while time
        allows: healthy halves are archived, and only an ID that fails on its own ends `failed`.
        """
        groups: deque[_Group] = deque([_Group(tuple(chunk))])
        while groups:
            group = groups.popleft()
            if group.cause is not None:
                if tally.hopeless:
                    for rest in (group, *groups):
                        results.update(_not_isolated(rest, "every part of the failing bulk call failed too"))
                    logger.warning("bulk call failed for every part; isolation stopped", extra={"ids": len(chunk)})
                    return None
                if deadline.remaining_seconds() <= 0:  # the client also refuses calls it cannot finish in time
                    stop: SequenceArchiverError = DeadlineExceededError("no time left to split the failing bulk call")
                    for rest in (group, *groups):
                        results.update(_unfinished(rest, stop))
                    return stop
                tally.calls += 1
            outcome = self._archive_group(group, deadline, results)
            if outcome is _Resend.SMALLER:  # this group and those waiting, cut to Reply's smaller size
                groups = _recut((group, *groups), self._bulk_max_ids)
                continue
            if isinstance(outcome, SequenceArchiverError):
                if group.cause is not None and isinstance(outcome, DeadlineExceededError):
                    results.update(_unfinished(group, outcome))
                for rest in groups:
                    results.update(_unfinished(rest, outcome))
                return outcome
            if outcome is not None:
                _split(group, outcome, groups, results)
            elif group.cause is not None and any(results[i].outcome is not Outcome.FAILED for i in group.ids):
                tally.answers += 1
        return None

    def _archive_split_off(
        self, sequence_id: int, deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceArchiverError | None:
        """Archive an ID split off on its own from a failing bulk call; if it fails too, it is the bad one.

        It goes to the single endpoint rather than a bulk call of one: that answer carries the Sequence and a
        precise status and code for classify_response, and it is a second route, so an ID that only breaks
        the bulk endpoint is still archived.
        """
        stop = self._archive_single(sequence_id, deadline, results)
        if stop is None and results[sequence_id].outcome is Outcome.FAILED:
            logger.warning(
                "sequence split off a failing bulk call failed on its own",
                extra={"sequence_id": sequence_id, "http_status": results[sequence_id].http_status},
            )
        return stop

    def _archive_group(
        self, group: _Group, deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceResult | SequenceArchiverError | _Resend | None:
        """One call for a group: None when its IDs have results, a stop error, the failure to split on, or
        _Resend.SMALLER when Reply refused the call for its size."""
        ids = list(group.ids)
        if self._bulk_unavailable:
            return self._archive_singly(ids, deadline, results)
        if group.cause is not None and len(ids) == 1:
            return self._archive_split_off(ids[0], deadline, results)
        try:
            response = self._bulk_call(ids, deadline)
        except REQUEST_WIDE_ERRORS as exc:
            results.update({sequence_id: failed_result(sequence_id, exc, via=Via.BULK) for sequence_id in ids})
            logger.warning("archiving stopped", extra={"ids": len(ids), "reason": type(exc).__name__})
            return exc
        except RetryableReplyError as exc:
            if not isinstance(exc, _NOT_ABOUT_CONTENT):
                return failed_result(ids[0], exc, via=Via.BULK)  # split: the failure may lie in one of the IDs
            results.update({sequence_id: failed_result(sequence_id, exc, via=Via.BULK) for sequence_id in ids})
        except Exception as exc:  # a bug in one call fails that call's IDs only
            results.update(unexpected_failure(ids, exc, "bulk_archive"))
        else:
            return self._take_bulk_answer(ids, response, deadline, results)
        return None

    def _take_bulk_answer(
        self, ids: list[int], response: BulkArchiveResponse, deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceResult | SequenceArchiverError | _Resend | None:
        """Results from a final bulk answer, single calls when bulk was refused, the failure to split on, or
        _Resend.SMALLER when the call held more IDs than Reply takes."""
        status, problem = response.http_status, response.problem
        if _chunk_too_large(ids, status, problem):
            # REPLY_BULK_MAX_IDS may be larger than Reply's limit (its spec says both 100 and 1,000): halve the
            # size and go on, and keep the smaller size for every later call of this instance.
            self._bulk_max_ids = min(self._bulk_max_ids, len(ids) // 2)
            logger.warning(
                "bulk call too large for reply; halving the chunk size",
                extra={"ids": len(ids), "bulk_max_ids": self._bulk_max_ids},
            )
            return _Resend.SMALLER
        code = (problem.code or "").lower() if problem else ""
        refused = status in BULK_UNAVAILABLE_STATUSES
        rejected_body = status == 400 and problem is not None and problem.has_validation_errors
        # Reply answers a removed team member for the whole bulk call although it concerns one of its IDs:
        # single calls find that one (for this call only; bulk still works for the others).
        team_member_gone = status == 400 and code == TEAM_MEMBER_NOT_FOUND_CODE
        if refused or rejected_body or team_member_gone:
            if refused:
                # Bulk needs the sequences:write scope; single archive only sequences:operate.
                self._bulk_unavailable = True
            logger.warning(
                "bulk archive refused; using single calls",
                extra={
                    "http_status": status,
                    "remembered": refused,
                    "reason": problem.short_reason() if problem else None,
                },
            )
            return self._archive_singly(ids, deadline, results)
        classified = classify_bulk_response(ids, response)
        if not 200 <= status < 300 and any(result.outcome is Outcome.FAILED for result in classified):
            return classified[0]  # an unexpected answer to the whole call, maybe because of one ID
        results.update({result.sequence_id: result for result in classified if result.sequence_id is not None})
        return None
