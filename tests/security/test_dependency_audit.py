"""`make audit` (python -m tests.security.audit) tells each registry state apart, with the next step to take.

Hermetic: the registry is a stand-in on loopback serving PyPI's JSON API documents, so these tests never depend
on what PyPI serves today. Only a known vulnerability of a locked release is a finding; newer releases are not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from tests.security.audit import EXCEPTIONS_FILE, ExitCode, decide
from tests.security.audit_exceptions import REVIEWED_UNAUDITED_PINS, Review
from tests.security.lockfile import LOCK_PATH, PROJECT_ROOT, read_pins
from tests.security.pypi_advisories import Advisory, Coverage, PinAudit

if TYPE_CHECKING:
    from collections.abc import Iterator

LOCKED = read_pins(LOCK_PATH)
ADVISORY = {
    "id": "GHSA-2222-3333-4444",
    "aliases": ["CVE-2026-12345"],
    "fixed_in": ["9.9.9"],
    "link": "https://osv.dev/vulnerability/GHSA-2222-3333-4444",
    "withdrawn": None,
}


@dataclass
class FakeRegistry:
    """PyPI's JSON API on loopback: a project document per locked pin and, unless told otherwise, release ones."""

    base_url: str = ""
    newer_releases: bool = False
    serves_release_documents: bool = True
    status: int = 200
    vulnerable: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def document(self, path: str) -> tuple[int, Any]:
        parts = path.strip("/").split("/")  # pypi/<name>/json or pypi/<name>/<version>/json
        if self.status != 200:
            return self.status, {"message": "unavailable"}
        name, version = parts[1], (parts[2] if len(parts) == 4 else None)
        if name not in LOCKED or (version is not None and version != LOCKED[name]):
            return 404, {"message": "Not Found"}
        latest = f"{LOCKED[name]}.1" if self.newer_releases else LOCKED[name]
        if version is not None and not self.serves_release_documents:
            return 404, {"message": "Not Found"}
        # A project document lists the latest release's advisories; a release document the release's own.
        advisories = self.vulnerable.get(name, []) if version is not None or latest == LOCKED[name] else []
        releases = {LOCKED[name]: [], latest: []}
        return 200, {"info": {"name": name, "version": latest}, "releases": releases, "vulnerabilities": advisories}


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = fake.document(self.path)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/pypi"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class AuditRun:
    returncode: int
    stdout: str
    stderr: str


