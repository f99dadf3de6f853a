"""The last effect on the idempotency table: completed requests recorded as done, retried ones released.

It comes after every other effect, so a request is recorded complete only once everything it did is done; a
request that must come again gives its claim back, so its redelivery is not taken for a duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sequence_archiver.aws.idempotency import Claim
from sequence_archiver.observability import correlation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.aws.idempotency import RequestIdempotency
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.pipeline.effects.settlement import Settlement


def settle_claims(
    settlements: Sequence[Settlement], idempotency: RequestIdempotency | None, deadline: Deadline
) -> None:
    """Record each claimed request as completed (with a summary) or release its claim."""
    if idempotency is None:
        return
    for item in settlements:
        delivery = item.delivery
        if delivery.claim is not Claim.NEW:
            continue
        with correlation(delivery.delivery_id):  # the table's own lines name the request too
            if item.verdict.retried:
                idempotency.release(delivery.delivery_id, item.verdict.reason or "retried", deadline=deadline)
            elif item.report is not None:
                detail = item.report.detail()
                summary = {"complete": detail["complete"], "counts": detail["counts"]}
                idempotency.complete(delivery.delivery_id, summary, deadline=deadline)
            elif item.plan is not None:
                summary = {"complete": item.plan.complete, "outcome": item.plan.outcome.value}
                idempotency.complete(delivery.delivery_id, summary, deadline=deadline)
