"""How records come back: deferred records continued by a sealed message, throttled ones postponed.

Continuations are sent after publishing, so a record whose results were not published is retried *without*
one, and its redelivery sends the one continuation of its part; a record whose continuation was not sent is
retried, and its redelivery publishes again (its finished IDs `already_archived`) before sending it. Waiting is
not a failure of the message: it must not count towards maxReceiveCount, and the IDs it finished must not be
archived again. A record retried because of a 429 (or our pacing) comes back when Reply said, not at the
visibility timeout.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.aws.retry_timing import Continuation, Postponement
from sequence_archiver.core.continuations import archive_continuation
from sequence_archiver.core.exceptions import ApiKeyError
from sequence_archiver.pipeline.verdicts import Fate

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.aws.retry_timing import ContinuationQueue, RecordVisibility
    from sequence_archiver.core.continuations import ContinuationSeal
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.pipeline.effects.settlement import Settlement

logger = logging.getLogger(__name__)


def continue_and_postpone(
    settlements: Sequence[Settlement],
    *,
    continuations: ContinuationQueue | None,
    seal: ContinuationSeal | None,
    visibility: RecordVisibility | None,
    sending: Deadline,
    final: Deadline,
) -> None:
    """Send the continuation of every deferred record (one not sent retries its record), then postpone every
    record retried with Reply's wait."""
    deferred: list[tuple[Settlement, Continuation]] = []
    for item in settlements:
        deferral, delivery = item.verdict.deferral, item.delivery
        if item.verdict.fate is not Fate.DEFERRED or deferral is None or delivery.receipt is None:
            continue
        if seal is None or delivery.request is None:
            continue
        document = archive_continuation(
            deferral.sequence_ids,
            deferral.continuation,
            pause_first=delivery.request.pause_first,
            workspace=delivery.request.workspace,  # the continuation uses the same key (the seal covers it)
        )
        try:
            body = seal.seal(document, sending)
        except ApiKeyError as exc:  # no key to seal it with: not sent, so the record is retried
            logger.warning(
                "could not seal the continuation",
                extra={"correlation_id": delivery.delivery_id, "error": type(exc).__name__},
            )
            body = ""
        continuation = Continuation(
            delivery.receipt.event_source_arn, delivery.delivery_id, body, deferral.wait_seconds
        )
        deferred.append((item, continuation))
    if deferred and continuations is not None:
        sendable = [continuation for _, continuation in deferred if continuation.body]
        sent = continuations.send(sendable, deadline=sending) if sendable else set()
        for item, continuation in deferred:
            deferral = item.verdict.deferral
            if continuation.key not in sent or deferral is None:
                # Already published: SQS brings the record back, which publishes this part again (its finished
                # IDs as already done) and then sends the continuation.
                item.failed.append("continuation not sent")
                continue
            item.continued = True
            logger.info(
                "record deferred to a continuation",
                extra={
                    "correlation_id": item.delivery.delivery_id,
                    "ids": len(deferral.sequence_ids),
                    "part": deferral.continuation.part,
                    "delay_seconds": round(continuation.delay_seconds, 1),
                },
            )
    postponements = [
        Postponement(item.delivery.receipt.event_source_arn, item.delivery.receipt.receipt_handle, seconds)
        for item in settlements
        if item.verdict.fate is Fate.RETRY
        and (seconds := item.verdict.retry_after_seconds) is not None
        and item.delivery.receipt is not None
    ]
    if postponements and visibility is not None:
        visibility.postpone(postponements, deadline=final)
