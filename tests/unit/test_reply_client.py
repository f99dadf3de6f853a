"""The Reply client: what each answer means, retries, Retry-After, the instance pause, 401 re-read, deadline."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import urllib3
from pydantic import SecretStr
from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError

from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import (
    ApiKeyMalformedError,
    DeadlineExceededError,
    ReplyAuthenticationError,
    ReplyMalformedResponseError,
    ReplyServerError,
    ReplyThrottledError,
    ReplyTransportError,
    ReplyUnconfirmedError,
)
from sequence_archiver.core.reply_answers import (
    MAX_ERROR_TEXT,
    MAX_NAME_TEXT,
    MAX_STATUS_TEXT,
    ApiCall,
    BulkArchiveResponse,
    ReplyWait,
    WaitReason,
)
from sequence_archiver.reply.client import MAX_RESPONSE_BYTES, ReplyClient, RetryPolicy, Timeouts
from sequence_archiver.reply.http_deadline import CallWatchdog, current_watch
from sequence_archiver.reply.parsing import parse_problem, parse_retry_after
from sequence_archiver.reply.rate_limiter import MAX_SERVER_WAIT_SECONDS, RateBudget, RateLimiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.conftest import FakeClock

API_KEY = "rk_unit_SECRET_MARKER_123"
ROTATED_KEY = "rk_unit_ROTATED_MARKER_456"


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class FakeHttp:
    """Plays scripted answers (or raises scripted urllib3 errors) and records each request."""

    def __init__(self, clock: FakeClock, script: list[Answer | Exception], latency: float = 0.05) -> None:
        self.clock, self.script, self.latency = clock, list(script), latency
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.requests.append({"method": method, "url": url, **kwargs})
        self.clock.now += self.latency
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        assert kwargs["preload_content"] is False  # the client reads the body itself, up to its size limit
        return urllib3.HTTPResponse(
            body=io.BytesIO(item.body), status=item.status, headers=item.headers, preload_content=False
        )


class KeySource:
    def __init__(self, *keys: str) -> None:
        self.keys, self.reads, self.refreshes = list(keys), 0, 0

    def api_key(self, *, refresh: bool = False, deadline: object = None) -> SecretStr:
        self.reads += 1
        if refresh:
            self.refreshes += 1
            self.keys.pop(0) if len(self.keys) > 1 else None
        return SecretStr(self.keys[0])


def sequence_body(sequence_id: int = 42, status: str = "paused") -> bytes:
    return json.dumps({"id": sequence_id, "name": "Q3 outreach", "status": status, "isArchived": True}).encode()


def problem(status: int, code: str | None = None, detail: str = "x") -> Answer:
    body = {"title": "t", "status": status, "detail": detail} | ({"code": code} if code else {})
    return Answer(status, json.dumps(body).encode(), {"Content-Type": "application/problem+json"})


def make_client(
    clock: FakeClock,
    script: list[Answer | Exception],
    *,
    keys: KeySource | None = None,
    attempts: int = 4,
    on_wait: Callable[[ReplyWait], None] | None = None,
) -> tuple[ReplyClient, FakeHttp, list[ApiCall]]:
    http = FakeHttp(clock, script)
    calls: list[ApiCall] = []
    client = ReplyClient(
        base_url="https://api.reply.io/",
        api_key_source=keys or KeySource(API_KEY),
        retry_policy=RetryPolicy(max_attempts=attempts, backoff_base_seconds=0.5, backoff_max_seconds=8),
        timeouts=Timeouts(connect_seconds=1, read_seconds=5),
        http=http,  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda ceiling: ceiling,
        on_api_call=calls.append,
        on_wait=on_wait,
    )
    return client, http, calls


def deadline(clock: FakeClock, seconds: float = 60.0) -> Deadline:
    return Deadline(expires_at=clock.now + seconds, clock=clock)


def test_a_200_posts_to_the_archive_path_with_bearer_auth_and_returns_the_sequence(clock: FakeClock) -> None:
    client, http, calls = make_client(clock, [Answer(200, sequence_body(status="Paused"))])

    response = client.archive_sequence(42, deadline(clock))

    assert response.http_status == 200
    assert response.sequence is not None
    assert (response.sequence.name, response.sequence.status, response.sequence.is_archived) == (
        "Q3 outreach",
        "paused",
        True,
    )
    [request] = http.requests
    assert (request["method"], request["url"]) == ("POST", "https://api.reply.io/v3/sequences/42/archive")
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["retries"] is False
    assert request["redirect"] is False
    assert [call.http_status for call in calls] == [200]


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_client_errors_are_final_answers_with_their_problem(clock: FakeClock, status: int) -> None:
    client, http, _ = make_client(clock, [problem(status, "sequenceAction.something", "why")])

    response = client.archive_sequence(42, deadline(clock))

    assert response.http_status == status
    assert response.problem is not None
    assert response.problem.short_reason() == "sequenceAction.something: why"
    assert len(http.requests) == 1


def test_unknown_enum_values_are_kept_not_rejected(clock: FakeClock) -> None:
    client, _, _ = make_client(clock, [Answer(200, sequence_body(status="hibernating"))])
    response = client.archive_sequence(42, deadline(clock))
    assert response.sequence is not None
    assert response.sequence.status == "hibernating"


@pytest.mark.parametrize(
    "failure",
    [
        problem(500),
        problem(502),
        Answer(503, b"<html>busy</html>"),
        ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
        ProtocolError("Connection aborted."),
        NewConnectionError(None, "refused"),  # type: ignore[arg-type]
        Answer(200, b'{"id": 42, "name": '),
        Answer(200, b"[]"),
    ],
    ids=["500", "502", "503-html", "timeout", "dropped", "refused", "truncated-200", "array-200"],
)
def test_transient_failures_are_retried_with_backoff_then_succeed(clock: FakeClock, failure: Any) -> None:
    client, http, _ = make_client(clock, [failure, failure, Answer(200, sequence_body())])

    response = client.archive_sequence(42, deadline(clock))

    assert response.http_status == 200
    assert len(http.requests) == 3
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (problem(503), ReplyServerError),
        (ProtocolError("Connection aborted."), ReplyTransportError),
        (Answer(200, b"not json"), ReplyMalformedResponseError),
    ],
)
def test_transient_failures_give_up_after_max_attempts(clock: FakeClock, failure: Any, error: type[Exception]) -> None:
    client, http, calls = make_client(clock, [failure] * 3, attempts=3)

    with pytest.raises(error):
        client.archive_sequence(42, deadline(clock))

    assert len(http.requests) == 3
    assert len(calls) == 3


def test_a_429_waits_retry_after_and_pauses_the_whole_instance(clock: FakeClock) -> None:
    throttled = Answer(429, b'{"title":"Too Many Requests","status":429}', {"Retry-After": "7"})
    client, http, calls = make_client(
        clock, [throttled, Answer(200, sequence_body(42)), Answer(200, sequence_body(43))]
    )

    client.archive_sequence(42, deadline(clock))
    client.archive_sequence(43, deadline(clock))

    assert clock.sleeps == [7.0]
    assert len(http.requests) == 3
    assert [call.http_status for call in calls] == [429, 200, 200]


THROTTLED = Answer(429, b"", {"Retry-After": "7"})


@pytest.mark.parametrize(
    ("per_minute", "script", "expected"),
    [
        # The second call waits for the minute's budget (one call a minute, plus the window's slack)
        (1, [Answer(200, sequence_body(41)), Answer(200, sequence_body(42))], [(WaitReason.RATE_BUDGET, None, 61.2)]),
        (None, [THROTTLED, Answer(200, sequence_body(41)), Answer(200, sequence_body(42))],
         [(WaitReason.RETRY_AFTER, 429, 7.0)]),
        (None, [problem(503), Answer(200, sequence_body(41)), Answer(200, sequence_body(42))],
         [(WaitReason.BACKOFF, 503, 0.5)]),
        # A 429 whose Retry-After ends before the budget frees up: the longer wait is the one said
        (1, [Answer(200, sequence_body(41)), THROTTLED, Answer(200, sequence_body(42))],
         [(WaitReason.RATE_BUDGET, None, 61.2), (WaitReason.RATE_BUDGET, 429, 61.2)]),
    ],
    ids=["budget", "retry-after", "backoff", "budget-outlasts-retry-after"],
)  # fmt: skip
def test_every_pause_is_announced_before_it_is_taken_with_its_reason(
    clock: FakeClock,
    per_minute: int | None,
    script: list[Answer | Exception],
    expected: list[tuple[WaitReason, int | None, float]],
) -> None:
    from sequence_archiver.reply.rate_limiter import RateBudget, RateLimiter

    waits: list[ReplyWait] = []
    client, _, _ = make_client(clock, script, on_wait=waits.append)
    client._limiter = RateLimiter([RateBudget(per_minute, 60)] if per_minute else [], clock=clock)

    client.archive_sequence(41, deadline(clock, seconds=900))
    client.archive_sequence(42, deadline(clock, seconds=900))

    assert [(wait.reason, wait.http_status, pytest.approx(wait.seconds, abs=0.1)) for wait in waits] == expected
    assert {wait.operation for wait in waits} == {"ArchiveSequence"}
    assert [wait.seconds for wait in waits] == clock.sleeps  # announced, then taken


def test_a_pause_longer_than_the_time_left_fails_fast_without_sleeping(clock: FakeClock) -> None:
    throttled = Answer(429, b"", {"Retry-After": "120"})
    client, http, _ = make_client(clock, [throttled])

    with pytest.raises(ReplyThrottledError) as excinfo:
        client.archive_sequence(42, deadline(clock, seconds=30))
    assert excinfo.value.retry_after_seconds == 120
    with pytest.raises(ReplyThrottledError):  # the next ID does not even call Reply
        client.archive_sequence(43, deadline(clock, seconds=30))

    assert clock.sleeps == []
    assert len(http.requests) == 1


def test_no_call_starts_when_the_deadline_has_passed(clock: FakeClock) -> None:
    client, http, _ = make_client(clock, [])
    with pytest.raises(DeadlineExceededError):
        client.archive_sequence(42, deadline(clock, seconds=0.2))
    assert http.requests == []


def test_read_timeout_never_exceeds_the_time_left(clock: FakeClock) -> None:
    client, http, _ = make_client(clock, [Answer(200, sequence_body())])
    client.archive_sequence(42, deadline(clock, seconds=2.5))
    timeout = http.requests[0]["timeout"]
    assert timeout.read_timeout <= 2.5
    assert timeout.connect_timeout <= 1


# The spec: "The response body is empty; check the WWW-Authenticate header". Seen live: a problem+json body.
UNAUTHORIZED_ANSWERS = {
    "empty": Answer(401, b"", {"WWW-Authenticate": "Bearer"}),
    "problem": Answer(
        401,
        json.dumps(
            {"title": "Unauthorized", "status": 401, "detail": "Authentication credentials are missing or invalid."}
        ).encode(),
        {"WWW-Authenticate": "Bearer", "Content-Type": "application/problem+json"},
    ),
}


@pytest.mark.parametrize("body", UNAUTHORIZED_ANSWERS)
def test_a_401_re_reads_the_secret_once_and_uses_the_rotated_key(clock: FakeClock, body: str) -> None:
    keys = KeySource(API_KEY, ROTATED_KEY)
    client, http, _ = make_client(clock, [UNAUTHORIZED_ANSWERS[body], Answer(200, sequence_body())], keys=keys)

    assert client.archive_sequence(42, deadline(clock)).http_status == 200

    assert keys.refreshes == 1
    assert [r["headers"]["Authorization"] for r in http.requests] == [f"Bearer {API_KEY}", f"Bearer {ROTATED_KEY}"]


@pytest.mark.parametrize("body", UNAUTHORIZED_ANSWERS)
@pytest.mark.parametrize("operation", ["archive", "pause", "bulk"])
def test_a_second_401_is_an_authentication_error_that_never_shows_the_key(
    clock: FakeClock, body: str, operation: str
) -> None:
    keys = KeySource(API_KEY)
    client, http, _ = make_client(clock, [UNAUTHORIZED_ANSWERS[body]] * 2, keys=keys)
    call = {
        "archive": lambda: client.archive_sequence(42, deadline(clock)),
        "pause": lambda: client.pause_sequence(42, deadline(clock)),
        "bulk": lambda: client.bulk_archive([42, 43], deadline(clock)),
    }[operation]

    with pytest.raises(ReplyAuthenticationError) as excinfo:
        call()

    assert len(http.requests) == 2
    assert keys.refreshes == 1
    assert (excinfo.value.http_status, str(excinfo.value)) == (
        401,
        "Reply rejected the API key (401) even after re-reading the secret",
    )
    assert API_KEY not in str(excinfo.value)
    assert API_KEY not in repr(excinfo.value)
    assert excinfo.value.__cause__ is None


def test_the_ids_in_the_url_must_be_validated_integers(clock: FakeClock) -> None:
    client, _, _ = make_client(clock, [])
    for bad in ("1/../../users", True, 0):
        with pytest.raises(TypeError):
            client.archive_sequence(bad, deadline(clock))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("60", 60.0), (" 5 ", 5.0), (None, None), ("", None), ("soon", None), ("Thu, 01 Jan 2099 00:00:00 GMT", None)],
)
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    parsed = parse_retry_after(header, now=lambda: 4_070_908_740.0)  # one minute before the date above
    if header and header.startswith("Thu"):
        assert parsed == pytest.approx(60.0)
    else:
        assert parsed == seconds


def test_the_default_connection_pool_verifies_tls_certificates() -> None:
    client = ReplyClient(
        base_url="https://api.reply.io",
        api_key_source=KeySource(API_KEY),
        retry_policy=RetryPolicy(),
        timeouts=Timeouts(),
    )
    pool = client._http.connection_from_url("https://api.reply.io")
    assert pool.cert_reqs == "CERT_REQUIRED"


def test_bulk_archive_posts_the_ids_and_reads_only_the_failed_items(clock: FakeClock) -> None:
    body = json.dumps(
        {
            "2": {"error": "notFound", "errorDetails": "Sequence 2 not found"},
            "3": {"error": "Archived"},
        }
    ).encode()
    client, http, _ = make_client(clock, [Answer(200, body)])

    response = client.bulk_archive([1, 2, 3], deadline(clock))

    assert response.http_status == 200
    assert {k: (v.error, v.details) for k, v in response.failures.items()} == {
        2: ("notFound", "Sequence 2 not found"),
        3: ("Archived", None),
    }
    [request] = http.requests
    assert request["url"] == "https://api.reply.io/v3/sequences/archive"
    assert json.loads(request["body"]) == {"ids": [1, 2, 3]}
    assert request["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("status", [400, 403])
def test_bulk_refusals_are_final_answers(clock: FakeClock, status: int) -> None:
    client, _, _ = make_client(clock, [problem(status, "sequenceAction.forbidden")])
    response = client.bulk_archive([1, 2], deadline(clock))
    assert response.http_status == status
    assert response.failures == {}


def test_a_malformed_bulk_answer_is_retried(clock: FakeClock) -> None:
    client, http, _ = make_client(clock, [Answer(200, b"[1,2]"), Answer(200, b"{}")])
    assert client.bulk_archive([1, 2], deadline(clock)).failures == {}
    assert len(http.requests) == 2


def test_rate_limit_headers_slow_the_client_down(clock: FakeClock) -> None:
    from sequence_archiver.reply.rate_limiter import RateBudget, RateLimiter

    limiter = RateLimiter([RateBudget(100, 60)], clock=clock, wall_clock=lambda: 1_000_000.0)
    exhausted = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1970-01-12T13:47:10Z"}  # epoch 1_000_030
    client, _, _ = make_client(clock, [Answer(200, sequence_body(42), exhausted), Answer(200, sequence_body(43))])
    client._limiter = limiter

    client.archive_sequence(42, deadline(clock))
    client.archive_sequence(43, deadline(clock))

    assert clock.sleeps == [pytest.approx(30)]


def test_pacing_that_would_pass_the_deadline_fails_fast_with_a_retry_hint(clock: FakeClock) -> None:
    from sequence_archiver.core.exceptions import RateBudgetExhaustedError
    from sequence_archiver.reply.rate_limiter import RateBudget, RateLimiter

    client, http, _ = make_client(clock, [Answer(200, sequence_body(42))])
    client._limiter = RateLimiter([RateBudget(1, 60)], clock=clock)
    client.archive_sequence(42, deadline(clock))

    with pytest.raises(RateBudgetExhaustedError) as excinfo:
        client.archive_sequence(43, deadline(clock, seconds=20))

    assert excinfo.value.retry_after_seconds == pytest.approx(61.2, abs=0.1)  # one window plus its slack
    assert len(http.requests) == 1


class RecordingTracing:
    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, str]]] = []

    def span(self, name: str, **annotations: str) -> Any:
        from contextlib import nullcontext

        self.spans.append((name, annotations))
        return nullcontext()


def test_every_reply_call_is_a_trace_subsegment(clock: FakeClock) -> None:
    tracing = RecordingTracing()
    client, _, _ = make_client(clock, [problem(503), Answer(200, sequence_body()), Answer(200, b"{}")])
    client._tracing = tracing

    client.archive_sequence(42, deadline(clock))
    client.bulk_archive([1, 2], deadline(clock))

    assert tracing.spans == [
        (
            "## reply.ArchiveSequence",
            {"operation": "ArchiveSequence", "method": "POST", "path": "/v3/sequences/42/archive"},
        ),
        (
            "## reply.ArchiveSequence",
            {"operation": "ArchiveSequence", "method": "POST", "path": "/v3/sequences/42/archive"},
        ),
        (
            "## reply.BulkArchiveSequences",
            {"operation": "BulkArchiveSequences", "method": "POST", "path": "/v3/sequences/archive"},
        ),
    ]


def test_list_sequences_gets_a_page_with_the_query_and_retries_a_malformed_one(clock: FakeClock) -> None:
    page = json.dumps({"items": [{"id": 7}], "hasMore": False}).encode()
    client, http, _ = make_client(clock, [Answer(200, b"not json"), Answer(200, page)])

    def parse(body: bytes) -> list[int]:
        try:
            return [item["id"] for item in json.loads(body)["items"]]
        except ValueError:
            raise ReplyMalformedResponseError("not a page", http_status=200) from None

    answer = client.list_sequences({"status": "paused", "top": "100"}, deadline(clock), parse)

    assert (answer.http_status, answer.page) == (200, [7])
    assert [(r["method"], r["url"]) for r in http.requests] == [
        ("GET", "https://api.reply.io/v3/sequences?status=paused&top=100")
    ] * 2


# Hostile answers: bounded waits, bounded sizes, no crash on huge numbers or deep JSON, no key leak.

FIVE_THOUSAND_DIGITS = "9" * 5000


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("9" * 400, 900.0),
        (FIVE_THOUSAND_DIGITS, 900.0),
        ("901", 900.0),
        ("0" * 400 + "5", 5.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 900.0),
        ("NaN", None),
        ("inf", None),
        ("-5", None),
        ("1e308", None),
        ("²", None),
        ("Fri, 31 Dec 99999 23:59:59 GMT", None),
        ("x" * 70_000, None),
    ],
)
def test_retry_after_is_capped_and_garbage_ignored(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header, now=lambda: 1_700_000_000.0) == seconds


def test_a_429_with_a_400_digit_retry_after_pauses_the_instance_for_the_cap_only(clock: FakeClock) -> None:
    throttled = Answer(429, b"", {"Retry-After": "9" * 400})
    client, http, _ = make_client(clock, [throttled, Answer(200, sequence_body(43))])

    with pytest.raises(ReplyThrottledError) as excinfo:
        client.archive_sequence(42, deadline(clock, seconds=30))
    assert excinfo.value.retry_after_seconds == MAX_SERVER_WAIT_SECONDS

    clock.now += MAX_SERVER_WAIT_SECONDS  # after the cap, calls go out again
    assert client.archive_sequence(43, deadline(clock)).http_status == 200
    assert len(http.requests) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"x-rate-limit-remaining": "²", "x-rate-limit-reset": "30"},
        {"x-rate-limit-remaining": FIVE_THOUSAND_DIGITS, "x-rate-limit-reset": "30"},
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1e308"},
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": FIVE_THOUSAND_DIGITS},
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "9999-12-31T23:59:59Z"},
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "NaN"},
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "-1e308"},
        {"x-rate-limit-remaining": "-1", "x-rate-limit-reset": "inf"},
    ],
    ids=["superscript", "5000-digits", "1e308", "reset-5000-digits", "year-9999", "nan", "negative", "inf"],
)
def test_hostile_rate_limit_headers_never_raise_nor_block_past_the_cap(
    clock: FakeClock, headers: dict[str, str]
) -> None:
    client, _, _ = make_client(clock, [Answer(200, sequence_body(42), headers)])

    assert client.archive_sequence(42, deadline(clock)).http_status == 200

    assert 0 <= client._limiter.wait_seconds() <= MAX_SERVER_WAIT_SECONDS


@pytest.mark.parametrize(
    "body",
    [
        ('{"id": 42, "name": ' + FIVE_THOUSAND_DIGITS + "}").encode(),
        b"[" * 50_000 + b"]" * 50_000,
        b'{"id": 42, "name": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b"\xff\xfe not utf-8",
    ],
    ids=["5000-digit-number", "nested-50000", "nested-inside-object", "bad-utf-8"],
)
def test_huge_numbers_and_deep_json_are_malformed_answers_not_crashes(clock: FakeClock, body: bytes) -> None:
    client, http, _ = make_client(clock, [Answer(200, body)] * 2 + [Answer(200, body)] * 2, attempts=2)

    with pytest.raises(ReplyMalformedResponseError):
        client.archive_sequence(42, deadline(clock))
    with pytest.raises(ReplyMalformedResponseError):
        client.bulk_archive([1, 2], deadline(clock))

    assert parse_problem(body) is None
    assert len(http.requests) == 4


def test_a_bulk_answer_keyed_by_a_5000_digit_number_is_unconfirmed_not_a_crash(clock: FakeClock) -> None:
    body = json.dumps({FIVE_THOUSAND_DIGITS: {"error": "notFound"}, "2": {"error": "notFound"}}).encode()
    client, _, _ = make_client(clock, [Answer(200, body)] * 2, attempts=2)

    with pytest.raises(ReplyUnconfirmedError) as excinfo:
        client.bulk_archive([1, 2], deadline(clock))

    answer = excinfo.value.answer
    assert isinstance(answer, BulkArchiveResponse)
    assert (set(answer.failures), answer.foreign_keys) == ({2}, 1)


def test_text_fields_from_reply_are_bounded(clock: FakeClock) -> None:
    body = json.dumps({"id": 42, "name": "n" * 500_000, "status": "s" * 100_000, "isArchived": True}).encode()
    client, _, _ = make_client(clock, [Answer(200, body)])

    sequence = client.archive_sequence(42, deadline(clock)).sequence

    assert sequence is not None
    assert sequence.name == "n" * MAX_NAME_TEXT
    assert sequence.status is not None
    assert len(sequence.status) <= MAX_STATUS_TEXT
    problem_body = json.dumps({"title": "t" * 10**5, "detail": "d" * 10**5, "code": "c" * 10**5}).encode()
    problem_found = parse_problem(problem_body)
    assert problem_found is not None
    assert [len(text or "") for text in (problem_found.title, problem_found.detail, problem_found.code)] == [
        MAX_ERROR_TEXT
    ] * 3


def test_a_body_over_the_size_limit_is_not_read_a_2xx_is_malformed_and_retried(clock: FakeClock) -> None:
    huge = json.dumps({"id": 42, "name": "n" * (MAX_RESPONSE_BYTES + 10)}).encode()
    client, http, _ = make_client(clock, [Answer(200, huge), Answer(409, huge), Answer(200, huge), Answer(200, b"{}")])

    response = client.archive_sequence(42, deadline(clock))  # 200 too large, then a 409 too large: final
    assert (response.http_status, response.problem) == (409, None)
    assert client.bulk_archive([1], deadline(clock)).failures == {}  # too large, then {}
    assert len(http.requests) == 4


def echoed(text: str) -> str:
    return f"{text} Authorization: Bearer {API_KEY} ({API_KEY[:12]}"


def assert_no_key(*values: object) -> None:
    for value in values:
        for shown in (str(value), repr(value)):
            assert API_KEY not in shown
            assert API_KEY[:12] not in shown


def test_a_key_echoed_in_a_problem_is_redacted_before_it_is_kept(clock: FakeClock) -> None:
    body = json.dumps({"title": echoed("t"), "detail": echoed("d"), "code": echoed("c")}).encode()
    client, _, _ = make_client(clock, [Answer(400, body), Answer(503, body), Answer(503, body)], attempts=2)

    response = client.archive_sequence(42, deadline(clock))
    with pytest.raises(ReplyServerError) as excinfo:
        client.archive_sequence(42, deadline(clock))

    assert response.problem is not None
    assert response.problem.detail is not None
    assert "[redacted]" in response.problem.detail
    assert_no_key(response, response.problem.short_reason(), excinfo.value, excinfo.value.args)


def test_a_key_echoed_in_bulk_errors_or_a_sequence_name_is_redacted(clock: FakeClock) -> None:
    bulk = json.dumps({"2": {"error": echoed("e"), "errorDetails": echoed("d")}}).encode()
    single = json.dumps({"id": 42, "name": echoed("name"), "status": echoed("s"), "isArchived": True}).encode()
    client, _, _ = make_client(clock, [Answer(200, bulk), Answer(200, single)])

    failures = client.bulk_archive([1, 2], deadline(clock)).failures
    sequence = client.archive_sequence(42, deadline(clock)).sequence

    assert_no_key(failures, sequence)
    assert sequence is not None
    assert sequence.name is not None
    assert sequence.name.startswith("name Authorization: Bearer [redacted]")


def test_the_answer_kept_for_parsing_shows_no_key(clock: FakeClock) -> None:
    seen: list[Any] = []
    client, _, _ = make_client(clock, [Answer(200, sequence_body())])
    original = client._check_transient

    def spy(answer: Any) -> Any:
        seen.append(answer)
        return original(answer)

    client._check_transient = spy  # type: ignore[method-assign]
    client.archive_sequence(42, deadline(clock))

    assert_no_key(seen[0], vars(client))


def test_lone_surrogates_and_control_characters_from_reply_become_encodable(clock: FakeClock) -> None:
    body = b'{"id": 42, "name": "a\\ud800b\\u0000c\\nd", "status": "\\udfffpaused", "isArchived": true}'
    client, _, _ = make_client(clock, [Answer(200, body)])

    sequence = client.archive_sequence(42, deadline(clock)).sequence

    assert sequence is not None
    assert sequence.name == "a\ufffdb\ufffdc d"
    json.dumps(sequence.to_json(), ensure_ascii=False).encode("utf-8")


def test_a_short_invocation_still_tries_with_timeouts_that_fit_in_what_is_left(clock: FakeClock) -> None:
    client, http, _ = make_client(clock, [Answer(200, sequence_body())])

    assert client.archive_sequence(42, deadline(clock, seconds=0.4)).http_status == 200

    timeout = http.requests[0]["timeout"]
    assert timeout.connect_timeout <= 0.4
    assert timeout.read_timeout <= 0.4


def test_each_attempt_is_watched_until_the_deadline_or_its_own_limit(clock: FakeClock) -> None:
    budgets: list[float] = []
    watchdog = CallWatchdog(clock=clock)
    client, http, _ = make_client(clock, [Answer(200, sequence_body()), Answer(200, sequence_body())])
    client._watchdog = watchdog

    def request(method: str, url: str, **kwargs: Any) -> Any:
        watch = current_watch()
        assert watch is not None
        budgets.append(watch.expires_at - clock.now)
        return FakeHttp.request(http, method, url, **kwargs)

    http.request = request  # type: ignore[method-assign]
    client.archive_sequence(42, deadline(clock, seconds=2.0))
    client.archive_sequence(42, deadline(clock, seconds=60.0))

    assert budgets == [pytest.approx(2.0), pytest.approx(6.0)]  # the time left, or connect + read (1 + 5)
    assert current_watch() is None


def test_an_answer_that_outlived_its_attempt_is_a_transport_error(clock: FakeClock) -> None:
    watchdog = CallWatchdog(clock=clock)
    client, http, calls = make_client(clock, [Answer(200, sequence_body())], attempts=1)
    client._watchdog = watchdog

    class Dripping:
        def shutdown(self, how: int) -> None:
            pass

    def request(method: str, url: str, **kwargs: Any) -> Any:
        clock.now += 10  # the answer took longer than the attempt may
        watch = current_watch()
        assert watch is not None
        watch.attach(Dripping())
        return FakeHttp.request(http, method, url, **kwargs)

    http.request = request  # type: ignore[method-assign]
    with pytest.raises(ReplyTransportError):
        client.archive_sequence(42, deadline(clock, seconds=3.0))
    assert [call.http_status for call in calls] == [None]


TRANSFORMED_KEYS = {
    "75-percent-prefix": API_KEY[: len(API_KEY) * 3 // 4] + "...",
    "upper-case": API_KEY.upper(),
    "zero-width-split": "\u200b".join(API_KEY),
    "base64-of-the-header": base64.b64encode(f"Bearer {API_KEY}".encode()).decode(),
}


@pytest.mark.parametrize("copy", list(TRANSFORMED_KEYS.values()), ids=list(TRANSFORMED_KEYS))
def test_a_transformed_copy_of_the_key_in_a_problem_or_a_server_error_leaves_no_12_character_fragment(
    clock: FakeClock, copy: str
) -> None:
    body = json.dumps({"title": f"bad key {copy}", "detail": f"Authorization: Bearer {copy}", "code": copy}).encode()
    client, _, _ = make_client(clock, [Answer(400, body), Answer(503, body), Answer(503, body)], attempts=2)

    response = client.archive_sequence(42, deadline(clock))
    with pytest.raises(ReplyServerError) as excinfo:
        client.archive_sequence(42, deadline(clock))

    shown = " ".join(map(repr, (response, excinfo.value, excinfo.value.args))).lower()
    assert not any(API_KEY[start : start + 12].lower() in shown for start in range(len(API_KEY) - 11))
    assert "[redacted]" in shown


@pytest.mark.parametrize("bad_key", ["rk_\u20ac_MARKER", "rk\x0bMARKER", "rk_MARKER\x7f", "rk_MARKER\x85"])
def test_a_key_no_header_can_carry_is_refused_before_any_call_or_budget(clock: FakeClock, bad_key: str) -> None:
    http = FakeHttp(clock, [Answer(200, sequence_body())])
    calls: list[ApiCall] = []
    limiter = RateLimiter([RateBudget(1, 60.0)], clock=clock)  # one call a minute: a spent slot would show
    client = ReplyClient(
        base_url="https://api.reply.io/",
        api_key_source=KeySource(bad_key),
        retry_policy=RetryPolicy(),
        timeouts=Timeouts(),
        rate_limiter=limiter,
        http=http,  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
        on_api_call=calls.append,
    )

    with pytest.raises(ApiKeyMalformedError) as excinfo:
        client.bulk_archive([1, 2], deadline(clock))

    assert (http.requests, calls) == ([], [])
    assert limiter.next_wait() == (0.0, False)  # the budget's one slot is still free
    assert "MARKER" not in str(excinfo.value)
