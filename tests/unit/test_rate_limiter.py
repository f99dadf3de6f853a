"""Pacing: an instance keeps to its share of the key's budget, follows Reply's hints, and stops on a 429."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

from sequence_archiver.reply.rate_limiter import (
    MAX_SERVER_WAIT_SECONDS,
    RateBudget,
    RateLimiter,
    bounded_wait,
    budgets_for,
    parse_remaining,
    parse_reset,
)

if TYPE_CHECKING:
    from tests.unit.conftest import FakeClock


def run_calls(limiter: RateLimiter, clock: FakeClock, count: int) -> list[float]:
    """Make `count` calls, each as soon as the limiter allows; return their start times."""
    starts = []
    for _ in range(count):
        clock.sleep(limiter.wait_seconds())
        starts.append(clock.now)
        limiter.record_call()
    return starts


def max_in_any_window(starts: list[float], window: float) -> int:
    return max(sum(1 for t in starts if s <= t < s + window) for s in starts)


def test_a_budget_is_shared_between_instances() -> None:
    assert budgets_for(per_minute=100, per_hour=3000, instances=2) == [RateBudget(50, 60.0), RateBudget(1500, 3600.0)]
    assert budgets_for(per_minute=100, per_hour=0, instances=3, time_scale=1 / 30) == [RateBudget(33, 2.0)]
    assert RateBudget(1, 60).share(8) == RateBudget(1, 60)


def test_never_more_calls_in_any_window_than_the_share(clock: FakeClock) -> None:
    limiter = RateLimiter([RateBudget(50, 60.0)], clock=clock)

    starts = run_calls(limiter, clock, 260)

    assert max_in_any_window(starts, 60.0) <= 50
    # ...and not much slower than that either: five windows (plus the jitter slack) for 250 calls.
    assert starts[-1] - starts[0] < 5 * 60 * 1.03


def test_the_hourly_budget_binds_over_longer_runs(clock: FakeClock) -> None:
    limiter = RateLimiter(budgets_for(per_minute=100, per_hour=3000, instances=1), clock=clock)

    starts = run_calls(limiter, clock, 3100)

    assert max_in_any_window(starts[:200], 60.0) <= 100
    assert sum(1 for t in starts if t < starts[0] + 3600) <= 3000


def test_a_429_pause_stops_every_call_until_it_ends(clock: FakeClock) -> None:
    limiter = RateLimiter([RateBudget(100, 60.0)], clock=clock)
    limiter.pause(30)
    assert limiter.wait_seconds() == pytest.approx(30)
    assert limiter.paused_seconds == pytest.approx(30)
    clock.sleep(30)
    assert limiter.wait_seconds() == 0


def test_remaining_zero_waits_for_the_reset(clock: FakeClock) -> None:
    limiter = RateLimiter([RateBudget(100, 60.0)], clock=clock, wall_clock=lambda: 1_000_000.0)
    limiter.observe(remaining=0, reset_epoch_seconds=1_000_045.0)
    assert limiter.wait_seconds() == pytest.approx(45)


def test_a_low_remaining_budget_spreads_the_calls_until_the_reset(clock: FakeClock) -> None:
    limiter = RateLimiter([RateBudget(100, 60.0)], instances=2, clock=clock, wall_clock=lambda: 1_000_000.0)
    limiter.observe(remaining=10, reset_epoch_seconds=1_000_600.0)  # 10 left for 2 instances over 10 minutes
    assert limiter.wait_seconds() == pytest.approx(120)
    limiter.observe(remaining=2_000, reset_epoch_seconds=1_000_600.0)  # plenty left: our own windows rule
    assert limiter.wait_seconds() == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2026-11-29T10:00:00Z", 1_795_946_400.0),
        ("2026-11-29T10:00:00+00:00", 1_795_946_400.0),
        ("30", 1_000_030.0),
        ("1795946400", 1_795_946_400.0),
        ("2026-11-29T10:00:00", None),
        ("later", None),
        (None, None),
    ],
)
def test_reset_header_parsing(header: str | None, expected: float | None) -> None:
    assert parse_reset(header, now=lambda: 1_000_000.0) == expected


# Hostile hints from Reply: capped at MAX_SERVER_WAIT_SECONDS, garbage ignored, never an exception.


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1e308", 1e308),  # far off: observe() caps the wait
        ("9" * 5000, None),
        ("inf", None),
        ("NaN", None),
        ("-inf", None),
        ("9999-12-31T23:59:59+00:00", 253_402_300_799.0),
        ("0001-01-01T00:00:00+01:00", -62_135_600_400.0),
        ("²", None),
        ("x" * 70_000, None),
    ],
)
def test_hostile_reset_headers_parse_without_raising(header: str, expected: float | None) -> None:
    assert parse_reset(header, now=lambda: 1_000_000.0) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7),
        (" 12 ", 12),
        ("0" * 400 + "3", 3),
        ("9" * 5000, 999_999_999),
        ("²", None),
        ("٣", None),  # an Arabic-Indic digit: str.isdigit() says yes, Reply never sends it
        ("-1", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_remaining_header_is_ascii_digits_of_bounded_length(header: str | None, expected: int | None) -> None:
    assert parse_remaining(header) == expected


@pytest.mark.parametrize("reset", [1e308, math.inf, 253_402_300_799.0])
def test_a_far_off_reset_with_nothing_remaining_blocks_for_the_cap_at_most(clock: FakeClock, reset: float) -> None:
    limiter = RateLimiter([RateBudget(100, 60.0)], clock=clock, wall_clock=lambda: 1_000_000.0)
    limiter.observe(remaining=0, reset_epoch_seconds=reset)
    assert limiter.wait_seconds() == pytest.approx(MAX_SERVER_WAIT_SECONDS)
    clock.sleep(MAX_SERVER_WAIT_SECONDS)
    assert limiter.wait_seconds() == 0


def test_a_nan_reset_is_no_wait(clock: FakeClock) -> None:
    limiter = RateLimiter([RateBudget(100, 60.0)], clock=clock, wall_clock=lambda: 1_000_000.0)
    limiter.observe(remaining=0, reset_epoch_seconds=math.nan)
    assert limiter.wait_seconds() == 0


@pytest.mark.parametrize(("seconds", "expected"), [(math.inf, 900.0), (1e308, 900.0), (math.nan, 0.0), (-5, 0.0)])
def test_a_pause_is_capped_and_never_negative_or_nan(clock: FakeClock, seconds: float, expected: float) -> None:
    limiter = RateLimiter([], clock=clock)
    limiter.pause(seconds)
    assert limiter.paused_seconds == pytest.approx(expected)
    assert bounded_wait(seconds) == expected