def make_audit(registry_url: str, *options: str) -> AuditRun:
    """What `make audit` runs, against registry_url, one attempt per request."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.security.audit", "--registry", registry_url, "--attempts", "1", *options],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return AuditRun(result.returncode, result.stdout, result.stderr)


def test_locked_releases_without_known_vulnerabilities_pass(registry: FakeRegistry) -> None:
    run = make_audit(registry.base_url)

    assert run.returncode == ExitCode.CLEAN
    assert "no known vulnerability in any locked release" in run.stdout
    assert run.stderr == ""


def test_newer_releases_on_the_registry_are_no_failure(registry: FakeRegistry) -> None:
    registry.newer_releases = True

    run = make_audit(registry.base_url)

    assert run.returncode == ExitCode.CLEAN
    assert f"{len(LOCKED)} locked releases audited" in run.stdout


def test_a_known_vulnerability_of_a_locked_release_fails_and_says_what_to_run(registry: FakeRegistry) -> None:
    registry.newer_releases = True
    registry.vulnerable = {"urllib3": [ADVISORY]}

    run = make_audit(registry.base_url)

    assert run.returncode == ExitCode.VULNERABLE
    assert f"urllib3=={LOCKED['urllib3']}: GHSA-2222-3333-4444 (fixed in 9.9.9)" in run.stderr
    assert "raise the pins of urllib3 in layers/dependencies/requirements.in and pyproject.toml" in run.stderr
    assert "`make lock`" in run.stderr
    assert f"IGNORED_ADVISORIES in {EXCEPTIONS_FILE} with its justification" in run.stderr


def test_a_withdrawn_advisory_is_no_finding(registry: FakeRegistry) -> None:
    registry.vulnerable = {"urllib3": [{**ADVISORY, "withdrawn": "2026-01-01T00:00:00Z"}]}

    assert make_audit(registry.base_url).returncode == ExitCode.CLEAN


def test_releases_the_registry_has_no_data_for_make_the_audit_incomplete_not_failed(registry: FakeRegistry) -> None:
    # Given a registry that serves only the latest release's document (like this project's PyPI mirror)
    registry.newer_releases = True
    registry.serves_release_documents = False

    run = make_audit(registry.base_url)

    # Then the pins nobody reviewed are named, with the ways to audit them; a reviewed one is only a note
    assert run.returncode == ExitCode.INCOMPLETE
    assert "INCOMPLETE" in run.stderr
    assert f"boto3=={LOCKED['boto3']} (latest {LOCKED['boto3']}.1)" in run.stderr
    assert "They are not known to be vulnerable; they are not audited either" in run.stderr
    assert "`make lock`" in run.stderr
    assert f"REVIEWED_UNAUDITED_PINS in\n{EXCEPTIONS_FILE}" in run.stderr
    for name, version in REVIEWED_UNAUDITED_PINS:
        assert f"  {name}=={version}" not in run.stderr
        assert f"note: {name}=={version}" in run.stderr


@pytest.mark.parametrize("status", [500, 503])
def test_a_registry_that_answers_errors_is_reported_as_not_reached(registry: FakeRegistry, status: int) -> None:
    registry.status = status

    run = make_audit(registry.base_url)

    assert run.returncode == ExitCode.REGISTRY_UNREACHABLE
    assert f"cannot reach the registry at {registry.base_url}; audit not done" in run.stderr


def test_an_unreachable_registry_is_reported_as_such_with_its_own_exit_code() -> None:
    closed = unused_loopback_url()

    run = make_audit(closed)

    assert run.returncode == ExitCode.REGISTRY_UNREACHABLE
    assert run.stderr.startswith(f"audit: cannot reach the registry at {closed}; audit not done")
    assert "says nothing about the pins" in run.stderr


@pytest.mark.parametrize("state", ["unreachable", "incomplete"])
def test_ci_tolerates_registry_problems_with_a_warning(registry: FakeRegistry, state: str) -> None:
    registry.newer_releases = True
    registry.serves_release_documents = False
    url = unused_loopback_url() if state == "unreachable" else registry.base_url

    run = make_audit(url, "--warn-on-registry-problems")

    assert run.returncode == ExitCode.CLEAN
    assert "WARNING: a registry problem" in run.stderr


def test_ci_does_not_tolerate_a_known_vulnerability(registry: FakeRegistry) -> None:
    registry.vulnerable = {"pydantic": [ADVISORY]}

    assert make_audit(registry.base_url, "--warn-on-registry-problems").returncode == ExitCode.VULNERABLE


def test_an_ignored_advisory_is_no_finding_under_its_id_or_an_alias() -> None:
    advisory = Advisory("GHSA-2222-3333-4444", ("CVE-2026-12345",), ("9.9.9",), None)
    audits = [PinAudit("urllib3", LOCKED["urllib3"], Coverage.RELEASE, LOCKED["urllib3"], (advisory,))]
    review = Review(reviewed="2026-12-01", reason="the function never calls the affected API")

    assert decide(audits, ignored={}).exit_code is ExitCode.VULNERABLE
    assert decide(audits, ignored={"CVE-2026-12345": review}).exit_code is ExitCode.CLEAN
    assert decide(audits, ignored={"GHSA-2222-3333-4444": review}).stale_ignores == ()
    assert decide(audits, ignored={"PYSEC-2020-1": review}).stale_ignores == ("PYSEC-2020-1",)


def unused_loopback_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/pypi"
