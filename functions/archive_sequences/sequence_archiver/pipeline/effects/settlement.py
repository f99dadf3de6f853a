"""A delivery, its verdict, and what the effects made of it.

The effects record facts here (what was parked, published, continued, and which effect failed, why); the
verdict they leave is derived from them in one place, `Settlement.verdict`: a failed effect retries the delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sequence_archiver.archiving.cleanup import CleanupPlan
    from sequence_archiver.core.request_report import RequestReport
    from sequence_archiver.pipeline.deliveries import Delivery
    from sequence_archiver.pipeline.verdicts import Verdict


@dataclass
class Settlement:
    """A delivery, the verdict decided from its facts, and the facts of its effects."""

    delivery: Delivery
    decided: Verdict  # what verdicts.decide made of the delivery's facts
    plan: CleanupPlan | None = None  # what a clean-up request came to once enqueued (continued, or final)
    parked: bool = False
    unpublished: bool = False  # its results or plan event could not be published
    continued: bool = False  # its continuation was sent
    withdrawn: bool = False  # its report is not published now (a rejected record that could not be parked)
    failed: list[str] = field(default_factory=list)  # why each effect that failed did, in order

    @property
    def verdict(self) -> Verdict:
        """The decided verdict; a retry for the first failed effect's reason once an effect has failed (the
        decided verdict's own retry reason is kept)."""
        return self.decided.retry(self.failed[0]) if self.failed else self.decided

    @property
    def report(self) -> RequestReport | None:
        """The results event to publish, if any."""
        return None if self.withdrawn else self.decided.report
