"""Run the real console script with a person at a pseudo-terminal, or with no terminal at all.

A `TerminalSession` gives the process a pseudo-terminal as its controlling terminal (what /dev/tty opens) and as
its stderr, so prompts and progress bars are drawn there, while stdin and stdout stay ordinary pipes or files:
exactly a person running `select | sequence-archiver enqueue - > out.txt` in a shell. Without a session
(`run_without_terminal`) the process starts in a new session with no controlling terminal, as under cron or CI.
"""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

SCRIPT_PATH = shutil.which("sequence-archiver", path=str(Path(sys.executable).parent))
DEFAULT_TIMEOUT_SECONDS = 60.0


def without_width(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without COLUMNS/LINES (pytest-xdist's workers set them): widths come from the terminal."""
    return {name: value for name, value in env.items() if name not in {"COLUMNS", "LINES"}}


def console_script() -> str:
    """The installed `sequence-archiver` of this venv."""
    if SCRIPT_PATH is None:
        raise RuntimeError("the sequence-archiver console script is not installed in this venv (run `make venv`)")
    return SCRIPT_PATH


@dataclass(frozen=True)
class Finished:
    """What a finished process left: its exit code, stdout, and what was drawn on its terminal (stderr)."""

    code: int
    stdout: str
    terminal: str

    @property
    def lines(self) -> list[str]:
        """stdout's lines."""
        return self.stdout.splitlines()


def _take_terminal() -> None:
    """In the child, after setsid: make stderr (the pty's slave side) the controlling terminal."""
    fcntl.ioctl(2, termios.TIOCSCTTY, 0)


class _Collector(threading.Thread):
    """Read a stream until it ends, keeping everything."""

    def __init__(self, read: IO[bytes] | int | None) -> None:
        super().__init__(daemon=True)
        self._read = read
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()

    def run(self) -> None:
        while self._read is not None:
            try:
                chunk = os.read(self._read, 4096) if isinstance(self._read, int) else self._read.read1(4096)
            except OSError:  # EIO: the terminal's last writer closed it
                return
            if not chunk:
                return
            with self._lock:
                self._chunks.append(chunk)

    def text(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", errors="replace")


class TerminalSession:
    """The console script with a pseudo-terminal for stderr and /dev/tty; stdin and stdout are not terminals."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        stdin: bytes | Path | None = None,
        columns: int = 100,
        stdout_on_terminal: bool = False,
    ) -> None:
        """With `stdout_on_terminal`, stdout is the terminal too (a person reading a table): it lands in `terminal`."""
        self._master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        stdin_source: int | IO[bytes]
        self._stdin_file: IO[bytes] | None = None
        if isinstance(stdin, Path):
            self._stdin_file = stdin.open("rb")
            stdin_source = self._stdin_file
        else:
            stdin_source = subprocess.PIPE if stdin is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [console_script(), *args],
            stdin=stdin_source,
            stdout=slave if stdout_on_terminal else subprocess.PIPE,
            stderr=slave,
            env=without_width(env),
            start_new_session=True,
            preexec_fn=_take_terminal,  # noqa: PLW1509 - the only way to hand a child a controlling terminal
        )
        os.close(slave)
        if isinstance(stdin, bytes) and self.process.stdin is not None:
            self.process.stdin.write(stdin)
            self.process.stdin.close()
        self._stdout = _Collector(self.process.stdout)  # None when stdout is the terminal: nothing to collect
        self._terminal = _Collector(self._master)
        self._stdout.start()
        self._terminal.start()

    def wait_for_terminal(self, text: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str:
        """Block until `text` has been drawn on the terminal; return everything drawn so far."""
        return self._wait(self._terminal.text, text, timeout)

    def wait_for_stdout(self, text: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str:
        """Block until `text` is on stdout; return stdout so far."""
        return self._wait(self._stdout.text, text, timeout)

    def wait_for_stdout_lines(self, count: int, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> list[str]:
        """Block until at least `count` whole lines are on stdout; return the whole lines so far."""
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            whole = self._stdout.text().rpartition("\n")[0]
            if whole and len(whole.split("\n")) >= count:
                return whole.split("\n")
            if self.process.poll() is not None:
                time.sleep(0.2)
                whole = self._stdout.text().rpartition("\n")[0]
                if whole and len(whole.split("\n")) >= count:
                    return whole.split("\n")
                raise AssertionError(f"the process ended ({self.process.returncode}) before {count} lines:\n{whole}")
            time.sleep(0.02)
        raise AssertionError(f"{count} lines did not appear on stdout within {timeout} s:\n{self._stdout.text()}")

    def stdout_so_far(self) -> str:
        """What the process has written to stdout until now."""
        return self._stdout.text()

    def type(self, line: str) -> None:
        """A person types `line` and Enter at the terminal."""
        os.write(self._master, line.encode() + b"\r")

    def interrupt(self) -> None:
        """A person presses Ctrl-C (SIGINT to the process)."""
        self.process.send_signal(signal.SIGINT)

    def finish(self, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Finished:
        """Wait for the process to end; its exit code, stdout and terminal text."""
        code = self.process.wait(timeout=timeout)
        self._stdout.join(timeout=5)
        self._terminal.join(timeout=5)
        return Finished(code, self._stdout.text(), self._terminal.text())

    def _wait(self, read: Callable[[], str], text: str, timeout: float) -> str:
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            seen = read()
            if text in seen:
                return seen
            if self.process.poll() is not None and text not in read():
                time.sleep(0.2)
                seen = read()
                if text in seen:
                    return seen
                raise AssertionError(f"the process ended ({self.process.returncode}) without {text!r}:\n{seen}")
            time.sleep(0.02)
        raise AssertionError(f"{text!r} did not appear within {timeout} s:\n{read()}")

    def __enter__(self) -> TerminalSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self._stdin_file is not None:
            self._stdin_file.close()
        os.close(self._master)


def run_without_terminal(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> subprocess.CompletedProcess[str]:
    """The console script with no controlling terminal (a new session) and pipes for stdin, stdout and stderr."""
    return subprocess.run(
        [console_script(), *args],
        input=None if stdin is None else stdin.decode(),
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        env=without_width(env),
        start_new_session=True,
        timeout=timeout,
        check=False,
    )
