"""One invocation, whatever its trigger: parse the request(s), archive, publish results, settle."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sequence_archiver.archive_request import parse_archive_request, parse_message_body
from sequence_archiver.deadline import Deadline
from sequence_archiver.exceptions import (
    InvalidRequestError,
    ResultsPublishError,
    SequenceArchiveIncomplete,
    SequenceArchiverError,
)
from sequence_archiver.idempotency import Claim
from sequence_archiver.observability import correlation
from sequence_archiver.outcomes import Outcome, SequenceResult, count_outcomes
from sequence_archiver.request_report import RequestReport, Trigger
from sequence_archiver.retry_timing import Postponement

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sequence_archiver.archive_request import ArchiveRequest
    from sequence_archiver.archiver import SequenceArchiver
    from sequence_archiver.dead_letters import DeadLetterQueue
    from sequence_archiver.idempotency import RequestIdempotency
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.results_publisher import ResultsPublisher
    from sequence_archiver.retry_timing import RecordVisibility

logger = logging.getLogger(__name__)


class RecordNeedsRetryError(SequenceArchiverError):
    """Raised for an SQS record inside batch processing so Powertools reports it in batchItemFailures."""


class RequestInProgressError(SequenceArchiverError):
    """Another invocation is processing the same request right now; this delivery must be retried."""


def detect_trigger(event: object) -> Trigger:
    """SQS batch, EventBridge event, or anything else (a direct payload, SNS)."""
    if isinstance(event, dict):
        records = event.get("Records")
        first = records[0] if isinstance(records, list) and records else None
        if isinstance(first, dict) and first.get("eventSource") == "aws:sqs":
            return Trigger.SQS
        if {"detail-type", "source", "detail", "id"} <= event.keys():
            return Trigger.EVENTBRIDGE
    return Trigger.DIRECT


def _sns_messages(event: object) -> list[tuple[str, str]] | None:
    """(MessageId, Message) of an SNS → Lambda event; None for any other payload."""
    if not isinstance(event, dict):
        return None
    records = event.get("Records")
    if not (isinstance(records, list) and records and all(isinstance(record, dict) for record in records)):
        return None
    if not all(record.get("EventSource") == "aws:sns" for record in records):
        return None
    return [(str(record["Sns"]["MessageId"]), str(record["Sns"]["Message"])) for record in records]


def _rejected(reason: str) -> tuple[SequenceResult, ...]:
    return (SequenceResult(None, Outcome.INVALID, error=f"request rejected: {reason}"),)


class ArchiveService:
    """Wires the core to the triggers; created once per Lambda instance."""

    def __init__(
        self,
        *,
        archiver: SequenceArchiver,
        publisher: ResultsPublisher,
        metrics: MetricsRecorder,
        dead_letters: DeadLetterQueue | None,
        deadline_safety_margin_seconds: float,
        visibility: RecordVisibility | None = None,
        idempotency: RequestIdempotency | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._archiver = archiver
        self._publisher = publisher
        self._metrics = metrics
        self._dead_letters = dead_letters
        self._visibility = visibility
        self._idempotency = idempotency
        self._safety_margin = deadline_safety_margin_seconds
        self._clock = clock

    def handle(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        """Dispatch on the trigger; SQS returns batchItemFailures, the others the results detail."""
        deadline = Deadline.from_context(context, safety_margin_seconds=self._safety_margin, clock=self._clock)
        if self._idempotency is not None:
            self._idempotency.start_invocation(context)
        trigger = detect_trigger(event)
        if trigger is Trigger.SQS:
            with correlation([str(record.get("messageId")) for record in event["Records"]]):
                return self._handle_sqs(event, context, deadline)
        if trigger is Trigger.EVENTBRIDGE:
            return self._handle_event(str(event["id"]), event["detail"], deadline)
        sns_messages = _sns_messages(event)
        if sns_messages is None:
            return self._handle_single(context.aws_request_id, Trigger.DIRECT, event, deadline)
        details = [
            self._handle_single(message_id, Trigger.DIRECT, _json_or_text(message), deadline)
            for message_id, message in sns_messages
        ]
        return details[0] if len(details) == 1 else {"requests": details}

    def _handle_event(self, event_id: str, payload: object, deadline: Deadline) -> dict[str, Any]:
        """An EventBridge event: like a direct request, but a redelivered event is done only once."""
        claim = self._claim(event_id)
        if claim is Claim.COMPLETED:
            self._metrics.record_duplicate_request()
            return {"requestId": event_id, "trigger": Trigger.EVENTBRIDGE.value, "duplicate": True}
        if claim is Claim.IN_PROGRESS:
            raise RequestInProgressError(f"event {event_id} is being processed by another invocation")
        try:
            detail = self._handle_single(event_id, Trigger.EVENTBRIDGE, payload, deadline)
        except SequenceArchiverError as exc:
            self._release(claim, event_id, type(exc).__name__)
            raise
        self._complete(claim, event_id, detail)
        return detail

    def _claim(self, request_id: str) -> Claim:
        return self._idempotency.claim(request_id) if self._idempotency is not None else Claim.UNAVAILABLE

    def _complete(self, claim: Claim, request_id: str, detail: dict[str, Any]) -> None:
        if self._idempotency is not None and claim is Claim.NEW:
            self._idempotency.complete(request_id, {"complete": detail["complete"], "counts": detail["counts"]})

    def _release(self, claim: Claim, request_id: str, reason: str) -> None:
        if self._idempotency is not None and claim is Claim.NEW:
            self._idempotency.release(request_id, reason)

    def _handle_single(self, request_id: str, trigger: Trigger, payload: object, deadline: Deadline) -> dict[str, Any]:
        with correlation(request_id):
            return self._archive_single_request(request_id, trigger, payload, deadline)

    def _archive_single_request(
        self, request_id: str, trigger: Trigger, payload: object, deadline: Deadline
    ) -> dict[str, Any]:
        logger.info("archive request received", extra={"request_id": request_id, "trigger": trigger.value})
        try:
            request = parse_archive_request(payload)
        except InvalidRequestError as exc:
            logger.error("request rejected", extra={"request_id": request_id, "reason": str(exc)})
            self._metrics.record_rejected_request()
            report = RequestReport(request_id, trigger, _rejected(str(exc)))
        else:
            report = RequestReport(request_id, trigger, tuple(self._archiver.archive(request, deadline)))
        self._metrics.record_invocation(report.results)
        unpublished = self._publisher.publish([report])
        detail = report.detail()
        _log_report(report)
        if unpublished:
            raise ResultsPublishError(f"the results event of request {request_id} could not be published")
        if not report.complete:
            raise SequenceArchiveIncomplete(
                f"{detail['counts']['failed']} sequence ID(s) of request {request_id} failed and need a retry",
                detail=detail,
            )
        return detail

    def _handle_sqs(self, event: dict[str, Any], context: LambdaContext, deadline: Deadline) -> dict[str, Any]:
        retry_reasons = self._archive_batch(event["Records"], deadline)

        def settle(record: SQSRecord) -> None:
            reason = retry_reasons.get(record.message_id)
            if reason is not None:
                raise RecordNeedsRetryError(reason)

        # Imported here: only the SQS path needs it, and it is a large part of the cold start otherwise.
        from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415
            BatchProcessor,
            EventType,
            process_partial_response,
        )

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(event=event, record_handler=settle, processor=processor, context=context)
        return dict(response)

    def _archive_batch(self, records: list[dict[str, Any]], deadline: Deadline) -> dict[str, str]:
        """Archive all records' IDs together, publish every results event; return why records must be retried."""
        batch = _SqsBatch()
        for record in records:
            with correlation(str(record.get("messageId"))):
                self._admit(record, batch)
        logger.info("archive batch received", extra={"records": len(records), "requests": len(batch.accepted)})
        results_per_request = self._archiver.archive_all([request for _, request in batch.accepted], deadline)
        for (record, _), results in zip(batch.accepted, results_per_request, strict=True):
            batch.add_results(record, tuple(results))
        self._metrics.record_invocation(result for report in batch.reports.values() for result in report.results)
        for request_id in self._publisher.publish(list(batch.reports.values())):
            batch.retry_reasons.setdefault(request_id, "results event not published")
        if batch.postponements and self._visibility is not None:
            self._visibility.postpone(batch.postponements)
        for report in batch.reports.values():
            with correlation(report.request_id):
                _log_report(report)
        self._settle_claims(batch)
        return batch.retry_reasons

    def _admit(self, record: dict[str, Any], batch: _SqsBatch) -> None:
        """Claim a record (when idempotency is on) and parse it; park what is not a request in the DLQ."""
        message_id = str(record.get("messageId"))
        body = str(record.get("body", ""))
        claim = batch.claims[message_id] = self._claim(message_id)
        if claim is Claim.COMPLETED:
            self._metrics.record_duplicate_request()
            return  # a redelivery of a request already done: acknowledge it, do nothing
        if claim is Claim.IN_PROGRESS:
            batch.retry_reasons[message_id] = "being processed by another invocation"
            return
        try:
            batch.accepted.append((record, parse_message_body(body)))
        except InvalidRequestError as exc:
            self._metrics.record_rejected_request()
            if self._dead_letters and self._dead_letters.park(body=body, reason=str(exc), message_id=message_id):
                batch.reports[message_id] = RequestReport(message_id, Trigger.SQS, _rejected(str(exc)))
            else:
                logger.error("record rejected", extra={"message_id": message_id, "reason": str(exc)})
                batch.retry_reasons[message_id] = f"request rejected and not dead-lettered: {exc}"

    def _settle_claims(self, batch: _SqsBatch) -> None:
        """Completed requests are recorded as done; the ones to retry give their claim back."""
        for message_id, claim in batch.claims.items():
            if claim is not Claim.NEW:
                continue
            if message_id in batch.retry_reasons:
                self._release(claim, message_id, batch.retry_reasons[message_id])
            elif message_id in batch.reports:
                self._complete(claim, message_id, batch.reports[message_id].detail())


