"""Client-side pacing under Reply's per-key budget, so steady state sees no 429 at all.

Reply allows 100 requests a minute and 3,000 an hour per user key, shared by every app and every
instance using the key. Each instance keeps to its share (the budget divided by the number of
instances that may run at once) with sliding windows over its own send times, follows Reply's
`x-rate-limit-*` hints when they are present, and stops altogether while a 429 says so.

Waits that come from Reply (Retry-After, `x-rate-limit-reset`) are capped at MAX_SERVER_WAIT_SECONDS
(15 minutes): a far-off time (a date in year 9999, 1e308, 400 digits) counts as the cap, and garbage
(NaN, inf, a superscript digit, unparseable text) is ignored, so one hostile header can neither stop
an instance for good nor raise.
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

MAX_SERVER_WAIT_SECONDS = 900.0  # the longest pause a Reply header can impose on this instance
_MAX_HEADER_CHARS = 64  # longer rate-limit header values are garbage, not numbers or dates
_MAX_REMAINING_DIGITS = 9  # more digits than this is "plenty left" (and int() of 5,000 digits raises)
_PLENTY_REMAINING = 999_999_999

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
        return self.next_wait()[0]

    def next_wait(self) -> tuple[float, bool]:
        """Seconds until a call may start, and True when a 429 pause holds it back longer than the budget does."""
        now = self._clock()
        budget = max([now, self._hinted_next, *(window.next_slot(now) for window in self._windows)])
        return max(budget, self._paused_until) - now, self._paused_until > budget

    def record_call(self) -> None:
        """Count a call that is being sent now."""
        now = self._clock()
        for window in self._windows:
            window.sent.append(now)

    def pause(self, seconds: float) -> None:
        """Stop every call of this instance for `seconds` (after a 429), at most MAX_SERVER_WAIT_SECONDS."""
        self._paused_until = max(self._paused_until, self._clock() + bounded_wait(seconds))

    @property
    def paused_seconds(self) -> float:
        """How much longer a 429 pause lasts."""
        return max(0.0, self._paused_until - self._clock())

    def observe(self, *, remaining: int | None, reset_epoch_seconds: float | None) -> None:
        """Follow Reply's `x-rate-limit-remaining`/`-reset` hints: spread what is left until the reset."""
        if remaining is None or reset_epoch_seconds is None:
            return
        seconds_to_reset = bounded_wait(reset_epoch_seconds - self._wall_clock())
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


def bounded_wait(seconds: float) -> float:
    """A wait Reply asked for, within [0, MAX_SERVER_WAIT_SECONDS]; NaN counts as no wait."""
    if math.isnan(seconds):
        return 0.0
    return min(MAX_SERVER_WAIT_SECONDS, max(0.0, seconds))


def parse_remaining(value: str | None) -> int | None:
    """`x-rate-limit-remaining` as a count: ASCII digits only; None when absent or unusable."""
    if not value:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        return None  # "²" is a digit to str.isdigit(), and int() refuses it
    text = text.lstrip("0") or "0"
    if len(text) > _MAX_REMAINING_DIGITS:
        return _PLENTY_REMAINING
    return int(text)


def parse_reset(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """`x-rate-limit-reset` as epoch seconds: an ISO 8601 time, or seconds from now; None when unusable.

    The result may lie far in the future (year 9999, 1e308): RateLimiter.observe caps what it waits.
    """
    if not value:
        return None
    text = value.strip()
    if len(text) > _MAX_HEADER_CHARS:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        # Small numbers are "seconds from now"; large ones are already epoch seconds.
        return now() + number if number < 1e9 else number
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            return None
        return moment.timestamp()
    except (ValueError, OverflowError):
        return None
