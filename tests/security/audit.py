"""`make audit`: the layer's locked releases checked against the registry's vulnerability data as it is today.

Not part of `make test` (which never asks a registry anything): what a registry serves changes every day.

    python -m tests.security.audit [--registry URL] [--warn-on-registry-problems]

Exit codes:
  0  audit done: no known vulnerability in any locked release (reviewed exceptions aside)
  1  a locked release has a known vulnerability: the message says what to run
  2  usage error
  3  cannot reach the registry: audit not done (says nothing about the pins)
  4  the registry answered, but has no vulnerability data for some locked releases: audit incomplete
With --warn-on-registry-problems (what .ci/run uses), 3 and 4 print a warning and exit 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

from tests.security.audit_exceptions import IGNORED_ADVISORIES, REVIEWED_UNAUDITED_PINS, Review
from tests.security.lockfile import DIRECT_PATH, LOCK_PATH, PROJECT_ROOT, read_pins
from tests.security.pypi_advisories import (
    ATTEMPTS,
    PYPI_JSON_API,
    TIMEOUT_SECONDS,
    Coverage,
    PinAudit,
    Registry,
    RegistryUnreachableError,
    audit_pins,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

REGISTRY_VARIABLE = "AUDIT_REGISTRY_URL"
EXCEPTIONS_FILE = "tests/security/audit_exceptions.py"
PIP_AUDIT_COMMAND = "pipx run pip-audit -r layers/dependencies/requirements.txt --no-deps --disable-pip --strict"


class ExitCode(IntEnum):
    """What `make audit` tells its caller."""

    CLEAN = 0
    VULNERABLE = 1
    USAGE = 2
    REGISTRY_UNREACHABLE = 3
    INCOMPLETE = 4


@dataclass(frozen=True)
class Finding:
    """One open advisory of one locked release."""

    pin: str
    advisory_id: str
    fixed_in: tuple[str, ...]
    link: str | None


@dataclass(frozen=True)
class Verdict:
    """The audit's answer, derived from every pin's audit and the reviewed exceptions."""

    findings: tuple[Finding, ...]
    unaudited: tuple[PinAudit, ...]
    reviewed: tuple[PinAudit, ...]
    stale_ignores: tuple[str, ...]
    audited: int = field(default=0)

    @property
    def exit_code(self) -> ExitCode:
        """A known vulnerability outranks a gap in the registry's data."""
        if self.findings:
            return ExitCode.VULNERABLE
        if self.unaudited:
            return ExitCode.INCOMPLETE
        return ExitCode.CLEAN


def decide(
    audits: Sequence[PinAudit],
    ignored: Mapping[str, Review] = IGNORED_ADVISORIES,
    reviewed: Mapping[tuple[str, str], Review] = REVIEWED_UNAUDITED_PINS,
) -> Verdict:
    """The verdict on every pin's audit: open advisories, pins nobody could audit, exceptions no longer needed."""
    findings = tuple(
        Finding(f"{pin.name}=={pin.version}", advisory.id, advisory.fixed_in, advisory.link)
        for pin in audits
        for advisory in pin.advisories
        if not {advisory.id, *advisory.aliases} & set(ignored)
    )
    uncovered = [pin for pin in audits if pin.coverage in {Coverage.UNAUDITED, Coverage.UNKNOWN}]
    listed = {
        identifier for pin in audits for advisory in pin.advisories for identifier in (advisory.id, *advisory.aliases)
    }
    return Verdict(
        findings=findings,
        unaudited=tuple(pin for pin in uncovered if (pin.name, pin.version) not in reviewed),
        reviewed=tuple(pin for pin in uncovered if (pin.name, pin.version) in reviewed),
        stale_ignores=tuple(sorted(set(ignored) - listed)),
        audited=len(audits) - len(uncovered),
    )


def _behind(pin: PinAudit) -> str:
    if pin.coverage is Coverage.UNKNOWN:
        return f"{pin.name}=={pin.version} (the registry does not list this release)"
    return f"{pin.name}=={pin.version} (latest {pin.latest})"


def _repin_step(names: Iterable[str]) -> str:
    """How to move these distributions to newer releases: `make lock`, after raising the direct pins among them."""
    direct = read_pins(DIRECT_PATH)
    raise_first = sorted({name for name in names if name in direct})
    step = "run `make lock` to re-pin the closure, then `make test`;"
    if not raise_first:
        return step
    direct_file = DIRECT_PATH.relative_to(PROJECT_ROOT)
    return f"raise the pins of {', '.join(raise_first)} in {direct_file} and pyproject.toml, {step}"


