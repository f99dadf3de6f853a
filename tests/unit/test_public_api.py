"""The package's public API (sequence_archiver.public): one list of names, each the object its module defines;
importing the package alone stays cheap."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sequence_archiver import public

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "functions" / "archive_sequences"
PUBLIC_MODULE = FUNCTION_DIR / "sequence_archiver" / "public.py"
HEAVY_PACKAGES = ("boto3", "botocore", "urllib3", "pydantic", "aws_lambda_powertools")


def imported_names() -> dict[str, str]:
    """Each name public.py imports, and the module it imports it from."""
    tree = ast.parse(PUBLIC_MODULE.read_text(encoding="utf-8"))
    return {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.module.startswith("sequence_archiver.")
        for alias in node.names
    }


def test_the_public_names_are_listed_once_and_are_exactly_the_ones_imported() -> None:
    assert len(set(public.__all__)) == len(public.__all__)
    assert set(public.__all__) == set(imported_names())


@pytest.mark.parametrize("name", public.__all__)
def test_every_public_name_is_the_object_its_module_defines(name: str) -> None:
    module = sys.modules[imported_names()[name]]
    assert getattr(public, name) is getattr(module, name)


def test_the_package_itself_defines_nothing_so_importing_it_runs_no_code() -> None:
    tree = ast.parse((FUNCTION_DIR / "sequence_archiver" / "__init__.py").read_text(encoding="utf-8"))
    assert [type(node).__name__ for node in tree.body] == ["Expr"]  # its docstring only


@pytest.mark.parametrize(
    "statement",
    ["import sequence_archiver", "from sequence_archiver.core.results_contract import RESULTS_DETAIL_TYPE"],
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
