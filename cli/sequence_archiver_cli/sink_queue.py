"""Reading a queue of results events with a bound, then deleting them or making them visible again.

Reading a queue consumes it: what one report deletes, the next cannot see. The results log group
(`report --log-group`) is the repeatable source; a sink queue suits one reader that wants each event once.
What is received is hidden from other readers for DRAIN_VISIBILITY_SECONDS; every message not deleted is made
visible again at once (ChangeMessageVisibilityBatch to 0): those kept (`--keep`), those not results events,
and all of them when the read or the report stops early.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs import SQSClient

MAX_PER_RECEIVE = 10
# Long enough that one drain never receives a message twice; --keep makes them visible again at the end.
DRAIN_VISIBILITY_SECONDS = 120


_NOT_JSON = object()


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message read from the queue: its body as JSON (or NOT_JSON) and its receipt handle."""

    document: object
    receipt_handle: str

    @property
    def is_json(self) -> bool:
        """False when the body did not parse as JSON."""
        return self.document is not _NOT_JSON


def drain(
    sqs: SQSClient,
    queue_url: str,
    *,
    max_messages: int,
    wait_seconds: int,
    on_progress: Callable[[int], None] | None = None,
) -> list[ReceivedMessage]:
    """Receive until the queue answers empty or `max_messages` were read; `on_progress` gets the count so far.

    When a receive fails (or Ctrl-C), what was received before is made visible again before the error goes on.
    """
    received: list[ReceivedMessage] = []
    try:
        _receive_into(
            sqs, queue_url, received, max_messages=max_messages, wait_seconds=wait_seconds, on_progress=on_progress
        )
    except BaseException:
        release_quietly(sqs, queue_url, [message.receipt_handle for message in received])
        raise
    return received


def _receive_into(
    sqs: SQSClient,
    queue_url: str,
    received: list[ReceivedMessage],
    *,
    max_messages: int,
    wait_seconds: int,
    on_progress: Callable[[int], None] | None,
) -> None:
    wait = wait_seconds
    while len(received) < max_messages:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(MAX_PER_RECEIVE, max_messages - len(received)),
            WaitTimeSeconds=wait,
            VisibilityTimeout=DRAIN_VISIBILITY_SECONDS,
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        wait = min(wait, 1)  # events may still trickle in; do not wait the full time for each receive
        for message in messages:
            try:
                document: object = json.loads(message.get("Body", ""))
            except json.JSONDecodeError:
                document = _NOT_JSON
            received.append(ReceivedMessage(document, message["ReceiptHandle"]))
        if on_progress is not None:
            on_progress(len(received))


def delete(sqs: SQSClient, queue_url: str, receipts: list[str]) -> int:
    """Delete received messages in batches of ten; return how many SQS did not delete."""
    failed = 0
    for start in range(0, len(receipts), MAX_PER_RECEIVE):
        chunk = receipts[start : start + MAX_PER_RECEIVE]
        response = sqs.delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)]
        )
        failed += len(response.get("Failed", []))
    return failed


def release(sqs: SQSClient, queue_url: str, receipts: list[str]) -> int:
    """Make received messages visible again now (for --keep, and for bodies this tool could not read).

    Returns how many SQS did not make visible (they come back when their visibility timeout ends).
    """
    failed = 0
    for start in range(0, len(receipts), MAX_PER_RECEIVE):
        chunk = receipts[start : start + MAX_PER_RECEIVE]
        response = sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(chunk)],
        )
        failed += len(response.get("Failed", []))
    return failed


def release_quietly(sqs: SQSClient, queue_url: str, receipts: list[str]) -> None:
    """Release on the way out of an error: an AWS error here must not hide the one that is being raised."""
    with suppress(BotoCoreError, ClientError):
        release(sqs, queue_url, receipts)
