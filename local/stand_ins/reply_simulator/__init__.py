"""A local Reply API v3 simulator for the sequence operations, served over real HTTP.

It follows openapi/README.md (the behaviour summary) and openapi/openapi-excerpt.yaml (Reply's spec):
GET /v3/sequences, GET /v3/sequences/{id}, POST /v3/sequences/{id}/pause,
POST /v3/sequences/{id}/archive and POST /v3/sequences/archive (bulk); and, following
openapi/contacts-excerpt.yaml, a sequence's contacts (GET /v3/sequences/{id}/contacts and .../contacts/state,
POST .../contact-links/bulk; archiving removes them) and POST /v3/sequences/{id}/unarchive (coming soon unless
``Assumptions.unarchive_coming_soon`` is off; docs/reply-spec.md lists the choices); with per-sequence state,
workspaces with users, user keys and Master API keys (identities.py), bearer keys with scopes, per-user
sliding-window rate limits and fault injection.

Default seed (in workspace 1, whose owner is user 1: every legacy key, ``api_keys``, is user 1's; the demo's
sample events and the tests rely on these ids):

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
- The list shows the sequences the acting user sees (with the default keys: user 1's); ``sortDirection``
  without ``sortBy`` is 400 ``sequence.invalidSort``; no sequence is in a folder, so any ``folderId`` returns
  no items.
- Scopes are exact: no scope implies another.
- Request order: auth (401), the acting user (400 ``actingUser.*``: identities.py), that user's rate limit
  (429, not counted), an injected fault, then the scope check (403), validation (400) and the operation.
  At most one fault fires per request, the first armed one that matches. Delay, drip, headers and body
  faults let the request run (state changes) and then change how its answer goes out; status, drop,
  malformed and echo faults answer instead of it (``Fault``'s docstring describes each kind). A fault's own
  ``x-rate-limit-*`` headers win over the simulated ones.
- Admin endpoints under /__sim take no auth and are neither recorded nor rate-limited. ``GET`` and
  ``POST /__sim/settings`` show and change the answer settings (401 body, bulk limit, latency,
  rate-limit headers, assumptions) while the simulator runs.

Users, workspaces and keys (identities.py, following Reply's documentation pages: openapi/README.md, "Keys and
whose budget a call spends"):

- Every workspace has users (exactly one ``owner``; ``admin`` and ``member`` otherwise), user keys, and at most
  one Master API key. The default is workspace 1 with user 1 (``user1@example.com``, its owner) and user 2
  (``user2@example.com``), and no master key; ``api_keys`` are user 1's keys. A sequence has an owner
  (``ownerUserId`` in the list and in GET) and a workspace.
- A user key acts as its user. The master key acts as the workspace owner, or as the user ``X-User-Id`` or
  ``X-User-Email`` names, with that user's permissions; the key's own scopes apply.
- Rate limits count per user, across every key acting for them (``RateLimit`` is a user's budget).
- A sequence of another workspace is not found (404, a bulk item ``notFound``) and never listed; one of the
  same workspace that the acting user may not see is forbidden (403).
- Assumed where the pages are silent, each a switch in assumptions.py: a user key sent with either header is
  400 ``actingUser.notAllowed`` (off: the headers are ignored); a header naming nobody of the key's workspace is
  400 ``actingUser.notFound`` (off: no code); only a sequence's owner sees it (off: the workspace's owner and
  admins see all of it).
- ``ReplySimulator(workspaces=[SimulatedWorkspace(...)])``, set_workspace(), add_user(), set_master_key(), and
  ``/__sim/workspaces...`` (admin.py) configure them; user_calls() and ``GET /__sim/user-calls`` count each
  user's calls and 429s; each recorded request has the ``acting_user_id``, and each sequence archived by a call
  its ``archived_by_user_id``.

Run it by hand with ``python -m local.stand_ins.reply_simulator --port 8080`` (``--help`` lists the options;
``--master-key KEY`` gives workspace 1 a master key).
"""

from __future__ import annotations

from local.stand_ins.reply_simulator.assumptions import Assumptions
from local.stand_ins.reply_simulator.identities import (
    USER_EMAIL_HEADER,
    USER_ID_HEADER,
    SimulatedUser,
    SimulatedWorkspace,
    UserKey,
)
from local.stand_ins.reply_simulator.models import (
    ALL_SCOPES,
    DEFAULT_API_KEY,
    DEFAULT_RATE_LIMIT,
    DEFAULT_WORKSPACE_ID,
    SCOPE_OPERATE,
    SCOPE_READ,
    SCOPE_WRITE,
    Fault,
    RateLimit,
    RecordedRequest,
    SimulatedSequence,
    UserCalls,
    key_fingerprint,
)
from local.stand_ins.reply_simulator.simulator import ReplySimulator
from local.stand_ins.reply_simulator.store import DEFAULT_SEED, SeedGroup

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_API_KEY",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_SEED",
    "DEFAULT_WORKSPACE_ID",
    "SCOPE_OPERATE",
    "SCOPE_READ",
    "SCOPE_WRITE",
    "USER_EMAIL_HEADER",
    "USER_ID_HEADER",
    "Assumptions",
    "Fault",
    "RateLimit",
    "RecordedRequest",
    "ReplySimulator",
    "SeedGroup",
    "SimulatedSequence",
    "SimulatedUser",
    "SimulatedWorkspace",
    "UserCalls",
    "UserKey",
    "key_fingerprint",
]
