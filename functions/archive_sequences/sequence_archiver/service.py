"""One invocation, whatever its trigger: one pipeline over per-delivery state, then a responder per trigger.

claim → parse → archive (IDs shared across deliveries, so bulk calls span an SQS batch) → park → report →
publish → continue → postpone → settle. Each step works on deliveries one by one: what one delivery's content does
(a payload that cannot be parsed, a results event that cannot be encoded, an ID Reply keeps failing)
becomes that delivery's outcome and nothing else's. Only invocation-wide conditions (configuration, an
unreadable key) touch every delivery. Reply work stops at the work deadline; every AWS call after it is
bounded by the final deadline (see deadline.py).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sequence_archiver.deadline import InvocationDeadlines
from sequence_archiver.deliveries import read_event
from sequence_archiver.exceptions import (
    ApiKeyError,
    ResultsPublishError,
    SequenceArchiveIncomplete,
    SequenceArchiverError,
    UnsupportedEventError,
)
from sequence_archiver.idempotency import Claim
from sequence_archiver.observability import correlation
from sequence_archiver.outcomes import count_outcomes
from sequence_archiver.request_report import EventShape
from sequence_archiver.results_publisher import stamped
from sequence_archiver.retry_timing import Continuation, Postponement

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sequence_archiver.archiver import SequenceArchiver
    from sequence_archiver.cleanup import CleanupPlan, CleanupPolicies
    from sequence_archiver.continuations import ContinuationSeal
    from sequence_archiver.dead_letters import DeadLetterQueue
    from sequence_archiver.deadline import Deadline
    from sequence_archiver.deliveries import Delivery, Invocation
    from sequence_archiver.idempotency import RequestIdempotency
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.request_report import RequestReport
    from sequence_archiver.results_publisher import ResultsPublisher
    from sequence_archiver.retry_timing import ContinuationQueue, RecordVisibility
    from sequence_archiver.selection import CleanupRequest

logger = logging.getLogger(__name__)

CLAIMS_SHARE = 0.25  # of the work time: the most that claiming (DynamoDB) may take before archiving
PARKING_SHARE = 1 / 3  # of the final time: the most that parking rejected records may take before publishing
CONTINUATIONS_SHARE = 1 / 3  # of the final time: the most that sending continuations may take
SELECTION_SHARE = 0.5  # of the work time: what listing clean-up selections may take when IDs are archived too


class RequestInProgressError(SequenceArchiverError):
    """Another invocation is processing the same request right now; this delivery must be retried."""


class ArchiveService:
    """Runs the pipeline over an invocation's deliveries; created once per Lambda instance."""

    def __init__(
        self,
        *,
        archiver: SequenceArchiver,
        publisher: ResultsPublisher,
        metrics: MetricsRecorder,
        dead_letters: DeadLetterQueue | None,
        deadline_safety_margin_seconds: float,
        visibility: RecordVisibility | None = None,
        continuations: ContinuationQueue | None = None,
        max_receive_count: int = 5,
        idempotency: RequestIdempotency | None = None,
        cleanup: Callable[[], CleanupPolicies] | None = None,
        cleanup_allowed_triggers: frozenset[EventShape] = frozenset({EventShape.DIRECT}),
        seal: ContinuationSeal | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._archiver = archiver
        self._publisher = publisher
        self._metrics = metrics
        self._dead_letters = dead_letters
        self._visibility = visibility
        self._continuations = continuations
        self._max_failures = max_receive_count  # the queue's redrive policy, for requests carried on by continuations
        self._idempotency = idempotency
        self._cleanup = cleanup  # a factory: clean-up policies are only built when a clean-up request arrives
        self._cleanup_triggers = cleanup_allowed_triggers
        self._seal = seal  # seals the continuations sent, opens the ones received; without it none is honoured
        self._safety_margin = deadline_safety_margin_seconds
        self._clock = clock

    def handle(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        """Run every delivery of the event through the pipeline and answer as its trigger expects."""
        deadlines = InvocationDeadlines.from_context(
            context, safety_margin_seconds=self._safety_margin, clock=self._clock
        )
        if self._idempotency is not None:
            self._idempotency.start_invocation(context)
        try:
            invocation = read_event(event, invocation_id=context.aws_request_id)
        except UnsupportedEventError:
            self._metrics.record_unsupported_event()  # a mapping attached by mistake shows on the dashboard too
            raise
        ids = [delivery.delivery_id for delivery in invocation.deliveries]
        with correlation(ids if invocation.shape is EventShape.SQS else ids[0] if len(ids) == 1 else ids):
            self._run(invocation, deadlines)
        return respond(invocation)

    def _run(self, invocation: Invocation, deadlines: InvocationDeadlines) -> None:
        deliveries = invocation.deliveries
        logger.info(
            "archive request received", extra={"trigger": invocation.shape.value, "deliveries": len(deliveries)}
        )
        # A hanging idempotency table may take a quarter of the work time, never the Reply work itself.
        self._claim(deliveries, deadlines.work.share(CLAIMS_SHARE))
        active = [delivery for delivery in deliveries if _is_ours(delivery)]
        for delivery in active:  # continuations are checked with the secret the Reply work reads anyway
            delivery.parse(invocation.shape, self._seal, deadlines.work)
        selections = [delivery for delivery in active if delivery.cleanup is not None]
        if selections:
            # Listing may not starve the archive requests of the same batch: it gets half the work time then.
            archiving_too = any(delivery.request is not None for delivery in active)
            self._select(
                selections,
                deadlines.work.share(SELECTION_SHARE) if archiving_too else deadlines.work,
                arrival=invocation.shape,
            )
        if invocation.fifo:
            self._archive_in_order(active, deadlines.work)
        else:
            self._archive(active, deadlines.work)
        if selections:
            self._settle_selections(selections, deadlines.final.share(CONTINUATIONS_SHARE))
        # Parking after archiving, and with a share of the time left, so a hanging SQS cannot starve publishing.
        self._park(invocation.deliveries, deadlines.final.share(PARKING_SHARE))
        self._metrics.record_invocation(result for delivery in active for result in delivery.measured)
        # Effects in an order where a later failure never repeats an earlier one: publish the results, then send
        # the continuations, then acknowledge (the response). A record whose results were not published is
        # retried *without* a continuation, so its redelivery sends the one continuation of its part; a record
        # whose continuation is not sent is retried, and its redelivery publishes again (the same part, its
        # finished IDs `already_archived`) before sending it. See docs/failure-semantics.md (Effects once).
        self._publish(active, deadlines.final)
        self._defer(active, deadlines.final.share(CONTINUATIONS_SHARE))
        self._postpone(active, deadlines.final)
        for delivery in active:
            if delivery.report is not None:
                _log_report(delivery.report, delivery.retry_reason)
            if delivery.plan is not None:
                _log_plan(delivery.plan, delivery.retry_reason)
        self._settle_claims(deliveries, deadlines.final)

    # ---------------------------------------------------------------- steps

    def _claim(self, deliveries: Iterable[Delivery], deadline: Deadline) -> None:
        """Claim each delivery with a stable ID (idempotency); a completed one is acknowledged untouched."""
        for delivery in deliveries:
            if self._idempotency is None or not delivery.claimable:
                continue
            with correlation(delivery.delivery_id):
                delivery.claim = self._idempotency.claim(delivery.delivery_id, deadline=deadline)
            if delivery.claim is Claim.COMPLETED:
                self._metrics.record_duplicate_request()
            elif delivery.claim is Claim.IN_PROGRESS:
                delivery.retry("being processed by another invocation")

    def _select(self, deliveries: list[Delivery], deadline: Deadline, *, arrival: EventShape) -> None:
        """List each clean-up request's selection until its end or the deadline; a bad request is rejected,
        one from a trigger CLEANUP_ALLOWED_TRIGGERS does not name is refused before anything is listed."""
        policies = None
        for delivery in deliveries:
            request = delivery.cleanup
            if request is None:
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
                    delivery.retry(f"listing the selection failed unexpectedly ({type(exc).__name__})")
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

    def _settle_selections(self, deliveries: list[Delivery], deadline: Deadline) -> None:
        """Plan, enqueue or continue each listed selection; a request whose messages were not sent is retried."""
        if self._cleanup is None:
            return
        policies = self._cleanup()
        for delivery in deliveries:
            run = delivery.selection_run
            if run is None or delivery.retry_reason is not None:
                continue
            with correlation(delivery.delivery_id):
                try:
                    plan = policies.settle(run, deadline)
                except Exception as exc:  # SQS errors are contained by the queue; anything else is ours
                    logger.exception("settling the selection failed unexpectedly", extra={"error": type(exc).__name__})
                    plan = None
            if plan is None:
                delivery.retry("the clean-up request's messages were not all sent to the archive queue")
                continue
            delivery.plan = plan
            if plan.final:
                # What this invocation did: a redelivery that took up an earlier one's enqueueing counts nothing twice.
                selected = 0 if run.recalled else len(run.selected_ids)
                self._metrics.record_plan(selected=selected, enqueued=plan.enqueued_now)

    def _archive(self, deliveries: list[Delivery], deadline: Deadline, *, can_continue: bool = True) -> None:
        """Archive the IDs of every parsed request together; rejections become their delivery's report."""
        parsed = [(delivery, delivery.request) for delivery in deliveries if delivery.request is not None]
        for delivery in deliveries:
            if delivery.rejection is not None:
                self._metrics.record_rejected_request()
                with correlation(delivery.delivery_id):
                    logger.error("request rejected", extra={"reason": delivery.rejection})
                delivery.record_rejection()
        if not parsed:
            return
        logger.info("archive batch received", extra={"records": len(deliveries), "requests": len(parsed)})
        try:
            per_request = self._archiver.archive_all([request for _, request in parsed], deadline)
        except Exception as exc:  # the archiver contains per-ID errors; anything else is ours, and retried
            logger.exception("archiving failed unexpectedly", extra={"error": type(exc).__name__})
            for delivery, _ in parsed:
                delivery.retry(f"archiving failed unexpectedly ({type(exc).__name__})")
            return
        for (delivery, _), results in zip(parsed, per_request, strict=True):
            # Only an SQS record can be carried on by a continuation message sent to its queue.
            continued = can_continue and self._continuations is not None and self._seal is not None
            continued = continued and delivery.receipt is not None
            delivery.record_results(
                tuple(results), max_failures=self._max_failures if continued and delivery.claimable else None
            )
            retry_after = max(
                (result.retry_after_seconds for result in results if result.retry_after_seconds is not None),
                default=None,
            )
            if delivery.retry_reason is not None and retry_after is not None and delivery.receipt is not None:
                delivery.postponement = Postponement(
                    delivery.receipt.event_source_arn, delivery.receipt.receipt_handle, retry_after
                )

    def _archive_in_order(self, deliveries: list[Delivery], deadline: Deadline) -> None:
        """A FIFO batch, in order within each message group (Powertools' `skip_group_on_error`): at the first
        record of a group that must be retried, it and the group's later records go back unprocessed, so nothing
        overtakes it; the other groups go on. Continuations are not used (one would join the back of its group).

        A record that must be retried at its last receive (ApproximateReceiveCount has reached
        SQS_MAX_RECEIVE_COUNT) is parked by the function instead, its results published: SQS's redrive would
        move it to the DLQ anyway, and with it every record behind it in its group, whose receive counts rose
        with its own. Parked, it leaves the group, and the records behind it are archived now, in order.
        """
        stopped_by: dict[str | None, str] = {}  # message group -> the record that stopped it
        for delivery in deliveries:
            group = delivery.receipt.message_group_id if delivery.receipt is not None else None
            if group in stopped_by:
                delivery.retry(f"unprocessed: record {stopped_by[group]} of its message group must be retried first")
                continue
            self._archive([delivery], deadline, can_continue=False)
            if delivery.retry_reason is not None and delivery.at_last_receive(self._max_failures):
                with correlation(delivery.delivery_id):
                    logger.warning(
                        "dead-lettering a record at its last receive so its message group goes on",
                        extra={"message_group_id": group, "reason": delivery.retry_reason},
                    )
                delivery.give_up(
                    f"still to be retried at receive {self._max_failures} of {self._max_failures} "
                    f"(SQS_MAX_RECEIVE_COUNT): {delivery.retry_reason}; dead-lettered by the function so that "
                    "the records behind it in its message group are not moved with it"
                )
            self._park([delivery], deadline)  # a rejected record leaves its place in the group only once parked
            if delivery.retry_reason is not None:
                stopped_by[group] = delivery.delivery_id

    def _defer(self, deliveries: list[Delivery], deadline: Deadline) -> None:
        """Records that only wait for the budget (or for time) are acknowledged and carried on by a continuation.

        Waiting is not a failure of the message: it must not count towards maxReceiveCount, and the IDs it
        finished must not be archived again. A continuation that cannot be sent leaves the record to SQS's retry.
        """
        deferred: list[tuple[Delivery, Continuation]] = []
        for delivery in deliveries:
            if delivery.retry_reason is not None:  # its results were not published: retried whole, not continued
                delivery.deferral = None
                continue
            document = delivery.continuation_document()
            if delivery.deferral is None or document is None or delivery.receipt is None or self._seal is None:
                continue
            try:
                body = self._seal.seal(document, deadline)
            except ApiKeyError as exc:  # no key to seal it with: not sent, so the record is retried below
                logger.warning("could not seal the continuation", extra={"error": type(exc).__name__})
                body = ""
            continuation = Continuation(
                delivery.receipt.event_source_arn, delivery.delivery_id, body, delivery.deferral.wait_seconds
            )
            deferred.append((delivery, continuation))
        if not deferred or self._continuations is None:
            return
        sendable = [continuation for _, continuation in deferred if continuation.body]
        sent = self._continuations.send(sendable, deadline=deadline) if sendable else set()
        for delivery, continuation in deferred:
            deferral = delivery.deferral
            if continuation.key in sent and deferral is not None:
                self._metrics.record_deferred(len(deferral.sequence_ids))
                with correlation(delivery.delivery_id):
                    logger.info(
                        "record deferred to a continuation",
                        extra={
                            "ids": len(deferral.sequence_ids),
                            "part": deferral.continuation.part,
                            "delay_seconds": round(continuation.delay_seconds, 1),
                        },
                    )
                continue
            delivery.deferral = None
            # Already published: SQS brings the record back, which publishes this part again (its finished IDs
            # as already done) and then sends the continuation.
            delivery.retry("continuation not sent")

    def _park(self, deliveries: Iterable[Delivery], deadline: Deadline) -> None:
        """Rejected SQS records go to the dead-letter queue ourselves, so they are not retried in vain."""
        lookups = deadline.share(0.5)  # what the table may take of parking's time, for all records together
        for delivery in deliveries:
            if delivery.rejection is None or delivery.report is None or delivery.parked or not _is_ours(delivery):
                continue
            if delivery.receipt is None or not delivery.claimable:
                continue  # a malformed record SQS cannot redeliver: its results event says why, nothing to park
            if delivery.refused:
                continue  # a final answer (its results event says why): acknowledged, not dead-lettered
            body = delivery.payload if isinstance(delivery.payload, str) else ""
            with correlation(delivery.delivery_id):
                # An earlier delivery parked it, then its results event was not published: no second copy.
                delivery.parked = self._parked_before(delivery, lookups)
                if not delivery.parked:
                    delivery.parked = self._dead_letters is not None and self._dead_letters.park(
                        body=body,
                        reason=delivery.rejection,
                        message_id=delivery.delivery_id,
                        deadline=deadline,
                        message_group_id=delivery.receipt.message_group_id,
                    )
                    if delivery.parked and self._idempotency is not None and delivery.claim is Claim.NEW:
                        self._idempotency.remember(_parked_key(delivery), {"parked": True}, deadline=lookups)
            if not delivery.parked:
                delivery.report = None  # retried, and reported when it is finally parked
                delivery.retry(f"request rejected and not dead-lettered: {delivery.rejection}")

    def _parked_before(self, delivery: Delivery, deadline: Deadline) -> bool:
        """True when the idempotency table (when it answered this delivery's claim) records the record as parked by
        an earlier delivery."""
        if self._idempotency is None or delivery.claim is not Claim.NEW:
            return False
        return self._idempotency.recall(_parked_key(delivery), deadline) is not None

    def _publish(self, deliveries: list[Delivery], deadline: Deadline) -> None:
        """One results event per reported delivery; a delivery whose event is not published is retried."""
        reports = [delivery.report for delivery in deliveries if delivery.report is not None]
        plans = [delivery.plan for delivery in deliveries if delivery.plan is not None and delivery.plan.final]
        if not reports and not plans:
            return
        try:
            unpublished = self._publisher.publish(reports, deadline=deadline, plans=plans)
        except Exception as exc:  # the publisher contains per-report errors; anything else is ours
            logger.exception("publishing failed unexpectedly", extra={"error": type(exc).__name__})
            unpublished = {report.request_id for report in reports} | {plan.request_id for plan in plans}
        for delivery in deliveries:
            if delivery.report is not None and delivery.report.request_id in unpublished:
                delivery.unpublished = True
                delivery.retry("results event not published")
            if delivery.plan is not None and delivery.plan.final and delivery.plan.request_id in unpublished:
                delivery.unpublished = True
                delivery.retry("plan event not published")

    def _postpone(self, deliveries: list[Delivery], deadline: Deadline) -> None:
        """Records retried because of a 429 (or our pacing) come back when Reply said, not at the timeout."""
        postponements = [
            delivery.postponement
            for delivery in deliveries
            if delivery.postponement is not None and delivery.retry_reason is not None
        ]
        if postponements and self._visibility is not None:
            self._visibility.postpone(postponements, deadline=deadline)

    def _settle_claims(self, deliveries: Iterable[Delivery], deadline: Deadline) -> None:
        """Completed requests are recorded as done; the ones to retry give their claim back."""
        if self._idempotency is None:
            return
        for delivery in deliveries:
            if delivery.claim is not Claim.NEW:
                continue
            with correlation(delivery.delivery_id):
                if delivery.retry_reason is not None:
                    self._idempotency.release(delivery.delivery_id, delivery.retry_reason, deadline=deadline)
                elif delivery.report is not None:
                    detail = delivery.report.detail()
                    summary = {"complete": detail["complete"], "counts": detail["counts"]}
                    self._idempotency.complete(delivery.delivery_id, summary, deadline=deadline)
                elif delivery.plan is not None:
                    summary = {"complete": delivery.plan.complete, "outcome": delivery.plan.outcome.value}
                    self._idempotency.complete(delivery.delivery_id, summary, deadline=deadline)


def _parked_key(delivery: Delivery) -> str:
    """The idempotency table's record of a parked record (delivery IDs never hold '#', so no request claims it)."""
    return f"parked#{delivery.delivery_id}"


def _is_ours(delivery: Delivery) -> bool:
    """Not already done and not held by another invocation."""
    return delivery.claim not in (Claim.COMPLETED, Claim.IN_PROGRESS)


# ---------------------------------------------------------------- responders


def respond(invocation: Invocation) -> dict[str, Any]:
    """The answer each trigger expects: batchItemFailures for SQS, the results detail (or an error) otherwise."""
    if invocation.shape is EventShape.SQS:
        return respond_to_sqs(invocation.deliveries)
    details = [_respond_to_request(delivery) for delivery in invocation.deliveries]
    return details[0] if len(details) == 1 else {"requests": details}


def respond_to_sqs(deliveries: Iterable[Delivery]) -> dict[str, Any]:
    """Partial batch response: the records to retry. Built directly, see the README (Batch responses)."""
    return {
        "batchItemFailures": [
            {"itemIdentifier": delivery.delivery_id}
            for delivery in deliveries
            if delivery.retry_reason is not None and delivery.receipt is not None
        ]
    }


def _respond_to_request(delivery: Delivery) -> dict[str, Any]:
    """A direct, EventBridge or SNS request: its detail, or an error that makes Lambda retry it."""
    if delivery.claim is Claim.COMPLETED:
        return {"requestId": delivery.delivery_id, "trigger": delivery.trigger.value, "duplicate": True}
    if delivery.claim is Claim.IN_PROGRESS:
        raise RequestInProgressError(f"request {delivery.delivery_id} is being processed by another invocation")
    if delivery.plan is not None and delivery.retry_reason is None:
        return stamped(delivery.plan.detail())  # a clean-up request: its plan (or its progress, when it continues)
    if delivery.report is None:
        raise ResultsPublishError(f"request {delivery.delivery_id} could not be completed: {delivery.retry_reason}")
    if delivery.unpublished:
        raise ResultsPublishError(f"the results event of request {delivery.delivery_id} could not be published")
    detail = stamped(delivery.report.detail())
    if not delivery.report.complete:
        raise SequenceArchiveIncomplete(
            f"{detail['counts']['failed']} sequence ID(s) of request {delivery.delivery_id} failed and need a retry",
            detail=detail,
        )
    return detail


def _log_plan(plan: CleanupPlan, retry_reason: str | None) -> None:
    with correlation(plan.request_id):
        logger.info(
            "clean-up request finished" if plan.final else "clean-up request continues",
            extra={
                "request_id": plan.request_id,
                "outcome": plan.outcome.value,
                "complete": plan.complete,
                "selected": len(plan.run.selected_ids),
                "enqueued": plan.enqueued_ids,
                "pages": plan.run.pages,
                "part": plan.run.part,
                "reason": plan.reason,
                "retry": retry_reason,
            },
        )


def _log_report(report: RequestReport, retry_reason: str | None) -> None:
    counts = {key: value for key, value in count_outcomes(report.results).items() if value}
    with correlation(report.request_id):
        logger.info(
            "archive request finished",
            extra={
                "request_id": report.request_id,
                "trigger": report.trigger.value,
                "complete": report.complete,
                "retry": retry_reason,
                **counts,
            },
        )
