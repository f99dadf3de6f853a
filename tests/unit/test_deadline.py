"""The invocation's deadlines: the safety margin scales with the time there is, and a share bounds a step."""

from __future__ import annotations

import pytest

from sequence_archiver.core.deadline import FINAL_RESERVE_SECONDS, Deadline, InvocationDeadlines


class Context:
    def __init__(self, seconds: float) -> None:
        self.millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds_left", "work_seconds"),
    [
        (300.0, 290.0),  # the configured 10 s margin
        (8.0, 6.0),  # a quarter of 8 s: a healthy ID is still archived
        (2.5, 1.875),  # still time for a call
        (0.2, 0.15),
    ],
)
def test_the_safety_margin_is_the_lesser_of_the_setting_and_a_quarter_of_the_time_left(
    seconds_left: float, work_seconds: float
) -> None:
    clock = Clock()

    deadlines = InvocationDeadlines.from_context(Context(seconds_left), safety_margin_seconds=10.0, clock=clock)

    assert deadlines.work.remaining_seconds() == pytest.approx(work_seconds)
    assert deadlines.final.remaining_seconds() == pytest.approx(
        seconds_left - min(FINAL_RESERVE_SECONDS, seconds_left * 0.05)
    )
    assert deadlines.final.expires_at >= deadlines.work.expires_at


def test_a_share_bounds_a_step_to_a_fraction_of_what_is_left_and_never_past_the_deadline() -> None:
    clock = Clock()
    deadline = Deadline(expires_at=clock.now + 9.0, clock=clock)

    share = deadline.share(1 / 3)

    assert share.remaining_seconds() == pytest.approx(3.0)
    clock.now += 20.0
    assert deadline.share(0.5).remaining_seconds() == 0.0
