"""`select` with the clean-up keys of issue 22 (--health, --exclude-*, --contacts-finished, --inactive-for-days),
against the Reply simulator: the same sequences the function's dry run plans, each printed with why it matched."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]


@pytest.fixture
def policy_sequences(reply_simulator: ReplySimulator) -> ReplySimulator:
    """Blocked and stalled sequences beside the seed's healthy ones: 60_001 all finished, 60_002 one active contact,
    60_003 no contacts, 60_004 a step completed yesterday, 60_005 named to keep, 60_006 degraded."""
    yesterday = datetime.now(UTC) - timedelta(days=1)
    for sequence_id, health in ((60_001, "blocked"), (60_002, "stalled"), (60_003, "blocked"), (60_004, "stalled")):
        reply_simulator.add_sequence(sequence_id, status="paused", health=health)
    reply_simulator.add_sequence(60_005, name="Keep me", status="paused", health="blocked")
    reply_simulator.add_sequence(60_006, status="paused", health="degraded")
    reply_simulator.add_contacts(60_001, 3, status="finished")
    reply_simulator.add_contacts(60_002, 1, status="active")
    reply_simulator.add_contacts(60_004, 2, status="finished", last_step_completed_at=yesterday)
    reply_simulator.add_contacts(60_005, 2, status="finished")
    return reply_simulator


def test_health_and_the_keep_list_select_from_the_listed_fields(
    cli: Callable[..., Run], policy_sequences: ReplySimulator
) -> None:
    run = cli(
        "select", "--base-url", policy_sequences.base_url, "--health", "Blocked,stalled",
        "--exclude-ids", "60004", "--exclude-name", "KEEP",
    )  # fmt: skip

    assert run.code == 0, run.err
    assert [int(line) for line in run.lines] == [60_001, 60_002, 60_003]


def test_the_checks_leave_out_active_contacts_and_recent_steps_and_each_sequence_says_why(
    cli: Callable[..., Run], policy_sequences: ReplySimulator
) -> None:
    run = cli(
        "select", "--base-url", policy_sequences.base_url, "--status", "paused", "--health", "blocked,stalled",
        "--exclude-name", "keep", "--contacts-finished", "--inactive-for-days", "30", "--output", "jsonl",
    )  # fmt: skip

    assert run.code == 0, run.err
    printed = [json.loads(line) for line in run.lines]
    assert [item["id"] for item in printed] == [60_001, 60_003]
    assert {tuple(item["matched"]) for item in printed} == {
        ("status", "health", "exclude", "contactsFinished", "inactiveForDays")
    }
    assert [call.operation for call in policy_sequences.sequence_calls(60_005)] == []  # kept out before any check
    assert [call.operation for call in policy_sequences.sequence_calls(60_002)] == ["contacts"]


def test_the_flags_select_what_the_functions_dry_run_of_the_same_keys_plans(
    cli: Callable[..., Run],
    policy_sequences: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    select = {"health": ["blocked", "stalled"], "contactsFinished": True, "exclude": {"nameContains": ["keep"]}}

    flags = cli(
        "select", "--base-url", policy_sequences.base_url, "--health", "blocked,stalled", "--contacts-finished",
        "--exclude-name", "keep",
    )  # fmt: skip
    selection = cli("select", "--base-url", policy_sequences.base_url, "--selection", json.dumps(select))
    plan = load_handler().lambda_handler({"select": select}, lambda_context())

    assert flags.code == selection.code == 0, flags.err + selection.err
    assert [int(line) for line in flags.lines] == [int(line) for line in selection.lines] == plan["sequenceIds"]
    assert plan["sequenceIds"] == [60_001, 60_003, 60_004]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--health", "sick"], "must be one or more of healthy, stalled, degraded, blocked"),
        (["--exclude-ids", "1,x"], "not sequence IDs separated by commas"),
        (["--inactive-for-days", "0"], "must be between 1 and 3650"),
        (["--contacts-finished", "--archived"], "select unarchived sequences only"),
        (["--health", "blocked", "--selection", '{"status": "paused"}'], "drop --health"),
        (["--exclude-name", "keep"], "exclude alone selects everything"),
        (["--selection", '{"status": "paused", "exclude": {"ids": [1]}}'], "select.exclude.ids"),
    ],
)
def test_bad_policy_options_are_usage_errors_saying_what_is_wrong(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, arguments: list[str], problem: str
) -> None:
    run = cli("select", "--base-url", reply_simulator.base_url, *arguments)

    assert run.code == 2
    assert problem in run.err
    assert [request for request in reply_simulator.requests if request.operation == "list"] == []
