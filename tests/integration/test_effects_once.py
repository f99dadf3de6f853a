"""Effects once, end to end: a publish outage (a fault proxy in front of EventBridge) over several deliveries of a
live clean-up enqueues no selected ID twice, on the real queue. The same outage over an archive request (one
continuation per part, each ID archived once) and over a rejected record (parked once) are functional cases:
tests/functional/test_redeliveries.py and tests/functional/test_rejected_record_parked_once.py."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import (
    delete_messages,
    drain_queue,
    receive_batch,
    send_messages,
    sqs_event_from_messages,
)
from local.stand_ins.fault_proxy import FaultProxy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

FAILED_DELIVERIES = 3  # the outage: PutEvents fails for three deliveries of the record, then recovers


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
