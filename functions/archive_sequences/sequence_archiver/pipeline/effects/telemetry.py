"""What the invocation came to, told once: one log line per request worked on, then the invocation's metrics.

Both are counted from the settlements after every other effect, so a line or a metric says what happened: a
redelivery that took up an earlier one's enqueueing counts nothing twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sequence_archiver.core.outcomes import count_outcomes
from sequence_archiver.pipeline.verdicts import Fate

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.core.outcomes import SequenceResult
    from sequence_archiver.observability import MetricsRecorder
    from sequence_archiver.pipeline.effects.settlement import Settlement

logger = logging.getLogger(__name__)


def log_and_measure(settlements: Sequence[Settlement], metrics: MetricsRecorder) -> None:
    """A line per request that was worked on, then the invocation's metrics."""
    for item in settlements:
        retry = item.verdict.reason if item.verdict.retried else None
        if item.delivery.rejection is not None and item.delivery.ours:
            logger.error(
                "request rejected",
                extra={"correlation_id": item.delivery.delivery_id, "reason": item.delivery.rejection},
            )
        if item.report is not None:
            report = item.report
            counts = {key: value for key, value in count_outcomes(report.results).items() if value}
            logger.info(
                "archive request finished",
                extra={
                    "correlation_id": report.request_id,
                    "request_id": report.request_id,
                    "workspace": report.workspace,
                    "trigger": report.trigger.value,
                    "complete": report.complete,
                    "retry": retry,
                    **counts,
                },
            )
        if item.plan is not None:
            plan = item.plan
            logger.info(
                "clean-up request finished" if plan.final else "clean-up request continues",
                extra={
                    "correlation_id": plan.request_id,
                    "request_id": plan.request_id,
                    "workspace": plan.run.request.workspace,
                    "outcome": plan.outcome.value,
                    "complete": plan.complete,
                    "selected": len(plan.run.selected_ids),
                    "enqueued": plan.enqueued_ids,
                    "pages": plan.run.pages,
                    "part": plan.run.part,
                    "reason": plan.reason,
                    "retry": retry,
                },
            )
    for item in settlements:
        if item.verdict.fate is Fate.DUPLICATE:
            metrics.record_duplicate_request()
        elif item.delivery.rejection is not None and item.delivery.ours:
            metrics.record_rejected_request()
        run = item.delivery.selection_run
        if item.plan is not None and item.plan.final and run is not None:
            # What this invocation did: a redelivery that took up an earlier one's enqueueing counts nothing twice.
            selected = 0 if run.recalled else len(run.selected_ids)
            metrics.record_plan(selected=selected, enqueued=item.plan.enqueued_now)
        if item.continued and item.verdict.deferral is not None:
            metrics.record_deferred(len(item.verdict.deferral.sequence_ids))
    metrics.record_invocation(result for item in settlements for result in item.verdict.measured)
    # The same results again per workspace: a request naming one that is not served is only in the figures above.
    by_workspace: dict[str, list[SequenceResult]] = {}
    for item in settlements:
        workspace = item.delivery.workspace
        if workspace is not None and item.delivery.rejection is None:
            by_workspace.setdefault(workspace, []).extend(item.verdict.measured)
    metrics.record_workspaces(by_workspace)
