"""`archive` output that survives Ctrl-C: each outcome printed as soon as it is known, and an exact record after.

Run through the real console script at a pseudo-terminal; Ctrl-C is a SIGINT to the process, as a person's is.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.reply_simulator import RateLimit
from tests.cli.terminal import TerminalSession, console_script, without_width

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

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


def budget_run(simulator: ReplySimulator, output: str = "jsonl") -> list[str]:
    """Two calls a "minute" shrunk to 30 s: two IDs at once, then a long wait for the budget before the third."""
    return ["archive", "--base-url", simulator.base_url, "--mode", "single", "--yes", "--output", output,
            "--rate-limit-per-minute", "2", "--rate-limit-per-hour", "0",
            "--rate-limit-time-scale", "0.5", "-"]  # fmt: skip


def test_a_wait_for_the_rate_budget_is_shown_on_the_progress_bar_with_its_reason(
    start_reply_simulator: Callable[..., ReplySimulator],
) -> None:
    simulator = start_reply_simulator(rate_limit=None)
    sequence_ids = range(33_000, 33_005)
    simulator.add_sequences(sequence_ids)

    with TerminalSession(budget_run(simulator), env=os.environ, stdin=piped(sequence_ids), columns=120) as tty:
        shown = tty.wait_for_terminal("for Reply's rate budget")  # not a bar frozen at 2/5 with no word of why
        tty.interrupt()  # no need to sit out the wait
        finished = tty.finish()

    assert re.search(r"2/5 .*waiting \d+ s for Reply's rate budget", shown)
    assert finished.code == 130
    assert len(finished.lines) == 2


def test_without_a_terminal_a_long_wait_is_a_line_on_stderr(
    start_reply_simulator: Callable[..., ReplySimulator], tmp_path: Path
) -> None:
    simulator = start_reply_simulator(rate_limit=None)
    sequence_ids = range(34_000, 34_005)
    simulator.add_sequences(sequence_ids)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_bytes(piped(sequence_ids))

    with ids_file.open("rb") as stdin:
        process = subprocess.Popen(
            [console_script(), *budget_run(simulator, output="ids")],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=without_width(os.environ),
            start_new_session=True,
            text=True,
        )
    assert process.stderr is not None
    first_line = process.stderr.readline()  # blocks until the command says something on stderr
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)

    assert re.fullmatch(r"sequence-archiver archive: waiting \d+ s for Reply's rate budget\n", first_line)
    assert process.returncode == 130
    assert "archive: interrupted (Ctrl-C): 2 of 5 IDs have an outcome (archived 2)" in rest


def test_a_retry_after_from_reply_is_shown_as_what_reply_asked(
    start_reply_simulator: Callable[..., ReplySimulator],
) -> None:
    # Reply allows one call in 30 s; the command's own budget would allow more, so Reply answers 429.
    simulator = start_reply_simulator(rate_limit=RateLimit(per_minute=1, per_hour=None, minute_seconds=30.0))
    sequence_ids = range(35_000, 35_003)
    simulator.add_sequences(sequence_ids)
    args = ["archive", "--base-url", simulator.base_url, "--mode", "single", "--yes", "--output", "jsonl", "-"]

    with TerminalSession(args, env=os.environ, stdin=piped(sequence_ids), columns=120) as tty:
        shown = tty.wait_for_terminal("as Reply asked")
        tty.interrupt()
        finished = tty.finish()

    assert re.search(r"waiting \d+ s as Reply asked \(HTTP 429\)", shown)
    assert finished.code == 130
