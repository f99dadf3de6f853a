"""Rejected SQS records parked in the dead-letter queue by the function, so they are not retried in vain.

A record parked by an earlier delivery (whose results event was then not published) is not parked twice: the
park is recorded in the idempotency table, when the table answered the delivery's claim. A record that could
not be parked is retried, and its report withdrawn until it is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.aws.idempotency import Claim
from sequence_archiver.observability import correlation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.aws.dead_letters import DeadLetterQueue
    from sequence_archiver.aws.idempotency import RequestIdempotency
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.pipeline.effects.settlement import Settlement

logger = logging.getLogger(__name__)

RECORD_LOOKUPS_SHARE = 0.5  # of parking's time: what the idempotency table may take, for all records together


def park_rejected(
    settlements: Sequence[Settlement],
    dead_letters: DeadLetterQueue | None,
    idempotency: RequestIdempotency | None,
    deadline: Deadline,
) -> None:
    """Park every settlement whose verdict says so, once."""
    lookups = deadline.share(RECORD_LOOKUPS_SHARE)
    for item in settlements:
        if not item.verdict.park or item.parked:
            continue
        delivery = item.delivery
        with correlation(delivery.delivery_id):  # the adapters' lines name the record too
            group = delivery.receipt.message_group_id if delivery.receipt is not None else None
            if delivery.rejection is None:  # a FIFO record given up at its last receive
                logger.warning(
                    "dead-lettering a record at its last receive so its message group goes on",
                    extra={"message_group_id": group, "reason": item.verdict.reason},
                )
            # The record of the park (delivery IDs never hold '#', so no request claims it).
            table = idempotency if idempotency is not None and delivery.claim is Claim.NEW else None
            key = f"parked#{delivery.delivery_id}"
            if table is not None and table.recall(key, lookups) is not None:
                item.parked = True
            elif dead_letters is not None and delivery.receipt is not None:
                item.parked = dead_letters.park(
                    body=delivery.payload if isinstance(delivery.payload, str) else "",
                    reason=item.verdict.reason or "request rejected",
                    message_id=delivery.delivery_id,
                    deadline=deadline,
                    message_group_id=group,
                )
                if item.parked and table is not None:
                    table.remember(key, {"parked": True}, deadline=lookups)
        if not item.parked:  # retried, and reported when it is finally parked
            item.failed.append(f"request rejected and not dead-lettered: {item.verdict.reason}")
            item.withdrawn = True
