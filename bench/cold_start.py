"""Cold-start cost in fresh interpreters: the handler's init against bare boto3, measured side by side.

`python -m bench.cold_start [runs]` prints one JSON object. Each run starts two new interpreters, one
for the baseline (`import boto3; boto3.client("sqs")`) and one for the handler (`import app` and the
first invocation's clients: the service with its Secrets Manager and EventBridge clients), alternating
so machine noise hits both alike; the ratio of the medians is what counts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTION_DIR = ROOT / "functions" / "archive_sequences"

_PROBE = """
import sys, time
started = time.perf_counter()
if sys.argv[1] == "handler":
    import os
    import app  # the cold start: settings, Powertools, the handler; then what the first invocation builds
    from aws_lambda_powertools import Metrics
    from sequence_archiver.settings import load_settings
    from sequence_archiver.wiring import build_service
    build_service(load_settings(os.environ), Metrics())
else:
    import boto3
    boto3.client("sqs")
print(time.perf_counter() - started)
"""

_ENV = {
    "REPLY_API_KEY_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:reply-api-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def measure_once(kind: str, python: str = sys.executable) -> float:
    """Seconds one fresh interpreter needs for `kind` ("handler" or "baseline")."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(FUNCTION_DIR), **_ENV}
    completed = subprocess.run(
        [python, "-c", _PROBE, kind], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return float(completed.stdout.strip().splitlines()[-1])


def measure(runs: int = 7) -> dict[str, float]:
    """Medians of `runs` alternating measurements and their ratio."""
    handler, baseline = [], []
    for _ in range(runs):
        baseline.append(measure_once("baseline"))
        handler.append(measure_once("handler"))
    handler_median, baseline_median = statistics.median(handler), statistics.median(baseline)
    return {
        "runs": runs,
        "handler_init_ms": round(handler_median * 1000, 1),
        "baseline_init_ms": round(baseline_median * 1000, 1),
        "ratio": round(handler_median / baseline_median, 3),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 7)))
