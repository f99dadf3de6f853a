"""The /__sim admin endpoints: faults, keys, sequences, settings, recorded requests and reset (no auth)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from local.stand_ins.reply_simulator.messages import HttpResponse, json_response, problem_response
from local.stand_ins.reply_simulator.models import Fault

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.reply_simulator.messages import HttpRequest
    from local.stand_ins.reply_simulator.simulator import ReplySimulator

ADMIN_PREFIX = "/__sim"

_ROUTES = {
    "faults": ("POST", "DELETE"),
    "keys": ("POST",),
    "sequences": ("POST",),
    "sequences/{id}": ("GET",),
    "requests": ("GET",),
    "reset": ("POST",),
    "settings": ("GET", "POST"),
}


class _AdminInputError(Exception):
    """An admin request body the simulator cannot use."""


def handle_admin(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    """Answer one /__sim request; admin calls are neither recorded nor rate-limited."""
    route, sequence_id_text = _route(request.path)
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
        return _dispatch(simulator, request, route, sequence_id_text)
    except (_AdminInputError, ValueError) as exc:
        return problem_response(400, str(exc))


def _route(path: str) -> tuple[str | None, str | None]:
    rest = path[len(ADMIN_PREFIX) :].strip("/")
    if rest in _ROUTES:
        return rest, None
    head, _, tail = rest.partition("/")
    if head == "sequences" and tail and "/" not in tail:
        return "sequences/{id}", tail
    return None, None


def _dispatch(
    simulator: ReplySimulator, request: HttpRequest, route: str, sequence_id_text: str | None
) -> HttpResponse:
    if route == "sequences/{id}":
        return _sequence(simulator, sequence_id_text or "")
    return _HANDLERS[route](simulator, request)


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


def _sequence(simulator: ReplySimulator, sequence_id_text: str) -> HttpResponse:
    try:
        sequence_id = int(sequence_id_text)
    except ValueError:
        raise _AdminInputError("The sequence id must be an integer.") from None
    sequence = simulator.sequence(sequence_id)
    if sequence is None:
        return problem_response(404, "Sequence " + str(sequence_id) + " is not in the simulator.")
    return json_response(200, sequence.to_json())


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


def _add_sequences(simulator: ReplySimulator, request: HttpRequest) -> HttpResponse:
    payload = _json_object(request.body)
    ids = payload.get("ids")
    if not isinstance(ids, list) or not all(isinstance(item, int) and not isinstance(item, bool) for item in ids):
        raise _AdminInputError("'ids' must be a list of integers.")
    added = simulator.add_sequences(
        ids,
        status=_text(payload, "status", "paused"),
        is_archived=_flag(payload, "is_archived", "isArchived"),
        owner_user_id=_number(payload, "owner_user_id", "ownerUserId", 1),
        sales_agent=_flag(payload, "sales_agent", "salesAgent"),
        team_member_removed=_flag(payload, "team_member_removed", "teamMemberRemoved"),
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


def _number(payload: dict[str, object], snake: str, camel: str, default: int) -> int:
    value = payload.get(snake, payload.get(camel, default))
    if isinstance(value, bool) or not isinstance(value, int):
        raise _AdminInputError("'" + snake + "' must be an integer.")
    return value


_HANDLERS: dict[str, Callable[[ReplySimulator, HttpRequest], HttpResponse]] = {
    "faults": _faults,
    "keys": _keys,
    "sequences": _add_sequences,
    "settings": _settings,
    "requests": _requests,
    "reset": _reset,
}
