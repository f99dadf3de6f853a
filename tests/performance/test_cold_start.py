"""Cold start is a feature: the handler's import and first clients stay close to bare boto3's.

The bound is a ratio measured side by side in fresh interpreters (medians), never an absolute time,
and deliberately generous: it catches a regression such as a heavy import at module level, not noise.
`make bench` reports the precise figure.
"""

from __future__ import annotations

import pytest

from bench.cold_start import measure

pytestmark = pytest.mark.performance

GENEROUS_RATIO_BOUND = 2.5


def test_handler_init_stays_within_a_generous_multiple_of_bare_boto3() -> None:
    result = measure(runs=5)
    assert result["ratio"] <= GENEROUS_RATIO_BOUND, result
