"""Pacing on a shared budget: what the limiter does with each answer of the shared budget (a stand-in here;
the DynamoDB one is exercised in tests/integration/test_rate_budget.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.rate_budgets import BudgetAnswer, RateBudget, Unused
from sequence_archiver.reply.rate_limiter import FALLBACK_SECONDS, MAX_GRANT_BLOCK, RateLimiter

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tests.unit.conftest import FakeClock

KEY = "key:" + "1" * 32


@dataclass
class ScriptedBudget:
    """Answers `reserve` from a script (the last answer repeats) and records every request."""

    answers: list[BudgetAnswer | None]
    grant_lifetime_seconds: float = 1.0
    asked: list[tuple[int, float]] = field(default_factory=list)
    given_back: list[Unused] = field(default_factory=list)
    while_booking: Callable[[], None] = lambda: None  # what happens during the table's read and write

    def reserve(
        self,
        budget_key: str,
        calls: int,
        deadline: Deadline,
        *,
        pause_until: float = 0.0,
        give_back: Sequence[Unused] = (),
    ) -> BudgetAnswer | None:
        self.asked.append((calls, pause_until))
        self.given_back.extend(give_back)
        self.while_booking()
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def limiter(clock: FakeClock, shared: ScriptedBudget) -> RateLimiter:
    return RateLimiter([RateBudget(5, 60.0).share(2)], instances=2, clock=clock, wall_clock=clock, shared=shared)


def deadline(clock: FakeClock) -> Deadline:
    return Deadline(expires_at=clock.now + 900, clock=clock)


def test_a_grant_of_several_calls_is_used_without_asking_again(clock: FakeClock) -> None:
    shared = ScriptedBudget([BudgetAnswer(granted=3, use_within_seconds=1.0)])
    pacing = limiter(clock, shared)
    for _ in range(3):
        assert pacing.next_wait(deadline(clock), KEY) == (0.0, False)
        assert pacing.take_call()
    assert len(shared.asked) == 1


def test_a_grant_that_lapsed_is_not_used(clock: FakeClock) -> None:
    shared = ScriptedBudget([BudgetAnswer(granted=2, use_within_seconds=0.5)])
    pacing = limiter(clock, shared)
    assert pacing.next_wait(deadline(clock), KEY) == (0.0, False)
    clock.sleep(0.6)  # something slow between the booking and the call
    assert not pacing.take_call()
    assert pacing.next_wait(deadline(clock), KEY) == (0.0, False)  # booked again
    assert len(shared.asked) == 2
    assert shared.asked[1][0] == 1  # and it now books one call at a time
    assert shared.given_back == [Unused(0.0, 2)]  # the two lapsed calls are given back to the others


def test_calls_held_when_the_work_ends_are_given_back(clock: FakeClock) -> None:
    shared = ScriptedBudget([BudgetAnswer(granted=3, use_within_seconds=1.0, booked_at=123.0)])
    pacing = limiter(clock, shared)
    assert pacing.next_wait(deadline(clock), KEY) == (0.0, False)
    assert pacing.take_call()
    pacing.release(deadline(clock))
    assert shared.asked[-1] == (0, 0.0)
    assert shared.given_back == [Unused(123.0, 2)]
    pacing.release(deadline(clock))
    assert len(shared.asked) == 2  # nothing more to give back: no call


def test_fast_calls_book_a_few_at_a_time_never_more_than_the_block(clock: FakeClock) -> None:
    shared = ScriptedBudget([BudgetAnswer(granted=1, use_within_seconds=1.0)])
    pacing = limiter(clock, shared)
    for _ in range(10):
        assert pacing.next_wait(deadline(clock), KEY)[0] == 0
        assert pacing.take_call()
        clock.sleep(0.01)
    asked = [calls for calls, _ in shared.asked]
    assert asked[0] == 1
    assert max(asked) == MAX_GRANT_BLOCK


def test_the_shared_wait_is_passed_on_and_the_static_share_is_not_applied(clock: FakeClock) -> None:
    shared = ScriptedBudget([BudgetAnswer(granted=0, wait_seconds=7.5)])
    pacing = limiter(clock, shared)
    assert pacing.next_wait(deadline(clock), KEY) == (7.5, False)
    # An estimate without a booking (a retry's delay) does not count the static share's windows either.
    for _ in range(10):
        pacing.record_call()
    assert pacing.next_wait() == (0.0, False)


def test_a_table_failure_falls_back_to_the_static_share_for_a_while(clock: FakeClock) -> None:
    shared = ScriptedBudget([None, BudgetAnswer(granted=1, use_within_seconds=1.0)])
    pacing = limiter(clock, shared)
    started = 0
    while pacing.next_wait(deadline(clock), KEY)[0] == 0 and started < 10:
        assert pacing.take_call()
        started += 1
    assert started == 2  # the static share: 5 // 2
    assert not pacing.sharing
    assert len(shared.asked) == 1
    clock.sleep(FALLBACK_SECONDS)
    assert pacing.sharing
    assert pacing.next_wait(deadline(clock), KEY) == (0.0, False)
    assert len(shared.asked) == 2


def test_a_429_is_recorded_in_the_shared_budget_before_anything_else(clock: FakeClock) -> None:
    shared = ScriptedBudget([BudgetAnswer(granted=0, wait_seconds=30.0, paused=True)])
    pacing = limiter(clock, shared)
    pacing.pause(30.0)
    wait, paused = pacing.next_wait(deadline(clock), KEY)
    assert paused
    assert wait == 30.0
    assert shared.asked == [(0, clock.now + 30.0)]
    pacing.next_wait(deadline(clock), KEY)
    assert len(shared.asked) == 1  # recorded once; the pause is then waited out here


def test_a_pause_another_instance_recorded_is_kept_here(clock: FakeClock) -> None:
    shared = ScriptedBudget([BudgetAnswer(granted=0, wait_seconds=12.0, paused=True)])
    pacing = limiter(clock, shared)
    assert pacing.next_wait(deadline(clock), KEY) == (12.0, True)
    assert pacing.paused_seconds == 12.0


class StallingClock:
    """A fake monotonic clock that jumps by `pending` at its next reading: a process starved just there."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.pending = 0.0

    def __call__(self) -> float:
        self.now += self.pending
        self.pending = 0.0
        return self.now


def test_a_starved_moment_after_the_booking_never_stretches_the_grant_past_its_lifetime() -> None:
    # Given: an instance that asked at 1000.0; the budget answered at 1000.1; the process resumed at 1000.5
    clock = StallingClock()

    def slow_then_starved() -> None:
        clock.now += 0.1  # the table's read and write
        clock.pending = 0.4  # then the answer waits for the CPU

    shared = ScriptedBudget([BudgetAnswer(granted=2, use_within_seconds=0.9)], while_booking=slow_then_starved)
    pacing = RateLimiter([RateBudget(5, 60.0).share(2)], instances=2, clock=clock, wall_clock=clock, shared=shared)
    assert pacing.next_wait(Deadline(expires_at=clock.now + 900, clock=clock), KEY) == (0.0, False)
    asked_at = 1_000.0

    # Then: its calls may start until 1000.0 + the 1 s lifetime, the span every other instance counts it in...
    clock.now = asked_at + 0.95
    assert pacing.take_call()
    # ...and not after, though the answer itself allowed 0.9 s from 1000.5
    clock.now = asked_at + 1.05
    assert not pacing.take_call()
