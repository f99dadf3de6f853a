"""Archive as fast as Reply allows and never faster: pacing, bulk archive, retry timing. (The fallback to single
calls for a key without the bulk scope is a functional case: tests/functional/test_bulk_fallbacks.py.)"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events, receive_batch
from local.stand_ins.reply_simulator import Fault, RateLimit
from tests.integration.harness import details_by_request, invoke_with_sqs, metric_total, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration
ALL_SCOPES = frozenset({"sequences:read", "sequences:operate", "sequences:write"})
BULK_PATH = "/v3/sequences/archive"


def bulk_sizes(simulator: ReplySimulator) -> list[int]:
    return [len(r.sequence_ids) for r in simulator.requests if r.path == BULK_PATH]


def test_pacing_keeps_a_single_mode_run_under_the_rate_limit_without_one_429(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    function_env: dict[str, str],
    lambda_context: Callable[..., LocalLambdaContext],
    api_key: str,
) -> None:
    # Reply's 100/minute, compressed 60x: 100 calls per second, which a plain loop would overrun.
    simulator = start_reply_simulator(
        api_keys={api_key: ALL_SCOPES}, rate_limit=RateLimit(per_minute=20, per_hour=None, minute_seconds=1.0)
    )
    simulator.add_sequences(range(10_001, 10_061), status="paused")
    monkeypatch.setenv("REPLY_API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_MINUTE", "20")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_HOUR", "0")
    monkeypatch.setenv("REPLY_RATE_LIMIT_TIME_SCALE", str(1 / 60))
    handler = load_handler()

    invocation = invoke_with_sqs(
        handler, aws_stack, [json.dumps({"sequenceIds": list(range(10_001, 10_061))})], lambda_context()
    )

    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert detail["counts"]["archived"] == 60
    assert [r.status for r in simulator.requests].count(429) == 0
    assert simulator.api_calls == 60


# In chunks of 3 (and of 100 again) in the functional tier: tests/functional/test_bulk_batches.py.
@pytest.mark.parametrize("bulk_max_ids", [100])
def test_bulk_archives_a_whole_batch_in_chunks_and_maps_each_item_back_to_its_record(
    bulk_max_ids: int,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REPLY_BULK_MAX_IDS", str(bulk_max_ids))
    handler = load_handler()
    bodies = [
        json.dumps({"sequenceIds": [101, 301, 401]}),
        json.dumps({"sequenceIds": [501, 601, 701]}),
        json.dumps({"sequenceIds": [102, 999_999, 101]}),  # 101 again: archived once, reported in both records
    ]

    invocation = invoke_with_sqs(handler, aws_stack, bodies, lambda_context())

    assert invocation.failed_message_ids == set()
    ids = invocation.message_ids
    details = details_by_request(read_results_events(aws_stack, expected=3))
    assert outcomes(details[ids[0]]) == {101: "archived", 301: "conflict", 401: "already_archived"}
    assert outcomes(details[ids[1]]) == {501: "forbidden", 601: "forbidden", 701: "conflict"}
    assert outcomes(details[ids[2]]) == {102: "archived", 999_999: "not_found", 101: "archived"}
    assert "salesAgentNotAllowed" in details[ids[1]]["results"][2]["error"]
    expected_sizes = [3, 3, 2] if bulk_max_ids == 3 else [8]
    assert bulk_sizes(reply_simulator) == expected_sizes
    assert simulator_single_calls(reply_simulator) == 0
    assert metric_total(capsys.readouterr().out, "ReplyApiCalls") == len(expected_sizes)


def simulator_single_calls(simulator: ReplySimulator) -> int:
    return sum(1 for r in simulator.requests if r.path != BULK_PATH)


def test_a_throttled_record_comes_back_after_retry_after_not_after_the_visibility_timeout(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=429, retry_after=1))
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [107, 108]})], lambda_context())

    assert invocation.failed_message_ids == set(invocation.message_ids)
    assert aws_stack.queue_settings.visibility_timeout_seconds > 60
    # Without the change the record would stay invisible for the queue's visibility timeout (1020 s).
    [again] = receive_batch(aws_stack, max_messages=1, timeout_seconds=10)
    assert again["MessageId"] == invocation.message_ids[0]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_reply_rate_limit_headers_spread_a_nearly_spent_budget_instead_of_collecting_429s(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
    api_key: str,
) -> None:
    # Other apps used most of the key's hour: 4 calls are left and the window resets in ten minutes, so
    # after the first call the other 3 are spread over those minutes: one every 200 s, past this deadline.
    simulator = start_reply_simulator(
        api_keys={api_key: ALL_SCOPES},
        rate_limit=RateLimit(per_minute=None, per_hour=4, hour_seconds=600.0),
        rate_limit_headers=True,
    )
    monkeypatch.setenv("REPLY_API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    handler = load_handler()

    invocation = invoke_with_sqs(
        handler,
        aws_stack,
        [json.dumps({"sequenceIds": [109, 110, 111, 112, 113, 114]})],
        lambda_context(timeout_seconds=40),
    )

    # Waiting for the budget is no failure: the record is acknowledged and its 5 untried IDs are carried on by a
    # continuation delayed until the budget frees up.
    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert [r["outcome"] for r in detail["results"]] == ["archived"]
    assert detail["deferredIds"] == [110, 111, 112, 113, 114]
    assert [r.status for r in simulator.requests] == [200]
    assert receive_batch(aws_stack, max_messages=1, timeout_seconds=1) == []  # delayed, not back at once
