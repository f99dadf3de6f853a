"""Safety through the real console script: a person at the terminal confirms big runs; without one, --yes is needed.

The question is asked on the controlling terminal (/dev/tty) while the IDs come from a pipe, as in
`select | enqueue -`; without a terminal (cron, CI) the command refuses with exit 2 and says how to proceed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from sequence_archiver.core.archive_request import parse_message_body
from sequence_archiver_cli.confirmation import confirm
from sequence_archiver_cli.errors import NotConfirmedError
from tests.cli.terminal import TerminalSession, run_without_terminal

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]
MANY = range(20_000, 20_150)  # more than 100: a person is asked first
MANY_PIPED = "".join(f"{sequence_id}\n" for sequence_id in MANY).encode()
ARCHIVE_QUESTION = "archive 150 sequence IDs in Reply? This cannot be undone from here. [y/N] "


@pytest.fixture
def simulator(start_reply_simulator: Callable[..., ReplySimulator]) -> ReplySimulator:
    """A simulator with 150 extra paused sequences and no rate limit."""
    simulator = start_reply_simulator(rate_limit=None)
    simulator.add_sequences(MANY)
    return simulator


def archived(simulator: ReplySimulator) -> list[int]:
    """The extra sequences Reply now has archived."""
    return sorted(sequence.id for sequence in simulator.sequences() if sequence.is_archived and sequence.id in MANY)


def queued_ids(queue_bodies: Callable[[], list[str]]) -> list[int]:
    """Every ID on the request queue (the queue is drained)."""
    return sorted(i for body in queue_bodies() for i in parse_message_body(body).sequence_ids)


def enqueue_question(stack: LocalStack) -> str:
    """What enqueue asks before sending the 150 IDs."""
    name = stack.queue_url.rsplit("/", 1)[-1]
    return (
        f"send 150 sequence IDs to the archive queue {name}? The function archives them in Reply as it receives "
        "them. [y/N] "
    )


@pytest.mark.parametrize("answer", ["n", "", "maybe"])
def test_archive_asks_on_the_terminal_while_ids_come_from_a_pipe_and_anything_but_yes_stops_it(
    simulator: ReplySimulator, answer: str
) -> None:
    with TerminalSession(["archive", "--base-url", simulator.base_url, "-"], env=os.environ, stdin=MANY_PIPED) as tty:
        tty.wait_for_terminal(ARCHIVE_QUESTION)
        tty.type(answer)
        finished = tty.finish()

    assert finished.code == 2
    assert "sequence-archiver archive: error: not confirmed: nothing was done" in finished.terminal
    assert finished.stdout == ""
    assert simulator.api_calls == 0
    assert archived(simulator) == []


def test_yes_at_the_terminal_archives_with_progress_showing_a_total_and_a_rate(simulator: ReplySimulator) -> None:
    with TerminalSession(["archive", "--base-url", simulator.base_url, "-"], env=os.environ, stdin=MANY_PIPED) as tty:
        tty.wait_for_terminal(ARCHIVE_QUESTION)
        tty.type("y")
        finished = tty.finish()

    assert finished.code == 0, finished.terminal
    assert finished.lines[-1] == "totals: archived 150"
    assert archived(simulator) == list(MANY)
    assert "150/150" in finished.terminal  # done/total
    assert "IDs/s" in finished.terminal  # the rate


@pytest.mark.parametrize("answer", ["n", "yes"])
def test_enqueue_asks_on_the_terminal_while_ids_come_from_a_pipe(
    aws_stack: LocalStack, queue_bodies: Callable[[], list[str]], answer: str
) -> None:
    args = ["enqueue", "--queue-url", aws_stack.queue_url, "-"]

    with TerminalSession(args, env=os.environ, stdin=MANY_PIPED) as tty:
        tty.wait_for_terminal(enqueue_question(aws_stack))
        tty.type(answer)
        finished = tty.finish()

    if answer == "n":
        assert finished.code == 2
        assert "sequence-archiver enqueue: error: not confirmed: nothing was done" in finished.terminal
        assert queued_ids(queue_bodies) == []
    else:
        assert finished.code == 0, finished.terminal
        assert finished.stdout.startswith("sent 2 messages (150 IDs) to ")
        assert queued_ids(queue_bodies) == list(MANY)
        assert "150/150" in finished.terminal
        assert "IDs/s" in finished.terminal


def test_with_no_terminal_both_refuse_with_exit_2_and_say_how_to_proceed(
    simulator: ReplySimulator, aws_stack: LocalStack, queue_bodies: Callable[[], list[str]]
) -> None:
    archive = run_without_terminal(["archive", "--base-url", simulator.base_url, "-"], env=os.environ, stdin=MANY_PIPED)
    enqueue = run_without_terminal(["enqueue", "--queue-url", aws_stack.queue_url, "-"], env=os.environ,
                                   stdin=MANY_PIPED)  # fmt: skip

    assert archive.returncode == enqueue.returncode == 2
    assert archive.stderr.splitlines() == [
        "sequence-archiver archive: error: 150 IDs and no terminal to confirm on: re-run with --yes to archive them, "
        "or with --dry-run to see them"
    ]
    assert enqueue.stderr.splitlines() == [
        "sequence-archiver enqueue: error: 150 IDs and no terminal to confirm on: re-run with --yes to send them, "
        "or with --dry-run to see them"
    ]
    assert archive.stdout == enqueue.stdout == ""
    assert simulator.api_calls == 0
    assert queued_ids(queue_bodies) == []


def test_yes_proceeds_with_no_terminal_and_no_progress_on_stderr(
    simulator: ReplySimulator, aws_stack: LocalStack, queue_bodies: Callable[[], list[str]]
) -> None:
    archive = run_without_terminal(["archive", "--base-url", simulator.base_url, "--yes", "-"], env=os.environ,
                                   stdin=MANY_PIPED)  # fmt: skip
    enqueue = run_without_terminal(["enqueue", "--queue-url", aws_stack.queue_url, "-y", "-"], env=os.environ,
                                   stdin=MANY_PIPED)  # fmt: skip

    assert (archive.returncode, archive.stderr) == (0, "")
    assert (enqueue.returncode, enqueue.stderr) == (0, "")
    assert archived(simulator) == list(MANY)
    assert queued_ids(queue_bodies) == list(MANY)


@pytest.mark.parametrize(
    "extra",
    [
        ["--yes"],  # answered for the person
        ["--dry-run"],  # nothing happens, so nothing to confirm
    ],
)
def test_a_terminal_is_not_asked_with_yes_or_for_a_dry_run(
    simulator: ReplySimulator, aws_stack: LocalStack, queue_bodies: Callable[[], list[str]], extra: list[str]
) -> None:
    commands = [
        ["archive", "--base-url", simulator.base_url, *extra, "-"],
        ["enqueue", "--queue-url", aws_stack.queue_url, *extra, "-"],
    ]

    runs = []
    for args in commands:
        with TerminalSession(args, env=os.environ, stdin=MANY_PIPED) as tty:
            runs.append(tty.finish())

    assert [run.code for run in runs] == [0, 0]
    assert all("[y/N]" not in run.terminal for run in runs)
    dry = extra == ["--dry-run"]
    assert archived(simulator) == ([] if dry else list(MANY))
    assert queued_ids(queue_bodies) == ([] if dry else list(MANY))
    assert simulator.api_calls == (0 if dry else 2)


def test_up_to_100_ids_are_not_asked_about(simulator: ReplySimulator) -> None:
    hundred = "".join(f"{sequence_id}\n" for sequence_id in MANY[:100]).encode()

    with TerminalSession(["archive", "--base-url", simulator.base_url, "-"], env=os.environ, stdin=hundred) as tty:
        finished = tty.finish()

    assert finished.code == 0, finished.terminal
    assert "[y/N]" not in finished.terminal
    assert archived(simulator) == list(MANY[:100])


class ScriptedTerminal:
    """A person who answers every question the same way, and remembers what was asked."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def ask(self, question: str) -> str:
        self.asked.append(question)
        return self.answer


@pytest.mark.parametrize(("answer", "goes_ahead"), [("y", True), (" YES ", True), ("", False), ("no", False)])
def test_only_y_or_yes_goes_ahead(answer: str, goes_ahead: bool) -> None:
    person = ScriptedTerminal(answer)

    def ask() -> None:
        confirm("archive 101 IDs?", count=101, assume_yes=False, no_terminal_hint="-", open_terminal=lambda: person)

    if goes_ahead:
        ask()
    else:
        with pytest.raises(NotConfirmedError, match="not confirmed: nothing was done"):
            ask()
    assert person.asked == ["archive 101 IDs? [y/N] "]


@pytest.mark.parametrize(("count", "assume_yes"), [(100, False), (5000, True)])
def test_nothing_is_asked_up_to_100_ids_or_with_yes(count: int, assume_yes: bool) -> None:
    person = ScriptedTerminal("n")

    confirm("?", count=count, assume_yes=assume_yes, no_terminal_hint="-", open_terminal=lambda: person)

    assert person.asked == []
