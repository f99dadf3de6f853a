"""Reply API v3 client: auth, timeouts, retries with backoff, Retry-After and 429 handling, the deadline.

Retries are written here rather than with urllib3's `Retry` because each wait must respect the Lambda
deadline and a 429 must pause every later call of this instance, not just the one request.

Reply's answers are treated as untrusted input:
- every attempt ends within connect + read timeout and by the deadline, however slowly the answer
  arrives (http_deadline's watchdog; urllib3's read timeout alone applies to each socket read) and
  however long name resolution hangs (http_deadline's bounded resolver, counted in the connect timeout);
- a body over MAX_RESPONSE_BYTES is not read (a 2xx is then malformed, retried); huge numbers and deep
  nesting in JSON make a malformed answer, never a crash;
- waits asked for by headers are capped (rate_limiter.MAX_SERVER_WAIT_SECONDS); garbage is ignored;
- every text copied from an answer goes through reply_text.clean: bounded, the key redacted, encodable;
- a 2xx to an archive is believed only when it says so (read_archive_answer, read_bulk_answer): one that
  contradicts itself is retried like a transient failure, then raised as ReplyUnconfirmedError holding it.
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

from sequence_archiver import reply_text
from sequence_archiver.archive_request import MAX_SEQUENCE_ID
from sequence_archiver.exceptions import (
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyAuthenticationError,
    ReplyMalformedResponseError,
    ReplyPausedError,
    ReplyServerError,
    ReplyThrottledError,
    ReplyTransportError,
    ReplyUnconfirmedError,
    RetryableReplyError,
)
from sequence_archiver.header_value import check_header_safe
from sequence_archiver.http_deadline import PROCESS_WATCHDOG, watched_pool_manager
from sequence_archiver.observability import NoTracing
from sequence_archiver.outcomes import SequenceSummary
from sequence_archiver.rate_limiter import (
    MAX_SERVER_WAIT_SECONDS,
    RateLimiter,
    bounded_wait,
    parse_remaining,
    parse_reset,
)
from sequence_archiver.reply_answers import (
    MAX_ERROR_POINTERS,
    MAX_ERROR_TEXT,
    MAX_NAME_TEXT,
    MAX_POINTER_TEXT,
    MAX_STATUS_TEXT,
    ApiCall,
    BulkArchiveResponse,
    BulkItemFailure,
    Problem,
    ReplyResponse,
    ReplyWait,
    WaitReason,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from pydantic import SecretStr

    from sequence_archiver.api_key import ApiKeySource
    from sequence_archiver.deadline import Deadline
    from sequence_archiver.http_deadline import CallWatchdog
    from sequence_archiver.observability import Tracing

logger = logging.getLogger(__name__)

_Final = TypeVar("_Final")
_Page = TypeVar("_Page")
_Archived = TypeVar("_Archived", ReplyResponse, BulkArchiveResponse)
USER_AGENT = "reply-sequence-archiver/0.1 (+aws-lambda)"
_KNOWN_STATUSES = {"new": "new", "active": "active", "paused": "paused"}
MAX_RESPONSE_BYTES = 1024 * 1024  # a Sequence or a bulk answer is a few KB; more is not an answer
MAX_LIST_RESPONSE_BYTES = 8 * 1024 * 1024  # a page of up to 1,000 list items
_READ_CHUNK_BYTES = 64 * 1024
_MAX_RETRY_AFTER_CHARS = 64  # an HTTP-date is 29 characters
_MAX_BULK_KEY_DIGITS = 10  # sequence IDs fit in 10 digits; int() of 5,000 digits raises
_FOREIGN_KEYS_LOGGED = 5  # keys of a bulk answer that are not IDs sent: how many are logged
_FOREIGN_KEY_TEXT = 20  # characters of each such key logged
_NOT_JSON = object()


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
    """Time limits of one HTTP attempt: its connect, each read, the whole attempt, and the least time to start one.

    The whole attempt (connect, send, headers, body) ends within `connect_seconds + read_seconds` and
    by the deadline; each limit shrinks to the time left, so a short invocation still tries.
    """

    connect_seconds: float = 3.0
    read_seconds: float = 10.0
    minimum_call_seconds: float = 0.25


def _full_jitter(ceiling: float) -> float:
    """A uniformly random wait in [0, ceiling] ("full jitter" backoff)."""
    return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not cryptography


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), at most MAX_SERVER_WAIT_SECONDS; None
    when absent or unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        # Compare lengths before converting: 400 digits would be float('inf'), 5,000 make int() raise.
        if len(digits) > len(str(int(MAX_SERVER_WAIT_SECONDS))):
            return MAX_SERVER_WAIT_SECONDS
        return bounded_wait(float(digits))
    if len(text) > _MAX_RETRY_AFTER_CHARS:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
        return bounded_wait(moment.timestamp() - now())
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _json_document(body: bytes) -> Any:
    """The parsed body, or _NOT_JSON: broken JSON, bad UTF-8, 5,000-digit numbers and deep nesting alike."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        return _NOT_JSON


