"""Per-user sliding-window rate limiting, as Reply does (100 a minute, 3,000 an hour, whichever key acts)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from local.stand_ins.reply_simulator.models import RateLimit


@dataclass(frozen=True, slots=True)
class WindowReport:
    """What the x-rate-limit-* headers describe: one window's remaining budget and reset time."""

    label: str
    remaining: int
    reset_in_seconds: float


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a request may proceed, how long to wait if not, and the reported window."""

    allowed: bool
    retry_after_seconds: int
    report: WindowReport | None


@dataclass(frozen=True, slots=True)
class _Window:
    limit: int
    seconds: float
    label: str


class SlidingWindowRateLimiter:
    """Counts accepted requests per user in every window; a refused request does not count."""

    def __init__(self, rate_limit: RateLimit | None) -> None:
        windows: list[_Window] = []
        if rate_limit is not None:
            if rate_limit.per_minute is not None:
                windows.append(_Window(rate_limit.per_minute, rate_limit.minute_seconds, "1m"))
            if rate_limit.per_hour is not None:
                windows.append(_Window(rate_limit.per_hour, rate_limit.hour_seconds, "1h"))
        self._windows = tuple(windows)
        self._fixed = rate_limit is not None and rate_limit.fixed_windows
        # The hour window is what Reply's live x-rate-limit-limit ("1h") describes.
        self._reported = windows[-1] if windows else None
        self._lock = threading.Lock()
        self._hits: dict[int, tuple[deque[float], ...]] = {}

    def acquire(self, user_id: int) -> RateDecision:
        """Take one slot of this user's budget now, or say how many whole seconds until one frees."""
        if not self._windows:
            return RateDecision(allowed=True, retry_after_seconds=0, report=None)
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(user_id)
            if hits is None:
                hits = tuple(deque[float]() for _ in self._windows)
                self._hits[user_id] = hits
            wait_seconds = 0.0
            for window, window_hits in zip(self._windows, hits, strict=True):
                if self._fixed:  # only this window's hits count: it started at the last multiple of its length
                    started = math.floor(now / window.seconds) * window.seconds
                    while window_hits and window_hits[0] < started:
                        window_hits.popleft()
                    if len(window_hits) >= window.limit:
                        wait_seconds = max(wait_seconds, started + window.seconds - now)
                    continue
                horizon = now - window.seconds
                while window_hits and window_hits[0] <= horizon:
                    window_hits.popleft()
                if len(window_hits) >= window.limit:
                    frees_at = window_hits[len(window_hits) - window.limit] + window.seconds
                    wait_seconds = max(wait_seconds, frees_at - now)
            allowed = wait_seconds <= 0
            if allowed:
                for window_hits in hits:
                    window_hits.append(now)
            report = self._report(hits, now)
        retry_after = 0 if allowed else max(1, math.ceil(wait_seconds))
        return RateDecision(allowed=allowed, retry_after_seconds=retry_after, report=report)

    def reset(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._hits.clear()

    def _report(self, hits: tuple[deque[float], ...], now: float) -> WindowReport | None:
        if self._reported is None:
            return None
        window_hits = hits[self._windows.index(self._reported)]
        seconds = self._reported.seconds
        if self._fixed:
            reset_in = (math.floor(now / seconds) + 1) * seconds - now
        else:
            reset_in = window_hits[0] + seconds - now if window_hits else seconds
        return WindowReport(
            label=self._reported.label,
            remaining=max(0, self._reported.limit - len(window_hits)),
            reset_in_seconds=max(0.0, reset_in),
        )
