"""The operator-facing points of the command line, each through the installed console script in a real process:
a dry run calls nothing, key options that contradict are refused, a rejected key names its source, every command
takes the same --output words (and the old --format), tables fit the terminal a person reads them on, and reading
an empty sink queue warns that it drains."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from typing import TYPE_CHECKING

import pytest

from tests.cli.terminal import TerminalSession, run_without_terminal

if TYPE_CHECKING:
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration
MANY = list(range(20_000, 20_150))
MANY_PIPED = "".join(f"{sequence_id}\n" for sequence_id in MANY).encode()


def environment(aws_stack: LocalStack | None = None, **extra: str) -> dict[str, str]:
    """The caller's environment with the local stack's AWS endpoint and no Reply key unless given."""
    env = {name: value for name, value in os.environ.items() if name != "REPLY_API_KEY"}
    if aws_stack is not None:
        env["AWS_ENDPOINT_URL"] = aws_stack.endpoint_url
    return env | extra


def test_archive_dry_run_lists_every_id_and_calls_nothing_even_without_a_key(reply_simulator: ReplySimulator) -> None:
    run = run_without_terminal(
        ["archive", "--base-url", reply_simulator.base_url, "--dry-run", "--output", "ids", "-"],
        env=environment(),
        stdin=MANY_PIPED,
    )

    assert run.returncode == 0, run.stderr
    assert [int(line) for line in run.stdout.splitlines()] == MANY
    assert reply_simulator.requests == []


@pytest.mark.parametrize("command", ["select", "archive"])
def test_a_secret_and_a_key_variable_together_are_a_usage_error(
    command: str, reply_simulator: ReplySimulator, api_key: str
) -> None:
    arguments = [command, "--base-url", reply_simulator.base_url, "--secret-id", "reply/key", "--api-key-env", "MY_KEY"]

    run = run_without_terminal(
        [*arguments, *(["101"] if command == "archive" else [])], env=environment(MY_KEY=api_key)
    )

    assert run.returncode == 2
    assert "--secret-id" in run.stderr
    assert "--api-key-env" in run.stderr
    assert reply_simulator.requests == []


def test_a_rejected_key_from_a_variable_names_the_variable(reply_simulator: ReplySimulator) -> None:
    run = run_without_terminal(
        ["archive", "--base-url", reply_simulator.base_url, "--api-key-env", "TEAM_REPLY_KEY", "101"],
        env=environment(TEAM_REPLY_KEY="rk_live_WRONG"),
    )

    assert run.returncode == 3
    assert "from $TEAM_REPLY_KEY (401)" in run.stderr
    assert "secret" not in run.stderr
    assert "rk_live_WRONG" not in run.stdout + run.stderr


@pytest.mark.parametrize("switch", ["--output", "--format"])
def test_every_command_writes_csv_with_the_same_switch(
    switch: str, reply_simulator: ReplySimulator, aws_stack: LocalStack, api_key: str
) -> None:
    env = environment(aws_stack, REPLY_API_KEY=api_key)
    runs = {
        "select": run_without_terminal(
            ["select", "--base-url", reply_simulator.base_url, "--status", "new", switch, "csv"], env=env
        ),
        "enqueue": run_without_terminal(
            ["enqueue", "--queue-url", aws_stack.queue_url, "--dry-run", switch, "csv", "201", "202"], env=env
        ),
        "archive": run_without_terminal(
            ["archive", "--base-url", reply_simulator.base_url, switch, "csv", "201", "202"], env=env
        ),
    }

    for command, run in runs.items():
        assert run.returncode == 0, (command, run.stderr)
        rows = list(csv.DictReader(io.StringIO(run.stdout)))
        assert rows, command
    assert {row["sequenceId"] for row in csv.DictReader(io.StringIO(runs["archive"].stdout))} == {"201", "202"}


def test_report_ids_are_ready_for_enqueue_and_json_is_one_document(aws_stack: LocalStack) -> None:
    run = run_without_terminal(
        ["report", "--log-group", aws_stack.results_log_group_name, "--output", "json"], env=environment(aws_stack)
    )

    assert run.returncode == 1  # nothing was read: a warning, not a success
    assert "no results events" in run.stderr
    json.loads(run.stdout)


def test_a_table_fits_the_terminal_a_person_reads_it_on(reply_simulator: ReplySimulator, api_key: str) -> None:
    for sequence_id in range(20_000, 20_005):
        reply_simulator.add_sequence(sequence_id, status="new", name="Q3 outreach to " + "very " * 30 + "big")
    arguments = ["select", "--base-url", reply_simulator.base_url, "--status", "new", "--output", "table"]

    with TerminalSession(arguments, env=environment(REPLY_API_KEY=api_key), columns=72, stdout_on_terminal=True) as tty:
        finished = tty.finish()

    # Each redraw of the progress bar starts with a carriage return: split on both to get what stays on screen.
    lines = [line for line in re.split(r"[\r\n]+", finished.terminal) if line.strip()]
    assert finished.code == 0
    assert any("Q3 outreach to very" in line and line.endswith("…") for line in lines)
    assert max(len(line) for line in lines) <= 72


def test_an_empty_sink_queue_warns_that_reports_drain_it(aws_stack: LocalStack) -> None:
    run = run_without_terminal(
        ["report", "--queue-url", aws_stack.results_sink_queue_url, "--wait-seconds", "0"], env=environment(aws_stack)
    )

    assert run.returncode == 1
    assert "drained by every report" in run.stderr
    assert "--log-group" in run.stderr