def parse_problem(body: bytes, *, secret: str | None = None) -> Problem | None:
    """Read a problem+json body, its text cleaned (`secret` redacted); None when empty or not a JSON object."""
    if not body.strip():
        return None
    document = _json_document(body)
    if not isinstance(document, dict):
        return None

    def text(key: str) -> str | None:
        value = document.get(key)
        return reply_text.clean(value, secret=secret, limit=MAX_ERROR_TEXT) if isinstance(value, str) else None

    errors = document.get("errors")
    return Problem(
        title=text("title"),
        detail=text("detail"),
        code=text("code"),
        has_validation_errors=isinstance(errors, list) and bool(errors),
        error_pointers=_error_pointers(errors, secret=secret),
    )


def _error_pointers(errors: object, *, secret: str | None) -> tuple[str, ...]:
    """The `pointer` of each of a validation problem's `errors[]` (`/ids`, `id`), cleaned and bounded."""
    if not isinstance(errors, list):
        return ()
    pointers = [
        reply_text.clean(error["pointer"], secret=secret, limit=MAX_POINTER_TEXT)
        for error in errors[:MAX_ERROR_POINTERS]
        if isinstance(error, dict) and isinstance(error.get("pointer"), str)
    ]
    return tuple(pointers)


def parse_sequence(body: bytes, *, sequence_id: int, secret: str | None = None) -> SequenceSummary:
    """Read the Sequence of a 200 answer to a pause (name and status cleaned); ReplyMalformedResponseError when it
    is not one."""
    document = _json_document(body)
    if document is _NOT_JSON:
        raise ReplyMalformedResponseError("Reply answered 200 with a body that is not JSON", http_status=200)
    if not isinstance(document, dict):
        raise ReplyMalformedResponseError("Reply answered 200 with JSON that is not an object", http_status=200)
    returned_id = document.get("id")
    if returned_id is not None and not _is_the_id(returned_id, sequence_id):
        raise ReplyMalformedResponseError("Reply answered 200 for a different sequence ID", http_status=200)
    return _sequence_summary(document, secret=secret)


def read_archive_answer(status: int, body: bytes, *, sequence_id: int, secret: str | None = None) -> ReplyResponse:
    """A 2xx to POST /v3/sequences/{id}/archive: the Sequence, and `unconfirmed` (why) when it does not confirm the
    archive.

    It confirms when it is a JSON object whose `id` is the requested ID and whose `isArchived` is true (or,
    without a boolean `isArchived`, whose `status` is `archived`). Reply's spec: an archived sequence keeps its
    status (new, active, paused) and its `isArchived` becomes true; the Sequence Reply answers with is the
    archived one. An empty body, JSON that is not an object, no `id` or another one, and `isArchived` false
    confirm nothing. A body that is not JSON at all (cut off, bad UTF-8, 5,000-digit numbers) was not read:
    ReplyMalformedResponseError, as for any 2xx.
    """

    doubt: str | None
    sequence: SequenceSummary | None
    if not body.strip():
        doubt, sequence = "with an empty body", None
    else:
        document = _json_document(body)
        if document is _NOT_JSON:
            raise ReplyMalformedResponseError(
                f"Reply answered {status} with a body that is not JSON", http_status=status
            )
        doubt, sequence = _archive_doubt(document, sequence_id, secret=secret)
    if doubt is None:
        return ReplyResponse(status, sequence=sequence)
    return ReplyResponse(status, sequence=sequence, unconfirmed=f"Reply answered {status} to the archive {doubt}")


