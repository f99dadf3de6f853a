"""Effects once: a publish outage over several deliveries repeats no continuation, archives no ID twice and
enqueues no selected ID twice."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import (
    delete_messages,
    drain_queue,
    read_results_events,
    receive_batch,
    send_messages,
    sqs_event_from_messages,
)
from local.stand_ins.cpu_clock import invocation_clock
from local.stand_ins.fault_proxy import FaultProxy
from tests.integration.harness import unsealed
from tests.integration.test_backlog_deferral import Pace

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

FAILED_DELIVERIES = 3  # the outage: PutEvents fails for three deliveries of the record, then recovers
MAX_ROUNDS = 8  # continuation rounds to drain the queue; the fixed pipeline needs 2 (parts 2 and 3)


def deliver_through_a_publish_outage(
    handler: LambdaInstance,
    event: dict[str, Any],
    request_id: str,
    proxy: FaultProxy,
    context: Callable[[], LocalLambdaContext],
) -> None:
    """Deliver the record while PutEvents fails for its results (each delivery retried), then once more after."""
    proxy.fail_results_of([request_id])
    for _ in range(FAILED_DELIVERIES):
        response = handler.lambda_handler(event, context())
        assert response == {"batchItemFailures": [{"itemIdentifier": request_id}]}
    proxy.clear()
    response = handler.lambda_handler(event, context())
    assert response == {"batchItemFailures": []}


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's moto server, for EventBridge only."""
    with FaultProxy(moto_server.endpoint_url) as started:
        yield started


