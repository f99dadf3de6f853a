"""The short soak: a few hundred IDs through the local event source under every fault kind, poison IDs among
them, then hanging endpoints; nothing is lost and no invocation outlives its time."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from local.scenarios.lambda_instance import IDEMPOTENCY_VARIABLE
from local.scenarios.soak_config import FAULT_STEPS, SoakConfig, idempotency_supported
from local.scenarios.soak_phases import ALLOWED_OVERRUN_SECONDS
from local.scenarios.soak_run import run_soak
from local.stand_ins.aws_stack import QueueSettings, provision, send_messages, unique_name_prefix, variables_to_unset
from local.stand_ins.event_source import EventSourceMapping, event_source_settings_from_template

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext

pytestmark = pytest.mark.integration

# Deterministic traffic (fixed seed) and one fault step before each of the first batches, so every fault
# kind is armed while the queue still holds work. Visibility and function timeout are 2 s: a record that
# keeps failing reaches the dead-letter queue after the template's maxReceiveCount receives in ~10 s.
# The 429 outage step is left out here (it only costs seconds of Retry-After; `make soak` runs it).
# Poison: in the run without idempotency, three IDs that answer 500 on every call sit inside healthy
# multi-ID requests. Their continuations join the back of the queue and need maxReceiveCount receives after
# the backlog (~8 s), so the idempotent run has none. Hanging endpoints: after the traffic drained, the plain
# run holds a Reply endpoint (dripping headers) and SQS, the idempotent one DynamoDB, for one batch each.
# `make soak` runs every kind, and the poison IDs, in both modes.
SHORT_SOAK = SoakConfig(
    ids=300,
    seed=7,
    batch_size=5,
    function_timeout_seconds=2.0,
    visibility_timeout_seconds=2,
    lose_delete_probability=0.05,
    fault_steps=tuple(step for step in FAULT_STEPS if step != "429_outage"),
    fault_every=1,
    fault_cycles=1,
    throttle_burst=1,
    secret_read_failures=3,
    max_seconds=45.0,
    until_empty_for=0.0,
    hang_batches=1,
)
PHASES_PER_RUN: dict[bool, dict[str, Any]] = {
    False: {"poison_ids": 3, "hang_steps": ("reply_drip_headers", "sqs_hang")},
    True: {"poison_ids": 0, "hang_steps": ("dynamodb_hang",)},
}


# About 30 s a run on an idle machine, 60-90 s beside three busy loops. The drains' limits (max_seconds, 45 s
# each: the main one and a recovery per hanging step) count CPU-available time (cpu_clock), so a loaded run
# may take longer in wall time; pytest's limit is a backstop above them, so a stuck drain fails with its
# own reason ("max_seconds"), not with a timeout.
@pytest.mark.timeout(420)
@pytest.mark.parametrize("idempotency", [False, True], ids=["plain", "idempotent"])
def test_no_id_is_lost_under_injected_faults(
    idempotency: bool,
    moto_server: MotoServer,
    api_key: str,
    load_handler: Callable[[], LambdaInstance],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if idempotency and not idempotency_supported():
        pytest.skip(f"the function does not read {IDEMPOTENCY_VARIABLE} yet")

    def apply_environment(environment: dict[str, str]) -> None:
        for name in [*variables_to_unset(os.environ), IDEMPOTENCY_VARIABLE]:
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)

    # Given a few hundred IDs in every request shape, poison IDs among them, and every fault kind armed while
    # they drain; then a Reply endpoint and AWS endpoints that drip or hang
    report = run_soak(
        dataclasses.replace(SHORT_SOAK, idempotency=idempotency, **PHASES_PER_RUN[idempotency]),
        api_key=api_key,
        moto_endpoint=moto_server.endpoint_url,
        load_handler=load_handler,
        apply_environment=apply_environment,
    )
    captured = capsys.readouterr()

    # Then the queue drained by itself and every valid ID is archived, reported final, or dead-lettered
    ledger = report.ledger
    assert report.drain.stopped == "empty"
    assert ledger.ids_in >= SHORT_SOAK.ids
    assert ledger.lost == []
    assert ledger.wrong_outcomes == []
    assert ledger.messages_unsettled == 0
    # ... the doomed requests (results event never publishable) went to the DLQ through the redrive policy
    assert ledger.dead_letter_redriven >= SHORT_SOAK.doomed_requests
    assert ledger.dead_lettered >= SHORT_SOAK.doomed_requests
    # ... the poison messages were parked there by the function itself
    assert ledger.dead_letter_parked_by_function >= ledger.shapes["poison"]
    # ... each poison ID reached the DLQ through the redrive (in its record, or in the continuation carrying
    # only it), and the healthy IDs of its record were reported final (archived, or not_found / forbidden /
    # conflict as seeded) by that record's own results events
    poison = ledger.poison
    assert poison.problems == []
    assert poison.poison_ids == poison.poison_ids_dead_lettered == report.config.poison_ids
    assert poison.records == poison.records_dead_lettered == report.config.poison_ids
    assert poison.healthy_ids_archived + poison.healthy_ids_final_otherwise == poison.healthy_ids
    if report.config.poison_ids:
        assert poison.healthy_ids_archived > 0
        assert poison.bulk_calls > 0  # isolated out of bulk calls ...
        assert poison.single_calls > 0  # ... down to single calls on the poison ID alone
    assert ledger.unplanned_redrives == []
    # ... every fault kind actually fired
    assert {kind: count for kind, count in report.faults_fired.items() if count == 0} == {}
    # ... each hanging endpoint held calls, and no invocation of the run used more than its time
    assert report.hang_steps == list(PHASES_PER_RUN[idempotency]["hang_steps"])
    for step in report.hang_steps:
        times = report.timings.by_label[step]
        assert times.invocations >= SHORT_SOAK.hang_batches, step
        assert times.held_calls > 0, step
    overall = report.timings.overall()
    assert overall.invocations == report.totals.batches
    assert overall.cut == 0
    assert overall.worst_overrun <= ALLOWED_OVERRUN_SECONDS
    assert all(recovery.stopped == "empty" for recovery in report.recoveries)
    # ... and no API key (the fixture's marker or a rotated one) appears in any output
    assert report.leaks == []
    for key in report.api_keys:
        assert key not in captured.out
        assert key not in captured.err
    if idempotency:
        assert report.idempotency_records


# ---------------------------------------------------------------- the local event source itself


def _send_three(stack: LocalStack) -> list[str]:
    return send_messages(stack, [json.dumps({"sequenceId": n}) for n in (101, 102, 103)])


@pytest.mark.parametrize(
    ("response", "deleted", "left"),
    [
        ({"batchItemFailures": []}, 3, 0),
        (None, 3, 0),
        ("second", 2, 1),  # the second record is reported failed
        ({"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}, 0, 3),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, 0, 3),
        (["not", "an", "object"], 0, 3),
    ],
    ids=["all-acknowledged", "no-response", "one-failed", "unknown-identifier", "null-identifier", "not-an-object"],
)
def test_the_event_source_deletes_exactly_what_the_handler_acknowledged(
    aws_stack: LocalStack, response: object, deleted: int, left: int
) -> None:
    message_ids = _send_three(aws_stack)
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: LocalLambdaContext) -> object:
        events.append(event)
        if response == "second":
            return {"batchItemFailures": [{"itemIdentifier": message_ids[1]}]}
        return response

    mapping = EventSourceMapping(aws_stack, handler, batch_size=10, batching_window_seconds=0)
    outcome = mapping.poll_once()

    assert sorted(outcome.message_ids) == sorted(message_ids)
    assert {record["messageId"] for record in events[0]["Records"]} == set(message_ids)
    assert outcome.deleted == deleted
    assert mapping.queue_depth() == (0, left)  # the rest stays in flight until its visibility timeout


def test_a_handler_exception_fails_the_whole_batch(aws_stack: LocalStack) -> None:
    _send_three(aws_stack)

    def handler(event: dict[str, Any], context: LocalLambdaContext) -> object:
        raise RuntimeError("boom")

    outcome = EventSourceMapping(aws_stack, handler, batch_size=10, batching_window_seconds=0).poll_once()

    assert outcome.whole_batch_failed
    assert outcome.handler_error == "RuntimeError: boom"
    assert outcome.deleted == 0


def test_the_context_carries_the_template_timeout(aws_stack: LocalStack) -> None:
    _send_three(aws_stack)
    remaining: list[int] = []

    def handler(event: dict[str, Any], context: LocalLambdaContext) -> object:
        remaining.append(context.get_remaining_time_in_millis())
        return None

    EventSourceMapping(aws_stack, handler, batching_window_seconds=0).poll_once()

    timeout_ms = event_source_settings_from_template().function_timeout_seconds * 1000
    assert timeout_ms - 5000 < remaining[0] <= timeout_ms


def test_a_visibility_timeout_shorter_than_the_function_timeout_is_refused(moto_server: MotoServer) -> None:
    stack = provision(
        moto_server.endpoint_url,
        api_key="unused",
        name_prefix=unique_name_prefix("es"),
        queue_settings=QueueSettings(5, 5, "test"),
    )

    with pytest.raises(ValueError, match="shorter than the function timeout"):
        EventSourceMapping(stack, lambda event, context: None, function_timeout_seconds=10)
