"""Parking unparseable SQS records in the dead-letter queue ourselves, so they are not retried in vain."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.archive_request import encodable
from sequence_archiver.aws_calls import call_within

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageRequestTypeDef

    from sequence_archiver.deadline import Deadline

logger = logging.getLogger(__name__)

_MAX_ATTRIBUTE_CHARS = 1_000


class DeadLetterQueue:
    """Sends a rejected record's original body to the DLQ, with the reason as a message attribute."""

    def __init__(self, *, sqs_client: Callable[[], SQSClient], queue_url: str) -> None:
        self._sqs_client = sqs_client  # a factory: the client is only built when a record needs it
        self._queue_url = queue_url

    def park(
        self,
        *,
        body: str,
        reason: str,
        message_id: str,
        deadline: Deadline | None = None,
        message_group_id: str | None = None,
    ) -> bool:
        """True once the DLQ holds the message; False when it could not be sent by `deadline` (the caller retries)."""
        try:
            client = self._sqs_client()  # built here, on the caller's thread: boto3 sessions are not thread-safe
            request: SendMessageRequestTypeDef = {
                "QueueUrl": self._queue_url,
                "MessageBody": body,
                "MessageAttributes": {
                    "RejectionReason": {"DataType": "String", "StringValue": _attribute_text(reason)},
                    "OriginalMessageId": {"DataType": "String", "StringValue": _attribute_text(message_id)},
                    "RejectedBy": {"DataType": "String", "StringValue": "reply-sequence-archiver"},
                },
            }
            if self._queue_url.endswith(".fifo"):
                # A FIFO DLQ needs a group (the record's own, so a redrive keeps the groups) and a deduplication ID.
                request["MessageGroupId"] = (message_group_id or "rejected")[:128]
                request["MessageDeduplicationId"] = message_id[:128]
            call_within(deadline, "SendMessage", client.send_message, **request)
        # SDK errors (BotoCoreError, ClientError), AwsCallTimeoutError, or any surprise: this record is not parked.
        except Exception as exc:
            logger.error(
                "could not send rejected record to the dead-letter queue",
                extra={"message_id": message_id, "error": type(exc).__name__},
            )
            return False
        logger.warning(
            "rejected record sent to the dead-letter queue",
            extra={"message_id": message_id, "reason": reason},
        )
        return True


def _attribute_text(text: str) -> str:
    """A message attribute value SQS accepts: bounded, and a lone surrogate kept as visible escape text."""
    return encodable(text, _MAX_ATTRIBUTE_CHARS) or "-"
