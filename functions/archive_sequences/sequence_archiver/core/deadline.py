"""The Lambda deadline as values: when the Reply work must stop, and when everything must be finished.

An invocation has two deadlines. Reply work (archiving, pausing, and claiming requests) stops at the
*work* deadline, a safety margin before Lambda's own: the margin is the time kept for publishing results,
parking rejected records and settling the batch. Those AWS calls are bounded by the *final* deadline,
a small reserve before Lambda's own, kept for building the response and flushing metrics.

The margin scales with the invocation: the lesser of DEADLINE_SAFETY_MARGIN_SECONDS and a fraction of
the time left at the start, so a short invocation (8 s, 2.5 s) still does Reply work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

# At most this share of the time left at the start is kept back from Reply work for publishing and settling.
SAFETY_MARGIN_FRACTION = 0.25
# Kept back from everything: returning the response and printing the metrics take a few milliseconds.
FINAL_RESERVE_SECONDS = 0.1


class RemainingTimeContext(Protocol):
    """The part of the Lambda context the deadline needs."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before Lambda stops the invocation."""
        ...


@dataclass(frozen=True)
class Deadline:
    """A point on a monotonic clock after which no work may still be running."""

    expires_at: float
    clock: Callable[[], float] = field(default=time.monotonic)

    def remaining_seconds(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.expires_at - self.clock())

    def allows(self, seconds: float) -> bool:
        """True when `seconds` of work started now would finish before the deadline."""
        return self.clock() + seconds <= self.expires_at

    def share(self, fraction: float) -> Deadline:
        """A deadline `fraction` of the time left from now: a step that may hang cannot starve the steps after it."""
        now = self.clock()
        return Deadline(expires_at=now + max(0.0, self.expires_at - now) * fraction, clock=self.clock)


@dataclass(frozen=True)
class InvocationDeadlines:
    """The work deadline (Reply calls, claims) and the final one (results, dead letters, settling)."""

    work: Deadline
    final: Deadline

    @classmethod
    def from_context(
        cls,
        context: RemainingTimeContext,
        *,
        safety_margin_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> InvocationDeadlines:
        """Both deadlines of an invocation, from the time Lambda says is left now."""
        now = clock()
        remaining = max(0.0, context.get_remaining_time_in_millis() / 1000.0)
        reserve = min(FINAL_RESERVE_SECONDS, remaining * 0.05)
        margin = max(reserve, min(safety_margin_seconds, remaining * SAFETY_MARGIN_FRACTION))
        return cls(
            work=Deadline(expires_at=now + remaining - margin, clock=clock),
            final=Deadline(expires_at=now + remaining - reserve, clock=clock),
        )
