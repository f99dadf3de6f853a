"""`select` through the real console script: a progress bar with a count and a rate on a terminal, none elsewhere."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.reply_simulator import RateLimit
from tests.cli.terminal import TerminalSession, run_without_terminal

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration


def slow_listing(simulator: ReplySimulator) -> list[str]:
    """Every sequence, five to a page, at four calls a second: long enough for the bar to be redrawn."""
    return [
        *("select", "--base-url", simulator.base_url, "--include-archived", "--page-size", "5"),
        *("--rate-limit-per-minute", "4", "--rate-limit-per-hour", "0", "--rate-limit-time-scale", str(1 / 60)),
    ]


@pytest.fixture
def slow_simulator(start_reply_simulator: Callable[..., ReplySimulator]) -> ReplySimulator:
    return start_reply_simulator(rate_limit=RateLimit(per_minute=4, per_hour=None, minute_seconds=1.0))


def test_a_person_at_a_terminal_sees_a_count_and_a_rate_while_ids_go_to_stdout(
    slow_simulator: ReplySimulator, api_key: str
) -> None:
    environment = {**os.environ, "REPLY_API_KEY": api_key}

    with TerminalSession(slow_listing(slow_simulator), env=environment) as session:
        finished = session.finish()

    assert finished.code == 0
    ids = [int(line) for line in finished.lines]
    assert len(ids) == len(set(ids)) > 10
    assert "select:" in finished.terminal
    assert "sequences/s" in finished.terminal
    assert "Reply calls" in finished.terminal
    assert "\n" not in finished.terminal.strip()  # a bar redrawn in place, cleared at the end: no stray lines
    assert api_key not in finished.terminal + finished.stdout


def test_without_a_terminal_stderr_stays_empty(slow_simulator: ReplySimulator, api_key: str) -> None:
    environment = {**os.environ, "REPLY_API_KEY": api_key}

    run = run_without_terminal(slow_listing(slow_simulator), env=environment)

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert len(run.stdout.splitlines()) > 10
