"""Ctrl-C as a request to stop starting work: the call in flight finishes, and a second Ctrl-C stops at once.

The first SIGINT only sets a flag. The command checks it before each step, and the deadline the archiving core
works against reads a clock that jumps past every deadline once it is set, so the core itself starts no further
call (the IDs it has not tried end `not attempted`, exactly as when time runs out). Waits for the rate budget
are cut short. A second SIGINT raises KeyboardInterrupt where the program is.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

_SLEEP_SLICE_SECONDS = 0.05


class Interruption:
    """Whether the person asked to stop (Ctrl-C), with a clock and a sleep that honour it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.requested = False

    def request(self) -> None:
        """Ask to stop starting work."""
        self.requested = True

    def clock(self) -> float:
        """The monotonic time; after a stop was requested, a time past every deadline."""
        return math.inf if self.requested else self._clock()

    def sleep(self, seconds: float) -> None:
        """Sleep, returning early when a stop is requested."""
        give_up = self._clock() + seconds
        while not self.requested:
            left = give_up - self._clock()
            if left <= 0:
                return
            time.sleep(min(left, _SLEEP_SLICE_SECONDS))

    @contextmanager
    def on_sigint(self) -> Iterator[Interruption]:
        """While inside: the first SIGINT requests a stop, the next raises KeyboardInterrupt (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handle(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            if self.requested:
                raise KeyboardInterrupt
            self.request()

        previous = signal.signal(signal.SIGINT, handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
