"""The work of clean-up requests: each selection refused, rejected or listed, as facts on its delivery.

A clean-up request is the other kind of work beside archive requests (work.py): its listing shares the key's
rate budget and the invocation's deadline; what its listing found is planned and enqueued as an effect
(effects/enqueueing.py). A request from a trigger CLEANUP_ALLOWED_TRIGGERS does not name is refused before anything is
listed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.aws.idempotency import Claim
from sequence_archiver.core.request_report import EventShape
from sequence_archiver.observability import correlation

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver.archiving.cleanup import CleanupPolicies
    from sequence_archiver.archiving.selection import CleanupRequest
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.pipeline.deliveries import Delivery

logger = logging.getLogger(__name__)

RECALL_SHARE = 0.25  # of the listing time: what reading an earlier delivery's enqueue record may take


class Selections:
    """Lists clean-up requests' selections; created once per Lambda instance."""

    def __init__(
        self,
        *,
        metrics: MetricsRecorder,
        cleanup: Callable[[], CleanupPolicies] | None = None,
        allowed_triggers: frozenset[EventShape] = frozenset({EventShape.DIRECT}),
    ) -> None:
        self._metrics = metrics
        self._cleanup = cleanup  # a factory: clean-up policies are only built when a clean-up request arrives
        self._cleanup_triggers = allowed_triggers

    def list(self, deliveries: Sequence[Delivery], deadline: Deadline, *, arrival: EventShape) -> None:
        """List each clean-up request's selection until its end or the deadline; a bad request is rejected,
        one from a trigger CLEANUP_ALLOWED_TRIGGERS does not name is refused before anything is listed."""
        policies = None
        for delivery in deliveries:
            request = delivery.cleanup
            if request is None or delivery.held is not None:
                continue
            refusal = self._authority(request, arrival)
            with correlation(delivery.delivery_id):
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
                    recall_within=deadline.share(RECALL_SHARE) if delivery.claim is Claim.NEW else None,
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
                        "checks": run.checks_now,
                        "candidates_waiting": len(run.pending),
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
