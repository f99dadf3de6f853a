"""Parking unparseable SQS records in the dead-letter queue ourselves, so they are not retried in vain."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs.client import SQSClient

    from sequence_archiver.deadline import Deadline

logger = logging.getLogger(__name__)

_MAX_ATTRIBUTE_CHARS = 1_000


class DeadLetterQueue:
    """Sends a rejected record's original body to the DLQ, with the reason as a message attribute."""

    def __init__(self, *, sqs_client: Callable[[], SQSClient], queue_url: str) -> None:
        self._sqs_client = sqs_client  # a factory: the client is only built when a record needs it
        self._queue_url = queue_url

    def park(self, *, body: str, reason: str, message_id: str, deadline: Deadline | None = None) -> bool:
        """True once the DLQ holds the message; False when it could not be sent (the caller retries)."""
        try:
            self._sqs_client().send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                MessageAttributes={
                    "RejectionReason": {"DataType": "String", "StringValue": reason[:_MAX_ATTRIBUTE_CHARS]},
                    "OriginalMessageId": {"DataType": "String", "StringValue": message_id},
                    "RejectedBy": {"DataType": "String", "StringValue": "reply-sequence-archiver"},
                },
            )
        except (BotoCoreError, ClientError) as exc:
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
