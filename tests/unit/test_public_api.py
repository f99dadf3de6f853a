"""The package's public API: every exported name is there, and importing the package alone stays cheap."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sequence_archiver

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "functions" / "archive_sequences"
HEAVY_PACKAGES = ("boto3", "botocore", "urllib3", "pydantic", "aws_lambda_powertools")
# Imported while collecting, before the network is blocked: urllib3 probes for IPv6 with a socket on import.
DEFINING_MODULES = {
    name: importlib.import_module(f"sequence_archiver.{module_name}")
    for name, module_name in sequence_archiver._MODULE_OF.items()
}


@pytest.mark.parametrize("name", sequence_archiver.__all__)
def test_every_exported_name_is_the_object_its_module_defines(name: str) -> None:
    assert getattr(sequence_archiver, name) is getattr(DEFINING_MODULES[name], name)


def test_the_exported_names_are_listed_once_and_shown_by_dir() -> None:
    assert len(set(sequence_archiver.__all__)) == len(sequence_archiver.__all__)
    assert set(sequence_archiver.__all__) == set(sequence_archiver._MODULE_OF)
    assert set(sequence_archiver.__all__) <= set(dir(sequence_archiver))


def test_a_name_that_is_not_exported_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'archive_everything'"):
        _ = sequence_archiver.archive_everything  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "statement",
    ["import sequence_archiver", "from sequence_archiver.results_contract import RESULTS_DETAIL_TYPE"],
    ids=["package", "results_contract"],
)
def test_importing_the_package_or_its_results_contract_loads_no_sdk_or_http_library(statement: str) -> None:
    # Given a fresh interpreter that sees only the function's code
    probe = f"import json, sys; {statement}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(FUNCTION_DIR)}

    # When it runs the import
    completed = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=True, timeout=60
    )

    # Then none of the heavy packages was loaded
    loaded = set(json.loads(completed.stdout))
    assert "sequence_archiver" in loaded
    assert loaded.isdisjoint(HEAVY_PACKAGES)
