"""One invocation, whatever its trigger: parse the request(s), archive, publish results, settle."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from sequence_archiver.archive_request import parse_archive_request, parse_message_body
from sequence_archiver.deadline import Deadline
from sequence_archiver.exceptions import (
    InvalidRequestError,
    ResultsPublishError,
    SequenceArchiveIncomplete,
    SequenceArchiverError,
)
from sequence_archiver.outcomes import Outcome, SequenceResult, count_outcomes
from sequence_archiver.results_publisher import RequestReport, Trigger

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sequence_archiver.archiver import SequenceArchiver
    from sequence_archiver.dead_letters import DeadLetterQueue
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.results_publisher import ResultsPublisher

logger = logging.getLogger(__name__)


class RecordNeedsRetryError(SequenceArchiverError):
    """Raised for an SQS record inside batch processing so Powertools reports it in batchItemFailures."""


def detect_trigger(event: object) -> Trigger:
    """SQS batch, EventBridge event, or anything else (a direct payload, SNS)."""
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):  # noqa: SIM102
            if records[0].get("eventSource") == "aws:sqs":
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


@dataclass
class _SqsBatchState:
    """What phase one decided for each record of a batch."""

    retry_reasons: dict[str, str]


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._archiver = archiver
        self._publisher = publisher
        self._metrics = metrics
        self._dead_letters = dead_letters
        self._safety_margin = deadline_safety_margin_seconds
        self._clock = clock

    def handle(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        """Dispatch on the trigger; SQS returns batchItemFailures, the others the results detail."""
        deadline = Deadline.from_context(context, safety_margin_seconds=self._safety_margin, clock=self._clock)
        trigger = detect_trigger(event)
        if trigger is Trigger.SQS:
            return self._handle_sqs(event, context, deadline)
        if trigger is Trigger.EVENTBRIDGE:
            return self._handle_single(str(event["id"]), Trigger.EVENTBRIDGE, event["detail"], deadline)
        sns_messages = _sns_messages(event)
        if sns_messages is None:
            return self._handle_single(context.aws_request_id, Trigger.DIRECT, event, deadline)
        details = [
            self._handle_single(message_id, Trigger.DIRECT, _json_or_text(message), deadline)
            for message_id, message in sns_messages
        ]
        return details[0] if len(details) == 1 else {"requests": details}

    def _handle_single(self, request_id: str, trigger: Trigger, payload: object, deadline: Deadline) -> dict[str, Any]:
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
        state = self._archive_batch(event["Records"], deadline)

        def settle(record: SQSRecord) -> None:
            reason = state.retry_reasons.get(record.message_id)
            if reason is not None:
                raise RecordNeedsRetryError(reason)

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(event=event, record_handler=settle, processor=processor, context=context)
        return dict(response)

    def _archive_batch(self, records: list[dict[str, Any]], deadline: Deadline) -> _SqsBatchState:
        """Phase one: archive every record's IDs and publish all results events together."""
        reports: list[RequestReport] = []
        retry_reasons: dict[str, str] = {}
        for record in records:
            message_id = str(record.get("messageId"))
            try:
                request = parse_message_body(str(record.get("body", "")))
            except InvalidRequestError as exc:
                self._metrics.record_rejected_request()
                if self._dead_letters and self._dead_letters.park(
                    body=str(record.get("body", "")), reason=str(exc), message_id=message_id
                ):
                    reports.append(RequestReport(message_id, Trigger.SQS, _rejected(str(exc))))
                else:
                    logger.error("record rejected", extra={"message_id": message_id, "reason": str(exc)})
                    retry_reasons[message_id] = f"request rejected and not dead-lettered: {exc}"
                continue
            logger.info("archive request received", extra={"request_id": message_id, "trigger": "sqs"})
            report = RequestReport(message_id, Trigger.SQS, tuple(self._archiver.archive(request, deadline)))
            reports.append(report)
            if not report.complete:
                failed = count_outcomes(report.results)[Outcome.FAILED]
                retry_reasons[message_id] = f"{failed} sequence ID(s) failed"
        self._metrics.record_invocation(result for report in reports for result in report.results)
        for request_id in self._publisher.publish(reports):
            retry_reasons.setdefault(request_id, "results event not published")
        for report in reports:
            _log_report(report)
        return _SqsBatchState(retry_reasons)


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