def _archive_doubt(
    document: object, sequence_id: int, *, secret: str | None
) -> tuple[str | None, SequenceSummary | None]:
    """Why an archive's 2xx JSON does not confirm it (None when it does), and its Sequence when it is this one."""
    if not isinstance(document, dict):
        return "with JSON that is not an object", None
    returned_id = document.get("id")
    if returned_id is None:
        return "without the sequence's id", None
    if not _is_the_id(returned_id, sequence_id):
        return "about another sequence", None  # that sequence's name and status are not this one's: not kept
    sequence = _sequence_summary(document, secret=secret)
    if sequence.is_archived is False:
        return "saying the sequence is not archived (isArchived false)", sequence
    if sequence.is_archived is None and (sequence.status or "").lower() != "archived":
        return "without saying the sequence is archived (no isArchived)", sequence
    return None, sequence


def _is_the_id(value: object, sequence_id: int) -> bool:
    """True when a body's `id` is the requested ID: an integer (not a boolean, a string or a float) equal to it."""
    return isinstance(value, int) and not isinstance(value, bool) and value == sequence_id


def _sequence_summary(document: dict[str, Any], *, secret: str | None) -> SequenceSummary:
    """The fields of a Sequence that results events carry, cleaned; unknown status values kept, short."""
    name, status, is_archived = document.get("name"), document.get("status"), document.get("isArchived")
    if isinstance(status, str):
        status = reply_text.clean(status, secret=secret, limit=MAX_STATUS_TEXT)
        # Reply's docs show both `paused` and `Paused`: compare case-insensitively, keep unknown values.
        status = _KNOWN_STATUSES.get(status.lower(), status)
    return SequenceSummary(
        name=reply_text.clean(name, secret=secret, limit=MAX_NAME_TEXT) if isinstance(name, str) else None,
        status=status if isinstance(status, str) else None,
        is_archived=is_archived if isinstance(is_archived, bool) else None,
    )


def read_bulk_answer(
    status: int, body: bytes, *, requested: Collection[int], secret: str | None = None
) -> BulkArchiveResponse:
    """A 2xx to a bulk archive (`{"<id>": {"error": ..., "errorDetails": ...}}`, only failed items), its text cleaned.

    Leaving an ID out says it was archived only when every key is an ID that was sent. A key that is not (`" 7001"`,
    `"07001"`, an ID not sent, 5,000 digits) makes the answer `unconfirmed`: its keys are logged (a few, short)
    and counted, the items of the IDs sent are kept, and the IDs it leaves out are not known to be archived. An
    empty body or JSON that is not an object confirms nothing either; a body that is not JSON is malformed.
    """
    if not body.strip():
        return BulkArchiveResponse(status, unconfirmed=f"Reply answered {status} to a bulk archive with an empty body")
    document = _json_document(body)
    if document is _NOT_JSON:
        raise ReplyMalformedResponseError(
            f"Reply answered {status} to a bulk archive with a body that is not JSON", http_status=status
        )
    if not isinstance(document, dict):
        return BulkArchiveResponse(
            status, unconfirmed=f"Reply answered {status} to a bulk archive with JSON that is not an object"
        )
    failures: dict[int, BulkItemFailure] = {}
    foreign: list[str] = []
    for key, item in document.items():
        sequence_id = _bulk_key(key)
        if sequence_id is None or sequence_id not in requested:
            foreign.append(key)
            continue
        failures[sequence_id] = _bulk_item(item, secret=secret)
    if not foreign:
        return BulkArchiveResponse(status, failures=failures)
    logger.warning(
        "bulk archive answered for keys that are not ids sent",
        extra={
            "count": len(foreign),
            "keys": [
                reply_text.clean(key, secret=secret, limit=_FOREIGN_KEY_TEXT) for key in foreign[:_FOREIGN_KEYS_LOGGED]
            ],
        },
    )
    return BulkArchiveResponse(
        status,
        failures=failures,
        unconfirmed=f"Reply's bulk answer named {len(foreign)} key(s) that are not IDs sent",
        foreign_keys=len(foreign),
    )


def _bulk_item(item: object, *, secret: str | None) -> BulkItemFailure:
    """One failed item of a bulk answer; an item that is not an object has no error (a refusal without a reason)."""
    error = item.get("error") if isinstance(item, dict) else None
    details = item.get("errorDetails") if isinstance(item, dict) else None
    return BulkItemFailure(
        error=reply_text.clean(error, secret=secret, limit=MAX_ERROR_TEXT) if isinstance(error, str) else "",
        details=reply_text.clean(details, secret=secret, limit=MAX_ERROR_TEXT) if isinstance(details, str) else None,
    )


