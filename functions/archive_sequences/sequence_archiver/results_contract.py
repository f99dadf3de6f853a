"""The results event's EventBridge names, shared by the function, the CLI's report and the local stack.

Imports nothing, so a reader of results events (the CLI, the local stack) gets these strings without the
function's AWS SDK. The detail's shape is schemas/sequence-archive-results.json.
"""

from __future__ import annotations

RESULTS_DETAIL_TYPE = "Sequence Archive Results"
RESULTS_EVENT_SOURCE = "reply.sequence-archiver"  # the default Source; RESULTS_EVENT_SOURCE in the environment wins
PLAN_DETAIL_TYPE = "Sequence Archive Plan"  # a clean-up policy's plan: schemas/sequence-archive-plan.json
