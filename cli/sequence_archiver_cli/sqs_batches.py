"""Requests as SQS messages: IDs packed into bodies, bodies into SendMessageBatch calls, failed entries retried.

The bodies are the function's own contract (`archive_request_body`, beside its parser) and the entries follow
the function's SQS policy (`batch_entry`: to a FIFO queue, a message group ID and a deduplication ID derived
from the group and the body).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from sequence_archiver.public import (
    MAX_ENTRIES_PER_CALL,
    MAX_IDS_PER_REQUEST,
    MAX_PAYLOAD_BYTES,
    OutgoingMessage,
    RetryPolicy,
    archive_request_body,
    batch_entry,
    chunk_by_count_and_size,
    is_message_group_id,
)
from sequence_archiver_cli.aws import describe_aws_error

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

DEFAULT_IDS_PER_MESSAGE = 100


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """One message body: a request for some of the IDs."""

    sequence_ids: tuple[int, ...]
    body: str

    @property
    def size(self) -> int:
        """Bytes the body counts against SQS's limits."""
        return len(self.body.encode("utf-8"))


def plan_messages(
    sequence_ids: Sequence[int],
    *,
    ids_per_message: int = DEFAULT_IDS_PER_MESSAGE,
    pause_first: bool = False,
    max_message_bytes: int = MAX_PAYLOAD_BYTES,
) -> list[PlannedMessage]:
    """Chunks of at most `ids_per_message` IDs (the function takes 1,000), halved while a body is too big."""
    if not 1 <= ids_per_message <= MAX_IDS_PER_REQUEST:
        raise ValueError(f"ids_per_message must be between 1 and {MAX_IDS_PER_REQUEST}")
    pending = [tuple(sequence_ids[i : i + ids_per_message]) for i in range(0, len(sequence_ids), ids_per_message)]
    messages: list[PlannedMessage] = []
    while pending:
        chunk = pending.pop(0)
        message = PlannedMessage(chunk, archive_request_body(chunk, pause_first=pause_first))
        if message.size > max_message_bytes and len(chunk) > 1:
            half = len(chunk) // 2
            pending[:0] = [chunk[:half], chunk[half:]]
            continue
        messages.append(message)
    return messages


def plan_batches(
    messages: Sequence[PlannedMessage], *, max_batch_bytes: int = MAX_PAYLOAD_BYTES
) -> list[list[PlannedMessage]]:
    """SendMessageBatch calls of at most 10 entries and 256 KiB in all."""
    return chunk_by_count_and_size(
        messages, size_of=lambda message: message.size, max_items=MAX_ENTRIES_PER_CALL, max_bytes=max_batch_bytes
    )


@dataclass(frozen=True, slots=True)
class FailedMessage:
    """A message SQS did not take, with its error code and message."""

    message: PlannedMessage
    reason: str


@dataclass
class SendReport:
    """What happened to the planned messages so far."""

    sent: list[PlannedMessage] = field(default_factory=list)
    failed: list[FailedMessage] = field(default_factory=list)
    unsent: list[PlannedMessage] = field(default_factory=list)
    calls: int = 0
    retried_entries: int = 0
    aborted: str | None = None  # why sending stopped: the queue is unreachable or refused us
    aborted_call: int | None = None  # which SendMessageBatch call (1 = the first batch) could not be made

    @property
    def not_sent(self) -> list[PlannedMessage]:
        """Messages that are not on the queue: those SQS failed and those never sent."""
        return [*(item.message for item in self.failed), *self.unsent]

    @property
    def sent_ids(self) -> int:
        """IDs in messages SQS accepted."""
        return sum(len(message.sequence_ids) for message in self.sent)


class BatchSender:
    """Sends planned batches with SendMessageBatch; entries SQS failed on its side are retried with backoff.

    With a `message_group_id` (a FIFO queue) batches go out one after another and SQS queues each batch's
    entries in their order. An entry SQS fails on its side is retried after the entries it took, so it lands
    behind them: the only case where the queue's order is not the input's.
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        *,
        message_group_id: str | None = None,
        max_attempts: int = 5,
        backoff_base_seconds: float = 0.5,
        backoff_max_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if message_group_id is not None and not is_message_group_id(message_group_id):
            raise ValueError("a message group ID is 1 to 128 ASCII letters, digits and punctuation characters")
        self._sqs = sqs
        self._queue_url = queue_url
        self._message_group_id = message_group_id
        self._max_attempts = max_attempts
        self._backoff = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base_seconds=backoff_base_seconds,
            backoff_max_seconds=backoff_max_seconds,
        )
        self._sleep = sleep
        self._jitter = jitter

    def send(
        self, batches: Sequence[Sequence[PlannedMessage]], *, on_batch: Callable[[SendReport], None] | None = None
    ) -> SendReport:
        """Send every batch in order; stop (recording the rest as unsent) when SQS cannot be called at all."""
        report = SendReport()
        for number, batch in enumerate(batches):
            try:
                self._send_batch(batch, report)
            except (BotoCoreError, ClientError) as exc:
                report.aborted = describe_aws_error("SQS", exc)
                report.aborted_call = number + 1
                report.unsent.extend(message for later in batches[number + 1 :] for message in later)
                break
            if on_batch is not None:
                on_batch(report)
        return report

    def _send_batch(self, batch: Sequence[PlannedMessage], report: SendReport) -> None:
        pending = {f"m{index}": message for index, message in enumerate(batch)}
        for attempt in range(1, self._max_attempts + 1):
            entries = [self._entry(entry_id, message) for entry_id, message in pending.items()]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (BotoCoreError, ClientError):
                report.unsent.extend(pending.values())
                raise
            finally:
                report.calls += 1
            for success in response.get("Successful", []):
                if (sent := pending.pop(success["Id"], None)) is not None:
                    report.sent.append(sent)
            retry: dict[str, PlannedMessage] = {}
            for failure in response.get("Failed", []):
                message = pending.pop(failure["Id"], None)
                if message is None:
                    continue
                reason = f"{failure.get('Code', 'error')}: {failure.get('Message', '')}".rstrip(": ")
                if failure.get("SenderFault") or attempt == self._max_attempts:
                    report.failed.append(FailedMessage(message, reason))
                else:
                    retry[failure["Id"]] = message
            # Entries SQS neither accepted nor failed (should not happen) are retried too.
            retry.update(pending)
            if not retry:
                return
            if attempt == self._max_attempts:
                report.failed.extend(FailedMessage(message, "no answer for this entry") for message in retry.values())
                return
            report.retried_entries += len(retry)
            pending = retry
            self._sleep(self._jitter(0.0, self._backoff.backoff_ceiling(attempt)))

    def _entry(self, entry_id: str, message: PlannedMessage) -> SendMessageBatchRequestEntryTypeDef:
        """The entry under the function's SQS policy (sequence_archiver.aws.sqs): to a FIFO queue, this
        command's group and a deduplication ID derived from the group and the body."""
        outgoing = OutgoingMessage(entry_id, message.body, message_group_id=self._message_group_id)
        entry: SendMessageBatchRequestEntryTypeDef = batch_entry(
            entry_id, outgoing, fifo=self._message_group_id is not None
        )
        return entry
