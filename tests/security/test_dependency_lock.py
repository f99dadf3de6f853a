"""The layer ships exactly a lock of pinned releases, complete and consistent, with every audit exception justified.

No network: these read the repository and the installed distributions' metadata only. Asking a registry about
known vulnerabilities is `make audit` (tests/security/audit.py), never `make test`.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from tests.security.audit_exceptions import IGNORED_ADVISORIES, REVIEWED_UNAUDITED_PINS
from tests.security.lockfile import (
    DEV_LOCK_PATH,
    DIRECT_PATH,
    LOCK_PATH,
    PROJECT_ROOT,
    UnpinnedRequirementError,
    canonical_name,
    read_lock,
    read_pins,
)

# The lock's platform (see its header, and `make lock`): markers are evaluated for it, whatever runs the tests.
LOCK_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
ADVISORY_ID = re.compile(r"^(PYSEC-\d{4}-\d+|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|CVE-\d{4}-\d{4,})$")
REVIEW_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def direct_requirements() -> list[Requirement]:
    """requirements.in's requirements, extras kept."""
    lines = [line.split("#", 1)[0].strip() for line in DIRECT_PATH.read_text().splitlines()]
    return [Requirement(line) for line in lines if line]


def installed_closure(roots: list[Requirement]) -> dict[str, str]:
    """{canonical name: installed version} of every distribution the roots need, on the lock's platform."""
    closure: dict[str, str] = {}
    pending = [(requirement, frozenset(requirement.extras)) for requirement in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, extras = pending.pop()
        name = canonical_name(requirement.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} (needed by the layer's closure) is not installed: run `make venv`")
        closure[name] = distribution.version
        for raw in distribution.requires or []:
            needed = Requirement(raw)
            if needed.marker is None or any(
                needed.marker.evaluate({**LOCK_ENVIRONMENT, "extra": extra}) for extra in extras or {""}
            ):
                pending.append((needed, frozenset(needed.extras)))
    return closure


def test_the_lock_pins_every_distribution_to_one_version():
    try:
        pins = read_pins(LOCK_PATH)
    except UnpinnedRequirementError as exc:
        pytest.fail(f"{exc}: the lock is generated, never edited; run `make lock`")

    assert {"aws-lambda-powertools", "boto3", "botocore", "pydantic", "pydantic-core", "urllib3"} <= set(pins)


def test_the_lock_is_the_whole_closure_of_the_direct_pins_and_nothing_else():
    # Given the direct pins and what the installed distributions (.venv installs the lock) say they need
    closure = installed_closure(direct_requirements())

    # Then every distribution of that closure is locked at the version installed, and the lock holds no other
    assert closure == read_pins(LOCK_PATH), "the lock is stale: run `make lock` (then `make venv`)"


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
    locked = {(pin.name, pin.version) for pin in read_lock(DEV_LOCK_PATH)}

    assert set(CLI_ONLY_PINS.items()) <= locked


def test_the_development_environment_installs_the_lock():
    # (its hashes and the rest: tests/security/test_hashed_locks.py)
    locked = {(pin.name, pin.version) for pin in read_lock(DEV_LOCK_PATH)}

    assert set(read_pins(LOCK_PATH).items()) <= locked


def test_every_audit_exception_is_justified_and_dated():
    reviews = [*IGNORED_ADVISORIES.values(), *REVIEWED_UNAUDITED_PINS.values()]

    assert all(review.reason.strip() for review in reviews)
    assert all(REVIEW_DATE.match(review.reviewed) for review in reviews)
    assert all(ADVISORY_ID.match(identifier) for identifier in IGNORED_ADVISORIES)


def test_every_pin_reviewed_by_hand_is_locked_at_that_exact_version():
    # A new version in the lock needs a new review: the old one vouches for the old version only.
    locked = set(read_pins(LOCK_PATH).items())

    assert sorted(set(REVIEWED_UNAUDITED_PINS) - locked) == []
