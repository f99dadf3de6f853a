"""The rate budget, end to end: under a tiny budget (a compressed hour) a record that only failed is retried whole
through the real handler and queue. The deferral cases (a record waiting for the budget continued with only its
unfinished IDs, a real failure carried on beside finished IDs) are functional: tests/functional/
test_budget_deferral.py and test_redeliveries.py; the real rate limiter's deferrals over a whole campaign are
test_soak_backlog.py's."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events
from local.stand_ins.reply_simulator import Fault
from sequence_archiver.core.deadline import SAFETY_MARGIN_FRACTION
from sequence_archiver.reply.client import Timeouts
from tests.integration.harness import invoke_with_sqs

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
