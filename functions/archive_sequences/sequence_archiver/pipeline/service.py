"""One invocation, whatever its trigger, in one pass: read → work → decide → apply → respond.

The event is read into deliveries (deliveries.py); their work is done for the whole batch (work.py: claim,
parse, list, archive, so bulk calls span an SQS batch); each one's fate is decided by a pure function
(verdicts.py); the effects of all verdicts are applied once each (effects/apply.py); the trigger gets its answer
(responses.py). Only invocation-wide conditions (configuration, an unreadable key) touch every delivery. Reply
work stops at the work deadline; every AWS call after it is bounded by the final deadline (see deadline.py).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sequence_archiver.core.deadline import InvocationDeadlines
from sequence_archiver.core.exceptions import UnsupportedEventError
from sequence_archiver.core.request_report import EventShape
from sequence_archiver.observability import correlation
from sequence_archiver.pipeline.deliveries import read_event
from sequence_archiver.pipeline.effects.settlement import Settlement
from sequence_archiver.pipeline.fifo import archive_in_order
from sequence_archiver.pipeline.responses import respond
from sequence_archiver.pipeline.verdicts import Rules, decide

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sequence_archiver.aws.idempotency import RequestIdempotency
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.pipeline.effects.apply import Effects
    from sequence_archiver.pipeline.work import Work

logger = logging.getLogger(__name__)


class ArchiveService:
    """Runs the pipeline over an invocation's deliveries; created once per Lambda instance."""

    def __init__(
        self,
        *,
        work: Work,
        effects: Effects,
        metrics: MetricsRecorder,
        deadline_safety_margin_seconds: float,
        max_receive_count: int = 5,
        idempotency: RequestIdempotency | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._work = work
        self._effects = effects
        self._metrics = metrics
        self._max_receive_count = max_receive_count  # the queue's redrive policy
        self._idempotency = idempotency
        self._safety_margin = deadline_safety_margin_seconds
        self._clock = clock

    def handle(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        """Run every delivery of the event through the pipeline and answer as its trigger expects."""
        deadlines = InvocationDeadlines.from_context(
            context, safety_margin_seconds=self._safety_margin, clock=self._clock
        )
        if self._idempotency is not None:
            self._idempotency.start_invocation(context)
        try:
            invocation = read_event(event, invocation_id=context.aws_request_id)
        except UnsupportedEventError:
            self._metrics.record_unsupported_event()  # a mapping attached by mistake shows on the dashboard too
            raise
        ids = [delivery.delivery_id for delivery in invocation.deliveries]
        with correlation(ids if invocation.shape is EventShape.SQS else ids[0] if len(ids) == 1 else ids):
            logger.info(
                "archive request received",
                extra={"trigger": invocation.shape.value, "deliveries": len(invocation.deliveries)},
            )
            active = self._work.prepare(invocation, deadlines)
            rules = Rules(self._effects.can_continue, self._max_receive_count, fifo=invocation.fifo)
            settled: dict[int, Settlement] = {}  # FIFO records are decided (and parked) in order, as they go
            if invocation.fifo:
                settled = archive_in_order(active, self._work, self._effects, rules, deadlines.work)
            else:
                self._work.archive(active, deadlines.work)
            settlements = [
                settled.get(id(delivery)) or Settlement(delivery, decide(delivery, rules))
                for delivery in invocation.deliveries
            ]
            self._effects.apply(settlements, deadlines)
        return respond(invocation.shape, settlements)
