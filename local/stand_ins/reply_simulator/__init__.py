"""A local Reply API v3 simulator for the sequence operations, served over real HTTP.

It follows openapi/README.md (the behaviour summary) and openapi/openapi-excerpt.yaml (Reply's spec):
GET /v3/sequences, GET /v3/sequences/{id}, POST /v3/sequences/{id}/pause,
POST /v3/sequences/{id}/archive and POST /v3/sequences/archive (bulk), with per-sequence state,
bearer keys with scopes, per-key sliding-window rate limits and fault injection.

Default seed (every key belongs to user 1; the demo's sample events and the tests rely on these ids):

=========  ==================================  ===============================================
ids        state                               POST /v3/sequences/{id}/archive answers
=========  ==================================  ===============================================
101-120    paused                              200, isArchived becomes true (status kept)
201-205    new (never started)                 200
301-305    active                              409 sequenceAction.invalidState *
401-405    paused, already archived            409 sequenceAction.archived
501-505    paused, owned by user 2             403 sequenceAction.forbidden
601        paused, owner's team member removed 400 sequenceAction.teamMemberNotFound
701-702    paused, sales-agent sequence        409 sequenceAction.salesAgentNotAllowed *
other      (1..2147483647, absent)             404 sequenceAction.notFound
=========  ==================================  ===============================================

Names read like "Seed 101 (paused)"; creation times are 2024-01-01T00:00Z plus the id in minutes.

Codes the spec does not document (marked * above; also the bulk per-item ``invalidState`` and
``teamMemberNotFound``, pause 409 ``sequenceAction.notStarted`` and list 400 ``sequence.invalidFilter``)
are assumptions, every one of them listed, explained and switchable in assumptions.py
(``ReplySimulator(assumptions=Assumptions.spec_only())`` answers with documented codes only).

Where the spec differs from what was seen live, the spec is the default and the live answer an option:
- a 401 has an empty body and ``WWW-Authenticate: Bearer`` (``unauthorized_body="problem"``: the live
  problem+json body, with the same header);
- no ``x-rate-limit-*`` headers (``rate_limit_headers=True``: the live headers, describing the hour window,
  or the minute window if there is no hourly limit, on every response to an accepted key).

Other choices where the spec is silent (no undocumented code involved):
- Pausing a paused sequence is 200 (documented); pausing an archived one is 409 ``sequenceAction.archived``
  (documented). Sales-agent sequences can be paused.
- Bulk validation: a missing, empty or too long ``ids`` is ``/ids`` "'ids' must contain between 1 and
  N items." (N = ``bulk_max_ids``, 100 by default as in the spec's example, although its text says up to
  1000); a non-integer item is ``/ids/<index>`` "Value has an invalid type."; an unreadable body has
  pointer "". Ids <= 0 are per-item ``notFound``. Duplicates count once.
- Validation problems use the spec's example title "Validation failed".
- The list shows only user 1's sequences; ``sortDirection`` without ``sortBy`` is 400
  ``sequence.invalidSort``; no sequence is in a folder, so any ``folderId`` returns no items.
- Scopes are exact: no scope implies another.
- Request order: auth (401), rate limit (429, not counted), an injected fault, then the scope check
  (403), validation (400) and the operation. At most one fault fires per request, the first armed one
  that matches. Delay, drip, headers and body faults let the request run (state changes) and then
  change how its answer goes out; status, drop, malformed and echo faults answer instead of it
  (``Fault``'s docstring describes each kind). A fault's own ``x-rate-limit-*`` headers win over the
  simulated ones.
- Admin endpoints under /__sim take no auth and are neither recorded nor rate-limited. ``GET`` and
  ``POST /__sim/settings`` show and change the answer settings (401 body, bulk limit, latency,
  rate-limit headers, assumptions) while the simulator runs.

Run it by hand with ``python -m local.stand_ins.reply_simulator --port 8080`` (``--help`` lists the options).
"""

from __future__ import annotations

from local.stand_ins.reply_simulator.assumptions import Assumptions
from local.stand_ins.reply_simulator.models import (
    ALL_SCOPES,
    DEFAULT_API_KEY,
    DEFAULT_RATE_LIMIT,
    SCOPE_OPERATE,
    SCOPE_READ,
    SCOPE_WRITE,
    Fault,
    RateLimit,
    RecordedRequest,
    SimulatedSequence,
    key_fingerprint,
)
from local.stand_ins.reply_simulator.simulator import ReplySimulator
from local.stand_ins.reply_simulator.store import DEFAULT_SEED, SeedGroup

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_API_KEY",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_SEED",
    "SCOPE_OPERATE",
    "SCOPE_READ",
    "SCOPE_WRITE",
    "Assumptions",
    "Fault",
    "RateLimit",
    "RecordedRequest",
    "ReplySimulator",
    "SeedGroup",
    "SimulatedSequence",
    "key_fingerprint",
]
