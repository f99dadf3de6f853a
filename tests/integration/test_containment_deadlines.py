"""No invocation outlives its deadline when Reply drips; healthy work still gets done, and the key never leaks.

Each test runs the real handler with a short Lambda timeout against the local stack, with Reply misbehaving
through the simulator's drip and echo faults. Time used is measured against the time the invocation had: the
issue's bound is time left plus 0.3 s. A hanging AWS service is bounded per adapter against real hanging
endpoints in test_aws_hangs.py, and the pipeline's sharing of the time between them (a hanging EventBridge,
SQS, idempotency table or secret costs only its own step) is tests/functional/test_hanging_dependencies.py's.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import read_results_events, receive_batch, send_messages, sqs_event_from_messages
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

TIME_GIVEN_SECONDS = 3.0
# The dripping-neighbour test: the dripping ID's two bounded attempts take 2 x (0.3 + 0.4) s = 1.4 s, a quarter of
# the time is kept back from Reply work, and a loaded machine needs slack for the invocation's own AWS calls before
# the healthy ID (at 3.0 s it was deferred, correctly, on a busy CI host). An unbounded drip (0.4 s a byte) would
# still hold the dripping call past this whole invocation, so the healthy ID archived proves the bound.
TIME_FOR_BOTH_IDS_SECONDS = 6.0
ALLOWED_OVERRUN_SECONDS = 0.3
DRIP_SECONDS = 0.4  # far below every socket timeout: only a bound on the whole call ends it


def sqs_event(stack: LocalStack, bodies: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Bodies sent to the real queue and received as Lambda's poller would; the event and its message IDs."""
    message_ids = send_messages(stack, bodies)
    messages = receive_batch(stack, max_messages=len(bodies))
    by_id = {message["MessageId"]: message for message in messages}
    ordered = [by_id[message_id] for message_id in message_ids]
    return sqs_event_from_messages(ordered, stack.queue_arn, stack.region), message_ids


def timed_invocation(handler: LambdaInstance, event: object, context: LocalLambdaContext) -> tuple[Any, float, float]:
    """(response or raised exception, seconds used, seconds the invocation had)."""
    had = context.get_remaining_time_in_millis() / 1000.0
    started = time.monotonic()
    try:
        response: Any = handler.lambda_handler(event, context)
    except Exception as exc:
        response = exc
    return response, time.monotonic() - started, had


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_dripping_reply_answer_costs_one_id_and_never_the_deadline(
    part: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Short per-attempt timeouts, so the dripping ID gives up within the invocation and its neighbour is tried.
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_CONNECT_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("REPLY_READ_TIMEOUT_SECONDS", "0.4")
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("REPLY_BACKOFF_BASE_SECONDS", "0.01")
    reply_simulator.inject(Fault(kind="drip", seconds=DRIP_SECONDS, part=part, times=None, sequence_id=113))
    handler = load_handler()
    event, (dripping, healthy) = sqs_event(
        aws_stack, [json.dumps({"sequenceIds": [113]}), json.dumps({"sequenceIds": [114]})]
    )

    response, used, had = timed_invocation(handler, event, lambda_context(timeout_seconds=TIME_FOR_BOTH_IDS_SECONDS))

    assert used <= had + ALLOWED_OVERRUN_SECONDS
    assert failed_ids(response) == {dripping}
    sequence = reply_simulator.sequence(114)
    assert sequence is not None
    assert sequence.is_archived
    details = details_by_request(read_results_events(aws_stack, expected=2))
    assert outcomes(details[healthy]) == {114: "archived"}
    assert outcomes(details[dripping]) == {113: "failed"}


def test_reply_dripping_on_every_call_with_default_timeouts_still_ends_in_time(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    reply_simulator.inject(Fault(kind="drip", seconds=DRIP_SECONDS, times=None))
    handler = load_handler()
    event, message_ids = sqs_event(aws_stack, [json.dumps({"sequenceIds": [115, 116]})])

    response, used, had = timed_invocation(handler, event, lambda_context(timeout_seconds=TIME_GIVEN_SECONDS))

    assert used <= had + ALLOWED_OVERRUN_SECONDS
    assert failed_ids(response) == set(message_ids)
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert detail["counts"]["failed"] == 2


def test_the_key_appears_nowhere_when_reply_echoes_it(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Final (400) and retryable (500) answers whose problem text quotes the Authorization header.
    reply_simulator.inject(Fault(kind="echo", status=400, times=None, sequence_id=104))
    reply_simulator.inject(Fault(kind="echo", status=500, times=None, sequence_id=105))
    handler = load_handler()
    event, _ = sqs_event(aws_stack, [json.dumps({"sequenceIds": [104, 105, 106]})])
    eventbridge_event = {"detail-type": "Archive", "source": "crm", "id": "echo-1", "detail": {"sequenceId": 105}}

    sqs_response = handler.lambda_handler(event, lambda_context())
    with pytest.raises(Exception) as raised:  # noqa: PT011 - any error type; its text is what is checked
        handler.lambda_handler(eventbridge_event, lambda_context())

    assert reply_simulator.api_calls > 0
    captured = capsys.readouterr()
    places = {
        "sqs response": json.dumps(sqs_response),
        "exception": f"{raised.value} {raised.value!r} {getattr(raised.value, 'detail', '')}",
        "stdout": captured.out,
        "stderr": captured.err,
        "results events": json.dumps(read_results_events(aws_stack, expected=2)),
    }
    assert "[redacted]" in places["results events"]
    assert [place for place, text in places.items() if api_key in text] == []
