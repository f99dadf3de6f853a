"""Hostile answers from a real (simulated) Reply over HTTP: slow, huge, malformed, or echoing the key.

Each test drives the function's ReplyClient against the simulator on loopback; the faults are the
simulator's `drip`, `headers`, `body` and `echo` kinds.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
import urllib3
from pydantic import SecretStr

from local.stand_ins.reply_simulator import Fault
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import (
    ReplyMalformedResponseError,
    ReplyServerError,
    ReplyThrottledError,
    ReplyTransportError,
    ReplyUnconfirmedError,
)
from sequence_archiver.core.reply_answers import MAX_NAME_TEXT, BulkArchiveResponse
from sequence_archiver.reply.client import ReplyClient, RetryPolicy, Timeouts
from sequence_archiver.reply.rate_limiter import MAX_SERVER_WAIT_SECONDS, RateBudget, RateLimiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration
BULK_PATH = "/v3/sequences/archive"
SLACK_SECONDS = 0.3  # the bound: time used <= time left + 0.3 s
FIVE_THOUSAND_DIGITS = "9" * 5000


class StaticKey:
    def __init__(self, key: str) -> None:
        self._key = SecretStr(key)

    def api_key(self, *, refresh: bool = False, deadline: object = None) -> SecretStr:
        return self._key


@pytest.fixture
def simulator(start_reply_simulator: Callable[..., ReplySimulator]) -> ReplySimulator:
    return start_reply_simulator(rate_limit=None)


@pytest.fixture
def make_client(simulator: ReplySimulator, api_key: str) -> Callable[..., ReplyClient]:
    def make(*, connect: float = 1.0, read: float = 5.0, attempts: int = 3) -> ReplyClient:
        return ReplyClient(
            base_url=simulator.base_url,
            api_key_source=StaticKey(api_key),
            retry_policy=RetryPolicy(max_attempts=attempts, backoff_base_seconds=0.05, backoff_max_seconds=0.2),
            timeouts=Timeouts(connect_seconds=connect, read_seconds=read),
            rate_limiter=RateLimiter([RateBudget(1000, 60.0)]),
        )

    return make


@pytest.fixture
def client(make_client: Callable[..., ReplyClient]) -> ReplyClient:
    return make_client()


def seconds_from_now(seconds: float) -> Deadline:
    return Deadline(expires_at=time.monotonic() + seconds)


def assert_no_key(api_key: str, *values: object) -> None:
    for value in values:
        for shown in (str(value), repr(value)):
            assert api_key not in shown


# The whole call is bounded by the deadline, not each socket read.


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_dripping_answer_ends_by_the_deadline_and_the_client_recovers(
    simulator: ReplySimulator, client: ReplyClient, part: str
) -> None:
    # Given: one byte every 0.4 s, well inside the 2 s read timeout, so no socket read ever times out
    simulator.inject(Fault(kind="drip", seconds=0.4, part=part, times=None))
    deadline = seconds_from_now(2.0)
    left = deadline.remaining_seconds()
    started = time.monotonic()

    with pytest.raises(ReplyTransportError) as excinfo:
        client.archive_sequence(101, deadline)

    used = time.monotonic() - started
    assert used <= left + SLACK_SECONDS
    assert "time ran out" in str(excinfo.value)
    assert [request.path for request in simulator.requests] == ["/v3/sequences/101/archive"]
    # The same client (and its pool) works again once Reply behaves.
    simulator.clear_faults()
    assert client.archive_sequence(102, seconds_from_now(5.0)).http_status == 200


def test_retries_of_a_dripping_call_end_by_the_deadline_too(
    simulator: ReplySimulator, make_client: Callable[..., ReplyClient]
) -> None:
    # Each attempt may take connect + read = 1.2 s; the deadline allows about two and a half of them.
    client = make_client(connect=0.2, read=1.0, attempts=5)
    simulator.inject(Fault(kind="drip", seconds=0.3, times=None))
    deadline = seconds_from_now(3.0)
    left = deadline.remaining_seconds()
    started = time.monotonic()

    with pytest.raises(ReplyTransportError):
        client.archive_sequence(101, deadline)

    assert time.monotonic() - started <= left + SLACK_SECONDS
    assert len(simulator.requests) >= 2


# The key never leaves the client through Reply's text.


def test_the_echo_fault_really_echoes_the_key(simulator: ReplySimulator, api_key: str) -> None:
    simulator.inject(Fault(kind="echo"))
    raw = urllib3.request(
        "POST", simulator.base_url + "/v3/sequences/101/archive", headers={"Authorization": "Bearer " + api_key}
    )
    assert raw.status == 400
    assert api_key.encode() in raw.data


def test_a_key_echoed_in_a_problem_never_reaches_the_answer_or_the_exception(
    simulator: ReplySimulator, client: ReplyClient, api_key: str
) -> None:
    simulator.inject(Fault(kind="echo"))
    refused = client.archive_sequence(101, seconds_from_now(5.0))
    simulator.inject(Fault(kind="echo", status=503, times=None))
    with pytest.raises(ReplyServerError) as excinfo:
        client.archive_sequence(101, seconds_from_now(5.0))

    assert refused.http_status == 400
    assert refused.problem is not None
    assert "[redacted]" in (refused.problem.detail or "")
    assert_no_key(api_key, refused, refused.problem.short_reason(), excinfo.value, excinfo.value.args)
    assert "[redacted]" in str(excinfo.value)


def test_a_key_in_bulk_error_details_or_a_sequence_name_is_redacted(
    simulator: ReplySimulator, client: ReplyClient, api_key: str
) -> None:
    bulk_body = {"101": {"error": "notFound " + api_key, "errorDetails": "Authorization: Bearer " + api_key}}
    simulator.inject(Fault(kind="body", path_prefix=BULK_PATH, body=json.dumps(bulk_body)))
    named = {"id": 105, "name": "Bearer " + api_key, "status": "paused", "isArchived": True}
    simulator.inject(Fault(kind="body", sequence_id=105, body=json.dumps(named)))

    failures = client.bulk_archive([101, 102], seconds_from_now(5.0)).failures
    sequence = client.archive_sequence(105, seconds_from_now(5.0)).sequence

    assert_no_key(api_key, failures, sequence)
    assert failures[101].details == "Authorization: Bearer [redacted]"
    assert sequence is not None
    assert sequence.name == "Bearer [redacted]"


# Huge numbers, deep nesting, huge fields and lone surrogates.


@pytest.mark.parametrize(
    "body",
    ['{"id": 101, "name": ' + FIVE_THOUSAND_DIGITS + "}", "[" * 50_000 + "]" * 50_000],
    ids=["5000-digit-number", "nested-50000"],
)
def test_a_200_with_a_huge_number_or_deep_json_is_malformed_single_and_bulk(
    simulator: ReplySimulator, client: ReplyClient, body: str
) -> None:
    simulator.inject(Fault(kind="body", status=200, sequence_id=101, body=body, times=None))

    with pytest.raises(ReplyMalformedResponseError):
        client.archive_sequence(101, seconds_from_now(5.0))
    with pytest.raises(ReplyMalformedResponseError):
        client.bulk_archive([101, 102], seconds_from_now(5.0))

    assert len(simulator.requests) == 6  # 3 attempts each: malformed answers are retried


def test_a_20_mb_name_is_never_read_and_the_retry_finds_the_sequence_archived(
    simulator: ReplySimulator, client: ReplyClient
) -> None:
    huge = {"id": 103, "name": "n" * 20_000_000, "status": "paused", "isArchived": True}
    simulator.inject(Fault(kind="body", sequence_id=103, body=json.dumps(huge)))

    response = client.archive_sequence(103, seconds_from_now(10.0))

    assert response.http_status == 409  # archived by the first call; the retry hears "already archived"
    assert response.problem is not None
    assert response.problem.code == "sequenceAction.archived"
    sequence = simulator.sequence(103)
    assert sequence is not None
    assert sequence.is_archived


def test_a_long_name_and_lone_surrogates_are_kept_short_and_encodable(
    simulator: ReplySimulator, client: ReplyClient
) -> None:
    long_name = {"id": 104, "name": "n" * 100_000, "status": "paused", "isArchived": True}
    simulator.inject(Fault(kind="body", sequence_id=104, body=json.dumps(long_name)))
    surrogate_body = '{"id":106,"name":"\\ud800x\\u0000","status":"paused","isArchived":true}'
    simulator.inject(Fault(kind="body", sequence_id=106, body=surrogate_body))

    long_named = client.archive_sequence(104, seconds_from_now(5.0)).sequence
    surrogate = client.archive_sequence(106, seconds_from_now(5.0)).sequence

    assert long_named is not None
    assert long_named.name == "n" * MAX_NAME_TEXT
    assert surrogate is not None
    assert surrogate.name == "\ufffdx\ufffd"
    json.dumps([long_named.to_json(), surrogate.to_json()], ensure_ascii=False).encode("utf-8")


# 200s that contradict themselves: never an archive.


@pytest.mark.parametrize(
    "body",
    ["{}", "", "[]", '{"id": 107, "isArchived": false, "status": "active"}', '{"id": 108, "isArchived": true}'],
    ids=["empty-object", "empty", "array", "not-archived", "another-id"],
)
def test_a_contradicting_200_is_retried_then_raised_unconfirmed_over_http(
    simulator: ReplySimulator, client: ReplyClient, body: str
) -> None:
    simulator.inject(Fault(kind="body", status=200, sequence_id=107, body=body, times=None))

    with pytest.raises(ReplyUnconfirmedError) as excinfo:
        client.archive_sequence(107, seconds_from_now(5.0))

    assert excinfo.value.http_status == 200
    assert len(simulator.requests) == 3  # retried like a transient failure, within the client's attempts


def test_a_contradicting_200_once_then_already_archived_is_the_truth(
    simulator: ReplySimulator, client: ReplyClient
) -> None:
    simulator.inject(Fault(kind="body", status=200, sequence_id=107, body='{"id": 107, "isArchived": false}'))

    response = client.archive_sequence(107, seconds_from_now(5.0))

    # The first call did archive it in Reply; the retry hears so, with a status and a code of its own.
    assert response.http_status == 409
    assert response.problem is not None
    assert response.problem.code == "sequenceAction.archived"


@pytest.mark.parametrize(
    ("body", "failures"),
    [('{" 101": {"error": "notFound"}}', set()), ('{"9999": {"error": "notFound"}, "102": {"error": "x"}}', {102})],
    ids=["space-in-key", "unknown-id"],
)
def test_a_bulk_200_about_ids_not_sent_is_unconfirmed_over_http(
    simulator: ReplySimulator, client: ReplyClient, body: str, failures: set[int]
) -> None:
    simulator.inject(Fault(kind="body", status=200, path_prefix=BULK_PATH, body=body, times=None))

    with pytest.raises(ReplyUnconfirmedError) as excinfo:
        client.bulk_archive([101, 102], seconds_from_now(5.0))

    answer = excinfo.value.answer
    assert isinstance(answer, BulkArchiveResponse)
    assert (set(answer.failures), answer.foreign_keys) == (failures, 1)


# Hostile headers.


def test_a_429_with_a_400_digit_retry_after_counts_as_the_cap(simulator: ReplySimulator, client: ReplyClient) -> None:
    simulator.inject(Fault(kind="status", status=429, headers=(("Retry-After", "9" * 400),)))

    with pytest.raises(ReplyThrottledError) as excinfo:
        client.archive_sequence(101, seconds_from_now(5.0))

    assert excinfo.value.retry_after_seconds == MAX_SERVER_WAIT_SECONDS
    assert client._limiter.paused_seconds <= MAX_SERVER_WAIT_SECONDS


@pytest.mark.parametrize(
    "headers",
    [
        (("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "1e308")),
        (("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "9999-12-31T23:59:59Z")),
        (("x-rate-limit-remaining", "²"), ("x-rate-limit-reset", "30")),
        (("x-rate-limit-remaining", FIVE_THOUSAND_DIGITS), ("x-rate-limit-reset", "NaN")),
    ],
    ids=["reset-1e308", "reset-year-9999", "remaining-superscript", "remaining-5000-digits"],
)
def test_hostile_rate_limit_headers_never_raise_nor_block_past_the_cap(
    simulator: ReplySimulator, client: ReplyClient, headers: tuple[tuple[str, str], ...]
) -> None:
    simulator.inject(Fault(kind="headers", headers=headers))

    assert client.archive_sequence(101, seconds_from_now(5.0)).http_status == 200

    assert 0 <= client._limiter.wait_seconds() <= MAX_SERVER_WAIT_SECONDS


# The new fault kinds over the admin API.


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "drip", "seconds": 0.5, "part": "body"},
        {"kind": "headers", "headers": {"Retry-After": "9" * 400}},
        {"kind": "body", "status": 200, "body": "[[[", "pathPrefix": BULK_PATH},
        {"kind": "echo", "status": 500, "times": None},
        {"kind": "status", "status": 429, "headers": [["Retry-After", "NaN"]]},
    ],
)
def test_admin_accepts_the_new_fault_kinds(simulator: ReplySimulator, fault: dict[str, Any]) -> None:
    created = urllib3.request("POST", simulator.base_url + "/__sim/faults", json=fault)

    assert created.status == 201
    assert Fault.from_json(created.json()) == Fault.from_json(fault)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "drip"},
        {"kind": "drip", "seconds": 1, "part": "trailer"},
        {"kind": "headers"},
        {"kind": "headers", "headers": {"Content-Length": "5"}},
        {"kind": "headers", "headers": {"X-Bad": "a\r\nInjected: yes"}},
        {"kind": "body"},
        {"kind": "status", "status": 500, "body": "x"},
        {"kind": "echo", "status": 200},
    ],
)
def test_admin_rejects_unusable_new_faults(simulator: ReplySimulator, fault: dict[str, Any]) -> None:
    assert urllib3.request("POST", simulator.base_url + "/__sim/faults", json=fault).status == 400
