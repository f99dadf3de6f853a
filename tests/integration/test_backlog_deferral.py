"""A record that waits for the rate budget is carried on by a continuation: no receive spent, no ID done twice."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events, receive_batch, sqs_event_from_messages
from local.stand_ins.cpu_clock import invocation_clock
from local.stand_ins.reply_simulator import Fault
from sequence_archiver.core.deadline import SAFETY_MARGIN_FRACTION
from sequence_archiver.reply.client import Timeouts
from tests.integration.harness import emf_metrics, invoke_with_sqs, unsealed, validate_results_detail

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

# What an invocation of these tests does, counted in round trips to the local stack. A cold handler first builds
# its service (a boto3 session and clients: measured as such, below), then, before the work deadline, reads the
# secret and makes 3 Reply calls, with the logging around them (generously: 8 round trips). After it: sending
# the continuation, which may take a third of what is left of the final time (service.CONTINUATIONS_SHARE), at
# worst 1/3 of (SAFETY_MARGIN_FRACTION - FINAL_RESERVE) = 1/15 of the timeout: 20 round trips keep it clear.
ROUND_TRIPS_BEFORE_THE_WORK_DEADLINE = 8
TIMEOUT_IN_ROUND_TRIPS = 20
# The measurement is a sample of a machine whose load changes from one second to the next; a timeout twice what
# it asks for costs only test time (the compressed hour follows the timeout) and keeps a busier moment clear.
HEADROOM = 2.0


@dataclass(frozen=True)
class Pace:
    """Reply's compressed hour and the Lambda timeout, sized from what this machine costs now.

    The timeout must leave time for the cold start's service build, the finished IDs' calls and the
    continuation (else they stop with DeadlineExceededError / AwsCallTimeoutError and the test says nothing
    about continuations); the hour must outlast the timeout's work time (else the function would wait for the
    budget instead of deferring). On an idle machine: 1.5 s and 3 s. Its contexts count down the time the
    invocation had a CPU for (cpu_clock.invocation_clock), as a Lambda with a CPU of its own would: a cold build
    that waits for a CPU on a loaded machine (three busy loops beside the tests) does not eat the timeout.
    """

    timeout_seconds: float
    hour_seconds: float

    @classmethod
    def measured(cls, stack: LocalStack, simulator: ReplySimulator, load_handler: Callable[[], LambdaInstance]) -> Pace:
        """From a cold service build and the slowest of a few round trips (a new client and a call) to moto and
        to the simulator (uncounted)."""
        load_handler()  # the cold start: settings, Powertools (its service is built on the first invocation)
        from aws_lambda_powertools import Metrics

        from sequence_archiver.settings import load_settings
        from sequence_archiver.wiring import build_service

        settings = load_settings(os.environ)
        started = time.monotonic()
        build_service(settings, Metrics(namespace=settings.metrics_namespace, service=settings.service_name))
        cold_build = time.monotonic() - started
        costs = []
        for _ in range(3):
            started = time.monotonic()
            stack.sqs().get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["VisibilityTimeout"])
            with urllib.request.urlopen(f"{simulator.base_url}/__sim/settings", timeout=30) as answer:
                answer.read()
            costs.append(time.monotonic() - started)
        round_trip = max(costs)
        work_seconds = HEADROOM * (
            cold_build + Timeouts().minimum_call_seconds + ROUND_TRIPS_BEFORE_THE_WORK_DEADLINE * round_trip
        )
        timeout = max(1.5, work_seconds / (1 - SAFETY_MARGIN_FRACTION), HEADROOM * TIMEOUT_IN_ROUND_TRIPS * round_trip)
        return cls(timeout_seconds=timeout, hour_seconds=max(3.0, 2 * timeout))


@pytest.fixture
def tiny_budget(
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    monkeypatch: pytest.MonkeyPatch,
) -> Pace:
    """Single calls, 3 an hour (a compressed one): a record of 5 IDs cannot finish in one invocation."""
    pace = Pace.measured(aws_stack, reply_simulator, load_handler)
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_HOUR", "3")
    monkeypatch.setenv("REPLY_RATE_LIMIT_TIME_SCALE", str(pace.hour_seconds / 3600))
    return pace


def test_a_record_waiting_for_the_budget_is_acknowledged_and_continued_with_only_its_unfinished_ids(
    tiny_budget: Pace,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = load_handler()
    ids = [101, 102, 103, 104, 105]

    first = invoke_with_sqs(
        handler,
        aws_stack,
        [json.dumps({"sequenceIds": ids})],
        lambda: lambda_context(timeout_seconds=tiny_budget.timeout_seconds, clock=invocation_clock()),
    )

    # Acknowledged: waiting for the budget is no failure, so it costs the message no receive.
    assert first.failed_message_ids == set()
    assert reply_simulator.api_calls == 3
    metrics = emf_metrics(capsys.readouterr().out)
    assert sum(metrics["RecordsDeferred"]) == 1
    assert sum(metrics["SequencesDeferred"]) == 2
    [part_one] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    validate_results_detail(part_one)
    request_id = first.message_ids[0]
    assert (part_one["requestId"], part_one["continuation"], part_one["complete"]) == (request_id, 1, False)
    assert [result["sequenceId"] for result in part_one["results"]] == [101, 102, 103]
    assert part_one["deferredIds"] == [104, 105]

    # The continuation comes back once the budget has freed up (DelaySeconds), holding only 104 and 105.
    messages = receive_batch(aws_stack, max_messages=10, timeout_seconds=tiny_budget.hour_seconds + 5)
    [continuation] = messages
    assert unsealed(continuation["Body"]) == {
        "sequenceIds": [104, 105],
        "continuation": {"requestId": request_id, "part": 2},
    }
    time.sleep(max(0.0, tiny_budget.hour_seconds - 1.0))  # the delay is whole seconds; let the window free completely
    event = sqs_event_from_messages(messages, aws_stack.queue_arn, aws_stack.region)
    response = handler.lambda_handler(event, lambda_context())

    assert response == {"batchItemFailures": []}
    assert reply_simulator.api_calls == 5  # no ID archived twice
    [part_two] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    validate_results_detail(part_two)
    assert (part_two["requestId"], part_two["continuation"], part_two["complete"]) == (request_id, 2, True)
    assert {result["sequenceId"]: result["outcome"] for result in part_two["results"]} == {
        104: "archived",
        105: "archived",
    }


def test_a_real_failure_beside_finished_ids_is_carried_on_without_redoing_them(
    tiny_budget: Pace,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=106))
    handler = load_handler()

    invocation = invoke_with_sqs(
        handler,
        aws_stack,
        [json.dumps({"sequenceIds": [106, 107, 108, 109]})],
        lambda: lambda_context(timeout_seconds=tiny_budget.timeout_seconds, clock=invocation_clock()),
    )

    # 106 failed for real, 107 and 108 were archived, 109 waits for the budget: the record is acknowledged and
    # a continuation carries 106 and 109 on, counting the failure, so 107 and 108 are never archived again.
    assert invocation.failed_message_ids == set()
    [detail] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    assert (detail["continuation"], detail["deferredIds"]) == (1, [106, 109])
    assert {result["sequenceId"]: result["outcome"] for result in detail["results"]} == {
        107: "archived",
        108: "archived",
    }
    [continuation] = receive_batch(aws_stack, max_messages=10, timeout_seconds=tiny_budget.hour_seconds + 5)
    assert unsealed(continuation["Body"])["continuation"] == {
        "requestId": invocation.message_ids[0],
        "part": 2,
        "failures": 1,
    }


def test_a_record_that_only_failed_is_retried_whole_and_counts_a_receive(
    tiny_budget: Pace,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=106))
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [106]})], lambda_context())

    # Nothing finished, nothing to keep: SQS retries the record and its redrive policy counts the receive.
    assert invocation.failed_message_ids == set(invocation.message_ids)
    [detail] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    assert "deferredIds" not in detail
    assert detail["complete"] is False
