"""Cold start is a feature: what the handler's init imports stays what the archive path needs.

These are import budgets, not timings (a shared CI host makes any timing flaky): a new dependency imported at module
level, the clean-up path's models loaded on every cold start, or the X-Ray SDK loaded with tracing off fails here
whatever the machine's load. `make bench` measures the time itself, side by side (docs/benchmarks-and-soak.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.cold_start import FUNCTION_DIR

pytestmark = pytest.mark.performance

# What the handler's init (with its first invocation's clients) may import beyond the standard library: the
# function, its four direct dependencies and what they import themselves.
ALLOWED_PACKAGES = frozenset(
    {
        "app",
        "sequence_archiver",
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "dateutil",
        "six",
        "certifi",
        "urllib3",
        "aws_lambda_powertools",
        "pydantic",
        "pydantic_core",
        "annotated_types",
        "typing_extensions",
        "typing_inspection",
    }
)
# Built on first use, by the paths that need them (wiring.py): a clean-up request's models and listing.
LOADED_ON_FIRST_USE = frozenset(
    {"sequence_archiver.archiving.cleanup", "sequence_archiver.archiving.selection", "sequence_archiver.reply.listing"}
)

_PROBE = """
import json, os, sys
import app
from aws_lambda_powertools import Metrics
from sequence_archiver.settings import load_settings
from sequence_archiver.wiring import build_service
build_service(load_settings(os.environ), Metrics())
print(json.dumps(sorted(sys.modules)))
"""


def modules_after_init(**environment: str) -> set[str]:
    """Every module a fresh interpreter holds after the handler's init and the first invocation's build."""
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(FUNCTION_DIR),
            "REPLY_API_KEY_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:reply-api-key",
            "AWS_DEFAULT_REGION": "us-east-1",
            **environment,
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_the_cold_start_imports_nothing_beyond_the_function_and_its_dependencies() -> None:
    modules = modules_after_init(POWERTOOLS_TRACE_DISABLED="true")

    packages = {name.split(".")[0] for name in modules}
    outside = sorted(package for package in packages - ALLOWED_PACKAGES if package not in sys.stdlib_module_names)
    assert [package for package in outside if not package.startswith("_")] == []
    assert "boto3" in packages  # the probe really imported the handler


def test_the_clean_up_path_is_not_loaded_by_a_cold_start() -> None:
    modules = modules_after_init(POWERTOOLS_TRACE_DISABLED="true")

    assert "sequence_archiver.wiring" in modules
    assert modules & LOADED_ON_FIRST_USE == set()


@pytest.mark.parametrize(
    "environment",
    [{}, {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}],
    ids=["outside Lambda", "in Lambda with POWERTOOLS_TRACE_DISABLED"],
)
def test_the_handler_does_not_load_the_xray_sdk_when_tracing_is_off(environment: dict[str, str]) -> None:
    modules = modules_after_init(**environment)

    assert not any(name.split(".")[0] == "aws_xray_sdk" for name in modules)
    assert "boto3" in modules
