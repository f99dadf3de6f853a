"""The archiving core: requests' sequence IDs in, one outcome per ID out. No AWS, no event shapes."""

from __future__ import annotations

import logging
from dataclasses import replace
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sequence_archiver.archive_request import InvalidSequenceId
from sequence_archiver.exceptions import (
    ApiKeyError,
    DeadlineExceededError,
    ReplyApiError,
    ReplyAuthenticationError,
    RetryableReplyError,
    SequenceArchiverError,
)
from sequence_archiver.outcomes import Outcome, SequenceResult
from sequence_archiver.reply_answers import ReplyResponse

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.archive_request import ArchiveRequest
    from sequence_archiver.deadline import Deadline
    from sequence_archiver.reply_answers import BulkArchiveResponse

logger = logging.getLogger(__name__)

ALREADY_ARCHIVED_CODE = "sequenceaction.archived"
TEAM_MEMBER_NOT_FOUND_CODE = "sequenceaction.teammembernotfound"
SALES_AGENT_CODE = "salesagentnotallowed"
# Bulk per-item errors are bare SequenceActionError variants; compared case-insensitively.
BULK_ITEM_OUTCOMES = {
    "notfound": Outcome.NOT_FOUND,
    "forbidden": Outcome.FORBIDDEN,
    "archived": Outcome.ALREADY_ARCHIVED,
    "salesagentnotallowed": Outcome.CONFLICT,
    "teammembernotfound": Outcome.FORBIDDEN,
}
# A bulk call refused as a whole with these means "not for this key or this API": use single calls.
BULK_UNAVAILABLE_STATUSES = frozenset({403, 404, 405})
# Errors that hold for every later ID too: stop calling instead of proving them again per ID.
_REQUEST_WIDE_ERRORS = (ReplyAuthenticationError, ApiKeyError, DeadlineExceededError)


class ArchiveMode(StrEnum):
    """Which Reply endpoint archives: the bulk one, single calls, or bulk when a batch holds several IDs."""

    AUTO = "auto"
    SINGLE = "single"
    BULK = "bulk"


class SequenceArchiveApi(Protocol):
    """The Reply operations the core needs."""

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """Archive one sequence or raise a ReplyApiError / DeadlineExceededError / ApiKeyError."""
        ...

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        """Archive many sequences in one call, with the same errors as archive_sequence."""
        ...

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """Pause one sequence, with the same errors as archive_sequence."""
        ...


def classify_response(sequence_id: int, response: ReplyResponse) -> SequenceResult:
    """Map a final Reply answer to an outcome (see the README's outcome table)."""
    status, problem = response.http_status, response.problem
    code = (problem.code or "").lower() if problem else ""
    reason = (problem.short_reason() if problem else None) or f"HTTP {status} from Reply"

    def result(outcome: Outcome, error: str | None = reason) -> SequenceResult:
        return SequenceResult(sequence_id, outcome, status, error, response.sequence)

    if 200 <= status < 300:
        return result(Outcome.ARCHIVED, None)
    if status == 409:
        # Archiving is idempotent for us: "already archived" is the state we wanted. Any other 409
        # (for example an active sequence that was not paused first) is a final conflict.
        return result(Outcome.ALREADY_ARCHIVED if code == ALREADY_ARCHIVED_CODE else Outcome.CONFLICT)
    if status == 404 or (status == 400 and code.endswith(".notfound")):
        return result(Outcome.NOT_FOUND)
    if status == 403 or (status == 400 and code == TEAM_MEMBER_NOT_FOUND_CODE):
        return result(Outcome.FORBIDDEN)
    if status == 400 and problem is not None and problem.has_validation_errors:
        return result(Outcome.INVALID)
    # Anything else is unexpected: report it as failed so it is retried and, if it persists,
    # ends in the dead-letter queue where a person can look at it.
    return result(Outcome.FAILED, f"unexpected answer from Reply: {reason}")


