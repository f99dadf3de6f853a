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
from datetime import datetime
from typing import TYPE_CHECKING

from sequence_archiver.core.rate_budgets import RateBudget, Unused

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.core.rate_budgets import BudgetAnswer, SharedBudget

__all__ = ["MAX_SERVER_WAIT_SECONDS", "RateBudget", "RateLimiter", "bounded_wait", "budgets_for"]

MAX_SERVER_WAIT_SECONDS = 900.0  # the longest pause a Reply header can impose on this instance
_MAX_HEADER_CHARS = 64  # longer rate-limit header values are garbage, not numbers or dates
_MAX_REMAINING_DIGITS = 9  # more digits than this is "plenty left" (and int() of 5,000 digits raises)
_PLENTY_REMAINING = 999_999_999

# Our send times are not Reply's receive times: network jitter can pull two calls one window apart
# into the same server window. A little slack on every window keeps that from costing a 429.
_WINDOW_SLACK_FRACTION = 0.02
_WINDOW_SLACK_MIN_SECONDS = 0.05

# With a shared budget: how long the static share rules after the table failed once, before trying it again.
FALLBACK_SECONDS = 60.0
# Calls booked at once from the shared budget at most; fewer when calls are slow (a grant must be used in time).
MAX_GRANT_BLOCK = 4
# A grant's calls are meant to start within this share of its lifetime (the rest is margin for a slow call).
_GRANT_USE_FRACTION = 0.5


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
    """Tells the client how long to wait before its next call; one per Lambda instance.

    Alone it keeps to its static share. With a `shared` budget (aws/rate_budget.py) every instance draws
    on one budget: `next_wait` with a deadline and a budget key books a few calls at a time there, and
    the static share rules only for FALLBACK_SECONDS after the shared budget could not be reached.
    """

    def __init__(
        self,
        budgets: Sequence[RateBudget],
        *,
        instances: int = 1,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        shared: SharedBudget | None = None,
    ) -> None:
        self._windows = [_Window(budget) for budget in budgets]
        self._instances = max(1, instances)
        self._clock = clock
        self._wall_clock = wall_clock
        self._paused_until = 0.0
        self._hinted_next = 0.0
        self._shared = shared
        self._fallback_until = 0.0
        self._granted = 0  # calls booked in the shared budget and not yet started
        self._grant_expires = 0.0
        self._booked_at = 0.0  # when (epoch seconds) the calls held were booked
        self._unused: list[Unused] = []  # booked, not made, not given back yet
        self._budget_key: str | None = None  # the budget booked in last
        self._pause_to_share = 0.0  # a 429 pause (epoch seconds) not yet recorded in the shared budget
        self._call_started: float | None = None
        self._call_seconds: float | None = None  # a moving average of how long a call (and its handling) takes

    @property
    def sharing(self) -> bool:
        """True while calls are booked in the shared budget (not during a fallback to the static share)."""
        return self._shared is not None and self._clock() >= self._fallback_until

    def wait_seconds(self) -> float:
        """Seconds until a call may start; 0 when one may start now."""
        return self.next_wait()[0]

    def next_wait(self, deadline: Deadline | None = None, budget_key: str | None = None) -> tuple[float, bool]:
        """Seconds until a call may start, and True when a 429 pause holds it back longer than the budget does.

        With a shared budget, a deadline and a budget key, a 0 means a call is booked for this instance.
        """
        now = self._clock()
        self._note_call_ended(now)
        if self.sharing:
            if deadline is None or budget_key is None:  # an estimate (say for a retry): the pause or a hint
                hinted = max(now, self._hinted_next)
                return max(hinted, self._paused_until) - now, self._paused_until > hinted
            shared_wait = self._shared_wait(now, deadline, budget_key)
            if shared_wait is not None:
                return shared_wait
            now = self._clock()
        budget = max([now, self._hinted_next, *(window.next_slot(now) for window in self._windows)])
        return max(budget, self._paused_until) - now, self._paused_until > budget

    def _shared_wait(self, now: float, deadline: Deadline, budget_key: str) -> tuple[float, bool] | None:
        """The shared budget's wait, booking calls when none are held; None to keep to the static share."""
        if self._pause_to_share > 0 and not self._tell_shared(0, deadline, budget_key):
            return None  # Reply's 429 goes to the table first: every instance pauses with this one
        held = self._held_wait(now)
        if held is not None:
            return held
        self._drop_grant(slow=True)
        asked_at = self._clock()  # before the table's read: a grant never lasts longer than its lifetime from here
        answer = self._tell_shared(self._block_size(), deadline, budget_key)
        return None if answer is None else self._follow(answer, asked_at)

    def _tell_shared(self, calls: int, deadline: Deadline, budget_key: str) -> BudgetAnswer | None:
        """Book `calls` calls (0: none) in the shared budget, with the pending pause and the calls given back;
        None (and the static share for FALLBACK_SECONDS) when it cannot be reached."""
        if self._shared is None:
            return None
        self._budget_key = budget_key
        answer = self._shared.reserve(
            budget_key, calls, deadline, pause_until=self._pause_to_share, give_back=tuple(self._unused)
        )
        if answer is None:
            self._fallback_until = self._clock() + FALLBACK_SECONDS
            return None
        self._pause_to_share = 0.0
        self._unused.clear()
        return answer

    def _drop_grant(self, *, slow: bool) -> None:
        """Give up the calls held (they are given back with the next booking); `slow`: they lapsed unused."""
        if self._granted <= 0:
            return
        if slow and self._shared is not None:
            self._call_seconds = self._shared.grant_lifetime_seconds  # calls are slower than the grant assumed
        self._unused.append(Unused(self._booked_at, self._granted))
        self._granted = 0

    def release(self, deadline: Deadline) -> None:
        """Give back the calls held and not made (the work is done): other instances may make them."""
        self._drop_grant(slow=False)
        if self._unused and self.sharing and self._budget_key is not None and deadline.remaining_seconds() > 0:
            self._tell_shared(0, deadline, self._budget_key)

    def _held_wait(self, now: float) -> tuple[float, bool] | None:
        """The wait this instance knows without asking: a 429 pause, a "none left" hint, or a call held already."""
        if self._paused_until > now:
            return self._paused_until - now, True
        if self._hinted_next > now:
            return self._hinted_next - now, False
        if self._granted > 0 and now < self._grant_expires:
            return 0.0, False
        return None

    def _follow(self, answer: BudgetAnswer, asked_at: float) -> tuple[float, bool]:
        """Take what the shared budget answered: a pause every instance keeps, a grant, or a wait.

        A grant expires `use_within_seconds` from now, and never later than its lifetime after `asked_at`, the
        moment before the table read that booked it: a pause between the answer and this line (a starved
        process) must not stretch the grant past the span the other instances count it in.
        """
        now = self._clock()
        if answer.paused:
            self._paused_until = max(self._paused_until, now + bounded_wait(answer.wait_seconds))
            return self._paused_until - now, True
        if answer.granted > 0 and self._shared is not None:
            self._granted = answer.granted
            self._grant_expires = min(now + answer.use_within_seconds, asked_at + self._shared.grant_lifetime_seconds)
            self._booked_at = answer.booked_at
            return 0.0, False
        return max(0.0, answer.wait_seconds), False

    def _block_size(self) -> int:
        """Calls to book at once: as many as start well within a grant's lifetime, at most MAX_GRANT_BLOCK."""
        if self._shared is None or self._call_seconds is None:
            return 1
        usable = self._shared.grant_lifetime_seconds * _GRANT_USE_FRACTION
        return max(1, min(MAX_GRANT_BLOCK, int(usable / max(self._call_seconds, 1e-3))))

    def _note_call_ended(self, now: float) -> None:
        """The call started last has ended by now: fold its duration into the moving average."""
        if self._call_started is None:
            return
        took = now - self._call_started
        self._call_started = None
        self._call_seconds = took if self._call_seconds is None else 0.7 * self._call_seconds + 0.3 * took

    def take_call(self) -> bool:
        """Start a call now, counted in every window; False, counting nothing, when the shared budget's grant
        lapsed since `next_wait` (a slow moment between the two): the caller books again first."""
        if self.sharing and (self._granted <= 0 or self._clock() >= self._grant_expires):
            self._drop_grant(slow=True)
            return False
        self.record_call()
        return True

    def record_call(self) -> None:
        """Count a call that is being sent now."""
        now = self._clock()
        for window in self._windows:
            window.sent.append(now)
        if self._granted > 0:
            self._granted -= 1
            self._call_started = now

    def pause(self, seconds: float) -> None:
        """Stop every call of this instance (and, when shared, of every instance) for `seconds` after a 429,
        at most MAX_SERVER_WAIT_SECONDS."""
        wait = bounded_wait(seconds)
        self._paused_until = max(self._paused_until, self._clock() + wait)
        self._drop_grant(slow=False)  # what was booked is not sent: Reply refuses calls now
        if self._shared is not None:
            self._pause_to_share = max(self._pause_to_share, self._wall_clock() + wait)

    @property
    def paused_seconds(self) -> float:
        """How much longer a 429 pause lasts."""
        return max(0.0, self._paused_until - self._clock())

    def observe(self, *, remaining: int | None, reset_epoch_seconds: float | None) -> None:
        """Follow Reply's `x-rate-limit-remaining`/`-reset` hints: spread what is left until the reset.

        While sharing only "none left" is followed: the shared budget already divides what is left.
        """
        if remaining is None or reset_epoch_seconds is None:
            return
        seconds_to_reset = bounded_wait(reset_epoch_seconds - self._wall_clock())
        now = self._clock()
        if remaining <= 0:
            self._hinted_next = now + seconds_to_reset
            return
        if self.sharing:
            self._hinted_next = 0.0
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
