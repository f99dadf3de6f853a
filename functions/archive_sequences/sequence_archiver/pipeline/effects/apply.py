"""The effects of an invocation's verdicts, each kind applied once, in an order where a later failure never
repeats an earlier one.

enqueue the clean-up selections (enqueueing.py) → park the rejected records (parking.py) → publish the results
and plans (publishing.py) → send the continuations and postpone the throttled records (redelivery.py) →
settle the claims (claims.py) → log and measure (telemetry.py). Each kind records its facts on the
settlements; a failed one retries its delivery through `Settlement.verdict` (settlement.py), the one place
where that happens. What a clean-up enqueued and what was parked is recorded in the idempotency table before
the results are published, so a redelivery does neither twice. See docs/failure-semantics.md (Effects once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sequence_archiver.pipeline.effects.claims import settle_claims
from sequence_archiver.pipeline.effects.enqueueing import enqueue_selections
from sequence_archiver.pipeline.effects.parking import park_rejected
from sequence_archiver.pipeline.effects.publishing import publish_results
from sequence_archiver.pipeline.effects.redelivery import continue_and_postpone
from sequence_archiver.pipeline.effects.telemetry import log_and_measure

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver.archiving.cleanup import CleanupPolicies
    from sequence_archiver.aws.dead_letters import DeadLetterQueue
    from sequence_archiver.aws.idempotency import RequestIdempotency
    from sequence_archiver.aws.results_publisher import ResultsPublisher
    from sequence_archiver.aws.retry_timing import ContinuationQueue, RecordVisibility
    from sequence_archiver.core.continuations import ContinuationSeal
    from sequence_archiver.core.deadline import Deadline, InvocationDeadlines
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.pipeline.effects.settlement import Settlement

PARKING_SHARE = 1 / 3  # of the final time: the most that parking rejected records may take before publishing
CONTINUATIONS_SHARE = 1 / 3  # of the final time: the most that sending continuations (or enqueueing) may take


class Effects:
    """Applies the effects of an invocation's settlements; created once per Lambda instance."""

    def __init__(
        self,
        *,
        publisher: ResultsPublisher,
        metrics: MetricsRecorder,
        dead_letters: DeadLetterQueue | None = None,
        visibility: RecordVisibility | None = None,
        continuations: ContinuationQueue | None = None,
        idempotency: RequestIdempotency | None = None,
        seal: ContinuationSeal | None = None,
        cleanup: Callable[[], CleanupPolicies] | None = None,
    ) -> None:
        self._publisher = publisher
        self._metrics = metrics
        self._dead_letters = dead_letters
        self._visibility = visibility
        self._continuations = continuations
        self._idempotency = idempotency
        self._seal = seal
        self._cleanup = cleanup

    @property
    def can_continue(self) -> bool:
        """Continuations can be sealed and sent."""
        return self._continuations is not None and self._seal is not None

    def apply(self, settlements: Sequence[Settlement], deadlines: InvocationDeadlines) -> None:
        """Every effect of the settlements, once each, in order; a failed one retries its delivery."""
        final = deadlines.final
        enqueue_selections(settlements, self._cleanup, final.share(CONTINUATIONS_SHARE))
        # Parking with a share of the time left, so a hanging SQS cannot starve publishing.
        park_rejected(settlements, self._dead_letters, self._idempotency, final.share(PARKING_SHARE))
        publish_results(settlements, self._publisher, final)
        continue_and_postpone(
            settlements,
            continuations=self._continuations,
            seal=self._seal,
            visibility=self._visibility,
            sending=final.share(CONTINUATIONS_SHARE),
            final=final,
        )
        settle_claims(settlements, self._idempotency, final)
        log_and_measure(settlements, self._metrics)

    def park(self, settlements: Sequence[Settlement], deadline: Deadline) -> None:
        """Park the rejected records now (a FIFO record, before the records behind it in its group are worked)."""
        park_rejected(settlements, self._dead_letters, self._idempotency, deadline)
