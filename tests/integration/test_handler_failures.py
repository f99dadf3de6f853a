"""Failure semantics through the real handler and Reply client: transient faults retried within the invocation,
a rotated or rejected key, an unreadable secret, a Retry-After past the deadline. What the pipeline decides
for a failed ID, a record that cannot be parked or published, and an invocation with no time left are
functional cases (tests/functional/test_failure_semantics.py)."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import (
    read_results_events,
)
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, invoke_with_sqs, metric_total, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration
ALL_SCOPES = frozenset({"sequences:read", "sequences:operate", "sequences:write"})


# A read timeout this many times the slowest of a few round trips to the simulator measured just before: an
# ordinary answer stays well inside it however busy the machine is, a delay fault of a few times it does not.
READ_TIMEOUT_IN_ROUND_TRIPS = 20


def _round_trip_seconds(simulator: ReplySimulator) -> float:
    """The slowest of three round trips to the simulator (its settings page, uncounted) on this machine now."""
    costs = []
    for _ in range(3):
        started = time.monotonic()
        with urllib.request.urlopen(f"{simulator.base_url}/__sim/settings", timeout=30) as answer:
            answer.read()
        costs.append(time.monotonic() - started)
    return max(costs)


@pytest.fixture(autouse=True)
def read_timeout(
    function_env: dict[str, str], reply_simulator: ReplySimulator, monkeypatch: pytest.MonkeyPatch
) -> float:
    """Short backoff so retry paths run in milliseconds, not seconds; one call per ID; the read timeout (returned)
    at least 0.5 s and far above what an answer takes on this machine now."""
    timeout = max(0.5, READ_TIMEOUT_IN_ROUND_TRIPS * _round_trip_seconds(reply_simulator))
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("REPLY_BACKOFF_BASE_SECONDS", "0.01")
    monkeypatch.setenv("REPLY_BACKOFF_MAX_SECONDS", "0.05")
    monkeypatch.setenv("REPLY_READ_TIMEOUT_SECONDS", repr(timeout))
    monkeypatch.setenv("REPLY_CONNECT_TIMEOUT_SECONDS", repr(timeout))
    return timeout


def _logged(stdout: str, message: str) -> list[dict[str, Any]]:
    """The function's structured log lines (JSON on stdout) with this message."""
    found = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("message") == message:
                found.append(entry)
    return found


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(kind="status", status=429, retry_after=1), "ReplyThrottledError"),
        (Fault(kind="status", status=500), "ReplyServerError"),
        (Fault(kind="status", status=502), "ReplyServerError"),
        (Fault(kind="drop"), "ReplyTransportError"),
        (Fault(kind="malformed"), "ReplyMalformedResponseError"),
        (Fault(kind="delay", seconds=1.5), "ReplyTransportError"),  # seconds: 3 read timeouts, set below
    ],
    ids=["429-retry-after", "500", "502", "dropped-connection", "malformed-200", "slower-than-timeout"],
)
def test_transient_faults_are_retried_within_the_invocation(
    fault: Fault,
    reason: str,
    read_timeout: float,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    if fault.kind == "delay":
        fault = dataclasses.replace(fault, seconds=3 * read_timeout)
    reply_simulator.inject(fault)
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [107, 108]})], lambda_context())

    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert outcomes(detail) == {107: "archived", 108: "archived"}
    assert reply_simulator.pending_faults() == []  # the fault was shown once, to the first call
    out = capsys.readouterr().out
    # The retry policy: one call per ID, and one more for each failed attempt, each logged with its reason. The
    # fault causes exactly one; any other is an answer slower than the read timeout (a transport error, which
    # the policy retries too), however unlikely on a machine this test measured.
    retries = Counter(entry["reason"] for entry in _logged(out, "retrying reply call"))
    assert retries[reason] >= 1
    retries[reason] -= 1
    assert set(+retries) <= {"ReplyTransportError"}, retries
    calls = metric_total(out, "ReplyApiCalls")
    assert calls == 2 + 1 + retries.total()
    assert calls == reply_simulator.api_calls  # every call counted reached Reply, and no other did
    throttled = sum(1 for request in reply_simulator.requests if request.status == 429)
    assert metric_total(out, "ReplyApiThrottled") == throttled == (1 if fault.status == 429 else 0)


def test_a_rotated_key_is_picked_up_after_one_401(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
    api_key: str,
) -> None:
    handler = load_handler()
    invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceId": 109})], lambda_context())  # caches the old key
    rotated = api_key + "_ROTATED"
    aws_stack.secretsmanager().put_secret_value(
        SecretId=aws_stack.secret_arn, SecretString=json.dumps({"apiKey": rotated})
    )
    reply_simulator.set_api_keys({rotated: ALL_SCOPES})

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [110, 111]})], lambda_context())

    assert invocation.failed_message_ids == set()
    details = details_by_request(read_results_events(aws_stack, expected=2))
    assert outcomes(details[invocation.message_ids[0]]) == {110: "archived", 111: "archived"}
    assert [r.status for r in reply_simulator.requests] == [200, 401, 200, 200]
    captured = capsys.readouterr()
    assert api_key not in captured.out + captured.err
    assert rotated not in captured.out + captured.err


def test_a_key_reply_keeps_rejecting_fails_the_request_without_calling_for_every_id(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
    api_key: str,
) -> None:
    reply_simulator.set_api_keys({"some-other-key": ALL_SCOPES})
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [112, 113, 114]})], lambda_context())

    assert invocation.failed_message_ids == set(invocation.message_ids)
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert detail["complete"] is False
    assert detail["counts"]["failed"] == 3
    assert detail["results"][0]["httpStatus"] == 401
    assert detail["results"][1]["error"].startswith("not attempted")
    assert reply_simulator.api_calls == 2  # the first ID, then once more after re-reading the secret
    captured = capsys.readouterr()
    assert api_key not in captured.out + captured.err + json.dumps(detail)


def test_an_unreadable_secret_fails_the_record_for_a_later_retry(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_API_KEY_SECRET_ID", aws_stack.secret_arn + "-missing")
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [115, 116]})], lambda_context())

    assert invocation.failed_message_ids == set(invocation.message_ids)
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert [r["outcome"] for r in detail["results"]] == ["failed", "failed"]
    assert "secret" in detail["results"][0]["error"]
    assert reply_simulator.api_calls == 0


def test_a_retry_after_longer_than_the_time_left_fails_fast_instead_of_sleeping_past_the_deadline(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    reply_simulator.inject(Fault(kind="status", status=429, retry_after=600))
    handler = load_handler()
    context = lambda_context(timeout_seconds=20)  # 10 s of Reply work after the 10 s safety margin

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [119, 120]})], context)

    assert invocation.failed_message_ids == set(invocation.message_ids)
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert [(r["outcome"], r["httpStatus"]) for r in detail["results"]] == [("failed", 429), ("failed", 429)]
    assert reply_simulator.api_calls == 1  # the instance-wide pause kept the second ID from calling
    assert metric_total(capsys.readouterr().out, "ReplyApiThrottled") == 1