def test_a_publish_outage_over_three_deliveries_sends_one_continuation_per_part_and_archives_each_id_once(
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
    idempotency_table: str,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pace = Pace.measured(aws_stack, reply_simulator, load_handler)
    # Single calls, 3 an hour (a compressed one): a record of 5 IDs archives 3 and defers 2.
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_HOUR", "3")
    monkeypatch.setenv("REPLY_RATE_LIMIT_TIME_SCALE", str(pace.hour_seconds / 3600))
    monkeypatch.setenv("RESULTS_PUBLISH_MAX_ATTEMPTS", "1")
    for name, value in proxy.endpoint_variables(["events"]).items():
        monkeypatch.setenv(name, value)
    handler = load_handler()
    ids = [101, 102, 103, 104, 105]
    [request_id] = send_messages(aws_stack, [json.dumps({"sequenceIds": ids})])
    [record] = receive_batch(aws_stack, max_messages=1)
    event = sqs_event_from_messages([record], aws_stack.queue_arn, aws_stack.region)

    # The outage: every delivery of the record fails to publish its results, and is retried.
    deliver_through_a_publish_outage(
        handler,
        event,
        request_id,
        proxy,
        lambda: lambda_context(timeout_seconds=pace.timeout_seconds, clock=invocation_clock()),
    )
    delete_messages(aws_stack, [record])

    # Drain every continuation that reached the queue, counting them per part.
    parts: Counter[tuple[str, int]] = Counter()
    for _ in range(MAX_ROUNDS):
        messages = receive_batch(aws_stack, max_messages=10, timeout_seconds=pace.hour_seconds + 5)
        if not messages:
            break
        for message in messages:
            marker = unsealed(message["Body"])["continuation"]
            parts[(marker["requestId"], marker["part"])] += 1
        batch = sqs_event_from_messages(messages, aws_stack.queue_arn, aws_stack.region)
        response = handler.lambda_handler(
            batch, lambda_context(timeout_seconds=pace.timeout_seconds, clock=invocation_clock())
        )
        assert response == {"batchItemFailures": []}
        delete_messages(aws_stack, messages)
    else:
        pytest.fail(f"the queue still held continuations after {MAX_ROUNDS} rounds: {dict(parts)}")

    assert parts, "the record's deferred IDs were never continued"
    assert all(count == 1 for count in parts.values()), f"a part was continued more than once: {dict(parts)}"
    assert {request for request, _ in parts} == {request_id}

    # Every ID archived once: one 200 per ID from Reply, whatever else a redelivery asked (409 already archived).
    archived = Counter(
        request.sequence_id
        for request in reply_simulator.requests
        if request.method == "POST" and request.path.endswith("/archive") and request.status == 200
    )
    assert archived == Counter(ids)
    for sequence_id in ids:
        sequence = reply_simulator.sequence(sequence_id)
        assert sequence is not None
        assert sequence.is_archived

    # The results say so: every ID has a final archived outcome, and the last part is complete.
    details = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    ours = [detail for detail in details if detail["requestId"] == request_id]
    final: dict[int, str] = {}
    for detail in ours:
        for result in detail["results"]:
            final[result["sequenceId"]] = result["outcome"]
    assert set(final) == set(ids)
    assert set(final.values()) <= {"archived", "already_archived"}
    last: dict[str, Any] = max(ours, key=lambda detail: detail.get("continuation") or 1)
    assert last["complete"] is True


# The seed's paused sequences of the key's user (tests/integration/test_cleanup_policy.py), and 150 more.
SELECTED = [*range(101, 121), 601, 701, 702, *range(40_001, 40_151)]


def test_a_publish_outage_over_three_deliveries_of_a_live_clean_up_enqueues_each_selected_id_once(
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
    idempotency_table: str,
    proxy: FaultProxy,
    plan_events: Callable[..., list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A live clean-up arriving on the request queue (an operator allowed it), its plan event doomed three times
    monkeypatch.setenv("CLEANUP_ALLOWED_TRIGGERS", "direct,sqs")
    monkeypatch.setenv("ARCHIVE_QUEUE_URL", aws_stack.queue_url)
    monkeypatch.setenv("RESULTS_PUBLISH_MAX_ATTEMPTS", "1")
    for name, value in proxy.endpoint_variables(["events"]).items():
        monkeypatch.setenv(name, value)
    reply_simulator.add_sequences(range(40_001, 40_151), status="paused")
    handler = load_handler()
    [request_id] = send_messages(aws_stack, [json.dumps({"select": {"status": "paused"}, "dryRun": False})])
    [record] = receive_batch(aws_stack, max_messages=1)
    event = sqs_event_from_messages([record], aws_stack.queue_arn, aws_stack.region)

    deliver_through_a_publish_outage(handler, event, request_id, proxy, lambda_context)
    delete_messages(aws_stack, [record])

    # Each selected ID is on the queue once (before: once per delivery, 92 for 23), and only the first delivery
    # listed the selection
    queued = drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url, delete=True)
    enqueued = Counter(id_ for message in queued for id_ in json.loads(message["Body"])["sequenceIds"])
    assert enqueued == Counter(SELECTED)
    list_calls = [request for request in reply_simulator.requests if request.path == "/v3/sequences"]
    assert len(list_calls) == 1

    # The one plan published names exactly the messages on the queue
    [plan] = plan_events(expected=1)
    assert (plan["requestId"], plan["outcome"], plan["complete"]) == (request_id, "enqueued", True)
    assert sorted(plan["sequenceIds"]) == sorted(SELECTED)
    assert sorted(plan["enqueued"]["messageIds"]) == sorted(message["MessageId"] for message in queued)
    assert plan["enqueued"]["ids"] == len(SELECTED)


def test_a_publish_outage_over_three_deliveries_of_a_rejected_record_parks_it_once(
    aws_stack: LocalStack,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
    idempotency_table: str,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESULTS_PUBLISH_MAX_ATTEMPTS", "1")
    for name, value in proxy.endpoint_variables(["events"]).items():
        monkeypatch.setenv(name, value)
    handler = load_handler()
    [request_id] = send_messages(aws_stack, ["this is not JSON"])
    [record] = receive_batch(aws_stack, max_messages=1)
    event = sqs_event_from_messages([record], aws_stack.queue_arn, aws_stack.region)

    deliver_through_a_publish_outage(handler, event, request_id, proxy, lambda_context)

    # One copy in the dead-letter queue (before: one per delivery), and its results event says why
    parked = drain_queue(aws_stack.dead_letter_queue_url, endpoint_url=aws_stack.endpoint_url, delete=True)
    assert [message["Body"] for message in parked] == ["this is not JSON"]
    [detail] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    assert detail["requestId"] == request_id
    assert [result["outcome"] for result in detail["results"]] == ["invalid"]
