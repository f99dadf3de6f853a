"""ReplySimulator: a Reply API v3 stand-in served over real HTTP on a daemon thread."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from local.stand_ins.background import BackgroundService
from local.stand_ins.reply_simulator.admin import ADMIN_PREFIX, handle_admin
from local.stand_ins.reply_simulator.api import ApiSettings, ReplyApi
from local.stand_ins.reply_simulator.assumptions import Assumptions
from local.stand_ins.reply_simulator.http_server import SimulatorHTTPServer
from local.stand_ins.reply_simulator.identities import (
    Directory,
    SimulatedUser,
    SimulatedWorkspace,
    UserKey,
    default_workspace,
)
from local.stand_ins.reply_simulator.messages import problem_response
from local.stand_ins.reply_simulator.models import (
    ALL_SCOPES,
    DEFAULT_API_KEY,
    DEFAULT_RATE_LIMIT,
    DEFAULT_WORKSPACE_ID,
)
from local.stand_ins.reply_simulator.store import (
    SequenceStore,
    enrolment,
    make_sequence,
    make_workspace_contacts,
    seed_sequences,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from local.stand_ins.reply_simulator.messages import HttpRequest, HttpResponse
    from local.stand_ins.reply_simulator.models import (
        Fault,
        RateLimit,
        RecordedRequest,
        SimulatedSequence,
        UserCalls,
    )

logger = logging.getLogger(__name__)


class ReplySimulator(BackgroundService):
    """Behaves like Reply API v3 for the sequence operations, with state, auth, rate limits and faults.

    - `unauthorized_body`: "empty" (the default: the spec says a 401's body is empty; check
      WWW-Authenticate) or "problem" (the problem+json body seen live). Both carry `WWW-Authenticate: Bearer`.
    - `rate_limit_headers`: send the live `x-rate-limit-*` headers (not in the spec; off by default).
    - `bulk_max_ids`: the bulk endpoint's size limit; more IDs are the spec's 400 validation error with
      pointer `/ids`, "'ids' must contain between 1 and N items." (the spec's text says up to 1000, its
      example 1..100: 100 by default).
    - `assumptions`: the answers the spec does not document (assumptions.py); `Assumptions.spec_only()`
      answers with documented codes only.

    Each can be changed while running with configure() or `POST /__sim/settings`.

    Users and keys (identities.py): `workspaces` are the simulator's workspaces, each with its users (one
    owner), user keys and optional Master API key; by default one workspace, 1, with user 1 (its owner) and
    user 2, and no master key. `api_keys` (key to scopes; by default `local-dev-key` with every scope when no
    `workspaces` are given) are user keys of the first workspace's owner: user 1 by default. The rate limit is
    per user: every key acting for a user spends that user's budget. The default seed (`seed`) goes to the
    first workspace. Change them while running with set_workspace(), add_user(), set_master_key() and
    set_api_keys(), or `POST /__sim/workspaces...`; read who did what with user_calls(), `requests`
    (`acting_user_id`) and each sequence's `archived_by_user_id`.
    """

    def __init__(
        self,
        api_keys: Mapping[str, Iterable[str]] | None = None,
        *,
        workspaces: Iterable[SimulatedWorkspace] | None = None,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        rate_limit_headers: bool = False,
        latency_seconds: float = 0.0,
        bulk_max_ids: int = 100,
        unauthorized_body: str = "empty",
        assumptions: Assumptions | None = None,
        seed: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        settings = ApiSettings(
            unauthorized_body=unauthorized_body,
            bulk_max_ids=bulk_max_ids,
            latency_seconds=latency_seconds,
            rate_limit_headers=rate_limit_headers,
            assumptions=assumptions if assumptions is not None else Assumptions(),
        )
        self._seed = seed
        self._host = host
        self._requested_port = port
        self._store = SequenceStore()
        self._directory = _directory(workspaces, api_keys)
        self._api = ReplyApi(self._store, settings, rate_limit, self._directory)
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle_lock = threading.Lock()
        if seed:
            self._store.replace_all(seed_sequences(self._directory.primary_workspace_id))

    # Lifecycle

    def start(self) -> ReplySimulator:
        """Bind the port and serve on a daemon thread; return self."""
        with self._lifecycle_lock:
            if self._server is not None:
                raise RuntimeError("the simulator is already running")
            server = SimulatorHTTPServer((self._host, self._requested_port), self._dispatch)
            thread = threading.Thread(target=server.serve_until_stopped, name="reply-simulator", daemon=True)
            thread.start()
            self._server, self._thread = server, thread
        logger.info("reply simulator started", extra={"base_url": self.base_url})
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and free the port (safe to call twice)."""
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            self._server, self._thread = None, None
        if server is None:
            return
        server.stop_serving()
        if thread is not None:
            thread.join(timeout=5)
        server.close_connections()
        server.server_close()
        logger.info("reply simulator stopped")

    @property
    def port(self) -> int:
        """Return the bound port (only while running)."""
        server = self._server
        if server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return int(server.server_address[1])

    @property
    def base_url(self) -> str:
        """Return the base URL, e.g. http://127.0.0.1:54321 (only while running)."""
        return "http://" + self._host + ":" + str(self.port)

    # State

    def add_sequence(
        self,
        sequence_id: int,
        *,
        name: str | None = None,
        status: str = "paused",
        is_archived: bool = False,
        owner_user_id: int | None = None,
        sales_agent: bool = False,
        team_member_removed: bool = False,
        created: datetime | None = None,
        workspace_id: int | None = None,
        health: str = "healthy",
    ) -> SimulatedSequence:
        """Add or replace one sequence and return its snapshot.

        `health` is healthy, stalled, degraded or blocked (the spec's SequenceBase.health). `owner_user_id`
        defaults to the first workspace's owner (user 1 by default); `workspace_id` to the owner's workspace, or
        the first workspace for an owner no workspace has (a user who left, say).
        """
        owner, workspace = self._owner_and_workspace(owner_user_id, workspace_id)
        sequence = make_sequence(
            sequence_id,
            name=name,
            status=status,
            is_archived=is_archived,
            owner_user_id=owner,
            sales_agent=sales_agent,
            team_member_removed=team_member_removed,
            created=created,
            workspace_id=workspace,
            health=health,
        )
        self._store.put_many((sequence,))
        return sequence

    def add_sequences(
        self,
        sequence_ids: Iterable[int],
        *,
        status: str = "paused",
        is_archived: bool = False,
        owner_user_id: int | None = None,
        sales_agent: bool = False,
        team_member_removed: bool = False,
        workspace_id: int | None = None,
        health: str = "healthy",
    ) -> int:
        """Add or replace many sequences sharing one state and owner; return how many were written.

        `owner_user_id` and `workspace_id` default as in add_sequence().
        """
        owner, workspace = self._owner_and_workspace(owner_user_id, workspace_id)
        return self._store.put_many(
            make_sequence(
                sequence_id,
                status=status,
                is_archived=is_archived,
                owner_user_id=owner,
                sales_agent=sales_agent,
                team_member_removed=team_member_removed,
                workspace_id=workspace,
                health=health,
            )
            for sequence_id in sequence_ids
        )

    def sequence(self, sequence_id: int) -> SimulatedSequence | None:
        """Return a snapshot of one sequence, or None if it does not exist."""
        return self._store.get(sequence_id)

    def sequences(self) -> list[SimulatedSequence]:
        """Return snapshots of every sequence (of every owner)."""
        return self._store.all()

    def add_contacts(
        self,
        sequence_id: int,
        count: int,
        *,
        status: str = "active",
        start_id: int = 1,
        last_step_completed_at: datetime | None = None,
    ) -> list[dict[str, object]]:
        """Enrol `count` deterministic contacts (ids start_id, start_id + 1, ...) in an existing sequence that is
        not archived, replacing contacts with the same ids; return them as GET /v3/sequences/{id}/contacts
        items (contactId, sequenceId, email, firstName, lastName, company, title, statusInSequence, isOptedOut,
        currentStep, addingDate, ...). They become contacts of the sequence's workspace too.

        Contact 7 is "Contact 7" <contact7@example.com>, a Buyer at "Company 7" (the id modulo 50). `status` is
        their statusInSequence: active, paused, finished, inactive or outOfOffice (active, paused and outOfOffice
        contacts are on step "1", the others "Finished"). `last_step_completed_at` (timezone-aware) is what
        /contacts/state shows as lastStepCompletedAt (None: null). A contact's addingDate is 2024-03-01T00:00Z
        plus its id in seconds, so the API lists higher ids first.
        """
        sequence = self._store.get(sequence_id)
        if sequence is None:
            raise ValueError("there is no sequence " + str(sequence_id))
        contacts = [
            enrolment(contact, sequence_id, status=status, last_step_completed_at=last_step_completed_at)
            for contact in make_workspace_contacts(sequence.workspace_id, count, start_id=start_id)
        ]
        self._store.add_contacts(sequence_id, contacts)
        return [contact.to_json() for contact in contacts]

    def contacts(self, sequence_id: int) -> list[dict[str, object]]:
        """Return the contacts now in a sequence (none once it is archived, or for an unknown id), in the order
        they were added, as GET /v3/sequences/{id}/contacts items."""
        return [contact.to_json() for contact in self._store.contacts(sequence_id)]

    def add_workspace_contacts(self, count: int, *, start_id: int = 1, workspace_id: int | None = None) -> list[int]:
        """Add `count` deterministic contacts (named as in add_contacts) to a workspace (default: the first one),
        in no sequence: what POST /v3/sequences/{id}/contact-links/bulk can enrol. Replaces contacts with the same
        ids (in any workspace; their enrolments are kept). Return their ids."""
        workspace = workspace_id if workspace_id is not None else self._directory.primary_workspace_id
        contacts = make_workspace_contacts(workspace, count, start_id=start_id)
        self._store.put_workspace_contacts(contacts)
        return [contact.contact_id for contact in contacts]

    def sequence_calls(self, sequence_id: int) -> list[RecordedRequest]:
        """Return the recorded /v3 requests that named this sequence (its path id, or one of a bulk archive's
        ids), oldest first. Each one's `operation` says what it was: contacts, contacts_state, contact_links,
        get, pause, archive, bulk, unarchive; e.g. every contacts listing came before the archive call:
        `[call.operation for call in simulator.sequence_calls(101)] == ["contacts", "contacts", "archive"]`."""
        return [
            record
            for record in self.requests
            if record.sequence_id == sequence_id or sequence_id in record.sequence_ids
        ]

    def set_api_keys(self, api_keys: Mapping[str, Iterable[str]]) -> None:
        """Rotate the legacy keys: the first workspace's owner has only these user keys from now on.

        With the default workspaces, only these keys are accepted from now on; other users' keys and master
        keys, when configured, are kept.
        """
        self._directory.set_primary_owner_keys(_normalise_keys(api_keys))

    # Users, workspaces and keys

    def workspaces(self) -> list[SimulatedWorkspace]:
        """Return every workspace (users, user keys, master key), first workspace first."""
        return self._directory.workspaces()

    def set_workspace(self, workspace: SimulatedWorkspace) -> None:
        """Add a workspace, or replace the one with its id (its users and keys; its sequences stay)."""
        self._directory.set_workspace(workspace)

    def add_user(
        self,
        user: SimulatedUser,
        *,
        workspace_id: int = DEFAULT_WORKSPACE_ID,
        api_keys: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Add a user to a workspace (or replace the one with its id), with user keys of their own if given."""
        self._directory.add_user(workspace_id, user, _normalise_keys(api_keys or {}))

    def set_master_key(
        self, key: str | None, *, workspace_id: int = DEFAULT_WORKSPACE_ID, scopes: Iterable[str] = ALL_SCOPES
    ) -> None:
        """Give a workspace this Master API key, replacing its master key (None: no master key)."""
        if isinstance(scopes, str):
            raise TypeError("give the master key an iterable of scopes, not a single string")
        self._directory.set_master_key(workspace_id, key, scopes)

    def user_calls(self) -> dict[int, UserCalls]:
        """Return, by user id, how many /v3 calls acted as each user since the last reset, and their 429s."""
        return self._api.user_calls()

    @property
    def settings(self) -> ApiSettings:
        """Return the current answer settings (401 body, bulk limit, latency, rate-limit headers, assumptions)."""
        return self._api.settings

    def configure(self, **changes: object) -> ApiSettings:
        """Change answer settings while running, e.g. configure(unauthorized_body="problem",
        assumptions=Assumptions.spec_only()) or assumptions={"archive_invalid_state": False}."""
        return self._api.configure(changes)

    def inject(self, fault: Fault) -> None:
        """Arm a fault for the next matching /v3 requests (after any already armed)."""
        self._api.faults.inject(fault)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._api.faults.clear()

    def pending_faults(self) -> list[Fault]:
        """Return the armed faults in firing order."""
        return self._api.faults.pending()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the recorded /v3 requests, oldest first."""
        return self._api.requests

    @property
    def api_calls(self) -> int:
        """Return how many /v3 requests arrived (accepted or not)."""
        return self._api.api_calls

    def reset(self) -> None:
        """Reseed, and forget faults, recorded requests and rate-limit counters (workspaces, keys and settings
        are kept)."""
        self._store.replace_all(seed_sequences(self._directory.primary_workspace_id) if self._seed else ())
        self._api.reset()

    def _owner_and_workspace(self, owner_user_id: int | None, workspace_id: int | None) -> tuple[int, int]:
        """The owner and workspace of a new sequence: the given ones, else the defaults add_sequence() names."""
        if owner_user_id is None:
            chosen = workspace_id if workspace_id is not None else self._directory.primary_workspace_id
            workspace = self._directory.workspace(chosen)
            if workspace is None:
                raise ValueError("there is no workspace " + str(chosen))
            return workspace.owner.id, workspace.id
        owners_workspace = self._directory.workspace_of_user(owner_user_id)
        if workspace_id is None:
            fallback = self._directory.primary_workspace_id  # an owner no workspace has: a user who left, say
            return owner_user_id, owners_workspace if owners_workspace is not None else fallback
        if owners_workspace is not None and owners_workspace != workspace_id:
            raise ValueError(f"user {owner_user_id} is in workspace {owners_workspace}, not {workspace_id}")
        if self._directory.workspace(workspace_id) is None:
            raise ValueError("there is no workspace " + str(workspace_id))
        return owner_user_id, workspace_id

    def _dispatch(self, request: HttpRequest) -> HttpResponse:
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            return handle_admin(self, request)
        if request.path == "/v3" or request.path.startswith("/v3/"):
            return self._api.handle(request)
        return problem_response(404, "No operation matches " + request.path + ".")


def _directory(
    workspaces: Iterable[SimulatedWorkspace] | None, api_keys: Mapping[str, Iterable[str]] | None
) -> Directory:
    """The workspaces, with the legacy `api_keys` as user keys of the first one's owner."""
    if workspaces is None:
        keys = api_keys if api_keys is not None else {DEFAULT_API_KEY: ALL_SCOPES}
        return Directory([default_workspace(_normalise_keys(keys))])
    ordered = list(workspaces)
    if ordered and api_keys:
        first = ordered[0]
        legacy = tuple(UserKey(key, first.owner.id, scopes) for key, scopes in _normalise_keys(api_keys).items())
        ordered[0] = replace(first, user_keys=legacy + first.user_keys)
    return Directory(ordered)


def _normalise_keys(api_keys: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    normalised: dict[str, frozenset[str]] = {}
    for key, scopes in api_keys.items():
        if isinstance(scopes, str):
            raise TypeError("give each key an iterable of scopes, not a single string")
        normalised[key] = frozenset(scopes)
    return normalised
