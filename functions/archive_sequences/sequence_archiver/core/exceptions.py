"""One exception hierarchy for the archiver; callers branch on these types, never on message text."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sequence_archiver.core.reply_answers import BulkArchiveResponse, Problem, ReplyResponse


class SequenceArchiverError(Exception):
    """Base class of every error raised by the archiver."""


class ConfigurationError(SequenceArchiverError):
    """The function's environment is invalid; raised at cold start."""


class InvalidRequestError(SequenceArchiverError):
    """A payload is not an archive request at all (wrong shape, not JSON, too many IDs)."""


class UnknownWorkspaceError(InvalidRequestError):
    """A request names a workspace that REPLY_WORKSPACES does not list: rejected, never archived with another key."""


class UnsupportedEventError(SequenceArchiverError):
    """The event comes from a source this function does not serve (S3, a DynamoDB or Kinesis stream...)."""


class InvalidSequenceIdError(SequenceArchiverError):
    """One value is not a valid Reply sequence ID."""


class ApiKeyError(SequenceArchiverError):
    """The Reply API key could not be obtained from Secrets Manager."""


class ApiKeyUnavailableError(ApiKeyError):
    """Secrets Manager could not be read (throttled, unreachable, access denied)."""


class ApiKeyMalformedError(ApiKeyError):
    """The secret exists but holds no usable API key."""


class ReplyApiError(SequenceArchiverError):
    """A call to Reply did not produce a usable answer."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class RetryableReplyError(ReplyApiError):
    """A transient failure: worth retrying later."""

    def __init__(
        self, message: str, *, http_status: int | None = None, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.retry_after_seconds = retry_after_seconds


class ReplyThrottledError(RetryableReplyError):
    """Reply answered 429 Too Many Requests."""


class ReplyPausedError(ReplyThrottledError):
    """A 429 paused this instance for longer than the invocation has left: no call was made."""


class RateBudgetExhaustedError(RetryableReplyError):
    """Our own pacing would have to wait past the deadline: no call was made."""


class ReplyServerError(RetryableReplyError):
    """Reply answered with a 5xx status."""


class ReplyTransportError(RetryableReplyError):
    """The call timed out or the connection failed before a full answer arrived."""


class ReplyMalformedResponseError(RetryableReplyError):
    """Reply answered 200 with a body that is not the documented Sequence JSON."""


class ReplyUnconfirmedError(RetryableReplyError):
    """Reply answered 2xx to an archive call, but the body does not confirm it; `answer` is that answer, kept.

    A single archive's body says the sequence is not archived, is empty or not an object, or is about
    another ID; a bulk answer names keys that are not the IDs sent. Retried like a transient failure; the
    last such answer becomes the IDs' `unconfirmed` outcome, never `archived`.
    """

    def __init__(self, message: str, *, answer: ReplyResponse | BulkArchiveResponse) -> None:
        super().__init__(message, http_status=answer.http_status)
        self.answer = answer


class ReplyRefusedError(ReplyApiError):
    """Reply answered a list call with a final 4xx (a filter it does not accept, a missing scope)."""

    def __init__(self, message: str, *, http_status: int, problem: Problem | None, reason: str) -> None:
        super().__init__(message, http_status=http_status)
        self.problem = problem
        self.reason = reason


class ReplyAuthenticationError(ReplyApiError):
    """Reply rejected the API key (401), even after re-reading the secret."""


class DeadlineExceededError(SequenceArchiverError):
    """Not enough Lambda time is left to start (or wait for) another call."""


class ResultsPublishError(SequenceArchiverError):
    """Results events could not be put on the event bus after retries."""


class RequestInProgressError(SequenceArchiverError):
    """Another invocation is processing the same request right now; this delivery must be retried."""


class SequenceArchiveIncomplete(SequenceArchiverError):  # noqa: N818 - the name is part of the public contract
    """Some sequence IDs ended `failed`; raised for non-SQS triggers so the caller's retry takes over."""

    def __init__(self, message: str, *, detail: dict[str, object]) -> None:
        super().__init__(message)
        self.detail = detail


class AwsCallTimeoutError(SequenceArchiverError):
    """An AWS call (with its SDK retries) did not finish within the time the invocation had left."""

    def __init__(self, operation: str, waited_seconds: float) -> None:
        super().__init__(f"{operation} did not finish within {waited_seconds:.2f} s")
        self.operation = operation
        self.waited_seconds = waited_seconds


class SnapshotError(SequenceArchiverError):
    """A sequence's contacts could not be recorded before archiving it: under the `required` snapshot policy the
    sequence is not archived (its outcome says why, and it is retried like any failure)."""


class SnapshotStoreError(SnapshotError):
    """The snapshot object could not be written (the bucket or folder is missing, refuses the write, or hangs)."""


class SnapshotListingError(SnapshotError):
    """Reply's contacts listing of the sequence did not give a complete, readable answer."""
