"""The dependency audit's reviewed exceptions (`make audit`), each with the reason and the day it was reviewed.

Keep docs/security.md ("Dependency audit") in step. `make test` checks, without the network, that every entry
has a reason and a review date and that every reviewed pin is in the lock at that exact version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Review:
    """Why an exception is safe, and when a person checked it (YYYY-MM-DD)."""

    reviewed: str
    reason: str


# Advisories (ID or alias) that do not apply to how the function uses the package. Empty: nothing is ignored.
IGNORED_ADVISORIES: dict[str, Review] = {}

# Pins behind their latest release for which the registry here serves no release document (only the latest's):
# the audit cannot vouch for them, so each one is reviewed by hand, for this exact version.
REVIEWED_UNAUDITED_PINS: dict[tuple[str, str], Review] = {
    ("python-dateutil", "2.9.0.post0"): Review(
        reviewed="2026-11-29",
        reason=(
            "held back by botocore (python-dateutil>=2.1,<3.0.0); 2.9.0.post0 is the newest 2.x release. "
            "The PyPA advisory database lists no advisory for python-dateutil."
        ),
    ),
}
