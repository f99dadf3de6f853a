"""The effects of an invocation's verdicts, each kind applied once, in an order where a later failure never
repeats an earlier one; `Settlement.fail` is the one place where a failed effect becomes a retry.

enqueue the clean-up selections → park the rejected records → publish the results and plans → send the
continuations → postpone the throttled records → settle the claims. A record whose results were not published
is retried *without* its continuation, so its redelivery sends the one continuation of its part; a record whose
continuation is not sent is retried, and its redelivery publishes again (the same part, its finished IDs
`already_archived`) before sending it. What a clean-up enqueued and what was parked is recorded in the
idempotency table before the results are published, so a redelivery does neither twice. See
docs/failure-semantics.md (Effects once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sequence_archiver.aws.idempotency import Claim
from sequence_archiver.aws.retry_timing import Continuation, Postponement
from sequence_archiver.core.continuations import archive_continuation
from sequence_archiver.core.exceptions import ApiKeyError
from sequence_archiver.core.outcomes import count_outcomes
from sequence_archiver.observability import correlation
from sequence_archiver.pipeline.verdicts import Fate

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver.archiving.cleanup import CleanupPlan, CleanupPolicies
    from sequence_archiver.aws.dead_letters import DeadLetterQueue
    from sequence_archiver.aws.idempotency import RequestIdempotency
    from sequence_archiver.aws.results_publisher import ResultsPublisher
    from sequence_archiver.aws.retry_timing import ContinuationQueue, RecordVisibility
    from sequence_archiver.core.continuations import ContinuationSeal
    from sequence_archiver.core.deadline import Deadline, InvocationDeadlines
    from sequence_archiver.core.request_report import RequestReport
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.pipeline.deliveries import Delivery
    from sequence_archiver.pipeline.verdicts import Verdict

logger = logging.getLogger(__name__)

PARKING_SHARE = 1 / 3  # of the final time: the most that parking rejected records may take before publishing
CONTINUATIONS_SHARE = 1 / 3  # of the final time: the most that sending continuations (or enqueueing) may take
RECORD_LOOKUPS_SHARE = 0.5  # of parking's time: what the idempotency table may take, for all records together


@dataclass
class Settlement:
    """A delivery, its verdict, and what the effects made of it."""

    delivery: Delivery
    verdict: Verdict
    plan: CleanupPlan | None = None  # what a clean-up request came to once enqueued (continued, or final)
    parked: bool = False
    unpublished: bool = False  # its results or plan event could not be published
    continued: bool = False  # its continuation was sent
    withdrawn: bool = False  # its report is not published now (a rejected record that could not be parked)

    @property
    def report(self) -> RequestReport | None:
        """The results event to publish, if any."""
        return None if self.withdrawn else self.verdict.report

    def fail(self, reason: str, *, withdraw_report: bool = False) -> None:
        """An effect failed: the delivery is retried (the verdict's first retry reason is kept)."""
        self.verdict = self.verdict.retry(reason)
        self.withdrawn = self.withdrawn or withdraw_report


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
        self._enqueue(settlements, final.share(CONTINUATIONS_SHARE))
        # Parking with a share of the time left, so a hanging SQS cannot starve publishing.
        self.park(settlements, final.share(PARKING_SHARE))
        self._publish(settlements, final)
        self._continue(settlements, final.share(CONTINUATIONS_SHARE))
        self._postpone(settlements, final)
        for item in settlements:
            _log_settlement(item)
        self._settle_claims(settlements, final)
        self._measure(settlements)

    def park(self, settlements: Sequence[Settlement], deadline: Deadline) -> None:
        """Rejected SQS records go to the dead-letter queue ourselves, so they are not retried in vain; one that
        an earlier delivery parked (its results event then not published) is not parked twice."""
        lookups = deadline.share(RECORD_LOOKUPS_SHARE)
        for item in settlements:
            if not item.verdict.park or item.parked:
                continue
            delivery = item.delivery
            with correlation(delivery.delivery_id):
                if delivery.rejection is None:  # a FIFO record given up at its last receive
                    logger.warning(
                        "dead-lettering a record at its last receive so its message group goes on",
                        extra={"message_group_id": _group(delivery), "reason": item.verdict.reason},
                    )
                item.parked = self._parked_before(delivery, lookups) or self._send_to_dead_letters(item, deadline)
                if item.parked and self._idempotency is not None and delivery.claim is Claim.NEW:
                    self._idempotency.remember(_parked_key(delivery), {"parked": True}, deadline=lookups)
            if not item.parked:  # retried, and reported when it is finally parked
                item.fail(f"request rejected and not dead-lettered: {item.verdict.reason}", withdraw_report=True)

    # ---------------------------------------------------------------- one kind of effect each

    def _enqueue(self, settlements: Sequence[Settlement], deadline: Deadline) -> None:
        """Plan, enqueue or continue each listed selection; a request whose messages were not sent is retried."""
        selections = [item for item in settlements if item.verdict.selecting and not item.verdict.retried]
        if not selections or self._cleanup is None:
            return
        policies = self._cleanup()
        for item in selections:
            run = item.delivery.selection_run
            if run is None:
                continue
            with correlation(item.delivery.delivery_id):
                try:
                    item.plan = policies.settle(run, deadline)
                except Exception as exc:  # SQS errors are contained by the queue; anything else is ours
                    logger.exception("settling the selection failed unexpectedly", extra={"error": type(exc).__name__})
            if item.plan is None:
                item.fail("the clean-up request's messages were not all sent to the archive queue")

    def _send_to_dead_letters(self, item: Settlement, deadline: Deadline) -> bool:
        delivery = item.delivery
        if self._dead_letters is None or delivery.receipt is None:
            return False
        return self._dead_letters.park(
            body=delivery.payload if isinstance(delivery.payload, str) else "",
            reason=item.verdict.reason or "request rejected",
            message_id=delivery.delivery_id,
            deadline=deadline,
            message_group_id=delivery.receipt.message_group_id,
        )

    def _parked_before(self, delivery: Delivery, deadline: Deadline) -> bool:
        """True when the idempotency table (when it answered this delivery's claim) records the record as parked by
        an earlier delivery."""
        if self._idempotency is None or delivery.claim is not Claim.NEW:
            return False
        return self._idempotency.recall(_parked_key(delivery), deadline) is not None

    def _publish(self, settlements: Sequence[Settlement], deadline: Deadline) -> None:
        """One results event per reported delivery, one plan event per finished clean-up; a delivery whose event
        is not published is retried."""
        reports = [item.report for item in settlements if item.report is not None]
        plans = [item.plan for item in settlements if item.plan is not None and item.plan.final]
        if not reports and not plans:
            return
        try:
            unpublished = self._publisher.publish(reports, deadline=deadline, plans=plans)
        except Exception as exc:  # the publisher contains per-report errors; anything else is ours
            logger.exception("publishing failed unexpectedly", extra={"error": type(exc).__name__})
            unpublished = {report.request_id for report in reports} | {plan.request_id for plan in plans}
        for item in settlements:
            if item.report is not None and item.report.request_id in unpublished:
                item.unpublished = True
                item.fail("results event not published")
            if item.plan is not None and item.plan.final and item.plan.request_id in unpublished:
                item.unpublished = True
                item.fail("plan event not published")

    def _continue(self, settlements: Sequence[Settlement], deadline: Deadline) -> None:
        """Deferred records are acknowledged and carried on by a continuation; one not sent is retried.

        Waiting is not a failure of the message: it must not count towards maxReceiveCount, and the IDs it
        finished must not be archived again.
        """
        deferred: list[tuple[Settlement, Continuation]] = []
        for item in settlements:
            continuation = self._continuation(item, deadline)
            if continuation is not None:
                deferred.append((item, continuation))
        if not deferred or self._continuations is None:
            return
        sendable = [continuation for _, continuation in deferred if continuation.body]
        sent = self._continuations.send(sendable, deadline=deadline) if sendable else set()
        for item, continuation in deferred:
            deferral = item.verdict.deferral
            if continuation.key not in sent or deferral is None:
                # Already published: SQS brings the record back, which publishes this part again (its finished
                # IDs as already done) and then sends the continuation.
                item.fail("continuation not sent")
                continue
            item.continued = True
            logger.info(
                "record deferred to a continuation",
                extra={
                    "correlation_id": item.delivery.delivery_id,
                    "ids": len(deferral.sequence_ids),
                    "part": deferral.continuation.part,
                    "delay_seconds": round(continuation.delay_seconds, 1),
                },
            )

    def _continuation(self, item: Settlement, deadline: Deadline) -> Continuation | None:
        """The sealed continuation of a deferred record (an empty body when it could not be sealed)."""
        deferral, delivery = item.verdict.deferral, item.delivery
        if item.verdict.fate is not Fate.DEFERRED or deferral is None or delivery.receipt is None:
            return None
        if self._seal is None or delivery.request is None:
            return None
        document = archive_continuation(
            deferral.sequence_ids, deferral.continuation, pause_first=delivery.request.pause_first
        )
        try:
            body = self._seal.seal(document, deadline)
        except ApiKeyError as exc:  # no key to seal it with: not sent, so the record is retried
            logger.warning("could not seal the continuation", extra={"error": type(exc).__name__})
            body = ""
        return Continuation(delivery.receipt.event_source_arn, delivery.delivery_id, body, deferral.wait_seconds)

    def _postpone(self, settlements: Sequence[Settlement], deadline: Deadline) -> None:
        """Records retried because of a 429 (or our pacing) come back when Reply said, not at the timeout."""
        postponements = [
            Postponement(item.delivery.receipt.event_source_arn, item.delivery.receipt.receipt_handle, seconds)
            for item in settlements
            if item.verdict.fate is Fate.RETRY
            and (seconds := item.verdict.retry_after_seconds) is not None
            and item.delivery.receipt is not None
        ]
        if postponements and self._visibility is not None:
            self._visibility.postpone(postponements, deadline=deadline)

    def _settle_claims(self, settlements: Sequence[Settlement], deadline: Deadline) -> None:
        """Completed requests are recorded as done; the ones to retry give their claim back."""
        if self._idempotency is None:
            return
        for item in settlements:
            delivery = item.delivery
            if delivery.claim is not Claim.NEW:
                continue
            with correlation(delivery.delivery_id):
                if item.verdict.retried:
                    self._idempotency.release(delivery.delivery_id, item.verdict.reason or "retried", deadline=deadline)
                elif item.report is not None:
                    detail = item.report.detail()
                    summary = {"complete": detail["complete"], "counts": detail["counts"]}
                    self._idempotency.complete(delivery.delivery_id, summary, deadline=deadline)
                elif item.plan is not None:
                    summary = {"complete": item.plan.complete, "outcome": item.plan.outcome.value}
                    self._idempotency.complete(delivery.delivery_id, summary, deadline=deadline)

    def _measure(self, settlements: Sequence[Settlement]) -> None:
        """The invocation's metrics, counted once from what its deliveries came to."""
        for item in settlements:
            if item.verdict.fate is Fate.DUPLICATE:
                self._metrics.record_duplicate_request()
            elif item.delivery.rejection is not None and item.delivery.ours:
                self._metrics.record_rejected_request()
            run = item.delivery.selection_run
            if item.plan is not None and item.plan.final and run is not None:
                # What this invocation did: a redelivery that took up an earlier one's enqueueing counts nothing twice.
                selected = 0 if run.recalled else len(run.selected_ids)
                self._metrics.record_plan(selected=selected, enqueued=item.plan.enqueued_now)
            if item.continued and item.verdict.deferral is not None:
                self._metrics.record_deferred(len(item.verdict.deferral.sequence_ids))
        self._metrics.record_invocation(result for item in settlements for result in item.verdict.measured)


def _group(delivery: Delivery) -> str | None:
    return delivery.receipt.message_group_id if delivery.receipt is not None else None


def _parked_key(delivery: Delivery) -> str:
    """The idempotency table's record of a parked record (delivery IDs never hold '#', so no request claims it)."""
    return f"parked#{delivery.delivery_id}"


def _log_settlement(item: Settlement) -> None:
    """One line per request that was worked on: what it came to."""
    retry = item.verdict.reason if item.verdict.retried else None
    if item.delivery.rejection is not None and item.delivery.ours:
        logger.error(
            "request rejected", extra={"correlation_id": item.delivery.delivery_id, "reason": item.delivery.rejection}
        )
    if item.report is not None:
        report = item.report
        counts = {key: value for key, value in count_outcomes(report.results).items() if value}
        logger.info(
            "archive request finished",
            extra={
                "correlation_id": report.request_id,
                "request_id": report.request_id,
                "trigger": report.trigger.value,
                "complete": report.complete,
                "retry": retry,
                **counts,
            },
        )
    if item.plan is not None:
        plan = item.plan
        logger.info(
            "clean-up request finished" if plan.final else "clean-up request continues",
            extra={
                "correlation_id": plan.request_id,
                "request_id": plan.request_id,
                "outcome": plan.outcome.value,
                "complete": plan.complete,
                "selected": len(plan.run.selected_ids),
                "enqueued": plan.enqueued_ids,
                "pages": plan.run.pages,
                "part": plan.run.part,
                "reason": plan.reason,
                "retry": retry,
            },
        )
