"""A clock for the local Lambda: wall time minus the time the invoking thread waited for a CPU.

Lambda gives an invocation its own share of CPU; a laptop or CI runner shares two cores with everything else.
Linux counts, per thread, the time it was ready to run but waited in the scheduler's run queue
(`/proc/self/task/<tid>/schedstat`, second field, nanoseconds). Subtracting it leaves what the invocation
would have used on a machine of its own: time spent computing, sleeping or waiting for an answer still counts,
only time another process held the CPU does not. The function's own deadlines keep reading wall time, so it
stops no later than before; only the judge of "did it outlive its timeout" stops blaming the function for
the machine's load. Where schedstat is missing (not Linux), this is time.monotonic.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def run_queue_seconds(schedstat: Path) -> float:
    """The seconds a thread has waited for a CPU since it started, from its schedstat file."""
    return int(schedstat.read_text().split()[1]) / 1e9


def invocation_clock() -> Callable[[], float]:
    """A monotonic clock of the calling thread that does not advance while the thread waits for a CPU."""
    schedstat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
    try:
        run_queue_seconds(schedstat)
    except (OSError, IndexError, ValueError):
        return time.monotonic

    def now() -> float:
        return time.monotonic() - run_queue_seconds(schedstat)

    return now
