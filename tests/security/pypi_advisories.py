"""Known vulnerabilities of pinned distributions, read from PyPI's JSON API: the data pip-audit's PyPI service uses.

pip-audit asks `https://pypi.org/pypi/<name>/<version>/json` for each pin. Some PyPI mirrors (this project's
workplace among them) serve only the project document `https://pypi.org/pypi/<name>/json`, whose
`vulnerabilities` are those of the latest release; there pip-audit reports every package "not found on PyPI".
This audit asks the release document first, exactly like pip-audit, and falls back to the project document
when the pin *is* the latest release, where both documents hold the same advisories. A pin behind the latest
release that no release document covers is reported as unaudited, never as clean.

Only `make audit` (tests/security/audit.py) calls this: `make test` never asks a registry anything.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

from packaging.version import InvalidVersion, Version

PYPI_JSON_API = "https://pypi.org/pypi"
TIMEOUT_SECONDS = 20.0
ATTEMPTS = 3
USER_AGENT = "reply-sequence-archiver dependency audit (urllib)"


class AuditUnavailableError(RuntimeError):
    """The registry's vulnerability data could not be read: the audit has no answer, and must not pass."""


class RegistryUnreachableError(AuditUnavailableError):
    """The registry did not answer (network, timeout, HTTP error other than 404, a body that is not JSON)."""

    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(f"{url}: {type(cause).__name__}: {cause}")
        self.url = url
        self.cause = cause


class Coverage(Enum):
    """Where a pin's advisories came from."""

    RELEASE = "release document"  # /pypi/<name>/<version>/json, as pip-audit reads it
    LATEST = "project document (the pin is the latest release)"
    UNAUDITED = "none: the pin is behind the latest release and the registry served no release document"
    UNKNOWN = "none: the registry does not list this release"


@dataclass(frozen=True)
class Advisory:
    """One known vulnerability of a release."""

    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    link: str | None

    def is_known_as(self, identifier: str) -> bool:
        """True when the advisory carries this ID (PYSEC-..., GHSA-..., CVE-...) or alias."""
        return identifier in {self.id, *self.aliases}


@dataclass(frozen=True)
class PinAudit:
    """The audit of one pinned distribution."""

    name: str
    version: str
    coverage: Coverage
    latest: str | None
    advisories: tuple[Advisory, ...]


@dataclass(frozen=True)
class Registry:
    """A PyPI JSON API (`<base_url>/<name>/json`, `<base_url>/<name>/<version>/json`) and how patiently to ask it."""

    base_url: str = PYPI_JSON_API
    timeout_seconds: float = TIMEOUT_SECONDS
    attempts: int = ATTEMPTS

    def get_json(self, path: str) -> dict[str, Any] | None:
        """The JSON document at base_url/path, None on 404; RegistryUnreachableError once the attempts are spent."""
        url = f"{self.base_url.rstrip('/')}/{path}"
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
        for attempt in range(1, self.attempts + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                    document = json.loads(response.read())
                if not isinstance(document, dict):
                    raise ValueError("the document is not a JSON object")
                return document
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                failure: Exception = exc
            except (OSError, ValueError) as exc:  # URLError, timeouts, resets, a truncated or non-JSON body
                failure = exc
            if attempt == self.attempts:
                raise RegistryUnreachableError(url, failure) from failure
            time.sleep(attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _advisories(document: dict[str, Any], url: str) -> tuple[Advisory, ...]:
    """The advisories of a PyPI JSON document, withdrawn ones left out (as pip-audit does)."""
    if not isinstance(document.get("vulnerabilities"), list):
        raise RegistryUnreachableError(url, ValueError("the JSON document has no vulnerabilities list"))
    return tuple(
        Advisory(
            id=entry["id"],
            aliases=tuple(entry.get("aliases") or ()),
            fixed_in=tuple(entry.get("fixed_in") or ()),
            link=entry.get("link"),
        )
        for entry in document["vulnerabilities"]
        if not entry.get("withdrawn")
    )


def _same_version(left: str, right: str) -> bool:
    """PEP 440 equality (`2.0` == `2.0.0`), falling back to the text for non-PEP 440 versions."""
    try:
        return Version(left) == Version(right)
    except InvalidVersion:
        return left == right


def audit_pin(registry: Registry, name: str, version: str) -> PinAudit:
    """The advisories the registry lists for one pinned release, and how completely it answered."""
    project = registry.get_json(f"{name}/json")
    if project is None:
        return PinAudit(name, version, Coverage.UNKNOWN, None, ())
    latest = str(project.get("info", {}).get("version"))
    release = registry.get_json(f"{name}/{version}/json")
    if release is not None:
        return PinAudit(name, version, Coverage.RELEASE, latest, _advisories(release, f"{name}/{version}/json"))
    if _same_version(version, latest):
        return PinAudit(name, version, Coverage.LATEST, latest, _advisories(project, f"{name}/json"))
    if not any(_same_version(version, release) for release in project.get("releases", {})):
        return PinAudit(name, version, Coverage.UNKNOWN, latest, ())
    return PinAudit(name, version, Coverage.UNAUDITED, latest, ())


def audit_pins(registry: Registry, pins: dict[str, str]) -> list[PinAudit]:
    """Every pin audited, a few at a time; RegistryUnreachableError if the registry cannot answer for one of them."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda item: audit_pin(registry, *item), sorted(pins.items())))
