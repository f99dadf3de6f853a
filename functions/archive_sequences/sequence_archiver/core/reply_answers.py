"""What Reply answered, as the archiving core sees it: final answers, problems and the calls made.

These are the core's own types: the HTTP client produces them and the archiver consumes them, so the
archiver needs no HTTP client to be imported or tested. Every text in them that came from Reply was
cleaned by the client (reply/text.py: clean): at most the limits below, no API key, safe to encode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sequence_archiver.core.outcomes import SequenceSummary

MAX_ERROR_TEXT = 200  # characters of Reply's problem text (title, detail, code, bulk errors) kept
MAX_NAME_TEXT = 200  # characters of a sequence's name kept in results events
MAX_STATUS_TEXT = 40  # characters of a sequence's status (unknown values are kept, short)
MAX_ERROR_POINTERS = 20  # validation errors' pointers kept from one problem (Reply sends one per bad field)
MAX_POINTER_TEXT = 100  # characters of one pointer kept (`/ids`, `/ids/3`, `id`)
# The namespace of the single sequence endpoints' codes; bulk items carry the bare variant (`forbidden`).
SEQUENCE_ACTION_NAMESPACE = "sequenceAction."


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One HTTP attempt, as reported to metrics."""

    operation: str
    http_status: int | None
    latency_ms: float


class WaitReason(StrEnum):
    """Why the client pauses before a call."""

    RATE_BUDGET = "rate_budget"  # the key's budget: this instance's windows, or Reply's x-rate-limit hints
    RETRY_AFTER = "retry_after"  # Reply said when to come back (a 429, or Retry-After on a 5xx)
    BACKOFF = "backoff"  # the backoff before retrying a call that failed


@dataclass(frozen=True, slots=True)
class ReplyWait:
    """A pause the client is about to take before a call (for a progress display: the client sleeps anyway)."""

    seconds: float
    reason: WaitReason
    operation: str
    http_status: int | None = None  # the failed attempt's status before a retry; None when waiting for the budget


@dataclass(frozen=True, slots=True)
class Problem:
    """The useful part of an RFC 9457 problem+json body; `error_pointers` are its validation errors' pointers."""

    title: str | None = None
    detail: str | None = None
    code: str | None = None
    has_validation_errors: bool = False
    error_pointers: tuple[str, ...] = ()

    def short_reason(self) -> str | None:
        """`code: detail` (or whichever exists), trimmed for results events."""
        text = ": ".join(part for part in (self.code, self.detail or self.title) if part)
        return text[:MAX_ERROR_TEXT] or None


@dataclass(frozen=True, slots=True)
class ReplyResponse:
    """A final (non-retryable) answer from Reply: a 2xx with its sequence, or a 4xx with its problem.

    `unconfirmed` says why a 2xx to an archive call does not confirm it (its body says not archived, is
    empty, or is about another ID); None when it confirms, and for every other answer.
    """

    http_status: int
    problem: Problem | None = None
    sequence: SequenceSummary | None = None
    unconfirmed: str | None = None


@dataclass(frozen=True, slots=True)
class BulkItemFailure:
    """One sequence Reply did not archive in a bulk call: its error slug (empty when Reply gave none) and details."""

    error: str
    details: str | None = None

    @property
    def code(self) -> str | None:
        """The item's error as the single endpoint would name it (`forbidden` -> `sequenceAction.forbidden`)."""
        if not self.error:
            return None
        if "." in self.error:  # already namespaced: kept as Reply sent it
            return self.error
        return SEQUENCE_ACTION_NAMESPACE + self.error

    def short_reason(self) -> str:
        """`code: details` (or whichever exists), like Problem.short_reason for a single call's refusal."""
        text = ": ".join(part for part in (self.code, self.details) if part)
        return text[:MAX_ERROR_TEXT] or "refused by the bulk endpoint without a reason"


@dataclass(frozen=True, slots=True)
class BulkArchiveResponse:
    """A final answer to a bulk archive: 200 with the failed items, or a 4xx for the whole call.

    A 200 lists only the items that failed, so an ID it leaves out was archived, but only when the answer is
    about the IDs sent: `unconfirmed` says why it is not (keys that are not IDs sent, an empty body, JSON that
    is not an object), and then an ID left out is not known to be archived. `foreign_keys` counts such keys.
    """

    http_status: int
    failures: dict[int, BulkItemFailure] = field(default_factory=dict)
    problem: Problem | None = None
    unconfirmed: str | None = None
    foreign_keys: int = 0
