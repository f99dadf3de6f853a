"""The work of an invocation's deliveries, recorded as facts on them: claim, parse, list, archive.

Each step works on deliveries one by one, so what one delivery's content does (a payload that cannot be parsed,
an ID Reply keeps failing) becomes that delivery's facts and nothing else's; only the archive step spans the
batch, so bulk calls span an SQS batch. Nothing here decides a delivery's fate (verdicts.py) or has an effect
beyond Reply and the claims (effects.py). Reply work stops at the work deadline.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.idempotency import Claim
from sequence_archiver.observability import correlation
from sequence_archiver.request_report import EventShape

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver.archiver import SequenceArchiver
    from sequence_archiver.cleanup import CleanupPolicies
    from sequence_archiver.continuations import ContinuationSeal
    from sequence_archiver.deadline import Deadline, InvocationDeadlines
    from sequence_archiver.idempotency import RequestIdempotency
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.pipeline.deliveries import Delivery, Invocation
    from sequence_archiver.selection import CleanupRequest

logger = logging.getLogger(__name__)

CLAIMS_SHARE = 0.25  # of the work time: the most that claiming (DynamoDB) may take before archiving
SELECTION_SHARE = 0.5  # of the work time: what listing clean-up selections may take when IDs are archived too


class Work:
    """Claims, parses, lists and archives an invocation's deliveries; created once per Lambda instance."""

    def __init__(
        self,
        *,
        archiver: SequenceArchiver,
        metrics: MetricsRecorder,
        idempotency: RequestIdempotency | None = None,
        seal: ContinuationSeal | None = None,
        cleanup: Callable[[], CleanupPolicies] | None = None,
        cleanup_allowed_triggers: frozenset[EventShape] = frozenset({EventShape.DIRECT}),
    ) -> None:
        self._archiver = archiver
        self._metrics = metrics
        self._idempotency = idempotency
        self._seal = seal  # opens the continuations received; without it none is honoured
        self._cleanup = cleanup  # a factory: clean-up policies are only built when a clean-up request arrives
        self._cleanup_triggers = cleanup_allowed_triggers

    def prepare(self, invocation: Invocation, deadlines: InvocationDeadlines) -> list[Delivery]:
        """Claim, parse and list every delivery; the ones this invocation works on (not done, not held)."""
        # A hanging idempotency table may take a quarter of the work time, never the Reply work itself.
        self._claim(invocation.deliveries, deadlines.work.share(CLAIMS_SHARE))
        active = [delivery for delivery in invocation.deliveries if delivery.ours]
        for delivery in active:  # continuations are checked with the secret the Reply work reads anyway
            delivery.parse(invocation.shape, self._seal, deadlines.work)
        selections = [delivery for delivery in active if delivery.cleanup is not None]
        if selections:
            # Listing may not starve the archive requests of the same batch: it gets half the work time then.
            archiving_too = any(delivery.request is not None for delivery in active)
            listing = deadlines.work.share(SELECTION_SHARE) if archiving_too else deadlines.work
            self._select(selections, listing, arrival=invocation.shape)
        return active

    def archive(self, deliveries: Sequence[Delivery], deadline: Deadline) -> None:
        """Archive the IDs of every parsed request together (bulk calls span them); Reply's answers become each
        delivery's results."""
        parsed = [
            (delivery, delivery.request)
            for delivery in deliveries
            if delivery.request is not None and delivery.held is None
        ]
        if not parsed:
            return
        logger.info("archive batch received", extra={"records": len(deliveries), "requests": len(parsed)})
        try:
            per_request = self._archiver.archive_all([request for _, request in parsed], deadline)
        except Exception as exc:  # the archiver contains per-ID errors; anything else is ours, and retried
            logger.exception("archiving failed unexpectedly", extra={"error": type(exc).__name__})
            for delivery, _ in parsed:
                delivery.hold(f"archiving failed unexpectedly ({type(exc).__name__})")
            return
        for (delivery, _), results in zip(parsed, per_request, strict=True):
            delivery.results = tuple(results)

    def _claim(self, deliveries: Sequence[Delivery], deadline: Deadline) -> None:
        """Claim each delivery with a stable ID (idempotency); a completed one is acknowledged untouched."""
        if self._idempotency is None:
            return
        for delivery in deliveries:
            if delivery.claimable:
                with correlation(delivery.delivery_id):
                    delivery.claim = self._idempotency.claim(delivery.delivery_id, deadline=deadline)

    def _select(self, deliveries: Sequence[Delivery], deadline: Deadline, *, arrival: EventShape) -> None:
        """List each clean-up request's selection until its end or the deadline; a bad request is rejected,
        one from a trigger CLEANUP_ALLOWED_TRIGGERS does not name is refused before anything is listed."""
        policies = None
        for delivery in deliveries:
            request = delivery.cleanup
            if request is None or delivery.held is not None:
                continue
            with correlation(delivery.delivery_id):
                refusal = self._authority(request, arrival)
                if refusal is not None:
                    self._metrics.record_refused_cleanup()
                    logger.warning("clean-up request refused", extra={"trigger": arrival.value, "reason": refusal})
                    delivery.refuse(refusal)
                    continue
                if policies is None and self._cleanup is not None:
                    policies = self._cleanup()
                if policies is None:
                    delivery.reject("clean-up requests are not served by this function")
                    continue
                if not request.dry_run and policies.archive_queue is None:
                    delivery.reject(
                        "a live run (dryRun false) needs the archive queue, and ARCHIVE_QUEUE_URL is not set"
                    )
                    continue
                run = policies.start(
                    request,
                    delivery_id=delivery.delivery_id,
                    trigger=delivery.trigger,
                    origin=arrival,
                    # what an earlier delivery enqueued, when the table answered the claim; never all the time
                    recall_within=deadline.share(CLAIMS_SHARE) if delivery.claim is Claim.NEW else None,
                )
                try:
                    policies.list_pages(run, deadline)
                except Exception as exc:  # the listing contains Reply's errors; anything else is ours, and retried
                    logger.exception("listing the selection failed unexpectedly", extra={"error": type(exc).__name__})
                    delivery.hold(f"listing the selection failed unexpectedly ({type(exc).__name__})")
                    continue
                delivery.selection_run = run
                logger.info(
                    "selection listed",
                    extra={
                        "request_id": run.request_id,
                        "part": run.part,
                        "pages": run.pages_now,
                        "selected": len(run.selected_ids),
                        "stop": run.stop.value,
                        "reason": run.reason,
                    },
                )

    def _authority(self, request: CleanupRequest, arrival: EventShape) -> str | None:
        """Why this trigger may not run the clean-up request, or None when it may.

        A continuation is judged by the trigger of the request it carries on (the function sends continuations
        through the request queue, so their own arrival is always SQS): the queue is not thereby allowed to
        start clean-ups, and a continuation whose original trigger is no longer allowed stops there.
        """
        origin = request.continuation.origin if request.continuation is not None else arrival
        if origin in self._cleanup_triggers:
            return None
        allowed = ",".join(sorted(shape.value for shape in self._cleanup_triggers))
        carried = " (the trigger of the request this continuation carries on)" if request.continuation else ""
        return (
            f"clean-up requests (select) are not allowed from the {origin.value} trigger{carried}: "
            f"CLEANUP_ALLOWED_TRIGGERS is {allowed}; send sequence IDs instead, or add {origin.value} "
            "to CLEANUP_ALLOWED_TRIGGERS (template parameter CleanupAllowedTriggers)"
        )
