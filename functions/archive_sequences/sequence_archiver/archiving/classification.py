"""What each of Reply's final answers means for an ID: its outcome, by the README's outcome table.

A 2xx is `archived` only when its body confirms the archive (otherwise `unconfirmed`); a 409 with the
already-archived code is `already_archived`; refusals are final outcomes; anything unexpected, and every error
that is no answer (a timeout, the budget, the deadline), is `failed`, so it is retried. The strategy that
decides which calls to make (single or bulk, splitting, pausing first) is archiver.py's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.core.exceptions import (
    ApiKeyError,
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyApiError,
    ReplyAuthenticationError,
    ReplyPausedError,
    ReplyTransportError,
    RetryableReplyError,
    SnapshotStoreError,
)
from sequence_archiver.core.outcomes import Outcome, SequenceResult, Via
from sequence_archiver.core.reply_answers import SEQUENCE_ACTION_NAMESPACE, ReplyResponse

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.core.exceptions import SequenceArchiverError
    from sequence_archiver.core.reply_answers import BulkArchiveResponse

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


# Errors that concern the whole request (the key, the invocation's time, a snapshot store that cannot be
# written under the `required` policy), not one ID: every ID after them stops.
REQUEST_WIDE_ERRORS = (ReplyAuthenticationError, ApiKeyError, DeadlineExceededError, SnapshotStoreError)


def classify_response(sequence_id: int, response: ReplyResponse, via: Via = Via.SINGLE) -> SequenceResult:
    """Map a final Reply answer to an outcome (see the README's outcome table)."""
    status, problem = response.http_status, response.problem
    code = (problem.code or "").lower() if problem else ""
    reason = (problem.short_reason() if problem else None) or f"HTTP {status} from Reply"

    def result(outcome: Outcome, error: str | None = reason) -> SequenceResult:
        return SequenceResult(sequence_id, outcome, status, error, response.sequence, via=via)

    if 200 <= status < 300:
        # A 2xx whose body does not say this sequence is archived is no archive: `unconfirmed`, with the reason.
        unconfirmed = response.unconfirmed
        return result(Outcome.ARCHIVED if unconfirmed is None else Outcome.UNCONFIRMED, unconfirmed)
    if status == 409:
        # Archiving is idempotent for us: "already archived" is the state we wanted, and a 409 with that code
        # says so by its status and code alike (unlike a 2xx whose body says otherwise, it contradicts nothing).
        # Any other 409 (for example an active sequence that was not paused first) is a final conflict.
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
    """Outcomes of one bulk call: unlisted IDs were archived; listed ones by their error slug.

    An item of a 200 answer has no HTTP status of its own: it is reported with `http_status` None and its
    error as a single call's would read (`sequenceAction.forbidden: <details>`), never as "forbidden 200".
    A whole-call refusal (4xx, 5xx) is the status every ID of the call got. An unconfirmed 200 (keys that are
    not the IDs sent, an empty body) archived none of the IDs it leaves out for sure: they are `unconfirmed`,
    with the answer's status; the items it lists for IDs sent keep their outcomes.
    """
    status = response.http_status
    if not 200 <= status < 300:
        return [
            classify_response(sequence_id, ReplyResponse(status, problem=response.problem), Via.BULK)
            for sequence_id in sequence_ids
        ]
    results = []
    for sequence_id in sequence_ids:
        failure = response.failures.get(sequence_id)
        if failure is None and response.unconfirmed is not None:
            results.append(SequenceResult(sequence_id, Outcome.UNCONFIRMED, status, response.unconfirmed, via=Via.BULK))
            continue
        if failure is None:
            results.append(SequenceResult(sequence_id, Outcome.ARCHIVED, via=Via.BULK))
            continue
        # An error we do not know is still a final refusal for this item; it is reported, not retried.
        outcome = BULK_ITEM_OUTCOMES.get(_bulk_variant(failure.error), Outcome.CONFLICT)
        results.append(SequenceResult(sequence_id, outcome, None, failure.short_reason(), via=Via.BULK))
    return results


def _bulk_variant(error: str) -> str:
    """A bulk item's error as a bare lower-case variant (`Forbidden`, `sequenceAction.forbidden` -> `forbidden`)."""
    variant = error.lower()
    namespace = SEQUENCE_ACTION_NAMESPACE.lower()
    return variant[len(namespace) :] if variant.startswith(namespace) else variant


def pausing_may_help(result: SequenceResult) -> bool:
    """A conflict other than a sales-agent sequence (which pausing does not change)."""
    return result.outcome is Outcome.CONFLICT and SALES_AGENT_CODE not in (result.error or "").lower()


# Waiting for these is no failure of the ID: it was not tried (the budget, a 429 pause or the time ran out).
_DEFERRING_ERRORS = (RateBudgetExhaustedError, ReplyPausedError, DeadlineExceededError)
# Errors that carry no answer from Reply to this call: nothing came back, or the call was never made.
_NO_ANSWER_ERRORS = (ReplyTransportError, *_DEFERRING_ERRORS)


def failed_result(
    sequence_id: int, error: SequenceArchiverError, *, prefix: str = "", via: Via | None = None
) -> SequenceResult:
    """A `failed` result; `via` (the endpoint called) is kept only when Reply answered that call."""
    status = error.http_status if isinstance(error, ReplyApiError) else None
    retry_after = error.retry_after_seconds if isinstance(error, RetryableReplyError) else None
    answered = isinstance(error, ReplyApiError) and not isinstance(error, _NO_ANSWER_ERRORS)
    return SequenceResult(
        sequence_id,
        Outcome.FAILED,
        status,
        prefix + str(error),
        retry_after_seconds=retry_after,
        deferred=isinstance(error, _DEFERRING_ERRORS),
        via=via if answered else None,
    )


def unexpected_failure(sequence_ids: Sequence[int], error: Exception, operation: str) -> dict[int, SequenceResult]:
    """A bug, not an answer: the IDs of that one call fail (retryably). Only the type is logged and reported,
    since the text of an arbitrary exception may hold anything."""
    reason = type(error).__name__
    logger.error(
        "unexpected error while calling reply",
        extra={"operation": operation, "ids": len(sequence_ids), "error": reason},
    )
    text = f"unexpected error while calling Reply ({reason})"
    return {sequence_id: SequenceResult(sequence_id, Outcome.FAILED, error=text) for sequence_id in sequence_ids}
