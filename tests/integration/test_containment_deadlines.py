"""No invocation outlives its deadline, whichever dependency hangs or drips; healthy work still gets done.

Each test runs the real handler with a short Lambda timeout against the local stack, with one dependency
misbehaving: Reply (through the simulator's drip fault) or an AWS service (through the fault proxy in front of
moto, reached with boto3's standard AWS_ENDPOINT_URL_<SERVICE> variables). Time used is measured against
the time the invocation had: the issue's bound is time left plus 0.3 s.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import read_results_events, receive_batch, send_messages, sqs_event_from_messages
from local.stand_ins.fault_proxy import FaultProxy
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

TIME_GIVEN_SECONDS = 3.0
ALLOWED_OVERRUN_SECONDS = 0.3
DRIP_SECONDS = 0.4  # far below every socket timeout: only a bound on the whole call ends it


@pytest.fixture
def proxy(
    moto_server: MotoServer, function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto that the function reaches for every AWS service it calls."""
    del function_env  # set first: it clears AWS_ENDPOINT_URL_* variables
    with FaultProxy(moto_server.endpoint_url) as started:
        for name, value in started.endpoint_variables().items():
            monkeypatch.setenv(name, value)
        yield started
        started.clear()


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

    response, used, had = timed_invocation(handler, event, lambda_context(timeout_seconds=TIME_GIVEN_SECONDS))

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


def test_a_hanging_eventbridge_costs_no_more_than_the_time_left(
    proxy: FaultProxy,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    proxy.hang("events")
    handler = load_handler()
    event, message_ids = sqs_event(aws_stack, [json.dumps({"sequenceIds": [117]})])

    response, used, had = timed_invocation(handler, event, lambda_context(timeout_seconds=TIME_GIVEN_SECONDS))

    assert used <= had + ALLOWED_OVERRUN_SECONDS
    assert failed_ids(response) == set(message_ids)  # archived, but its results event is owed: retried
    sequence = reply_simulator.sequence(117)
    assert sequence is not None
    assert sequence.is_archived


def test_a_hanging_secrets_manager_costs_no_more_than_the_time_left(
    proxy: FaultProxy,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    proxy.hang("secretsmanager")
    handler = load_handler()
    event, message_ids = sqs_event(aws_stack, [json.dumps({"sequenceIds": [118]})])

    response, used, had = timed_invocation(handler, event, lambda_context(timeout_seconds=TIME_GIVEN_SECONDS))

    assert used <= had + ALLOWED_OVERRUN_SECONDS
    assert failed_ids(response) == set(message_ids)  # an unreadable key fails the invocation's IDs
    assert reply_simulator.api_calls == 0
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert detail["counts"]["failed"] == 1


def test_a_hanging_sqs_while_parking_never_delays_archiving_or_publishing_the_good_record(
    proxy: FaultProxy,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    proxy.hang("sqs")  # the function's SendMessage to the DLQ (and any visibility change) never answers
    handler = load_handler()
    event, (unparseable, healthy) = sqs_event(aws_stack, ["not json", json.dumps({"sequenceIds": [119]})])

    response, used, had = timed_invocation(handler, event, lambda_context(timeout_seconds=TIME_GIVEN_SECONDS))

    assert used <= had + ALLOWED_OVERRUN_SECONDS
    assert failed_ids(response) == {unparseable}  # not parked, so SQS keeps it; the good record is done
    sequence = reply_simulator.sequence(119)
    assert sequence is not None
    assert sequence.is_archived
    assert outcomes(details_by_request(read_results_events(aws_stack, expected=1))[healthy]) == {119: "archived"}


def test_a_hanging_idempotency_table_never_starves_the_reply_work(
    idempotency_table: str,
    proxy: FaultProxy,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    proxy.hang("dynamodb")
    handler = load_handler()
    bodies = [json.dumps({"sequenceIds": [sequence_id]}) for sequence_id in (101, 102, 103)]
    event, _ = sqs_event(aws_stack, bodies)

    response, used, had = timed_invocation(handler, event, lambda_context(timeout_seconds=TIME_GIVEN_SECONDS))

    assert used <= had + ALLOWED_OVERRUN_SECONDS
    assert failed_ids(response) == set()  # the table is unavailable: processed at least once, as without it
    for sequence_id in (101, 102, 103):
        sequence = reply_simulator.sequence(sequence_id)
        assert sequence is not None
        assert sequence.is_archived


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
