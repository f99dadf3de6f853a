"""Client-side pacing under Reply's per-key budget, so steady state sees no 429 at all.

Reply allows 100 requests a minute and 3,000 an hour per user key, shared by every app and every
instance using the key. Each instance keeps to its share (the budget divided by the number of
instances that may run at once) with sliding windows over its own send times, follows Reply's
`x-rate-limit-*` hints when they are present, and stops altogether while a 429 says so.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# Our send times are not Reply's receive times: network jitter can pull two calls one window apart
# into the same server window. A little slack on every window keeps that from costing a 429.
_WINDOW_SLACK_FRACTION = 0.02
_WINDOW_SLACK_MIN_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class RateBudget:
    """At most `limit` calls in any `window_seconds`."""

    limit: int
    window_seconds: float

    def share(self, instances: int) -> RateBudget:
        """This instance's part of a budget shared by `instances` concurrent instances (at least 1 call)."""
        return RateBudget(max(1, self.limit // max(1, instances)), self.window_seconds)


class _Window:
    """Send times within one sliding window."""

    def __init__(self, budget: RateBudget) -> None:
        self.limit = budget.limit
        self.span = budget.window_seconds + max(
            _WINDOW_SLACK_MIN_SECONDS, budget.window_seconds * _WINDOW_SLACK_FRACTION
        )
        self.sent: deque[float] = deque()

    def next_slot(self, now: float) -> float:
        while self.sent and self.sent[0] <= now - self.span:
            self.sent.popleft()
        if len(self.sent) < self.limit:
            return now
        return self.sent[len(self.sent) - self.limit] + self.span


class RateLimiter:
    """Tells the client how long to wait before its next call; one per Lambda instance."""

    def __init__(
        self,
        budgets: Sequence[RateBudget],
        *,
        instances: int = 1,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._windows = [_Window(budget) for budget in budgets]
        self._instances = max(1, instances)
        self._clock = clock
        self._wall_clock = wall_clock
        self._paused_until = 0.0
        self._hinted_next = 0.0

    def wait_seconds(self) -> float:
        """Seconds until a call may start; 0 when one may start now."""
        now = self._clock()
        start = max([now, self._paused_until, self._hinted_next, *(window.next_slot(now) for window in self._windows)])
        return start - now

    def record_call(self) -> None:
        """Count a call that is being sent now."""
        now = self._clock()
        for window in self._windows:
            window.sent.append(now)

    def pause(self, seconds: float) -> None:
        """Stop every call of this instance for `seconds` (after a 429)."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    @property
    def paused_seconds(self) -> float:
        """How much longer a 429 pause lasts."""
        return max(0.0, self._paused_until - self._clock())

    def observe(self, *, remaining: int | None, reset_epoch_seconds: float | None) -> None:
        """Follow Reply's `x-rate-limit-remaining`/`-reset` hints: spread what is left until the reset."""
        if remaining is None or reset_epoch_seconds is None:
            return
        seconds_to_reset = max(0.0, reset_epoch_seconds - self._wall_clock())
        now = self._clock()
        if remaining <= 0:
            self._hinted_next = now + seconds_to_reset
            return
        my_remaining = remaining / self._instances
        spacing = seconds_to_reset / my_remaining if my_remaining >= 1 else seconds_to_reset
        # Only slow down when the hint is stricter than our own windows would be anyway.
        self._hinted_next = now + spacing if spacing > self._own_spacing() else 0.0

    def _own_spacing(self) -> float:
        return max((window.span / window.limit for window in self._windows), default=0.0)


def budgets_for(
    *, per_minute: int | None, per_hour: int | None, instances: int, time_scale: float = 1.0
) -> list[RateBudget]:
    """This instance's budgets; `time_scale` shrinks the windows (benchmarks run an hour in minutes)."""
    budgets = []
    if per_minute:
        budgets.append(RateBudget(per_minute, 60.0 * time_scale).share(instances))
    if per_hour:
        budgets.append(RateBudget(per_hour, 3600.0 * time_scale).share(instances))
    return budgets


def parse_reset(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """`x-rate-limit-reset` as epoch seconds: an ISO 8601 time, or seconds from now; None when unusable."""
    if not value:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        # Small numbers are "seconds from now"; large ones are already epoch seconds.
        return now() + number if number < 1e9 else number
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()
