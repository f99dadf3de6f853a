"""What Reply answered, as the archiving core sees it: final answers, problems and the calls made.

These are the core's own types: the HTTP client produces them and the archiver consumes them, so the
archiver needs no HTTP client to be imported or tested. Every text in them that came from Reply was
cleaned by the client (reply_text.clean): at most the limits below, no API key, safe to encode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sequence_archiver.outcomes import SequenceSummary

MAX_ERROR_TEXT = 200  # characters of Reply's problem text (title, detail, code, bulk errors) kept
MAX_NAME_TEXT = 200  # characters of a sequence's name kept in results events
MAX_STATUS_TEXT = 40  # characters of a sequence's status (unknown values are kept, short)


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One HTTP attempt, as reported to metrics."""

    operation: str
    http_status: int | None
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Problem:
    """The useful part of an RFC 9457 problem+json body."""

    title: str | None = None
    detail: str | None = None
    code: str | None = None
    has_validation_errors: bool = False

    def short_reason(self) -> str | None:
        """`code: detail` (or whichever exists), trimmed for results events."""
        text = ": ".join(part for part in (self.code, self.detail or self.title) if part)
        return text[:MAX_ERROR_TEXT] or None


@dataclass(frozen=True, slots=True)
class ReplyResponse:
    """A final (non-retryable) answer from Reply: a 2xx with its sequence, or a 4xx with its problem."""

    http_status: int
    problem: Problem | None = None
    sequence: SequenceSummary | None = None


@dataclass(frozen=True, slots=True)
class BulkItemFailure:
    """One sequence Reply did not archive in a bulk call: its error slug and details."""

    error: str
    details: str | None = None


@dataclass(frozen=True, slots=True)
class BulkArchiveResponse:
    """A final answer to a bulk archive: 200 with the failed items, or a 4xx for the whole call."""

    http_status: int
    failures: dict[int, BulkItemFailure] = field(default_factory=dict)
    problem: Problem | None = None
