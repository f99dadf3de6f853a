"""Reply API v3 client: auth, timeouts, retries with backoff, Retry-After and 429 handling, the deadline.

Retries are written here rather than with urllib3's `Retry` because each wait must respect the Lambda
deadline and a 429 must pause every later call of this instance, not just the one request.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from sequence_archiver.archive_request import MAX_SEQUENCE_ID
from sequence_archiver.exceptions import (
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyAuthenticationError,
    ReplyMalformedResponseError,
    ReplyServerError,
    ReplyThrottledError,
    ReplyTransportError,
    RetryableReplyError,
)
from sequence_archiver.observability import NoTracing
from sequence_archiver.outcomes import SequenceSummary
from sequence_archiver.rate_limiter import RateLimiter, parse_reset
from sequence_archiver.reply_answers import (
    MAX_ERROR_TEXT,
    ApiCall,
    BulkArchiveResponse,
    BulkItemFailure,
    Problem,
    ReplyResponse,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sequence_archiver.api_key import ApiKeySource
    from sequence_archiver.deadline import Deadline
    from sequence_archiver.observability import Tracing

logger = logging.getLogger(__name__)

_Final = TypeVar("_Final")
_Page = TypeVar("_Page")
USER_AGENT = "reply-sequence-archiver/0.1 (+aws-lambda)"
_KNOWN_STATUSES = {"new": "new", "active": "active", "paused": "paused"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one call is retried inside an invocation."""

    max_attempts: int = 4
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 20.0

    def backoff_ceiling(self, attempt: int) -> float:
        """The exponential backoff's upper bound after failed attempt number `attempt` (1-based), capped."""
        return min(self.backoff_max_seconds, self.backoff_base_seconds * 2.0 ** (attempt - 1))


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Socket timeouts of one HTTP attempt."""

    connect_seconds: float = 3.0
    read_seconds: float = 10.0

    @property
    def minimum_call_seconds(self) -> float:
        """The least time worth starting a call with: one connect timeout."""
        return self.connect_seconds


def _full_jitter(ceiling: float) -> float:
    """A uniformly random wait in [0, ceiling] ("full jitter" backoff)."""
    return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not cryptography


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now())


def parse_problem(body: bytes) -> Problem | None:
    """Read a problem+json body; None when the body is empty or not a JSON object."""
    if not body.strip():
        return None
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None

    def text(key: str) -> str | None:
        value = document.get(key)
        return value[:MAX_ERROR_TEXT] if isinstance(value, str) else None

    errors = document.get("errors")
    return Problem(
        title=text("title"),
        detail=text("detail"),
        code=text("code"),
        has_validation_errors=isinstance(errors, list) and bool(errors),
    )


def parse_sequence(body: bytes, *, sequence_id: int) -> SequenceSummary:
    """Read the Sequence of a 200 answer; ReplyMalformedResponseError when it is not one."""
    try:
        document: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ReplyMalformedResponseError("Reply answered 200 with a body that is not JSON", http_status=200) from None
    if not isinstance(document, dict):
        raise ReplyMalformedResponseError("Reply answered 200 with JSON that is not an object", http_status=200)
    returned_id = document.get("id")
    if returned_id is not None and (isinstance(returned_id, bool) or returned_id != sequence_id):
        raise ReplyMalformedResponseError("Reply answered 200 for a different sequence ID", http_status=200)
    name, status, is_archived = document.get("name"), document.get("status"), document.get("isArchived")
    if isinstance(status, str):
        # Reply's docs show both `paused` and `Paused`: compare case-insensitively, keep unknown values.
        status = _KNOWN_STATUSES.get(status.lower(), status)
    return SequenceSummary(
        name=name if isinstance(name, str) else None,
        status=status if isinstance(status, str) else None,
        is_archived=is_archived if isinstance(is_archived, bool) else None,
    )


def parse_bulk_failures(body: bytes, *, requested: set[int]) -> dict[int, BulkItemFailure]:
    """Read a bulk 200 body (`{"<id>": {"error": ..., "errorDetails": ...}}`); malformed bodies are retryable."""
    try:
        document: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ReplyMalformedResponseError("Reply answered 200 to a bulk archive with a body that is not JSON") from None
    if not isinstance(document, dict):
        raise ReplyMalformedResponseError("Reply answered 200 to a bulk archive with JSON that is not an object")
    failures: dict[int, BulkItemFailure] = {}
    for key, item in document.items():
        sequence_id = int(key) if isinstance(key, str) and key.isascii() and key.isdigit() else None
        if sequence_id not in requested:
            logger.warning("bulk archive answered for an id that was not sent", extra={"key": str(key)[:20]})
            continue
        error = item.get("error") if isinstance(item, dict) else None
        details = item.get("errorDetails") if isinstance(item, dict) else None
        failures[sequence_id] = BulkItemFailure(
            error=error[:MAX_ERROR_TEXT] if isinstance(error, str) and error else "unknown",
            details=details[:MAX_ERROR_TEXT] if isinstance(details, str) else None,
        )
    return failures


@dataclass(frozen=True, slots=True)
class ListAnswer(Generic[_Page]):
    """A final answer to a list call: 2xx with its parsed page, or a 4xx with its problem."""

    http_status: int
    page: _Page | None = None
    problem: Problem | None = None


@dataclass(frozen=True, slots=True)
class _HttpAnswer:
    status: int
    body: bytes
    retry_after: str | None
    rate_limit_remaining: str | None
    rate_limit_reset: str | None


class ReplyClient:
    """Calls Reply API v3 for one API key; safe to reuse across invocations of one Lambda instance."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key_source: ApiKeySource,
        retry_policy: RetryPolicy,
        timeouts: Timeouts,
        rate_limiter: RateLimiter | None = None,
        http: urllib3.PoolManager | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float], float] = _full_jitter,
        on_api_call: Callable[[ApiCall], None] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._tracing: Tracing = tracing or NoTracing()
        self._api_key_source = api_key_source
        self._retry_policy = retry_policy
        self._timeouts = timeouts
        self._limiter = rate_limiter or RateLimiter([], clock=clock)
        # TLS certificates are always verified (urllib3's default, stated here so no one turns it off).
        self._http = http or urllib3.PoolManager(num_pools=2, maxsize=4, retries=False, cert_reqs="CERT_REQUIRED")
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._on_api_call = on_api_call or (lambda _call: None)

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """POST /v3/sequences/{id}/archive, retrying transient failures within the deadline."""
        return self._sequence_action("ArchiveSequence", "archive", sequence_id, deadline)

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """POST /v3/sequences/{id}/pause (idempotent in Reply), with the same retries as archiving."""
        return self._sequence_action("PauseSequence", "pause", sequence_id, deadline)

    def _sequence_action(self, operation: str, action: str, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """POST /v3/sequences/{id}/{action}: 2xx answers carry the Sequence, 4xx a problem."""
        _require_sequence_id(sequence_id)

        def interpret(answer: _HttpAnswer) -> ReplyResponse:
            if 200 <= answer.status < 300:
                return ReplyResponse(answer.status, sequence=parse_sequence(answer.body, sequence_id=sequence_id))
            return ReplyResponse(answer.status, problem=parse_problem(answer.body))

        path = f"/v3/sequences/{sequence_id}/{action}"
        return self._call_with_retries(operation, path, None, interpret, deadline, sequence_id=sequence_id)

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        """POST /v3/sequences/archive with `{"ids": [...]}`; only failed items come back."""
        for sequence_id in sequence_ids:
            _require_sequence_id(sequence_id)
        requested = set(sequence_ids)
        body = json.dumps({"ids": sequence_ids}, separators=(",", ":")).encode()

        def interpret(answer: _HttpAnswer) -> BulkArchiveResponse:
            if 200 <= answer.status < 300:
                return BulkArchiveResponse(
                    answer.status, failures=parse_bulk_failures(answer.body, requested=requested)
                )
            return BulkArchiveResponse(answer.status, problem=parse_problem(answer.body))

        return self._call_with_retries("BulkArchiveSequences", "/v3/sequences/archive", body, interpret, deadline)

    def list_sequences(
        self, query: Mapping[str, str], deadline: Deadline, parse_page: Callable[[bytes], _Page]
    ) -> ListAnswer[_Page]:
        """GET /v3/sequences with filters and paging; a 2xx body goes through `parse_page`, whose
        ReplyMalformedResponseError is retried like any transient failure."""

        def interpret(answer: _HttpAnswer) -> ListAnswer[_Page]:
            if 200 <= answer.status < 300:
                return ListAnswer(answer.status, page=parse_page(answer.body))
            return ListAnswer(answer.status, problem=parse_problem(answer.body))

        path = "/v3/sequences" + ("?" + urlencode(query) if query else "")
        return self._call_with_retries("GetSequences", path, None, interpret, deadline, method="GET")

    def _call_with_retries(
        self,
        operation: str,
        path: str,
        body: bytes | None,
        interpret: Callable[[_HttpAnswer], _Final],
        deadline: Deadline,
        *,
        sequence_id: int | None = None,
        method: str = "POST",
    ) -> _Final:
        key_refreshed = False
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_budget(deadline)
            try:
                return interpret(self._check_transient(self._attempt(operation, method, path, body, deadline)))
            except _Unauthorized:
                if key_refreshed:
                    raise ReplyAuthenticationError(
                        "Reply rejected the API key (401) even after re-reading the secret", http_status=401
                    ) from None
                key_refreshed = True
                attempt -= 1  # the re-read after a possible rotation is not a retry of the call
                logger.warning(
                    "reply rejected the api key; re-reading the secret once",
                    extra={"operation": operation, "sequence_id": sequence_id},
                )
                self._api_key_source.api_key(refresh=True, deadline=deadline)
            except RetryableReplyError as exc:
                delay = self._retry_delay(attempt, exc)
                if delay is None or not deadline.allows(delay + self._timeouts.minimum_call_seconds):
                    raise
                logger.info(
                    "retrying reply call",
                    extra={
                        "operation": operation,
                        "sequence_id": sequence_id,
                        "attempt": attempt,
                        "http_status": exc.http_status,
                        "delay_seconds": round(delay, 3),
                        "reason": type(exc).__name__,
                    },
                )
                self._sleep(delay)

    def _retry_delay(self, attempt: int, error: RetryableReplyError) -> float | None:
        """Seconds to wait before the next attempt, or None when attempts are used up."""
        policy = self._retry_policy
        if attempt >= policy.max_attempts:
            return None
        backoff = self._jitter(policy.backoff_ceiling(attempt))
        return max(backoff, self._limiter.wait_seconds(), error.retry_after_seconds or 0.0)

    def _wait_for_budget(self, deadline: Deadline) -> None:
        """Wait for the rate budget (and any 429 pause), unless that outlasts the deadline."""
        wait = self._limiter.wait_seconds()
        if not deadline.allows(wait + self._timeouts.minimum_call_seconds):
            if self._limiter.paused_seconds > 0:
                raise ReplyThrottledError(
                    f"Reply asked to wait {wait:.0f}s, longer than the invocation has left",
                    http_status=429,
                    retry_after_seconds=wait,
                )
            if wait > 0:
                raise RateBudgetExhaustedError(
                    f"the rate budget frees up in {wait:.1f}s, after this invocation ends", retry_after_seconds=wait
                )
            raise DeadlineExceededError("not enough time left in this invocation to call Reply")
        if wait > 0:
            self._sleep(wait)

    def _attempt(self, operation: str, method: str, path: str, body: bytes | None, deadline: Deadline) -> _HttpAnswer:
        api_key = self._api_key_source.api_key(deadline=deadline)
        budget = min(self._timeouts.connect_seconds + self._timeouts.read_seconds, deadline.remaining_seconds())
        timeout = urllib3.Timeout(connect=min(self._timeouts.connect_seconds, budget), read=budget)
        headers = {
            "Authorization": "Bearer " + api_key.get_secret_value(),
            "Accept": "application/json, application/problem+json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        self._limiter.record_call()
        started = self._clock()
        status: int | None = None
        try:
            with self._tracing.span(f"## reply.{operation}", operation=operation, method=method, path=path):
                response = self._http.request(
                    method,
                    self._base_url + path,
                    body=body,
                    headers=headers,
                    timeout=timeout,
                    retries=False,
                    redirect=False,
                )
            status = response.status
            answer = _HttpAnswer(
                status=response.status,
                body=response.data,
                retry_after=response.headers.get("Retry-After"),
                rate_limit_remaining=response.headers.get("x-rate-limit-remaining"),
                rate_limit_reset=response.headers.get("x-rate-limit-reset"),
            )
        except Urllib3HTTPError as exc:
            raise ReplyTransportError(f"no answer from Reply ({type(exc).__name__})", http_status=None) from None
        finally:
            self._on_api_call(ApiCall(operation, status, (self._clock() - started) * 1000.0))
        self._observe_rate_limit_headers(answer)
        return answer

    def _observe_rate_limit_headers(self, answer: _HttpAnswer) -> None:
        remaining = answer.rate_limit_remaining
        if remaining is not None and remaining.strip().isdigit():
            self._limiter.observe(remaining=int(remaining), reset_epoch_seconds=parse_reset(answer.rate_limit_reset))

    def _check_transient(self, answer: _HttpAnswer) -> _HttpAnswer:
        """Raise for answers that are worth retrying (401 is handled by the caller); pass the rest on."""
        status = answer.status
        if status == 401:
            raise _Unauthorized
        if status == 429:
            wait = parse_retry_after(answer.retry_after)
            # The whole instance pauses, not just this call: every later call would be refused too.
            self._limiter.pause(wait if wait is not None else self._retry_policy.backoff_base_seconds)
            raise ReplyThrottledError("Reply rate limit exceeded (429)", http_status=429, retry_after_seconds=wait)
        if status >= 500:
            problem = parse_problem(answer.body)
            reason = problem.short_reason() if problem else None
            raise ReplyServerError(
                f"Reply answered {status}" + (f" ({reason})" if reason else ""),
                http_status=status,
                retry_after_seconds=parse_retry_after(answer.retry_after),
            )
        return answer


def _require_sequence_id(sequence_id: int) -> None:
    """Only validated integers ever reach a URL or a request body."""
    if isinstance(sequence_id, bool) or not isinstance(sequence_id, int) or not 1 <= sequence_id <= MAX_SEQUENCE_ID:
        raise TypeError("sequence IDs must be validated integers in 1..2147483647")


class _Unauthorized(Exception):  # noqa: N818 - internal signal, never escapes the client
    """A 401 answer; the client decides whether to re-read the key or give up."""
