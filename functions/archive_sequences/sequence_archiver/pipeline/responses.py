"""The answer each trigger expects, from the settled verdicts: batchItemFailures for SQS, the results detail (or
an error that makes Lambda retry it) for a direct, EventBridge or SNS request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sequence_archiver.aws.results_publisher import stamped
from sequence_archiver.core.exceptions import RequestInProgressError, ResultsPublishError, SequenceArchiveIncomplete
from sequence_archiver.core.request_report import EventShape
from sequence_archiver.pipeline.verdicts import Fate

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.pipeline.effects.settlement import Settlement


def respond(shape: EventShape, settlements: Sequence[Settlement]) -> dict[str, Any]:
    """The answer to the invocation: one per trigger shape."""
    if shape is EventShape.SQS:
        return respond_to_sqs(settlements)
    details = [_respond_to_request(item) for item in settlements]
    return details[0] if len(details) == 1 else {"requests": details}


def respond_to_sqs(settlements: Sequence[Settlement]) -> dict[str, Any]:
    """Partial batch response: the records to retry. Built directly, see the README (Batch responses)."""
    return {
        "batchItemFailures": [
            {"itemIdentifier": item.delivery.delivery_id}
            for item in settlements
            if item.verdict.retried and item.delivery.receipt is not None
        ]
    }


def _respond_to_request(item: Settlement) -> dict[str, Any]:
    """A direct, EventBridge or SNS request: its detail, or an error that makes Lambda retry it."""
    delivery, verdict = item.delivery, item.verdict
    if verdict.fate is Fate.DUPLICATE:
        return {"requestId": delivery.delivery_id, "trigger": delivery.trigger.value, "duplicate": True}
    if verdict.fate is Fate.IN_PROGRESS:
        raise RequestInProgressError(f"request {delivery.delivery_id} is being processed by another invocation")
    if item.plan is not None and not verdict.retried:
        return stamped(item.plan.detail())  # a clean-up request: its plan (or its progress, when it continues)
    report = item.report
    if report is None:
        raise ResultsPublishError(f"request {delivery.delivery_id} could not be completed: {verdict.reason}")
    if item.unpublished:
        raise ResultsPublishError(f"the results event of request {delivery.delivery_id} could not be published")
    detail = stamped(report.detail())
    if not report.complete:
        raise SequenceArchiveIncomplete(
            f"{detail['counts']['failed']} sequence ID(s) of request {delivery.delivery_id} failed and need a retry",
            detail=detail,
        )
    return detail
