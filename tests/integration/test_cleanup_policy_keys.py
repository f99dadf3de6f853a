"""The clean-up keys of issue 22 through the real handler and the Reply simulator over HTTP: health, the keep
list, contactsFinished and inactiveForDays, cheapest first; the plan's reasons and call counts; and the
per-sequence checks carried on by continuations through the queue without a contacts page read twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.cpu_clock import invocation_clock
from local.stand_ins.event_source import EventSourceMapping
from tests.integration.harness import validate_plan

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

CHECK_OPERATIONS = ("contacts", "contacts_state")


def operations(simulator: ReplySimulator) -> Counter[str]:
    """The Reply calls the simulator answered, by operation (list, contacts, contacts_state, ...)."""
    return Counter(request.operation or "-" for request in simulator.requests)


def check_calls(simulator: ReplySimulator, sequence_id: int) -> list[str]:
    return [call.operation or "-" for call in simulator.sequence_calls(sequence_id)]


def dry_run(handler: LambdaInstance, context: LocalLambdaContext, select: dict[str, Any]) -> dict[str, Any]:
    return validate_plan(handler.lambda_handler({"select": select}, context))


def test_health_selects_exactly_the_sequences_of_the_healths_asked_for(
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given sequences of every health beside the seed's (all healthy)
    for offset, health in enumerate(["blocked", "stalled", "degraded", "healthy", "blocked", "stalled"]):
        reply_simulator.add_sequence(50_001 + offset, status="paused", health=health)

    # When a policy asks for the blocked and stalled ones
    detail = dry_run(load_handler(), lambda_context(), {"health": ["BLOCKED", "stalled"]})

    # Then exactly those are planned, with one listing call and no call per sequence
    assert detail["sequenceIds"] == [50_001, 50_002, 50_005, 50_006]
    assert detail["selection"] == {"health": ["stalled", "blocked"]}
    assert detail["matchedKeys"] == [{"key": "health", "appliedAs": "listedField"}]
    assert list(detail["leftOut"]) == ["health"]  # the seed's healthy sequences, and the two added
    assert detail["leftOut"]["health"] >= 2
    assert detail["replyCalls"] == {"listing": 1, "checks": 0, "total": 1}
    assert not {operation for operation in operations(reply_simulator) if operation in CHECK_OPERATIONS}


def test_exclude_keeps_its_ids_and_names_out_whatever_else_matches(
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given four blocked sequences, one of them named to be kept
    for sequence_id in range(51_001, 51_004):
        reply_simulator.add_sequence(sequence_id, status="paused", health="blocked")
    reply_simulator.add_sequence(51_004, name="Board deck (KEEP)", status="paused", health="blocked")

    # When the policy keeps one by ID and one by part of its name
    detail = dry_run(
        load_handler(),
        lambda_context(),
        {"health": "blocked", "exclude": {"sequenceIds": [51_002], "nameContains": ["keep"]}},
    )

    # Then neither is planned
    assert detail["sequenceIds"] == [51_001, 51_003]
    assert detail["leftOut"]["exclude"] == 2
    assert detail["selection"]["exclude"] == {"sequenceIds": [51_002], "nameContains": ["keep"]}


def test_contacts_finished_leaves_out_a_sequence_with_one_active_contact_and_keeps_one_with_none(
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given three blocked sequences: 1,199 finished contacts and one active; none at all; 1,200 finished or inactive
    for sequence_id in (52_001, 52_002, 52_003):
        reply_simulator.add_sequence(sequence_id, status="paused", health="blocked")
    reply_simulator.add_contacts(52_001, 1_199, status="finished")
    reply_simulator.add_contacts(52_001, 1, status="active", start_id=1_200)  # added last: listed first
    reply_simulator.add_contacts(52_003, 1_000, status="finished")
    reply_simulator.add_contacts(52_003, 200, status="inactive", start_id=1_001)

    # When a policy asks for blocked sequences whose contacts are all finished
    detail = dry_run(load_handler(), lambda_context(), {"health": "blocked", "contactsFinished": True})

    # Then the one with an active contact is left out, after one page; the others are planned
    assert detail["sequenceIds"] == [52_002, 52_003]
    assert check_calls(reply_simulator, 52_001) == ["contacts"]  # stopped at the first unfinished contact
    assert check_calls(reply_simulator, 52_002) == ["contacts"]
    assert check_calls(reply_simulator, 52_003) == ["contacts", "contacts"]  # 1,000 a page
    assert detail["leftOut"] == {"contactsFinished": 1, "health": detail["leftOut"]["health"]}
    assert detail["replyCalls"] == {"listing": 1, "checks": 4, "total": 5}
    assert operations(reply_simulator)["contacts"] == 4
    # ... and the live run's estimate counts the snapshots of the contacts it read: 2 a sequence, 1 per 1,000
    assert detail["liveRunEstimate"] == {
        "sequences": 2,
        "bulkArchiveCalls": 1,
        "singleArchiveCalls": 2,
        "pauseCalls": 0,
        "snapshotCallsAtLeast": 2 * 2 + 0 + 2,
    }


def test_inactive_for_days_uses_each_contacts_last_completed_step(
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given stalled sequences whose contacts last completed a step 5 days ago, 100 days ago, or never
    now = datetime.now(UTC)
    for sequence_id in (53_001, 53_002, 53_003):
        reply_simulator.add_sequence(sequence_id, status="paused", health="stalled")
    reply_simulator.add_contacts(53_001, 150, status="finished", last_step_completed_at=now - timedelta(days=100))
    reply_simulator.add_contacts(
        53_001, 1, status="active", start_id=151, last_step_completed_at=now - timedelta(days=5)
    )
    reply_simulator.add_contacts(53_002, 250, status="finished", last_step_completed_at=now - timedelta(days=100))
    reply_simulator.add_contacts(53_003, 3, status="inactive", last_step_completed_at=None)

    # When a policy asks for stalled sequences inactive for 30 days
    detail = dry_run(load_handler(), lambda_context(), {"health": "stalled", "inactiveForDays": 30})

    # Then the one with a step 5 days ago is left out; reading the state 100 contacts a page
    assert detail["sequenceIds"] == [53_002, 53_003]
    assert check_calls(reply_simulator, 53_002) == ["contacts_state"] * 3
    assert detail["leftOut"]["inactiveForDays"] == 1
    assert detail["matchedKeys"] == [
        {"key": "health", "appliedAs": "listedField"},
        {"key": "inactiveForDays", "appliedAs": "perSequenceCheck"},
    ]
    answered = operations(reply_simulator)
    assert detail["replyCalls"] == {
        "listing": answered["list"],
        "checks": answered["contacts_state"],
        "total": answered["list"] + answered["contacts_state"],
    }


def test_the_checks_run_only_for_candidates_every_cheaper_key_left(
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given a blocked sequence and a healthy one, each with finished contacts, and a blocked one on the keep list
    reply_simulator.add_sequence(54_001, status="paused", health="blocked")
    reply_simulator.add_sequence(54_002, status="paused", health="healthy")
    reply_simulator.add_sequence(54_003, status="paused", health="blocked")
    for sequence_id in (54_001, 54_002, 54_003):
        reply_simulator.add_contacts(sequence_id, 5, status="finished")

    detail = dry_run(
        load_handler(),
        lambda_context(),
        {
            "status": "paused",
            "health": "blocked",
            "exclude": {"sequenceIds": [54_003]},
            "contactsFinished": True,
            "inactiveForDays": 10,
        },
    )

    # Then only the first is checked, both checks, the cheaper first
    assert detail["sequenceIds"] == [54_001]
    assert check_calls(reply_simulator, 54_001) == ["contacts", "contacts_state"]
    assert check_calls(reply_simulator, 54_002) == []
    assert check_calls(reply_simulator, 54_003) == []
    assert [key["key"] for key in detail["matchedKeys"]] == [
        "status",
        "health",
        "exclude",
        "contactsFinished",
        "inactiveForDays",
    ]


def test_checks_longer_than_an_invocation_continue_through_the_queue_reading_each_page_once(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
    plan_events: Callable[..., list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a slow Reply (0.1 s a call) and 12 blocked sequences of 250 finished contacts (3 state pages each)
    simulator = start_reply_simulator(latency_seconds=0.1)
    candidates = list(range(55_001, 55_013))
    for sequence_id in candidates:
        simulator.add_sequence(sequence_id, status="paused", health="blocked")
        simulator.add_contacts(sequence_id, 250, status="finished")
    monkeypatch.setenv("REPLY_API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("ARCHIVE_QUEUE_URL", aws_stack.queue_url)
    handler = load_handler()
    request = {"select": {"health": "blocked", "contactsFinished": True, "inactiveForDays": 30}}

    # When the dry run is invoked with 1 s (of CPU time) and carries the rest on through the queue
    first = validate_plan(
        handler.lambda_handler(request, lambda_context(timeout_seconds=1.0, clock=invocation_clock()))
    )
    mapping = EventSourceMapping(
        aws_stack, handler.lambda_handler, batch_size=10, batching_window_seconds=0, function_timeout_seconds=1.0
    )
    drain = mapping.drain(until_empty_for=0.5, max_seconds=90)

    # Then one plan selects every candidate, having read each contacts page exactly once
    assert first["outcome"] == "continued"
    assert (drain.stopped, drain.handler_errors, drain.failed_records) == ("empty", 0, 0)
    [plan] = plan_events(expected=1)
    assert (plan["outcome"], plan["sequenceIds"]) == ("planned", candidates)
    assert plan["invocations"] > 1
    answered = Counter(
        (request.sequence_id, request.operation)
        for request in simulator.requests
        if request.operation in CHECK_OPERATIONS and request.status == 200
    )
    assert answered == Counter(
        {key: count for id_ in candidates for key, count in (((id_, "contacts"), 1), ((id_, "contacts_state"), 3))}
    )
    assert plan["replyCalls"]["checks"] == sum(answered.values()) == 48