@dataclass
class _SqsBatch:
    """The working state of one SQS batch."""

    reports: dict[str, RequestReport] = field(default_factory=dict)
    retry_reasons: dict[str, str] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    accepted: list[tuple[dict[str, Any], ArchiveRequest]] = field(default_factory=list)
    postponements: list[Postponement] = field(default_factory=list)

    def add_results(self, record: dict[str, Any], results: tuple[SequenceResult, ...]) -> None:
        """Report a record's results; one with failed IDs is retried, at Retry-After when Reply gave one."""
        message_id = str(record.get("messageId"))
        report = self.reports[message_id] = RequestReport(message_id, Trigger.SQS, results)
        if report.complete:
            return
        self.retry_reasons[message_id] = f"{count_outcomes(results)[Outcome.FAILED]} sequence ID(s) failed"
        retry_after = max((r.retry_after_seconds for r in results if r.retry_after_seconds is not None), default=None)
        if retry_after is not None and record.get("receiptHandle") and record.get("eventSourceARN"):
            self.postponements.append(
                Postponement(str(record["eventSourceARN"]), str(record["receiptHandle"]), retry_after)
            )


def _json_or_text(message: str) -> object:
    """An SNS Message is usually JSON; anything else is passed on as text (and rejected by the parser)."""
    try:
        return json.loads(message)
    except json.JSONDecodeError:
        return message


def _log_report(report: RequestReport) -> None:
    counts = {key: value for key, value in count_outcomes(report.results).items() if value}
    logger.info(
        "archive request finished",
        extra={
            "request_id": report.request_id,
            "trigger": report.trigger.value,
            "complete": report.complete,
            **counts,
        },
    )
