"""The archiving core: one request's sequence IDs in, one outcome per ID out. No AWS, no event shapes."""

from __future__ import annotations

import logging
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

if TYPE_CHECKING:
    from sequence_archiver.archive_request import ArchiveRequest
    from sequence_archiver.deadline import Deadline
    from sequence_archiver.reply_client import ReplyResponse

logger = logging.getLogger(__name__)

ALREADY_ARCHIVED_CODE = "sequenceaction.archived"
TEAM_MEMBER_NOT_FOUND_CODE = "sequenceaction.teammembernotfound"


class SequenceArchiveApi(Protocol):
    """The one Reply operation the core needs."""

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """Archive one sequence or raise a ReplyApiError / DeadlineExceededError / ApiKeyError."""
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


class SequenceArchiver:
    """Archives the IDs of one request, in order, and never lets an exception escape per ID."""

    def __init__(self, api: SequenceArchiveApi) -> None:
        self._api = api

    def archive(self, request: ArchiveRequest, deadline: Deadline) -> list[SequenceResult]:
        """One result per item of the request, in input order."""
        results: list[SequenceResult] = []
        stop_reason: str | None = None
        for item in request.items:
            if isinstance(item, InvalidSequenceId):
                results.append(SequenceResult(None, Outcome.INVALID, error=item.reason, input_value=item.input_value))
                continue
            if stop_reason is not None:
                results.append(SequenceResult(item, Outcome.FAILED, error=stop_reason))
                continue
            try:
                response = self._api.archive_sequence(item, deadline)
            except (ReplyAuthenticationError, ApiKeyError, DeadlineExceededError) as exc:
                # These hold for every later ID too: do not spend calls (or time) proving it again.
                results.append(SequenceResult(item, Outcome.FAILED, _status_of(exc), str(exc)))
                stop_reason = f"not attempted: {exc}"
                logger.warning(
                    "archiving stopped for this request",
                    extra={"sequence_id": item, "reason": type(exc).__name__},
                )
            except RetryableReplyError as exc:
                results.append(SequenceResult(item, Outcome.FAILED, exc.http_status, str(exc)))
            else:
                results.append(classify_response(item, response))
        return results


def _status_of(error: SequenceArchiverError) -> int | None:
    return error.http_status if isinstance(error, ReplyApiError) else None
