"""`select --selection`: a clean-up policy tried from a laptop selects exactly what the function's dry run plans."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]

POLICY = {"select": {"status": "Paused", "olderThanDays": 1}, "dryRun": True, "maxSequences": 100}


def test_the_policy_selects_from_a_laptop_what_the_function_plans(
    cli: Callable[..., Run],
    reply_simulator: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
    tmp_path: Path,
) -> None:
    # Given paused sequences, some archived (never selected) and active ones
    reply_simulator.add_sequences(range(20_001, 20_031), status="paused")
    reply_simulator.add_sequences(range(20_031, 20_036), status="paused", is_archived=True)
    reply_simulator.add_sequences(range(20_036, 20_041), status="active")
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY), encoding="utf-8")

    # When the same policy is tried with the CLI (as a file, and as the bare selection) and dry-run by the function
    from_file = cli("select", "--base-url", reply_simulator.base_url, "--selection-file", str(policy_file))
    bare = cli("select", "--base-url", reply_simulator.base_url, "--selection", json.dumps(POLICY["select"]))
    plan = load_handler().lambda_handler(POLICY, lambda_context())

    # Then both list exactly the plan's sequences
    assert from_file.code == bare.code == 0, from_file.err + bare.err
    assert [int(line) for line in from_file.lines] == plan["sequenceIds"]
    assert sorted(int(line) for line in bare.lines) == sorted(plan["sequenceIds"])
    assert not {*range(20_031, 20_041)} & {int(line) for line in from_file.lines}


def test_a_selection_over_the_policy_s_max_sequences_prints_nothing_and_says_why(
    cli: Callable[..., Run], reply_simulator: ReplySimulator
) -> None:
    reply_simulator.add_sequences(range(20_001, 20_031), status="paused")
    policy = {**POLICY, "maxSequences": 10}

    run = cli("select", "--base-url", reply_simulator.base_url, "--selection", json.dumps(policy))

    assert run.code == 1
    assert run.out == ""
    assert "more than maxSequences (10)" in run.err
    assert "archive none of them" in run.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--selection", "{}"], "give at least one filter"),
        (["--selection", '{"status": "archived"}'], "must be one of new, active, paused"),
        (["--selection", '{"statuz": "paused"}'], "statuz"),
        (["--selection", "status=paused"], "--selection: not JSON"),
        (["--selection", "[1, 2]"], "a selection is a JSON object"),
        (["--selection", '{"status": "paused"}', "--name", "Q3"], "drop --name"),
        (["--selection-file", "/nonexistent/policy.json"], "cannot read /nonexistent/policy.json"),
    ],
)
def test_a_bad_selection_is_a_usage_error_saying_what_is_wrong(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, arguments: list[str], message: str
) -> None:
    run = cli("select", "--base-url", reply_simulator.base_url, *arguments)

    assert run.code == 2
    assert message in run.err
    assert not any(request.path == "/v3/sequences" for request in reply_simulator.requests)
