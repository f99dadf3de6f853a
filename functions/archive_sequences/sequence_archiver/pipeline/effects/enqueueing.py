"""The first effect: each listed clean-up selection planned, and enqueued or continued.

A live run's messages are recorded in the idempotency table as they are sent (archiving/cleanup.py), before
its plan is published, so a redelivery sends only what was not sent. A request whose messages were not all sent
is retried.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.observability import correlation

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver.archiving.cleanup import CleanupPolicies
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.pipeline.effects.settlement import Settlement

logger = logging.getLogger(__name__)


def enqueue_selections(
    settlements: Sequence[Settlement], cleanup: Callable[[], CleanupPolicies] | None, deadline: Deadline
) -> None:
    """Plan, enqueue or continue each listed selection; a request whose messages were not sent is retried."""
    listed = [
        (item, item.delivery.selection_run)
        for item in settlements
        if item.verdict.selecting and not item.verdict.retried and item.delivery.selection_run is not None
    ]
    if not listed or cleanup is None:
        return
    policies = cleanup()
    for item, run in listed:
        with correlation(item.delivery.delivery_id):  # the queue's and the table's lines name the request too
            try:
                item.plan = policies.settle(run, deadline)
            except Exception as exc:  # SQS errors are contained by the queue; anything else is ours
                logger.exception(
                    "settling the selection failed unexpectedly",
                    extra={"error": type(exc).__name__},
                )
        if item.plan is None:
            item.failed.append("the clean-up request's messages were not all sent to the archive queue")
