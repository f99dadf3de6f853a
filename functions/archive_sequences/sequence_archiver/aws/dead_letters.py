"""Parking unparseable SQS records in the dead-letter queue ourselves, so they are not retried in vain."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.aws.sqs import OutgoingMessage
from sequence_archiver.core.archive_request import encodable

if TYPE_CHECKING:
    from sequence_archiver.aws.sqs import SqsSender
    from sequence_archiver.core.deadline import Deadline

logger = logging.getLogger(__name__)

_MAX_ATTRIBUTE_CHARS = 1_000


class DeadLetterQueue:
    """Sends a rejected record's original body to the DLQ, with the reason as a message attribute."""

    def __init__(self, *, sender: SqsSender, queue_url: str) -> None:
        self._sender = sender
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
        """True once the DLQ holds the message; False when it could not be sent by `deadline` (the caller retries).

        To a FIFO DLQ it goes in the record's own group (so a redrive keeps the groups), deduplicated on its
        message ID."""
        message = OutgoingMessage(
            message_id,
            body,
            message_group_id=message_group_id or "rejected",
            deduplication_id=message_id,
            attributes={
                "RejectionReason": _attribute_text(reason),
                "OriginalMessageId": _attribute_text(message_id),
                "RejectedBy": "reply-sequence-archiver",
            },
        )
        if message_id not in self._sender.send(self._queue_url, [message], deadline):
            logger.error("could not send rejected record to the dead-letter queue", extra={"message_id": message_id})
            return False
        logger.warning(
            "rejected record sent to the dead-letter queue",
            extra={"message_id": message_id, "reason": reason},
        )
        return True


def _attribute_text(text: str) -> str:
    """A message attribute value SQS accepts: bounded, and a lone surrogate kept as visible escape text."""
    return encodable(text, _MAX_ATTRIBUTE_CHARS) or "-"
