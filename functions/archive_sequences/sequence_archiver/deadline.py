"""The Lambda deadline as a value: how long work may still run, minus a safety margin."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable


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

    @classmethod
    def from_context(
        cls,
        context: RemainingTimeContext,
        *,
        safety_margin_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        """The invocation's deadline, `safety_margin_seconds` before Lambda's own."""
        remaining = context.get_remaining_time_in_millis() / 1000.0
        return cls(expires_at=clock() + remaining - safety_margin_seconds, clock=clock)

    def remaining_seconds(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.expires_at - self.clock())

    def allows(self, seconds: float) -> bool:
        """True when `seconds` of work started now would finish before the deadline."""
        return self.clock() + seconds <= self.expires_at
