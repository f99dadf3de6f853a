"""Retry at the right time: throttled SQS records come back when Reply's budget is there again.

Lambda leaves a failed record invisible for the queue's whole visibility timeout (many minutes). When
the record failed because of a 429 (or our own pacing), Reply said when to come back: we shorten the
record's visibility to that, with ChangeMessageVisibility. Every SQS call ends by the deadline it is given.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sequence_archiver.aws_calls import call_within

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_sqs.client import SQSClient

    from sequence_archiver.deadline import Deadline

logger = logging.getLogger(__name__)

MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit: 12 hours


@dataclass(frozen=True, slots=True)
class Postponement:
    """Make one received record visible again after `seconds`."""

    event_source_arn: str
    receipt_handle: str
    seconds: float


class RecordVisibility:
    """Changes the visibility of received SQS records; failures only log (the default timeout still applies)."""

    def __init__(self, *, sqs_client: Callable[[], SQSClient]) -> None:
        self._sqs_client = sqs_client  # a factory: the client is only built when a record needs it
        self._queue_urls: dict[str, str] = {}

    def postpone(self, postponements: Sequence[Postponement], deadline: Deadline | None = None) -> int:
        """Apply every postponement by `deadline`; return how many records were changed."""
        changed = 0
        by_queue: dict[str, list[Postponement]] = {}
        for item in postponements:
            if not math.isnan(item.seconds):  # a NaN says nothing about when: the default timeout stays
                by_queue.setdefault(item.event_source_arn, []).append(item)
        for arn, items in by_queue.items():
            try:
                queue_url = self._queue_url(arn, deadline)
                for start in range(0, len(items), 10):
                    chunk = items[start : start + 10]
                    response = call_within(
                        deadline,
                        "ChangeMessageVisibilityBatch",
                        self._sqs_client().change_message_visibility_batch,
                        QueueUrl=queue_url,
                        Entries=[
                            {
                                "Id": str(index),
                                "ReceiptHandle": item.receipt_handle,
                                "VisibilityTimeout": _seconds(item),
                            }
                            for index, item in enumerate(chunk)
                        ],
                    )
                    changed += len(response.get("Successful", []))
                    if response.get("Failed"):
                        logger.warning("some visibility changes failed", extra={"failed": len(response["Failed"])})
            # SDK errors (BotoCoreError, ClientError), AwsCallTimeoutError, a bad ARN (ValueError) or any surprise.
            except Exception as exc:
                logger.warning(
                    "could not change record visibility", extra={"queue_arn": arn, "error": type(exc).__name__}
                )
        return changed

    def _queue_url(self, arn: str, deadline: Deadline | None) -> str:
        if arn not in self._queue_urls:
            parts = arn.split(":")
            if len(parts) != 6 or parts[2] != "sqs":
                raise ValueError("not an SQS queue ARN")
            account, name = parts[4], parts[5]
            response = call_within(
                deadline,
                "GetQueueUrl",
                self._sqs_client().get_queue_url,
                QueueName=name,
                QueueOwnerAWSAccountId=account,
            )
            self._queue_urls[arn] = response["QueueUrl"]
        return self._queue_urls[arn]


def _seconds(item: Postponement) -> int:
    """Whole seconds within SQS's range; an infinite wait is the longest SQS allows."""
    return math.ceil(max(1.0, min(item.seconds, MAX_VISIBILITY_SECONDS)))
