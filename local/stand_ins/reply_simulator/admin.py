"""The /__sim admin endpoints (no auth): faults, keys, workspaces and users, sequences, settings, recorded requests,
calls per user and reset.

Users, workspaces and master keys (identities.py; keys are accepted here, never shown):

- ``GET /__sim/workspaces``: every workspace, its users, whose user keys there are, whether it has a master key.
- ``POST /__sim/workspaces`` with one workspace (``SimulatedWorkspace.from_json``): add it, or replace the one
  with its id.
- ``POST /__sim/workspaces/{id}/users`` with ``{"id": 7, "email": "ann@example.com", "role": "member",
  "api_keys": {"<key>": ["sequences:read", ...]}}``: add a user (or replace the one with its id), with keys.
- ``POST /__sim/workspaces/{id}/master-key`` with ``{"key": "<key>", "scopes": [...]}`` (scopes default to
  every scope; ``"key": null`` removes it).
- ``GET /__sim/user-calls``: ``{"users": [{"user_id", "workspace_id", "calls", "too_many_requests",
  "over_quota"}]}``, the calls that acted as each user since the last reset.
- ``GET /__sim/sequences``: every sequence, with ``owner_user_id``, ``workspace_id`` and ``archived_by_user_id``.

Contacts (ReplySimulator.add_contacts, contacts, add_workspace_contacts, sequence_calls):

- ``POST /__sim/sequences/{id}/contacts`` with ``{"count": 1500, "status": "active", "start_id": 1,
  "last_step_completed_at": "2024-05-01T09:00:00+00:00"}`` (all but count optional): enrol deterministic
  contacts in the sequence; answers 201 ``{"added": 1500}``.
- ``GET /__sim/sequences/{id}/contacts``: ``{"contacts": [...]}``, the sequence's contacts now, in the order
  they were added, as GET /v3/sequences/{id}/contacts items (none once it is archived).
- ``POST /__sim/contacts`` with ``{"count": 3, "start_id": 9001, "workspace_id": 1}``: contacts of a workspace
  in no sequence (for contact-links/bulk); answers 201 ``{"contact_ids": [9001, 9002, 9003]}``.
- ``GET /__sim/sequences/{id}/calls``: ``{"requests": [...]}``, the recorded /v3 requests that named the
  sequence, oldest first, each with its ``operation`` (contacts, contacts_state, archive, bulk...).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from local.stand_ins.reply_simulator.identities import SimulatedUser, SimulatedWorkspace
from local.stand_ins.reply_simulator.messages import HttpResponse, json_response, problem_response
from local.stand_ins.reply_simulator.models import ALL_SCOPES, Fault

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.reply_simulator.messages import HttpRequest
    from local.stand_ins.reply_simulator.simulator import ReplySimulator

ADMIN_PREFIX = "/__sim"

_ROUTES = {
    "faults": ("POST", "DELETE"),
    "keys": ("POST",),
    "sequences": ("GET", "POST"),
    "sequences/{id}": ("GET",),
    "sequences/{id}/contacts": ("GET", "POST"),
    "sequences/{id}/calls": ("GET",),
    "contacts": ("POST",),
    "requests": ("GET",),
    "reset": ("POST",),
    "settings": ("GET", "POST"),
    "workspaces": ("GET", "POST"),
    "workspaces/{id}/users": ("POST",),
    "workspaces/{id}/master-key": ("POST",),
    "user-calls": ("GET",),
}


class _AdminInputError(Exception):
    """An admin request body the simulator cannot use."""


def handle_admin(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    """Answer one /__sim request; admin calls are neither recorded nor rate-limited."""
    route, path_id_text = _route(request.path)
    if route is None:
        return problem_response(404, "No admin operation matches " + request.path + ".")
    allowed = _ROUTES[route]
    if request.method not in allowed:
        return problem_response(
            405,
            "Method " + request.method + " is not allowed on " + request.path + ".",
            headers=[("Allow", ", ".join(allowed))],
        )
    try:
        return _dispatch(simulator, request, route, path_id_text)
    except (_AdminInputError, ValueError) as exc:
        return problem_response(400, str(exc))


def _route(path: str) -> tuple[str | None, str | None]:
    """The route template a path matches ("sequences/{id}", ...) and the id in it, or (None, None)."""
    rest = path[len(ADMIN_PREFIX) :].strip("/")
    if rest in _ROUTES:
        return rest, None
    segments = rest.split("/")
    if len(segments) >= 2 and all(segments):
        template = "/".join([segments[0], "{id}", *segments[2:]])
        if template in _ROUTES:
            return template, segments[1]
    return None, None


def _dispatch(simulator: ReplySimulator, request: HttpRequest, route: str, path_id_text: str | None) -> HttpResponse:
    if route == "sequences/{id}":
        return _sequence(simulator, _path_id(path_id_text, "sequence"))
    if route == "sequences/{id}/contacts":
        return _sequence_contacts(simulator, request, _path_id(path_id_text, "sequence"))
    if route == "sequences/{id}/calls":
        calls = simulator.sequence_calls(_path_id(path_id_text, "sequence"))
        return json_response(200, {"requests": [record.to_json() for record in calls]})
    if route == "workspaces/{id}/users":
        return _add_user(simulator, request, _path_id(path_id_text, "workspace"))
    if route == "workspaces/{id}/master-key":
        return _master_key(simulator, request, _path_id(path_id_text, "workspace"))
    return _HANDLERS[route](simulator, request)


def _path_id(text: str | None, what: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise _AdminInputError("The " + what + " id must be an integer.") from None


def _keys(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    simulator.set_api_keys(_api_keys(_json_object(request.body)))
    return HttpResponse(status=204)


def _requests(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    records = [record.to_json() for record in simulator.requests]
    return json_response(200, {"requests": records, "api_calls": simulator.api_calls})


def _reset(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    simulator.reset()
    return HttpResponse(status=204)


def _faults(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    if request.method == "DELETE":
        simulator.clear_faults()
        return HttpResponse(status=204)
    fault = Fault.from_json(_json_object(request.body))
    simulator.inject(fault)
    return json_response(201, fault.to_json())


def _settings(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    """GET shows the answer settings; POST changes only the fields given, e.g. {"unauthorized_body": "problem"}
    or {"assumptions": {"archive_invalid_state": false}}, and shows the settings now in force."""
    if request.method == "POST":
        simulator.configure(**_json_object(request.body))
    return json_response(200, simulator.settings.to_json())


def _sequence(simulator: ReplySimulator, sequence_id: int) -> HttpResponse:
    sequence = simulator.sequence(sequence_id)
    if sequence is None:
        return problem_response(404, "Sequence " + str(sequence_id) + " is not in the simulator.")
    return json_response(200, sequence.to_json())


def _sequence_contacts(simulator: ReplySimulator, request: HttpRequest, sequence_id: int) -> HttpResponse:
    """GET shows a sequence's contacts; POST enrols deterministic ones (ReplySimulator.add_contacts)."""
    if request.method == "GET":
        return json_response(200, {"contacts": simulator.contacts(sequence_id)})
    payload = _json_object(request.body)
    completed = _optional_text(payload, "last_step_completed_at")
    added = simulator.add_contacts(
        sequence_id,
        _number(payload, "count"),
        status=_text(payload, "status", "active"),
        start_id=_optional_number(payload, "start_id", "startId") or 1,
        last_step_completed_at=_moment(completed) if completed is not None else None,
    )
    return json_response(201, {"added": len(added)})


