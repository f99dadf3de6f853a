"""The repository stands alone: a clone with nothing beside it holds everything the code and tests read."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_REFERENCE = re.compile(r"\.\./shared|(?<![\w-])shared/reply[-]api")  # [-]: this line must not match itself


def tracked_files() -> list[Path]:
    listed = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    return [REPO_ROOT / name for name in listed if name]


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [
            f"{path.relative_to(REPO_ROOT)}:{n}"
            for n, line in enumerate(text.splitlines(), 1)
            if OUTSIDE_REFERENCE.search(line)
        ]
    assert offenders == []


def test_the_reply_spec_excerpt_is_in_the_repository_with_its_source_named() -> None:
    excerpt = REPO_ROOT / "local" / "stand_ins" / "reply_simulator" / "openapi" / "openapi-excerpt.yaml"
    header = "\n".join(excerpt.read_text(encoding="utf-8").splitlines()[:12])
    assert "Reply's public OpenAPI 3.1 document" in header
    assert "Operations covered" in header
    assert re.search(r"\d{4}-\d{2}-\d{2}", header)


def test_the_command_line_installs_on_current_pythons_while_lambda_stays_on_3_11() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requires = project["requires-python"]
    assert requires == ">=3.11"  # admits 3.12, 3.13 and later
    template = (REPO_ROOT / "template.yaml").read_text(encoding="utf-8")
    assert "Runtime: python3.11" in template
    assert "python3.12" not in template


def test_ci_runs_the_readme_test_command_in_a_fresh_clone() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "mktemp -d" in ci
    assert "git clone" in ci
    assert "make test" in ci
    assert "make test" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