def _bulk_key(key: str) -> int | None:
    """A bulk answer's key as a sequence ID: up to 10 ASCII digits as Reply writes an integer (no sign, space or
    leading zero; int() of 5,000 digits would raise)."""
    if key.isascii() and key.isdigit() and len(key) <= _MAX_BULK_KEY_DIGITS and not key.startswith("0"):
        return int(key)
    return None


@dataclass(frozen=True, slots=True)
class ListAnswer(Generic[_Page]):
    """A final answer to a list call: 2xx with its parsed page, or a 4xx with its problem."""

    http_status: int
    page: _Page | None = None
    problem: Problem | None = None


@dataclass(frozen=True, slots=True)
class _HttpAnswer:
    status: int
    body: bytes  # empty when the body was too large to read
    retry_after: str | None
    rate_limit_remaining: str | None
    rate_limit_reset: str | None
    api_key: SecretStr  # the key this attempt sent, to redact from Reply's text (its repr shows no key)

    @property
    def secret(self) -> str:
        return self.api_key.get_secret_value()


class ReplyClient:
    """Calls Reply API v3 for one API key; safe to reuse across invocations of one Lambda instance.

    An injected `http` pool should come from http_deadline.watched_pool_manager: a plain PoolManager
    still works, but then only each socket read is bounded, not the whole attempt.
    """

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
        on_unconfirmed: Callable[[ReplyResponse | BulkArchiveResponse], None] | None = None,
        on_wait: Callable[[ReplyWait], None] | None = None,
        tracing: Tracing | None = None,
        watchdog: CallWatchdog | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._tracing: Tracing = tracing or NoTracing()
        self._api_key_source = api_key_source
        self._retry_policy = retry_policy
        self._timeouts = timeouts
        self._limiter = rate_limiter or RateLimiter([], clock=clock)
        # TLS certificates are always verified (urllib3's default, stated here so no one turns it off). The
        # watched pool lets the watchdog end an attempt whose answer is still arriving at its deadline.
        self._http = http or watched_pool_manager(num_pools=2, maxsize=4, retries=False, cert_reqs="CERT_REQUIRED")
        self._watchdog = watchdog or PROCESS_WATCHDOG
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._on_api_call = on_api_call or (lambda _call: None)
        self._on_unconfirmed = on_unconfirmed or (lambda _answer: None)
        self._on_wait = on_wait or (lambda _wait: None)  # told before each pause, with its reason

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """POST /v3/sequences/{id}/archive, retrying transient failures within the deadline.

        A 2xx is returned only when its body confirms the archive (read_archive_answer); one that does not is
        retried like a transient failure, and the last one raises ReplyUnconfirmedError holding it.
        """

        def read(answer: _HttpAnswer) -> ReplyResponse:
            response = read_archive_answer(answer.status, answer.body, sequence_id=sequence_id, secret=answer.secret)
            return self._confirmed(response)

        return self._sequence_action("ArchiveSequence", "archive", sequence_id, deadline, read)

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """POST /v3/sequences/{id}/pause (idempotent in Reply), with the same retries as archiving."""

        def read(answer: _HttpAnswer) -> ReplyResponse:
            sequence = parse_sequence(answer.body, sequence_id=sequence_id, secret=answer.secret)
            return ReplyResponse(answer.status, sequence=sequence)

        return self._sequence_action("PauseSequence", "pause", sequence_id, deadline, read)

    def _sequence_action(
        self,
        operation: str,
        action: str,
        sequence_id: int,
        deadline: Deadline,
        read_success: Callable[[_HttpAnswer], ReplyResponse],
    ) -> ReplyResponse:
        """POST /v3/sequences/{id}/{action}: a 2xx answer is read by `read_success`, a 4xx carries a problem."""
        _require_sequence_id(sequence_id)

        def interpret(answer: _HttpAnswer) -> ReplyResponse:
            if 200 <= answer.status < 300:
                return read_success(answer)
            return ReplyResponse(answer.status, problem=parse_problem(answer.body, secret=answer.secret))

        path = f"/v3/sequences/{sequence_id}/{action}"
        return self._call_with_retries(operation, path, None, interpret, deadline, sequence_id=sequence_id)

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        """POST /v3/sequences/archive with `{"ids": [...]}`; only failed items come back.

        A 2xx whose keys are not all IDs sent (or that is empty, or not an object) is retried like a transient
        failure; the last one raises ReplyUnconfirmedError holding it (read_bulk_answer).
        """
        for sequence_id in sequence_ids:
            _require_sequence_id(sequence_id)
        requested = frozenset(sequence_ids)
        body = json.dumps({"ids": sequence_ids}, separators=(",", ":")).encode()

        def interpret(answer: _HttpAnswer) -> BulkArchiveResponse:
            if 200 <= answer.status < 300:
                return self._confirmed(
                    read_bulk_answer(answer.status, answer.body, requested=requested, secret=answer.secret)
                )
            return BulkArchiveResponse(answer.status, problem=parse_problem(answer.body, secret=answer.secret))

        return self._call_with_retries("BulkArchiveSequences", "/v3/sequences/archive", body, interpret, deadline)

    def _confirmed(self, response: _Archived) -> _Archived:
        """The answer when it confirms the archive; else it is counted and ReplyUnconfirmedError (retryable) raised."""
        if response.unconfirmed is None:
            return response
        self._on_unconfirmed(response)
        raise ReplyUnconfirmedError(response.unconfirmed, answer=response)

    def list_sequences(
        self, query: Mapping[str, str], deadline: Deadline, parse_page: Callable[[bytes], _Page]
    ) -> ListAnswer[_Page]:
        """GET /v3/sequences with filters and paging; a 2xx body goes through `parse_page`, whose
        ReplyMalformedResponseError is retried like any transient failure."""

        def interpret(answer: _HttpAnswer) -> ListAnswer[_Page]:
            if 200 <= answer.status < 300:
                return ListAnswer(answer.status, page=parse_page(answer.body))
            return ListAnswer(answer.status, problem=parse_problem(answer.body, secret=answer.secret))

        path = "/v3/sequences" + ("?" + urlencode(query) if query else "")
        max_bytes = max(self._max_response_bytes, MAX_LIST_RESPONSE_BYTES)
        return self._call_with_retries(
            "GetSequences", path, None, interpret, deadline, method="GET", max_bytes=max_bytes
        )

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
        max_bytes: int | None = None,
    ) -> _Final:
        key_refreshed = False
        attempt = 0
        limit = max_bytes or self._max_response_bytes
        while True:
            attempt += 1
            self._wait_for_budget(operation, deadline)
            try:
                answer = self._attempt(operation, method, path, body, deadline, max_bytes=limit)
                return interpret(self._check_transient(answer))
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
                pause = self._retry_delay(attempt, exc)
                if pause is None or not deadline.allows(pause[0] + self._timeouts.minimum_call_seconds):
                    raise
                delay, reason = pause
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
                self._on_wait(ReplyWait(delay, reason, operation, exc.http_status))
                self._sleep(delay)

    def _retry_delay(self, attempt: int, error: RetryableReplyError) -> tuple[float, WaitReason] | None:
        """Seconds to wait before the next attempt and why (the longest wait: backoff, budget or Reply's word),
        or None when attempts are used up."""
        policy = self._retry_policy
        if attempt >= policy.max_attempts:
            return None
        backoff = self._jitter(policy.backoff_ceiling(attempt))
        budget, paused = self._limiter.next_wait()
        waits = [
            (backoff, WaitReason.BACKOFF),
            (budget, WaitReason.RETRY_AFTER if paused else WaitReason.RATE_BUDGET),
            (error.retry_after_seconds or 0.0, WaitReason.RETRY_AFTER),
        ]
        return max(waits, key=lambda wait: wait[0])

    def _wait_for_budget(self, operation: str, deadline: Deadline) -> None:
        """Wait for the rate budget (and any 429 pause), unless that outlasts the deadline."""
        wait, paused = self._limiter.next_wait()
        if not deadline.allows(wait + self._timeouts.minimum_call_seconds):
            if self._limiter.paused_seconds > 0:
                raise ReplyPausedError(
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
            self._on_wait(ReplyWait(wait, WaitReason.RETRY_AFTER if paused else WaitReason.RATE_BUDGET, operation))
            self._sleep(wait)

    def _attempt(
        self, operation: str, method: str, path: str, body: bytes | None, deadline: Deadline, *, max_bytes: int
    ) -> _HttpAnswer:
        api_key = self._api_key_source.api_key(deadline=deadline)
        # Any key source's key is checked before the budget is spent: one no header can carry is a request-wide
        # ApiKeyMalformedError here, not a UnicodeEncodeError (or a control character sent) per call.
        check_header_safe(api_key.get_secret_value())
        timeouts = self._timeouts
        # The whole attempt ends within this budget (the watchdog sees to it); each timeout fits inside it.
        budget = min(timeouts.connect_seconds + timeouts.read_seconds, deadline.remaining_seconds())
        if budget <= 0:
            raise DeadlineExceededError("not enough time left in this invocation to call Reply")
        timeout = urllib3.Timeout(
            connect=min(timeouts.connect_seconds, budget), read=min(timeouts.read_seconds, budget)
        )
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
            with (
                self._tracing.span(f"## reply.{operation}", operation=operation, method=method, path=path),
                self._watchdog.watch(budget) as call_watch,
            ):
                try:
                    response = self._http.request(
                        method,
                        self._base_url + path,
                        body=body,
                        headers=headers,
                        timeout=timeout,
                        retries=False,
                        redirect=False,
                        preload_content=False,
                        decode_content=False,  # we never ask for compression: no decompression bombs
                    )
                    status = response.status
                    data = _read_at_most(response, max_bytes)
                except (Urllib3HTTPError, OSError) as exc:
                    status = None
                    raise ReplyTransportError(
                        f"no answer from Reply ({_transport_reason(exc, timed_out=call_watch.fired)})", http_status=None
                    ) from None
            if call_watch.fired:  # the answer may look complete, but the watchdog cut the connection
                status = None
                raise ReplyTransportError("no answer from Reply (the attempt's time ran out)", http_status=None)
        finally:
            self._on_api_call(ApiCall(operation, status, (self._clock() - started) * 1000.0))
        answer = _HttpAnswer(
            status=response.status,
            body=data if data is not None else b"",
            retry_after=response.headers.get("Retry-After"),
            rate_limit_remaining=response.headers.get("x-rate-limit-remaining"),
            rate_limit_reset=response.headers.get("x-rate-limit-reset"),
            api_key=api_key,
        )
        self._observe_rate_limit_headers(answer)
        if data is None and 200 <= answer.status < 300:
            raise ReplyMalformedResponseError(
                f"Reply answered {answer.status} with a body larger than {max_bytes} bytes", http_status=answer.status
            )
        return answer

    def _observe_rate_limit_headers(self, answer: _HttpAnswer) -> None:
        remaining = parse_remaining(answer.rate_limit_remaining)
        if remaining is not None:
            self._limiter.observe(remaining=remaining, reset_epoch_seconds=parse_reset(answer.rate_limit_reset))

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
            problem = parse_problem(answer.body, secret=answer.secret)
            reason = problem.short_reason() if problem else None
            raise ReplyServerError(
                f"Reply answered {status}" + (f" ({reason})" if reason else ""),
                http_status=status,
                retry_after_seconds=parse_retry_after(answer.retry_after),
            )
        return answer


def _read_at_most(response: urllib3.BaseHTTPResponse, limit: int) -> bytes | None:
    """The whole body, or None when it is longer than `limit` bytes (then the connection is closed, not reused)."""
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = response.read(min(_READ_CHUNK_BYTES, limit + 1 - size), decode_content=False)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        response.close()
        return None
    finally:
        response.release_conn()


def _transport_reason(error: Exception, *, timed_out: bool) -> str:
    """Why an attempt got no answer, in words that hold nothing Reply sent."""
    return "the attempt's time ran out" if timed_out else type(error).__name__


def _require_sequence_id(sequence_id: int) -> None:
    """Only validated integers ever reach a URL or a request body."""
    if isinstance(sequence_id, bool) or not isinstance(sequence_id, int) or not 1 <= sequence_id <= MAX_SEQUENCE_ID:
        raise TypeError("sequence IDs must be validated integers in 1..2147483647")


class _Unauthorized(Exception):  # noqa: N818 - internal signal, never escapes the client
    """A 401 answer; the client decides whether to re-read the key or give up."""
