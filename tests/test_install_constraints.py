"""`pip install -c constraints.txt .` installs the command line on the versions the function is tested with.

No registry here: the pins are compared as text, and the CLI's dependency closure is read from the
metadata of what this virtualenv installed from the lock.
"""

from __future__ import annotations

import importlib.metadata
import tomllib

from packaging.requirements import Requirement

from tools import constraints

LOCK = constraints.requirement_pins(constraints.LOCK.read_text(encoding="utf-8"))
CONSTRAINTS = constraints.requirement_pins(constraints.CONSTRAINTS.read_text(encoding="utf-8"))
PROJECT = constraints.project_pins(constraints.PYPROJECT.read_text(encoding="utf-8"))
DEV = constraints.requirement_pins((constraints.ROOT / "requirements-dev.txt").read_text(encoding="utf-8"))


def version(pins: dict[str, tuple[str, str]], key: str) -> str | None:
    return pins[key][1] if key in pins else None


def cli_closure() -> set[str]:
    """Every distribution `pip install .` brings in on this platform, from pyproject's dependencies down."""
    dependencies = tomllib.loads(constraints.PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    pending = [Requirement(text) for text in dependencies]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        key = constraints.canonical(requirement.name)
        if key in seen:
            continue
        seen.add(key)
        extras = requirement.extras or {""}
        for text in importlib.metadata.distribution(requirement.name).requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return seen


def test_every_pyproject_pin_is_the_lock_s_pin():
    in_lock = {key: (PROJECT[key][1], version(LOCK, key)) for key in PROJECT if key in LOCK}

    assert {key: pins for key, pins in in_lock.items() if pins[0] != pins[1]} == {}
    assert set(in_lock) >= {"aws-lambda-powertools", "boto3", "pydantic", "urllib3"}


def test_a_cli_only_pin_matches_the_development_virtualenv_s():
    cli_only = {key: (PROJECT[key][1], version(DEV, key)) for key in PROJECT if key not in LOCK}

    assert cli_only == {"tqdm": (PROJECT["tqdm"][1], PROJECT["tqdm"][1])}


def test_the_constraints_pin_everything_the_cli_installs_at_the_lock_s_versions():
    closure = cli_closure()

    assert sorted(closure - set(CONSTRAINTS)) == []
    assert {key: version(CONSTRAINTS, key) for key in closure & set(LOCK)} == {
        key: version(LOCK, key) for key in closure & set(LOCK)
    }
    assert {"botocore", "pydantic-core", "s3transfer", "six"} <= closure


def test_the_constraints_file_is_what_the_lock_makes_and_has_no_hashes():
    text = constraints.CONSTRAINTS.read_text(encoding="utf-8")

    assert text == constraints.render(
        constraints.LOCK.read_text(encoding="utf-8"), constraints.PYPROJECT.read_text(encoding="utf-8")
    ), "constraints.txt is stale: run `make constraints`"
    assert "--hash" not in text  # a single hash turns on pip's hash checking for `.` too, which has none


def test_hashes_in_the_lock_stay_out_of_the_constraints():
    hashed = "boto3==1.44.8 \\\n    --hash=sha256:00\nurllib3==2.8.0 --hash=sha256:11\n"

    rendered = constraints.render(hashed, '[project]\ndependencies = ["boto3==1.44.8"]\n')

    assert rendered.endswith("boto3==1.44.8\nurllib3==2.8.0\n")
    assert "--hash" not in rendered


def test_the_readme_installs_the_cli_with_the_constraints():
    readme = (constraints.ROOT / "README.md").read_text(encoding="utf-8")

    assert "pip install -c constraints.txt ." in readme
