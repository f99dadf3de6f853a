"""The words of Reply's rate budget that the limiter (reply/) and the shared table (aws/) both speak."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.core.deadline import Deadline


@dataclass(frozen=True, slots=True)
class RateBudget:
    """At most `limit` calls in any `window_seconds`."""

    limit: int
    window_seconds: float

    def share(self, instances: int) -> RateBudget:
        """This instance's part of a budget shared by `instances` concurrent instances (at least 1 call)."""
        return RateBudget(max(1, self.limit // max(1, instances)), self.window_seconds)


@dataclass(frozen=True, slots=True)
class BudgetAnswer:
    """What the shared budget said: `granted` calls to start within `use_within_seconds`, or a wait."""

    granted: int
    wait_seconds: float = 0.0
    paused: bool = False  # the wait is a 429 pause some instance recorded, not a full window
    use_within_seconds: float = 0.0
    booked_at: float = 0.0  # epoch seconds of the booking: where to give back calls the instance did not make


@dataclass(frozen=True, slots=True)
class Unused:
    """Calls booked at `booked_at` (epoch seconds) that this instance will not make: given back to the others."""

    booked_at: float
    calls: int


class SharedBudget(Protocol):
    """One budget per Reply user, drawn on by every instance (aws/rate_budget.py: a DynamoDB table)."""

    @property
    def grant_lifetime_seconds(self) -> float:
        """How long a grant lasts at most."""
        ...

    def reserve(
        self,
        budget_key: str,
        calls: int,
        deadline: Deadline,
        *,
        pause_until: float = 0.0,
        give_back: Sequence[Unused] = (),
    ) -> BudgetAnswer | None:
        """Book up to `calls` calls now, recording a 429 pause until `pause_until` (epoch seconds) and giving
        back the calls booked earlier and not made; None when the shared budget cannot be reached."""
        ...


def key_fingerprint(api_key: str) -> str:
    """A budget key for a Reply API key: a one-way fingerprint (the key itself never reaches the table)."""
    digest = hashlib.sha256(b"reply-sequence-archiver rate budget\x00" + api_key.encode("utf-8")).hexdigest()
    return "key:" + digest[:32]
