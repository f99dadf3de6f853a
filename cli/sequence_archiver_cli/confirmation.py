"""Asking the person at the terminal before acting on many IDs, and refusing when no one is there to ask.

The question goes to the controlling terminal (/dev/tty) and the answer is read from it, never from stdin, so
`select | enqueue -` still reads its IDs from the pipe while the person answers at the keyboard. A person is at
the terminal exactly when /dev/tty can be opened: under cron, CI or `setsid` it cannot, and the command refuses
unless --yes answers for the person.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from sequence_archiver_cli.errors import NotConfirmedError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

CONFIRMATION_THRESHOLD = 100  # acting on more IDs than this asks first
CONTROLLING_TERMINAL = "/dev/tty"
_YES = frozenset({"y", "yes"})
_MAX_ANSWER_BYTES = 1024


class Terminal(Protocol):
    """Where a question is asked and its answer read."""

    def ask(self, question: str) -> str:
        """Show `question` and return the line typed in answer (empty at end of input)."""
        ...


class ControllingTerminal:
    """The process's controlling terminal, opened for one question."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def ask(self, question: str) -> str:
        """Write the question, read one line; the terminal is closed afterwards."""
        try:
            os.write(self._fd, question.encode("utf-8"))
            answer = bytearray()
            while len(answer) < _MAX_ANSWER_BYTES:
                chunk = os.read(self._fd, 1)
                if not chunk or chunk in (b"\n", b"\r"):
                    break
                answer += chunk
            return answer.decode("utf-8", errors="replace")
        finally:
            os.close(self._fd)


def open_controlling_terminal() -> Terminal | None:
    """The controlling terminal, or None when the process has none (no person to ask)."""
    try:
        fd = os.open(CONTROLLING_TERMINAL, os.O_RDWR | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal
        return None
    return ControllingTerminal(fd)


def add_confirmation_option(parser: argparse.ArgumentParser) -> None:
    """-y/--yes: answer the confirmation for the person (needed with no terminal, e.g. in cron or CI)."""
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help=f"do not ask before acting on more than {CONFIRMATION_THRESHOLD} IDs (needed when no one is at a "
        "terminal, e.g. in cron or CI)",
    )


def confirm(
    question: str,
    *,
    count: int,
    assume_yes: bool,
    no_terminal_hint: str,
    open_terminal: Callable[[], Terminal | None] | None = None,
) -> None:
    """Return when the action may go ahead; raise NotConfirmedError (exit 2, nothing done) otherwise.

    Up to CONFIRMATION_THRESHOLD IDs, and with --yes, nothing is asked. Otherwise the person at the terminal is
    asked `question` and only "y" or "yes" goes ahead; with no terminal the command refuses, saying how to proceed.
    `open_terminal` defaults to the controlling terminal (looked up when called, so tests can replace it).
    """
    if assume_yes or count <= CONFIRMATION_THRESHOLD:
        return
    terminal = (open_terminal or open_controlling_terminal)()
    if terminal is None:
        raise NotConfirmedError(f"{count:,} IDs and no terminal to confirm on: {no_terminal_hint}")
    answer = terminal.ask(f"{question} [y/N] ")
    if answer.strip().lower() not in _YES:
        raise NotConfirmedError("not confirmed: nothing was done")
