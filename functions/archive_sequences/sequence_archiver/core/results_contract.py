"""The results and plan events' EventBridge names and plan outcomes, shared by the function, the CLI's report and
the local stack.

Imports only the standard library, so a reader of these events (the CLI, the local stack) gets them without the
function's AWS SDK. The details' shapes are in schemas/.
"""

from __future__ import annotations

from enum import StrEnum

RESULTS_DETAIL_TYPE = "Sequence Archive Results"
RESULTS_EVENT_SOURCE = "reply.sequence-archiver"  # the default Source; RESULTS_EVENT_SOURCE in the environment wins
PLAN_DETAIL_TYPE = "Sequence Archive Plan"  # a clean-up policy's plan: schemas/sequence-archive-plan.json


class PlanOutcome(StrEnum):
    """What a clean-up request came to: the plan event's `outcome`."""

    PLANNED = "planned"  # dry run: every page listed, nothing enqueued
    ENQUEUED = "enqueued"  # live run: every page listed, every selected ID on the archive queue
    OVER_LIMIT = "over_limit"  # more than maxSequences match: nothing enqueued
    REFUSED = "refused"  # Reply refused the list call (4xx): nothing enqueued
    FAILED = "failed"  # the listing could not finish (Reply kept failing, no archive queue to continue on)
    CONTINUED = "continued"  # the listing goes on in a continuation (returned to a direct caller, never published)
