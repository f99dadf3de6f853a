"""`archive` output that survives Ctrl-C: each outcome printed as soon as it is known, and an exact record after.

Run through the real console script at a pseudo-terminal; Ctrl-C is a SIGINT to the process, as a person's is.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import TYPE_CHECKING

import pytest

from tests.cli.terminal import TerminalSession

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]


def piped(sequence_ids: range) -> bytes:
    """IDs one per line, as `select` writes them."""
    return "".join(f"{sequence_id}\n" for sequence_id in sequence_ids).encode()


def archived_in_reply(simulator: ReplySimulator, sequence_ids: range) -> list[int]:
    """Which of these sequences Reply has archived, in ID order."""
    return sorted(s.id for s in simulator.sequences() if s.is_archived and s.id in sequence_ids)


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Poll until `condition` holds."""
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.01)


def test_ctrl_c_stops_starting_calls_and_what_was_printed_is_exactly_what_happened(
    start_reply_simulator: Callable[..., ReplySimulator],
) -> None:
    simulator = start_reply_simulator(rate_limit=None, latency_seconds=0.05)  # each call takes a while
    sequence_ids = range(30_000, 30_300)
    simulator.add_sequences(sequence_ids)
    args = ["archive", "--base-url", simulator.base_url, "--mode", "single", "--yes", "--output", "jsonl", "-"]

    with TerminalSession(args, env=os.environ, stdin=piped(sequence_ids)) as tty:
        tty.wait_for_stdout_lines(5)  # lines arrive while the run goes on
        tty.interrupt()
        finished = tty.finish()

    assert finished.code == 130
    records = [json.loads(line) for line in finished.lines]  # every line is a whole JSON object
    printed = [record["sequenceId"] for record in records]
    assert len(printed) >= 5
    assert printed == list(sequence_ids[: len(printed)])  # distinct IDs, in input order
    assert {record["outcome"] for record in records} == {"archived"}
    # Exactly the printed IDs were archived: the call in flight finished and was printed, none started after it.
    assert archived_in_reply(simulator, sequence_ids) == printed
    assert len(simulator.requests) == len(printed)
    terminal = finished.terminal
    done, left = len(printed), len(sequence_ids) - len(printed)
    assert f"archive: interrupted (Ctrl-C): {done} of 300 IDs have an outcome (archived {done})" in terminal
    assert f"archive: {left} IDs not attempted: archive them again (--output ids lists them" in terminal


def test_ctrl_c_during_a_wait_for_the_rate_budget_lists_the_ids_not_attempted_with_output_ids(
    start_reply_simulator: Callable[..., ReplySimulator],
) -> None:
    simulator = start_reply_simulator(rate_limit=None)
    sequence_ids = range(31_000, 31_050)
    simulator.add_sequences(sequence_ids)
    simulator.add_sequence(31_002, status="active")  # a conflict: it needs attention, so `ids` prints it
    # Ten calls a "minute" shrunk to 12 s: ten calls at once, then a long wait for the budget.
    args = ["archive", "--base-url", simulator.base_url, "--mode", "single", "--yes", "--output", "ids",
            "--rate-limit-per-minute", "10", "--rate-limit-time-scale", "0.2", "-"]  # fmt: skip

    with TerminalSession(args, env=os.environ, stdin=piped(sequence_ids)) as tty:
        wait_until(lambda: simulator.api_calls == 10)
        tty.wait_for_stdout_lines(1)  # 31002 is printed as soon as its conflict is known
        tty.interrupt()
        finished = tty.finish()

    assert finished.code == 130
    assert [int(line) for line in finished.lines] == [31_002, *sequence_ids[10:]]  # then those not attempted
    assert archived_in_reply(simulator, sequence_ids) == [i for i in sequence_ids[:10] if i != 31_002]
    assert "archive: interrupted (Ctrl-C): 10 of 50 IDs have an outcome (archived 9, conflict 1)" in finished.terminal
    assert "archive: 40 IDs not attempted" in finished.terminal


def test_a_table_after_ctrl_c_shows_what_finished_and_progress_shows_the_total(
    start_reply_simulator: Callable[..., ReplySimulator],
) -> None:
    simulator = start_reply_simulator(rate_limit=None, latency_seconds=0.05)
    sequence_ids = range(32_000, 32_200)
    simulator.add_sequences(sequence_ids)
    args = ["archive", "--base-url", simulator.base_url, "--mode", "single", "--yes", "-"]

    with TerminalSession(args, env=os.environ, stdin=piped(sequence_ids)) as tty:
        wait_until(lambda: simulator.api_calls >= 5)
        tty.interrupt()
        finished = tty.finish()

    assert finished.code == 130
    rows = finished.lines[2:-1]
    assert [int(row.split()[0]) for row in rows] == archived_in_reply(simulator, sequence_ids)
    assert finished.lines[-1] == f"totals: archived {len(rows)}"
    assert re.search(r"\d+/200", finished.terminal)  # done/total on the terminal while it ran
