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
    assert result["bare_ratio"] <= GENEROUS_RATIO_BOUND, result


def test_the_handler_does_not_load_the_xray_sdk_when_tracing_is_off() -> None:
    import json
    import os
    import subprocess
    import sys

    from bench.cold_start import FUNCTION_DIR

    probe = "import sys, json, app; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(FUNCTION_DIR),
        "REPLY_API_KEY_SECRET_ID": "reply-api-key",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    completed = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=True, timeout=60
    )
    modules = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert "aws_xray_sdk" not in modules
    assert "boto3" in modules  # the probe really imported the handler
