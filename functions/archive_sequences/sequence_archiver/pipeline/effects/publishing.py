"""The results events and finished clean-up plans published, one PutEvents pass for the whole invocation.

A delivery whose event was not published is retried; its redelivery publishes the same part again (the IDs it
finished as already done) before anything that comes after publishing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.aws.results_publisher import ResultsPublisher
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.pipeline.effects.settlement import Settlement

logger = logging.getLogger(__name__)


def publish_results(settlements: Sequence[Settlement], publisher: ResultsPublisher, deadline: Deadline) -> None:
    """One results event per reported delivery, one plan event per finished clean-up."""
    reports = [item.report for item in settlements if item.report is not None]
    plans = [item.plan for item in settlements if item.plan is not None and item.plan.final]
    if not reports and not plans:
        return
    try:
        unpublished = publisher.publish(reports, deadline=deadline, plans=plans)
    except Exception as exc:  # the publisher contains per-report errors; anything else is ours
        logger.exception("publishing failed unexpectedly", extra={"error": type(exc).__name__})
        unpublished = {report.request_id for report in reports} | {plan.request_id for plan in plans}
    for item in settlements:
        if item.report is not None and item.report.request_id in unpublished:
            item.unpublished = True
            item.failed.append("results event not published")
        if item.plan is not None and item.plan.final and item.plan.request_id in unpublished:
            item.unpublished = True
            item.failed.append("plan event not published")
