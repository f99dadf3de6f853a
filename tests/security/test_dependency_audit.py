"""The layer ships exactly a lock of pinned releases, and none of them has a known vulnerability on PyPI.

Needs PyPI's JSON API: when PyPI cannot answer, the audit fails (it never passes without an answer).
"""

from __future__ import annotations

import tomllib
import warnings

import pytest

from tests.security.lockfile import (
    DIRECT_PATH,
    LOCK_PATH,
    PROJECT_ROOT,
    UnpinnedRequirementError,
    canonical_name,
    read_pins,
)
from tests.security.pypi_advisories import AuditUnavailableError, Coverage, PinAudit, audit_pins

# Advisories (ID or alias) that do not apply to how the function uses the package, each with the reason.
# Keep docs/security.md ("Security checks") in step. Empty: nothing is ignored.
IGNORED_ADVISORIES: dict[str, str] = {}

# Pins behind their latest release, for which PyPI here serves no release document (only the latest's):
# the audit cannot vouch for them, so each one is reviewed by hand, for this exact version.
REVIEWED_UNAUDITED_PINS: dict[tuple[str, str], str] = {
    ("python-dateutil", "2.9.0.post0"): (
        "held back by botocore (python-dateutil>=2.1,<3.0.0); 2.9.0.post0 is the newest 2.x release. "
        "The PyPA advisory database lists no advisory for python-dateutil (reviewed 2026-11-29)."
    ),
}


@pytest.fixture(scope="module")
def audit() -> list[PinAudit]:
    """Every locked pin audited against PyPI, once per module."""
    try:
        return audit_pins(read_pins(LOCK_PATH))
    except AuditUnavailableError as exc:
        pytest.fail(f"the dependency audit could not run, so it cannot pass: {exc}")


def test_the_lock_pins_every_distribution_to_one_version():
    try:
        pins = read_pins(LOCK_PATH)
    except UnpinnedRequirementError as exc:
        pytest.fail(str(exc))

    assert {"aws-lambda-powertools", "boto3", "botocore", "pydantic", "pydantic-core", "urllib3"} <= set(pins)


def test_the_lock_holds_every_direct_dependency_at_its_chosen_version():
    direct = read_pins(DIRECT_PATH)
    locked = read_pins(LOCK_PATH)

    assert {name: locked.get(name) for name in direct} == direct


# What only the command line needs (progress bars): declared by the package, never shipped in the Lambda layer.
CLI_ONLY_PINS = {"tqdm": "4.70.1"}


def test_the_cli_package_declares_the_layer_pins_plus_its_own():
    declared = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    as_pins = dict(requirement.split("==") for requirement in declared)

    assert {canonical_name(name): version for name, version in as_pins.items()} == {
        **read_pins(DIRECT_PATH),
        **CLI_ONLY_PINS,
    }


def test_the_layer_never_ships_what_only_the_cli_needs():
    locked = read_pins(LOCK_PATH)

    assert not set(CLI_ONLY_PINS) & set(locked)


def test_the_development_environment_installs_the_cli_only_pins():
    lines = (PROJECT_ROOT / "requirements-dev.txt").read_text().splitlines()

    assert {f"{name}=={version}" for name, version in CLI_ONLY_PINS.items()} <= set(lines)


def test_the_development_environment_installs_the_lock():
    lines = (PROJECT_ROOT / "requirements-dev.txt").read_text().splitlines()

    assert "-r layers/dependencies/requirements.txt" in lines


def test_no_locked_release_has_a_known_vulnerability(audit):
    open_advisories = {
        f"{pin.name}=={pin.version}": [
            advisory.id for advisory in pin.advisories if not ignored(advisory.id, advisory.aliases)
        ]
        for pin in audit
    }

    assert {pin: ids for pin, ids in open_advisories.items() if ids} == {}


def test_every_pin_is_audited_or_reviewed_by_hand(audit):
    unaudited = {(pin.name, pin.version): pin.latest for pin in audit if pin.coverage is Coverage.UNAUDITED}
    for (name, version), latest in unaudited.items():
        if (name, version) in REVIEWED_UNAUDITED_PINS:
            warnings.warn(
                f"{name}=={version} (latest {latest}) is not covered by PyPI's vulnerability data here: "
                f"{REVIEWED_UNAUDITED_PINS[name, version]}",
                stacklevel=1,
            )

    assert sorted(set(unaudited) - set(REVIEWED_UNAUDITED_PINS)) == []


def test_every_exception_is_justified_and_still_needed(audit):
    listed = {
        advisory_id for pin in audit for advisory in pin.advisories for advisory_id in (advisory.id, *advisory.aliases)
    }
    locked = {(pin.name, pin.version) for pin in audit}

    assert all(reason.strip() for reason in [*IGNORED_ADVISORIES.values(), *REVIEWED_UNAUDITED_PINS.values()])
    assert set(IGNORED_ADVISORIES) <= listed
    assert set(REVIEWED_UNAUDITED_PINS) <= locked


def ignored(advisory_id: str, aliases: tuple[str, ...]) -> bool:
    """True when the advisory is listed in IGNORED_ADVISORIES under its ID or one of its aliases."""
    return bool({advisory_id, *aliases} & set(IGNORED_ADVISORIES))
