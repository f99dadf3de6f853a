"""Every SQS send of the project, under one policy: SendMessageBatch entries (10 a call, 256 KiB in all), the
FIFO rules (a message group and a deduplication ID, no per-message delay), delays in SQS's range.

The function sends through `SqsSender` (continuations to the request queue, parked records to the
dead-letter queue, a clean-up's archive requests to the archive queue): each call ends by the deadline it is
given, and entries SQS did not take are sent again while the deadline allows. The CLI's `enqueue` builds its
entries with `batch_entry` and its batches with `batches`, so both speak to SQS the same way.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sequence_archiver.aws.calls import MIN_ATTEMPT_SECONDS, call_within
from sequence_archiver.core.batching import chunk_by_count_and_size

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from mypy_boto3_sqs.client import SQSClient

    from sequence_archiver.core.deadline import Deadline

logger = logging.getLogger(__name__)

MAX_ENTRIES_PER_CALL = 10  # SendMessageBatch's limit
MAX_PAYLOAD_BYTES = 256 * 1024  # SQS's limit for one message and for a whole SendMessageBatch call
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds
FIFO_QUEUE_SUFFIX = ".fifo"  # SQS requires it of every FIFO queue's name
DEFAULT_MESSAGE_GROUP_ID = "sequence-archiver"  # a FIFO message's group when its sender names none
_MESSAGE_GROUP_ID = re.compile(r"[!-~]{1,128}")  # SQS: 1 to 128 ASCII letters, digits and punctuation
_SEND_ATTEMPTS = 3
_RETRY_PAUSE_SECONDS = 0.2


def is_fifo_queue(queue: str) -> bool:
    """True for a FIFO queue's URL or ARN: the queue name (its last segment) ends in `.fifo`."""
    return queue.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].endswith(FIFO_QUEUE_SUFFIX)


def is_message_group_id(value: str) -> bool:
    """True for a message group ID SQS accepts."""
    return _MESSAGE_GROUP_ID.fullmatch(value) is not None


def deduplication_id(message_group_id: str, body: str) -> str:
    """The same body to the same group always gets the same ID (a SHA-256, 64 hex characters).

    So an entry resent within SQS's 5-minute deduplication window (a retried entry SQS had in fact taken, a
    re-run of the same command) is not queued twice, and a FIFO queue without content-based deduplication
    accepts the messages too. The group is part of it: the same IDs sent for two campaigns are two messages.
    """
    return hashlib.sha256(f"{message_group_id}\n{body}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to send: `key` names it in the answer (which messages SQS took, and their IDs)."""

    key: str
    body: str
    delay_seconds: float = 0.0  # standard queues only; NaN or negative is now, more than 900 s is 900 s
    message_group_id: str | None = None  # FIFO queues: its group (DEFAULT_MESSAGE_GROUP_ID when None)
    deduplication_id: str | None = None  # FIFO queues: deduplication_id(group, body) when None
    attributes: Mapping[str, str] = field(default_factory=dict)  # String message attributes

    @property
    def size(self) -> int:
        """Bytes the body counts against SQS's limits."""
        return len(self.body.encode("utf-8", errors="surrogatepass"))


def batch_entry(entry_id: str, message: OutgoingMessage, *, fifo: bool) -> Any:
    """One SendMessageBatch entry under the queue's rules (typed loosely: the CLI's and the function's stubs)."""
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message.body}
    if fifo:  # FIFO queues take no per-message delay; a group and a deduplication ID instead
        group = (message.message_group_id or DEFAULT_MESSAGE_GROUP_ID)[:128]
        entry["MessageGroupId"] = group
        entry["MessageDeduplicationId"] = (message.deduplication_id or deduplication_id(group, message.body))[:128]
    else:
        seconds = message.delay_seconds if not math.isnan(message.delay_seconds) else 0.0
        delay = math.ceil(max(0.0, min(seconds, MAX_DELAY_SECONDS)))
        if delay:  # none is SQS's default (the queue's own delay)
            entry["DelaySeconds"] = delay
    if message.attributes:
        entry["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in message.attributes.items()
        }
    return entry


def batches(messages: Sequence[OutgoingMessage], *, max_bytes: int = MAX_PAYLOAD_BYTES) -> list[list[OutgoingMessage]]:
    """SendMessageBatch calls of at most 10 entries and 256 KiB in all, in order."""
    return chunk_by_count_and_size(
        messages, size_of=lambda message: message.size, max_items=MAX_ENTRIES_PER_CALL, max_bytes=max_bytes
    )


class SqsSender:
    """Sends messages to a queue with SendMessageBatch, every call by the deadline; reports what SQS took."""

    def __init__(self, *, sqs_client: Callable[[], SQSClient], sleep: Callable[[float], None] = time.sleep) -> None:
        self._sqs_client = sqs_client  # a factory: the client is only built when a message is sent
        self._sleep = sleep

    def send(self, queue_url: str, messages: Sequence[OutgoingMessage], deadline: Deadline | None) -> dict[str, str]:
        """Send every message; the SQS message ID of each one SQS took, by key. Entries SQS failed (or a call that
        failed) are sent again, up to 3 attempts in all, while the deadline allows; the rest are left out."""
        fifo = is_fifo_queue(queue_url)
        taken: dict[str, str] = {}
        pending = list(messages)
        for attempt in range(1, _SEND_ATTEMPTS + 1):
            for batch in batches(pending):
                self._send_batch(queue_url, batch, deadline, fifo=fifo, taken=taken)
            pending = [message for message in pending if message.key not in taken]
            if not pending or attempt == _SEND_ATTEMPTS:
                break
            if deadline is not None and not deadline.allows(_RETRY_PAUSE_SECONDS + MIN_ATTEMPT_SECONDS):
                break
            logger.warning("sending again the messages SQS did not take", extra={"entries": len(pending)})
            self._sleep(_RETRY_PAUSE_SECONDS)
        return taken

    def _send_batch(
        self,
        queue_url: str,
        batch: Sequence[OutgoingMessage],
        deadline: Deadline | None,
        *,
        fifo: bool,
        taken: dict[str, str],
    ) -> None:
        try:
            client = self._sqs_client()  # built here, on the caller's thread: boto3 sessions are not thread-safe
            response = call_within(
                deadline,
                "SendMessageBatch",
                client.send_message_batch,
                QueueUrl=queue_url,
                Entries=[batch_entry(str(index), message, fifo=fifo) for index, message in enumerate(batch)],
            )
        # SDK errors (BotoCoreError, ClientError), AwsCallTimeoutError, or any surprise: these entries are not sent.
        except Exception as exc:
            logger.warning("could not send to SQS", extra={"entries": len(batch), "error": type(exc).__name__})
            return
        for entry in response.get("Successful", []):
            taken[batch[int(entry["Id"])].key] = entry["MessageId"]
        if response.get("Failed"):
            logger.warning("SQS did not take some messages", extra={"failed": len(response["Failed"])})