def classify_bulk_response(sequence_ids: Sequence[int], response: BulkArchiveResponse) -> list[SequenceResult]:
    """Outcomes of one bulk call: unlisted IDs were archived; listed ones by their error slug."""
    status = response.http_status
    if not 200 <= status < 300:
        return [
            classify_response(sequence_id, ReplyResponse(status, problem=response.problem))
            for sequence_id in sequence_ids
        ]
    results = []
    for sequence_id in sequence_ids:
        failure = response.failures.get(sequence_id)
        if failure is None:
            results.append(SequenceResult(sequence_id, Outcome.ARCHIVED, status))
            continue
        # An error we do not know is still a final refusal for this item; it is reported, not retried.
        outcome = BULK_ITEM_OUTCOMES.get(failure.error.lower(), Outcome.CONFLICT)
        error = f"{failure.error}: {failure.details}" if failure.details else failure.error
        results.append(SequenceResult(sequence_id, outcome, status, error))
    return results


def _pausing_may_help(result: SequenceResult) -> bool:
    """A conflict other than a sales-agent sequence (which pausing does not change)."""
    return result.outcome is Outcome.CONFLICT and SALES_AGENT_CODE not in (result.error or "").lower()


def _failed(sequence_id: int, error: SequenceArchiverError, *, prefix: str = "") -> SequenceResult:
    status = error.http_status if isinstance(error, ReplyApiError) else None
    retry_after = error.retry_after_seconds if isinstance(error, RetryableReplyError) else None
    return SequenceResult(sequence_id, Outcome.FAILED, status, prefix + str(error), retry_after_seconds=retry_after)


