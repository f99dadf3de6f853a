"""Retry at the right time: SQS records come back when Reply's budget is there again.

Lambda leaves a failed record invisible for the queue's whole visibility timeout (many minutes). When
the record failed because of a 429, Reply said when to come back: we shorten the record's visibility to
that, with ChangeMessageVisibility.

A record that only waits for the rate budget (or ran out of invocation time) has not failed: it is
acknowledged and its unfinished IDs are sent back to its queue as a continuation message, delayed until
the budget frees up (SendMessage's DelaySeconds, at most 15 minutes). A continuation is a new message, so
waiting never counts towards the queue's maxReceiveCount. Every SQS call ends by the deadline it is given.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sequence_archiver.aws.calls import call_within
from sequence_archiver.aws.sqs import OutgoingMessage

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_sqs.client import SQSClient

    from sequence_archiver.aws.sqs import SqsSender
    from sequence_archiver.core.deadline import Deadline

logger = logging.getLogger(__name__)

MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit: 12 hours


class SourceQueues:
    """Queue URLs of event source ARNs, resolved once (GetQueueUrl) for the life of the instance."""

    def __init__(self, *, sqs_client: Callable[[], SQSClient]) -> None:
        self._sqs_client = sqs_client  # a factory: the client is only built when a record needs it
        self._urls: dict[str, str] = {}

    def url(self, arn: str, deadline: Deadline | None) -> str:
        """The queue's URL; ValueError for an ARN that is not an SQS queue's."""
        if arn not in self._urls:
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
            self._urls[arn] = response["QueueUrl"]
        return self._urls[arn]


@dataclass(frozen=True, slots=True)
class Continuation:
    """A message that carries a deferred record's unfinished IDs on, `delay_seconds` from now."""

    event_source_arn: str
    key: str  # the record it continues (its message ID), to tell which continuations were sent
    body: str
    delay_seconds: float


class ContinuationQueue:
    """Sends continuations to the queue their record came from; reports which ones SQS took."""

    def __init__(self, *, sender: SqsSender, queues: SourceQueues) -> None:
        self._sender = sender
        self._queues = queues

    def send(self, continuations: Sequence[Continuation], deadline: Deadline | None = None) -> set[str]:
        """Send every continuation by `deadline`; return the keys of those SQS accepted."""
        sent: set[str] = set()
        by_queue: dict[str, list[Continuation]] = {}
        for item in continuations:
            by_queue.setdefault(item.event_source_arn, []).append(item)
        for arn, items in by_queue.items():
            try:
                queue_url = self._queues.url(arn, deadline)
            # SDK errors, AwsCallTimeoutError, a bad ARN (ValueError) or any surprise: those records are retried.
            except Exception as exc:
                logger.warning("could not send continuations", extra={"queue_arn": arn, "error": type(exc).__name__})
                continue
            messages = [OutgoingMessage(item.key, item.body, delay_seconds=item.delay_seconds) for item in items]
            sent.update(self._sender.send(queue_url, messages, deadline))
        return sent


@dataclass(frozen=True, slots=True)
class Postponement:
    """Make one received record visible again after `seconds`."""

    event_source_arn: str
    receipt_handle: str
    seconds: float


class RecordVisibility:
    """Changes the visibility of received SQS records; failures only log (the default timeout still applies)."""

    def __init__(self, *, sqs_client: Callable[[], SQSClient], queues: SourceQueues | None = None) -> None:
        self._sqs_client = sqs_client  # a factory: the client is only built when a record needs it
        self._queues = queues or SourceQueues(sqs_client=sqs_client)

    def postpone(self, postponements: Sequence[Postponement], deadline: Deadline | None = None) -> int:
        """Apply every postponement by `deadline`; return how many records were changed."""
        changed = 0
        by_queue: dict[str, list[Postponement]] = {}
        for item in postponements:
            if not math.isnan(item.seconds):  # a NaN says nothing about when: the default timeout stays
                by_queue.setdefault(item.event_source_arn, []).append(item)
        for arn, items in by_queue.items():
            try:
                queue_url = self._queues.url(arn, deadline)
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


def _seconds(item: Postponement) -> int:
    """Whole seconds within SQS's range; an infinite wait is the longest SQS allows."""
    return math.ceil(max(1.0, min(item.seconds, MAX_VISIBILITY_SECONDS)))