def _workspace_contacts(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    """POST adds contacts of a workspace in no sequence (ReplySimulator.add_workspace_contacts)."""
    payload = _json_object(request.body)
    contact_ids = simulator.add_workspace_contacts(
        _number(payload, "count"),
        start_id=_optional_number(payload, "start_id", "startId") or 1,
        workspace_id=_optional_number(payload, "workspace_id", "workspaceId"),
    )
    return json_response(201, {"contact_ids": contact_ids})


def _number(payload: dict[str, object], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _AdminInputError("'" + name + "' must be an integer.")
    return value


def _optional_text(payload: dict[str, object], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise _AdminInputError("'" + name + "' must be a string.")
    return value


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _AdminInputError("'" + text + "' is not an ISO 8601 date-time.") from None
    if moment.tzinfo is None:
        raise _AdminInputError("'" + text + "' has no time zone offset.")
    return moment


def _json_object(body: bytes) -> dict[str, object]:
    try:
        payload = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _AdminInputError("The body must be a JSON object.") from None
    if not isinstance(payload, dict):
        raise _AdminInputError("The body must be a JSON object.")
    return payload


def _api_keys(payload: dict[str, object]) -> dict[str, frozenset[str]]:
    keys = payload.get("apiKeys")
    if not isinstance(keys, dict):
        raise _AdminInputError('Send {"apiKeys": {"<key>": ["sequences:read", ...]}}.')
    api_keys: dict[str, frozenset[str]] = {}
    for key, scopes in keys.items():
        if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
            raise _AdminInputError("Each key's scopes must be a list of strings.")
        api_keys[key] = frozenset(scopes)
    return api_keys


def _workspaces(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    """GET lists the workspaces; POST adds one workspace, or replaces the one with its id, and shows it."""
    if request.method == "GET":
        return json_response(200, {"workspaces": [workspace.to_json() for workspace in simulator.workspaces()]})
    workspace = SimulatedWorkspace.from_json(_json_object(request.body))
    simulator.set_workspace(workspace)
    return json_response(201, workspace.to_json())


def _add_user(simulator: ReplySimulator, request: HttpRequest, workspace_id: int) -> HttpResponse:
    payload = _json_object(request.body)
    user = SimulatedUser.from_json(payload)
    api_keys = _api_keys({"apiKeys": payload.get("api_keys", payload.get("apiKeys", {}))})
    simulator.add_user(user, workspace_id=workspace_id, api_keys=api_keys)
    return json_response(201, user.to_json())


def _master_key(simulator: ReplySimulator, request: HttpRequest, workspace_id: int) -> HttpResponse:
    payload = _json_object(request.body)
    if "key" not in payload:
        raise _AdminInputError('Send {"key": "<master key>", "scopes": [...]}, or {"key": null} to remove it.')
    key = payload["key"]
    if key is not None and not isinstance(key, str):
        raise _AdminInputError("'key' must be a string or null.")
    scopes = payload.get("scopes", sorted(ALL_SCOPES))
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise _AdminInputError("'scopes' must be a list of strings.")
    simulator.set_master_key(key, workspace_id=workspace_id, scopes=scopes)
    return HttpResponse(status=204)


def _user_calls(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    counts = sorted(simulator.user_calls().values(), key=lambda counted: counted.user_id)
    return json_response(200, {"users": [counted.to_json() for counted in counts]})


def _sequences(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    """GET lists every sequence (of every workspace); POST adds some."""
    if request.method == "GET":
        return json_response(200, {"sequences": [sequence.to_json() for sequence in simulator.sequences()]})
    return _add_sequences(simulator, request)


def _add_sequences(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    """Add sequences sharing one state: {"ids": [...]}, and optionally "status", "is_archived", "owner_user_id",
    "workspace_id", "sales_agent", "team_member_removed" and "health" (defaults as in
    ReplySimulator.add_sequences)."""
    payload = _json_object(request.body)
    ids = payload.get("ids")
    if not isinstance(ids, list) or not all(isinstance(item, int) and not isinstance(item, bool) for item in ids):
        raise _AdminInputError("'ids' must be a list of integers.")
    added = simulator.add_sequences(
        ids,
        status=_text(payload, "status", "paused"),
        is_archived=_flag(payload, "is_archived", "isArchived"),
        owner_user_id=_optional_number(payload, "owner_user_id", "ownerUserId"),
        sales_agent=_flag(payload, "sales_agent", "salesAgent"),
        team_member_removed=_flag(payload, "team_member_removed", "teamMemberRemoved"),
        workspace_id=_optional_number(payload, "workspace_id", "workspaceId"),
        health=_text(payload, "health", "healthy"),
    )
    return json_response(201, {"added": added})


def _text(payload: dict[str, object], name: str, default: str) -> str:
    value = payload.get(name, default)
    if not isinstance(value, str):
        raise _AdminInputError("'" + name + "' must be a string.")
    return value


def _flag(payload: dict[str, object], snake: str, camel: str) -> bool:
    value = payload.get(snake, payload.get(camel, False))
    if not isinstance(value, bool):
        raise _AdminInputError("'" + snake + "' must be true or false.")
    return value


def _optional_number(payload: dict[str, object], snake: str, camel: str) -> int | None:
    value = payload.get(snake, payload.get(camel))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _AdminInputError("'" + snake + "' must be an integer.")
    return value


_HANDLERS: dict[str, Callable[[ReplySimulator, HttpRequest], HttpResponse]] = {
    "faults": _faults,
    "keys": _keys,
    "sequences": _sequences,
    "settings": _settings,
    "requests": _requests,
    "reset": _reset,
    "workspaces": _workspaces,
    "user-calls": _user_calls,
    "contacts": _workspace_contacts,
}