class SequenceArchiver:
    """Archives the IDs of one or more requests and never lets an exception escape per ID."""

    def __init__(
        self, api: SequenceArchiveApi, *, mode: ArchiveMode = ArchiveMode.SINGLE, bulk_max_ids: int = 100
    ) -> None:
        self._api = api
        self._mode = mode
        self._bulk_max_ids = bulk_max_ids
        self._bulk_unavailable = False  # remembered for the life of the instance

    def archive(self, request: ArchiveRequest, deadline: Deadline) -> list[SequenceResult]:
        """One result per item of the request, in input order."""
        return self.archive_all([request], deadline)[0]

    def archive_all(self, requests: Sequence[ArchiveRequest], deadline: Deadline) -> list[list[SequenceResult]]:
        """Results per request; an ID in several requests (e.g. SQS records of one batch) is archived once."""
        unique_ids = list(dict.fromkeys(sequence_id for request in requests for sequence_id in request.sequence_ids))
        pause_first = {
            sequence_id for request in requests if request.pause_first for sequence_id in request.sequence_ids
        }
        by_id = self._archive_ids(unique_ids, deadline)
        self._pause_and_retry_conflicts(by_id, pause_first, deadline)
        return [
            [
                SequenceResult(None, Outcome.INVALID, error=item.reason, input_value=item.input_value)
                if isinstance(item, InvalidSequenceId)
                else by_id[item]
                for item in request.items
            ]
            for request in requests
        ]

    def _archive_ids(self, sequence_ids: list[int], deadline: Deadline) -> dict[int, SequenceResult]:
        results: dict[int, SequenceResult] = {}
        use_bulk = self._mode is ArchiveMode.BULK or (self._mode is ArchiveMode.AUTO and len(sequence_ids) > 1)
        pending = list(sequence_ids)
        while pending:
            if use_bulk and not self._bulk_unavailable:
                chunk, pending = pending[: self._bulk_max_ids], pending[self._bulk_max_ids :]
                stop = self._archive_bulk_chunk(chunk, deadline, results)
            else:
                chunk, pending = pending[:1], pending[1:]
                stop = self._archive_single(chunk[0], deadline, results)
            if stop is not None:
                results.update(
                    {sequence_id: _failed(sequence_id, stop, prefix="not attempted: ") for sequence_id in pending}
                )
                break
        return results

    def _pause_and_retry_conflicts(
        self, results: dict[int, SequenceResult], pause_first: set[int], deadline: Deadline
    ) -> None:
        """For pauseFirst requests: a sequence Reply would not archive (still running) is paused, then archived."""
        candidates = [
            sequence_id
            for sequence_id in results
            if sequence_id in pause_first and _pausing_may_help(results[sequence_id])
        ]
        for position, sequence_id in enumerate(candidates):
            stop = self._pause_then_archive(sequence_id, deadline, results)
            if stop is not None:
                for other in candidates[position + 1 :]:
                    results[other] = _failed(other, stop, prefix="not attempted: ")
                return

    def _pause_then_archive(
        self, sequence_id: int, deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceArchiverError | None:
        """Pause (idempotent in Reply) and archive again; the result says `paused` when the pause worked."""
        try:
            paused = self._api.pause_sequence(sequence_id, deadline)
            if not 200 <= paused.http_status < 300:
                results[sequence_id] = classify_response(sequence_id, paused)
                return None
            archived = self._api.archive_sequence(sequence_id, deadline)
        except _REQUEST_WIDE_ERRORS as exc:
            results[sequence_id] = _failed(sequence_id, exc)
            return exc
        except RetryableReplyError as exc:
            results[sequence_id] = _failed(sequence_id, exc)
            return None
        results[sequence_id] = replace(classify_response(sequence_id, archived), paused=True)
        logger.info("sequence paused before archiving", extra={"sequence_id": sequence_id})
        return None

    def _archive_single(
        self, sequence_id: int, deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceArchiverError | None:
        """Archive one ID into `results`; return the error that should stop the rest, if any."""
        try:
            response = self._api.archive_sequence(sequence_id, deadline)
        except _REQUEST_WIDE_ERRORS as exc:
            results[sequence_id] = _failed(sequence_id, exc)
            logger.warning("archiving stopped", extra={"sequence_id": sequence_id, "reason": type(exc).__name__})
            return exc
        except RetryableReplyError as exc:
            results[sequence_id] = _failed(sequence_id, exc)
        else:
            results[sequence_id] = classify_response(sequence_id, response)
        return None

    def _archive_bulk_chunk(
        self, chunk: list[int], deadline: Deadline, results: dict[int, SequenceResult]
    ) -> SequenceArchiverError | None:
        """Archive up to bulk_max_ids IDs in one call (or singly when bulk is refused)."""
        try:
            response = self._api.bulk_archive(chunk, deadline)
        except _REQUEST_WIDE_ERRORS as exc:
            results.update({sequence_id: _failed(sequence_id, exc) for sequence_id in chunk})
            logger.warning("archiving stopped", extra={"ids": len(chunk), "reason": type(exc).__name__})
            return exc
        except RetryableReplyError as exc:
            results.update({sequence_id: _failed(sequence_id, exc) for sequence_id in chunk})
            return None
        status = response.http_status
        refused = status in BULK_UNAVAILABLE_STATUSES
        rejected_body = status == 400 and response.problem is not None and response.problem.has_validation_errors
        if not (refused or rejected_body):
            results.update(
                {result.sequence_id: result for result in classify_bulk_response(chunk, response) if result.sequence_id}
            )
            return None
        if refused:
            # Bulk needs the sequences:write scope; single archive only sequences:operate.
            self._bulk_unavailable = True
        logger.warning(
            "bulk archive refused; using single calls",
            extra={
                "http_status": status,
                "remembered": refused,
                "reason": response.problem.short_reason() if response.problem else None,
            },
        )
        for sequence_id in chunk:
            stop = self._archive_single(sequence_id, deadline, results)
            if stop is not None:
                remaining = chunk[chunk.index(sequence_id) + 1 :]
                results.update({other: _failed(other, stop, prefix="not attempted: ") for other in remaining})
                return stop
        return None