def report(verdict: Verdict, registry_url: str) -> list[str]:
    """The lines `make audit` prints for a verdict: what was found, and what to do next."""
    lines = [f"audit: {verdict.audited} locked releases audited against {registry_url}"]
    for pin in verdict.reviewed:
        review = REVIEWED_UNAUDITED_PINS[pin.name, pin.version]
        lines.append(f"audit: note: {_behind(pin)} not covered, reviewed by hand {review.reviewed}: {review.reason}")
    for identifier in verdict.stale_ignores:
        lines.append(
            f"audit: note: {identifier} is in IGNORED_ADVISORIES ({EXCEPTIONS_FILE}) but no locked release lists "
            "it any more: remove it (and its row in docs/security.md)"
        )
    if verdict.findings:
        lines.append("audit: FAILED: known vulnerabilities in locked releases:")
        for finding in verdict.findings:
            fixed = f"fixed in {', '.join(finding.fixed_in)}" if finding.fixed_in else "no fixed release listed"
            lines.append(f"  {finding.pin}: {finding.advisory_id} ({fixed}) {finding.link or ''}".rstrip())
        lines += [
            f"Next step, for each: {_repin_step(finding.pin.split('==')[0] for finding in verdict.findings)}",
            "or, if the advisory does not apply to how the function uses the package, add a reviewed exception to",
            f"IGNORED_ADVISORIES in {EXCEPTIONS_FILE} with its justification (and to docs/security.md).",
        ]
    if verdict.unaudited:
        lines.append(
            f"audit: INCOMPLETE: the registry at {registry_url} has no vulnerability data for "
            f"{len(verdict.unaudited)} locked release(s), each behind its latest release (the registry serves only "
            "the latest's document). They are not known to be vulnerable; they are not audited either:"
        )
        lines += [f"  {_behind(pin)}" for pin in verdict.unaudited]
        lines += [
            "Newer releases are no failure. To audit these: run the audit where the registry serves release documents",
            f"(`{PIP_AUDIT_COMMAND}`);",
            f"or move to the latest releases: {_repin_step(pin.name for pin in verdict.unaudited)}",
            "or review each by hand and add it to REVIEWED_UNAUDITED_PINS in",
            f"{EXCEPTIONS_FILE} with its justification.",
        ]
    if verdict.exit_code is ExitCode.CLEAN:
        lines.append("audit: no known vulnerability in any locked release")
    return lines


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make audit",
        description="Audit the layer's lock against the registry's vulnerability data (PyPI's JSON API).",
    )
    parser.add_argument(
        "--registry",
        default=os.environ.get(REGISTRY_VARIABLE) or PYPI_JSON_API,
        help=f"the JSON API's base URL (default: ${REGISTRY_VARIABLE}, else {PYPI_JSON_API})",
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help="seconds per request")
    parser.add_argument("--attempts", type=int, default=ATTEMPTS, help="attempts per request before giving up")
    parser.add_argument(
        "--warn-on-registry-problems",
        action="store_true",
        help="an unreachable registry or missing data (exit 3 or 4) prints a warning and exits 0",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the audit; the exit code is one of ExitCode."""
    arguments = _arguments(argv)
    registry = Registry(arguments.registry, arguments.timeout, max(1, arguments.attempts))
    try:
        verdict = decide(audit_pins(registry, read_pins(LOCK_PATH)))
    except RegistryUnreachableError as exc:
        lines = [
            f"audit: cannot reach the registry at {registry.base_url}; audit not done ({exc}).",
            "Nothing was checked, so this says nothing about the pins. Run `make audit` again when the registry",
            f"answers, or point --registry / {REGISTRY_VARIABLE} at a mirror that serves PyPI's JSON API.",
        ]
        code = ExitCode.REGISTRY_UNREACHABLE
    else:
        lines = report(verdict, registry.base_url)
        code = verdict.exit_code
    tolerated = arguments.warn_on_registry_problems and code in {ExitCode.REGISTRY_UNREACHABLE, ExitCode.INCOMPLETE}
    stream = sys.stdout if code is ExitCode.CLEAN else sys.stderr
    for line in lines:
        print(line, file=stream)
    if tolerated:
        print(f"audit: WARNING: a registry problem (exit {int(code)}) tolerated: not a finding", file=sys.stderr)
        return ExitCode.CLEAN
    return code


if __name__ == "__main__":
    sys.exit(main())
