"""checkov finds nothing in template.yaml but what the template skips, and every skip says why."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.decode import decode_str

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
CHECKOV_TIMEOUT_SECONDS = 300


def checkov_executable() -> str:
    """checkov from .venv-checkov (installed by `make checkov-cli`), else from PATH."""
    installed = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"
    if installed.is_file():
        return str(installed)
    on_path = shutil.which("checkov")
    if on_path:
        return on_path
    pytest.fail("checkov not found in .venv-checkov nor on PATH; run `make checkov-cli`")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """checkov's JSON report on template.yaml: CloudFormation checks (SAM included), offline."""
    result = subprocess.run(
        [
            checkov_executable(),
            "--file",
            str(TEMPLATE_PATH),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
            "--compact",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_SECONDS,
        check=False,
    )
    # checkov exits 1 when a check fails; anything else (or no JSON) means it did not scan.
    assert result.returncode in {0, 1}, result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="module")
def template_skips() -> list[tuple[str, dict[str, Any]]]:
    """(resource, skip) for every `Metadata: checkov: skip:` entry in template.yaml."""
    template, errors = decode_str(TEMPLATE_PATH.read_text())
    assert not errors, errors
    assert template is not None
    return [
        (name, skip)
        for name, resource in template["Resources"].items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    ]


def test_checkov_scans_every_resource_without_parsing_errors(report):
    summary = report["summary"]

    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 20
    assert summary["passed"] > 0


def test_checkov_reports_no_failed_check(report):
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]

    assert failed == []


def test_every_skip_names_a_check_and_says_why(template_skips):
    assert template_skips
    for resource, skip in template_skips:
        assert str(skip.get("id", "")).startswith("CKV_"), resource
        assert len(str(skip.get("comment", "")).strip()) >= 40, f"{resource} skips {skip.get('id')} without a reason"


def test_every_skip_is_still_needed(report, template_skips):
    skipped_by_checkov = {
        (check["resource"].split(".", 1)[1], check["check_id"]) for check in report["results"]["skipped_checks"]
    }

    assert {(resource, skip["id"]) for resource, skip in template_skips} == skipped_by_checkov
