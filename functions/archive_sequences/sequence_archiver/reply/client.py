"""Reply API v3 client: auth, timeouts, retries with backoff, Retry-After and 429 handling, the deadline.

Retries are written here rather than with urllib3's `Retry` because each wait must respect the Lambda
deadline and a 429 must pause every later call of this instance, not just the one request.

Reply's answers are treated as untrusted input:
- every attempt ends within connect + read timeout and by the deadline, however slowly the answer
  arrives (http_deadline's watchdog; urllib3's read timeout alone applies to each socket read) and
  however long name resolution hangs (http_deadline's bounded resolver, counted in the connect timeout);
- a body over MAX_RESPONSE_BYTES is not read (a 2xx is then malformed, retried);
- what an answer says is read in parsing.py (bounded, cleaned, the key redacted); a 2xx to an archive that does
  not confirm it is retried like a transient failure, then raised as ReplyUnconfirmedError holding it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from sequence_archiver.core.archive_request import MAX_SEQUENCE_ID
from sequence_archiver.core.exceptions import (
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyAuthenticationError,
    ReplyMalformedResponseError,
    ReplyPausedError,
    ReplyRefusedError,
    ReplyServerError,
    ReplyThrottledError,
    ReplyTransportError,
    ReplyUnconfirmedError,
    RetryableReplyError,
)
from sequence_archiver.core.rate_budgets import key_fingerprint
from sequence_archiver.core.reply_answers import (
    ApiCall,
    BulkArchiveResponse,
    Problem,
    ReplyResponse,
    ReplyWait,
    WaitReason,
)
from sequence_archiver.observability import NoTracing
from sequence_archiver.reply.header_value import check_header_safe
from sequence_archiver.reply.http_deadline import PROCESS_WATCHDOG, watched_pool_manager
from sequence_archiver.reply.parsing import (
    parse_problem,
    parse_retry_after,
    parse_sequence,
    read_archive_answer,
    read_bulk_answer,
)
from sequence_archiver.reply.rate_limiter import (
    RateLimiter,
    parse_remaining,
    parse_reset,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from pydantic import SecretStr

    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.observability import Tracing
    from sequence_archiver.reply.api_key import ApiKeySource
    from sequence_archiver.reply.http_deadline import CallWatchdog

logger = logging.getLogger(__name__)

_Final = TypeVar("_Final")
_Page = TypeVar("_Page")
_Archived = TypeVar("_Archived", ReplyResponse, BulkArchiveResponse)
USER_AGENT = "reply-sequence-archiver/0.1 (+aws-lambda)"
MAX_RESPONSE_BYTES = 1024 * 1024  # a Sequence or a bulk answer is a few KB; more is not an answer
MAX_LIST_RESPONSE_BYTES = 8 * 1024 * 1024  # a page of up to 1,000 list items
_READ_CHUNK_BYTES = 64 * 1024


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


@dataclass(frozen=True, slots=True)
class ListAnswer(Generic[_Page]):
    """A final answer to a GET (or list) call: 2xx with its parsed page, or a 4xx with its problem."""

    http_status: int
    page: _Page | None = None
    problem: Problem | None = None

    def refused(self, call: str) -> ReplyRefusedError:
        """The error for a 4xx answer to `call` ("the list call"), with Reply's reason."""
        problem = self.problem
        reason = (problem.short_reason() if problem else None) or f"HTTP {self.http_status}"
        return ReplyRefusedError(
            f"Reply refused {call} ({self.http_status}): {reason}",
            http_status=self.http_status,
            problem=problem,
            reason=reason,
        )


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
        user_rate_limiter: Callable[[], RateLimiter] | None = None,
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
        self._own_limiter = rate_limiter or RateLimiter([], clock=clock)
        # With a master key every user acted as has a budget of its own (Reply counts per user): one limiter each.
        self._new_user_limiter = user_rate_limiter or (lambda: RateLimiter([], clock=clock))
        self._user_limiters: dict[int, RateLimiter] = {}
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

    @property
    def _limiter(self) -> RateLimiter:
        """The budget of the user this call acts for: the key's own, or (master key) the user acted as."""
        user = _ACTING_AS.get()
        if user is None:
            return self._own_limiter
        limiter = self._user_limiters.get(user)
        if limiter is None:
            limiter = self._user_limiters[user] = self._new_user_limiter()
        return limiter

    @_limiter.setter
    def _limiter(self, limiter: RateLimiter) -> None:
        """Replace the key's own user's pacing (tests)."""
        self._own_limiter = limiter

    @contextlib.contextmanager
    def acting_as(self, user_id: int) -> Iterator[None]:
        """Every call inside acts as Reply user `user_id` (X-User-Id; a master key only) on that user's budget."""
        token = _ACTING_AS.set(user_id)
        try:
            yield
        finally:
            _ACTING_AS.reset(token)

    def budget_wait(self, deadline: Deadline) -> float:
        """Seconds before a call as the user acted as may start, without waiting: 0 when it may start now (in a
        shared budget, booked for the call that follows)."""
        api_key = self._api_key_source.api_key(deadline=deadline)
        wait, _ = self._limiter.next_wait(deadline, _acting_budget_key(api_key))
        return max(0.0, wait)

    def release_acting_budget(self, deadline: Deadline) -> None:
        """Give back the calls booked for the user acted as (or the key's own) and not made."""
        self._limiter.release(deadline)

    def release_unused_budget(self, deadline: Deadline) -> None:
        """The work is done: give back the calls booked in a shared rate budget and not made."""
        for limiter in (self._own_limiter, *self._user_limiters.values()):
            limiter.release(deadline)

    def get_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """GET /v3/sequences/{id}: the sequence (its owner among its fields) or a 4xx with its problem."""
        _require_sequence_id(sequence_id)

        def interpret(answer: _HttpAnswer) -> ReplyResponse:
            if 200 <= answer.status < 300:
                sequence = parse_sequence(answer.body, sequence_id=sequence_id, secret=answer.secret)
                return ReplyResponse(answer.status, sequence=sequence)
            return ReplyResponse(answer.status, problem=parse_problem(answer.body, secret=answer.secret))

        path = f"/v3/sequences/{sequence_id}"
        return self._call_with_retries(
            "GetSequence", path, None, interpret, deadline, sequence_id=sequence_id, method="GET"
        )

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

    def describe_sequence(
        self, sequence_id: int, deadline: Deadline, parse_document: Callable[[bytes, str], _Page]
    ) -> ListAnswer[_Page]:
        """GET /v3/sequences/{id} read whole by `parse_document` (a snapshot keeps the sequence as Reply described
        it); a 4xx carries its problem."""
        path = f"/v3/sequences/{sequence_id}"
        return self._get_json("GetSequence", path, sequence_id, {}, deadline, parse_page=parse_document)

    def list_sequence_contacts(
        self, sequence_id: int, query: Mapping[str, str], deadline: Deadline, parse_page: Callable[[bytes, str], _Page]
    ) -> ListAnswer[_Page]:
        """GET /v3/sequences/{id}/contacts with paging (`top`, `skip`); a 2xx body goes through `parse_page` (with
        the key sent, to redact), whose ReplyMalformedResponseError is retried like any transient failure."""
        path = f"/v3/sequences/{sequence_id}/contacts"
        return self._get_json("GetSequenceContacts", path, sequence_id, query, deadline, parse_page=parse_page)

    def list_sequence_contacts_state(
        self, sequence_id: int, query: Mapping[str, str], deadline: Deadline, parse_page: Callable[[bytes, str], _Page]
    ) -> ListAnswer[_Page]:
        """GET /v3/sequences/{id}/contacts/state (`additionalColumns`, paging), read like the contacts listing."""
        path = f"/v3/sequences/{sequence_id}/contacts/state"
        return self._get_json("GetSequenceContactsState", path, sequence_id, query, deadline, parse_page=parse_page)

    def add_contacts_to_sequence(
        self,
        sequence_id: int,
        body: Mapping[str, object],
        deadline: Deadline,
        parse_answer: Callable[[bytes, str], _Page],
    ) -> ListAnswer[_Page]:
        """POST /v3/sequences/{id}/contact-links/bulk: Reply adds the contacts it can and names those it did not.
        Retried on transient failures: a contact already added is only reported again as not processed."""
        _require_sequence_id(sequence_id)
        payload = json.dumps(body, separators=(",", ":")).encode()

        def interpret(answer: _HttpAnswer) -> ListAnswer[_Page]:
            if 200 <= answer.status < 300:
                return ListAnswer(answer.status, page=parse_answer(answer.body, answer.secret))
            return ListAnswer(answer.status, problem=parse_problem(answer.body, secret=answer.secret))

        path = f"/v3/sequences/{sequence_id}/contact-links/bulk"
        max_bytes = max(self._max_response_bytes, MAX_LIST_RESPONSE_BYTES)
        return self._call_with_retries(
            "BulkAddContactsToSequence",
            path,
            payload,
            interpret,
            deadline,
            sequence_id=sequence_id,
            max_bytes=max_bytes,
        )

    def unarchive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """POST /v3/sequences/{id}/unarchive (announced by Reply as coming soon): the sequence, or a 4xx/501 problem.
        Reply does not put the contacts back."""

        def read(answer: _HttpAnswer) -> ReplyResponse:
            sequence = parse_sequence(answer.body, sequence_id=sequence_id, secret=answer.secret)
            return ReplyResponse(answer.status, sequence=sequence)

        return self._sequence_action("UnarchiveSequence", "unarchive", sequence_id, deadline, read)

    def _get_json(
        self,
        operation: str,
        path: str,
        sequence_id: int,
        query: Mapping[str, str],
        deadline: Deadline,
        *,
        parse_page: Callable[[bytes, str], _Page],
    ) -> ListAnswer[_Page]:
        _require_sequence_id(sequence_id)

        def interpret(answer: _HttpAnswer) -> ListAnswer[_Page]:
            if 200 <= answer.status < 300:
                return ListAnswer(answer.status, page=parse_page(answer.body, answer.secret))
            return ListAnswer(answer.status, problem=parse_problem(answer.body, secret=answer.secret))

        target = path + ("?" + urlencode(query) if query else "")
        max_bytes = max(self._max_response_bytes, MAX_LIST_RESPONSE_BYTES)
        return self._call_with_retries(
            operation, target, None, interpret, deadline, sequence_id=sequence_id, method="GET", max_bytes=max_bytes
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
            api_key = self._api_key_source.api_key(deadline=deadline)
            # Any key source's key is checked before the budget is spent: one no header can carry is a request-wide
            # ApiKeyMalformedError here, not a UnicodeEncodeError (or a control character sent) per call.
            check_header_safe(api_key.get_secret_value())
            # The key is read first: a call booked in a shared budget must start soon after it is booked.
            self._wait_for_budget(operation, deadline, budget_key=_acting_budget_key(api_key))
            try:
                answer = self._attempt(operation, method, path, body, deadline, api_key=api_key, max_bytes=limit)
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

    def _wait_for_budget(self, operation: str, deadline: Deadline, *, budget_key: str) -> None:
        """Wait for the rate budget (and any 429 pause), unless that outlasts the deadline.

        A shared budget is asked again after each wait, until it books a call for this instance.
        """
        while True:
            wait, paused = self._limiter.next_wait(deadline, budget_key)
            self._check_wait_fits(wait, deadline)
            if wait <= 0 and self._limiter.take_call():
                return  # counted as started: the attempt follows at once
            if wait <= 0:
                continue  # a shared grant lapsed in between: book again
            self._on_wait(ReplyWait(wait, WaitReason.RETRY_AFTER if paused else WaitReason.RATE_BUDGET, operation))
            self._sleep(wait)
            if not self._limiter.sharing:  # the static share's wait ends with a free slot
                self._limiter.take_call()
                return

    def _check_wait_fits(self, wait: float, deadline: Deadline) -> None:
        """Raise when a wait of `wait` seconds and a call after it would outlast the deadline."""
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

    def _attempt(
        self,
        operation: str,
        method: str,
        path: str,
        body: bytes | None,
        deadline: Deadline,
        *,
        api_key: SecretStr,
        max_bytes: int,
    ) -> _HttpAnswer:
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
        acting_as = _ACTING_AS.get()
        if acting_as is not None:
            headers["X-User-Id"] = str(acting_as)
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


# The Reply user the calls of this context act as (a master key's X-User-Id); None: the key's own user.
_ACTING_AS: contextvars.ContextVar[int | None] = contextvars.ContextVar("reply_acting_as", default=None)


def _acting_budget_key(api_key: SecretStr) -> str:
    """The budget of the calls made now: the key's user's, or the user this context acts as."""
    return _budget_key(api_key.get_secret_value(), _ACTING_AS.get())


@functools.lru_cache(maxsize=1024)
def _budget_key(api_key: str, user_id: int | None) -> str:
    """The rate budget a call draws on: its user's (the key's own, or the user a master key acts as)."""
    return key_fingerprint(api_key) + ("" if user_id is None else f":user:{user_id}")


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
