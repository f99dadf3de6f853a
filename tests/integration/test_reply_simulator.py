"""The Reply simulator over real HTTP on 127.0.0.1: behaviour, faults, admin API and the spec contract."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from local.stand_ins.reply_simulator import (
    ALL_SCOPES,
    SCOPE_OPERATE,
    SCOPE_READ,
    SCOPE_WRITE,
    Assumptions,
    Fault,
    RateLimit,
    ReplySimulator,
    SimulatedUser,
    key_fingerprint,
)
from local.stand_ins.reply_simulator import __main__ as simulator_cli
from tests.integration.simulator_http import KEY, Api

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).parents[2]
SPEC_PATH = REPO_ROOT / "local" / "stand_ins" / "reply_simulator" / "openapi" / "openapi-excerpt.yaml"
SPEC_URI = "urn:reply-api-openapi-excerpt"
PROBLEM = "application/problem+json"
JSON = "application/json"
SEEDED_OWNER_ONE_COUNT = 38  # 20 paused + 5 new + 5 active + 5 archived + 601 + 701-702


# Fixtures and helpers


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """A default simulator and its client."""
    return make_api()


def is_archived(api: Api, sequence_id: int) -> bool:
    """Return whether the simulator holds this sequence as archived."""
    sequence = api.simulator.sequence(sequence_id)
    assert sequence is not None
    return sequence.is_archived


def body_of(response: urllib3.BaseHTTPResponse) -> Any:
    """Decode a JSON body."""
    return json.loads(response.data)


def assert_problem(
    response: urllib3.BaseHTTPResponse, status: int, code: str | None = None, detail: str | None = None
) -> dict[str, Any]:
    """Check a problem+json response and return its body."""
    assert response.status == status, response.data
    assert response.headers["Content-Type"] == PROBLEM
    problem: dict[str, Any] = body_of(response)
    assert problem["status"] == status
    assert isinstance(problem["title"], str)
    assert isinstance(problem["detail"], str)
    assert problem.get("code") == code
    if detail is not None:
        assert problem["detail"] == detail
    return problem


# The spec, for contract checks


def load_spec() -> dict[str, Any]:
    """Load the OpenAPI excerpt (PyYAML resolves its anchors)."""
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


SPEC = load_spec()
_REGISTRY: Registry[Any] = Registry().with_resource(
    SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012)
)


def pointer(*parts: str) -> str:
    """Build a JSON Pointer into the spec from unescaped parts."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def response_schema(path: str, method: str, status: str, *extra: str) -> str:
    """Point at an operation's response schema (problem+json for 4xx, JSON for 200)."""
    media = JSON if status == "200" else PROBLEM
    return pointer("paths", path, method, "responses", status, "content", media, "schema", *extra)


def validator(schema_pointer: str) -> Draft202012Validator:
    """Return a validator for a schema inside the spec, with $refs resolved within the document."""
    return Draft202012Validator({"$ref": SPEC_URI + "#" + schema_pointer}, registry=_REGISTRY)


def assert_valid(instance: Any, schema_pointer: str) -> None:
    """Fail with every schema error found."""
    errors = [error.message for error in validator(schema_pointer).iter_errors(instance)]
    assert errors == [], schema_pointer


# Archive


@pytest.mark.parametrize("sequence_id", [101, 120, 201])
def test_archive_returns_the_archived_sequence_and_keeps_its_status(api: Api, sequence_id: int) -> None:
    before = api.simulator.sequence(sequence_id)
    assert before is not None
    assert not before.is_archived

    response = api.archive(sequence_id)

    assert response.status == 200
    assert response.headers["Content-Type"] == JSON
    sequence = body_of(response)
    assert sequence["id"] == sequence_id
    assert sequence["isArchived"] is True
    assert sequence["status"] == before.status
    assert sequence["ownerUserId"] == 1
    assert sequence["name"] == before.name
    after = api.simulator.sequence(sequence_id)
    assert after is not None
    assert after.is_archived
    assert after.status == before.status


@dataclass(frozen=True)
class ErrorCase:
    sequence_id: int
    status: int
    code: str
    detail: str


SEEDED_ARCHIVE_ERRORS = [
    ErrorCase(
        301,
        409,
        "sequenceAction.invalidState",
        "Sequence is active. Pause it first: archiving removes every contact currently in it.",
    ),
    ErrorCase(305, 409, "sequenceAction.invalidState", ""),
    ErrorCase(401, 409, "sequenceAction.archived", "Sequence is already archived."),
    ErrorCase(501, 403, "sequenceAction.forbidden", "You do not have permission to archive this sequence."),
    ErrorCase(601, 400, "sequenceAction.teamMemberNotFound", "Team member is not found."),
    ErrorCase(701, 409, "sequenceAction.salesAgentNotAllowed", ""),
    ErrorCase(702, 409, "sequenceAction.salesAgentNotAllowed", ""),
    ErrorCase(999, 404, "sequenceAction.notFound", "Sequence with ID 999 not found."),
    ErrorCase(2147483647, 404, "sequenceAction.notFound", "Sequence with ID 2147483647 not found."),
]


@pytest.mark.parametrize("case", SEEDED_ARCHIVE_ERRORS, ids=lambda case: str(case.sequence_id))
def test_seeded_archive_errors_have_the_documented_status_and_code(api: Api, case: ErrorCase) -> None:
    before = api.simulator.sequence(case.sequence_id)

    response = api.archive(case.sequence_id)

    assert_problem(response, case.status, case.code, case.detail or None)
    assert api.simulator.sequence(case.sequence_id) == before


def test_archiving_twice_answers_already_archived(api: Api) -> None:
    assert api.archive(102).status == 200
    assert_problem(api.archive(102), 409, "sequenceAction.archived")


# Auth and scopes


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic dGVzdDp0ZXN0", "Bearer "])
def test_401_problem_body_variant_as_seen_live(make_api: Callable[..., Api], authorization: str | None) -> None:
    api = make_api(unauthorized_body="problem")
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = api.archive(101, key=None, headers=headers)

    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body_of(response) == {
        "title": "Unauthorized",
        "status": 401,
        "detail": "Authentication credentials are missing or invalid.",
    }
    assert_problem(response, 401)
    assert not is_archived(api, 101)


@pytest.mark.parametrize("key", [None, "wrong-key"])
@pytest.mark.parametrize("operation", ["archive", "pause", "get", "bulk_archive"])
def test_401_has_an_empty_body_and_www_authenticate_by_default_as_the_spec_says(
    api: Api, key: str | None, operation: str
) -> None:
    # The spec: "Unauthorized. The response body is empty; check the WWW-Authenticate header".
    response = getattr(api, operation)([101] if operation == "bulk_archive" else 101, key=key)

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.data == b""
    assert response.headers["Content-Length"] == "0"
    assert "Content-Type" not in response.headers
    assert not is_archived(api, 101)


@dataclass(frozen=True)
class ScopeCase:
    scopes: frozenset[str]
    method: str
    path: str
    status: int
    code: str | None = None
    detail: str | None = None


SCOPE_CASES = [
    ScopeCase(
        frozenset({SCOPE_OPERATE}),
        "POST",
        "/v3/sequences/archive",
        403,
        "sequenceAction.forbidden",
        "You do not have permission to archive sequences.",
    ),
    ScopeCase(frozenset({SCOPE_WRITE}), "POST", "/v3/sequences/archive", 200),
    ScopeCase(
        frozenset({SCOPE_WRITE, SCOPE_READ}),
        "POST",
        "/v3/sequences/101/archive",
        403,
        "sequenceAction.forbidden",
        "You do not have permission to archive this sequence.",
    ),
    ScopeCase(frozenset({SCOPE_OPERATE}), "POST", "/v3/sequences/101/archive", 200),
    ScopeCase(
        frozenset({SCOPE_READ}),
        "POST",
        "/v3/sequences/301/pause",
        403,
        "sequenceAction.forbidden",
        "You do not have permission to pause this sequence.",
    ),
    ScopeCase(
        frozenset({SCOPE_OPERATE}),
        "GET",
        "/v3/sequences/101",
        403,
        "sequence.forbidden",
        "You do not have permission to view this sequence.",
    ),
    ScopeCase(
        frozenset({SCOPE_WRITE}),
        "GET",
        "/v3/sequences",
        403,
        "sequence.forbidden",
        "You do not have permission to view sequences.",
    ),
    ScopeCase(frozenset({SCOPE_READ}), "GET", "/v3/sequences", 200),
]


@pytest.mark.parametrize("case", SCOPE_CASES, ids=lambda case: case.method + " " + case.path + " " + str(case.status))
def test_each_operation_needs_its_scope(make_api: Callable[..., Api], case: ScopeCase) -> None:
    api = make_api(api_keys={KEY: case.scopes})
    body = {"ids": [103]} if case.path == "/v3/sequences/archive" else None

    response = api.call(case.method, case.path, json_body=body)

    if case.status == 200:
        assert response.status == 200, response.data
    else:
        assert_problem(response, case.status, case.code, case.detail)


def test_missing_scope_changes_nothing(make_api: Callable[..., Api]) -> None:
    api = make_api(api_keys={KEY: frozenset({SCOPE_OPERATE})})

    assert api.bulk_archive([104]).status == 403

    assert not is_archived(api, 104)


# Path id validation


@pytest.mark.parametrize("operation", ["archive", "pause", "get"])
@pytest.mark.parametrize("raw_id", ["0", "-1", "abc", "2147483648", "1.5", "99999999999999999999999"])
def test_path_id_outside_int32_range_is_a_validation_problem(api: Api, operation: str, raw_id: str) -> None:
    response = getattr(api, operation)(raw_id)

    problem = assert_problem(response, 400, detail="One or more validation errors occurred.")
    assert problem["title"] == "Validation failed"
    assert problem["errors"] == [{"pointer": "id", "detail": "The field id must be between 1 and 2147483647."}]


# Bulk archive


def test_bulk_archive_all_succeed_returns_empty_object(api: Api) -> None:
    response = api.bulk_archive([101, 102, 201])

    assert response.status == 200
    assert response.headers["Content-Type"] == JSON
    assert body_of(response) == {}
    for sequence_id in (101, 102, 201):
        assert is_archived(api, sequence_id)


def test_bulk_archive_lists_only_failed_items_by_string_id(api: Api) -> None:
    response = api.bulk_archive([101, 301, 401, 501, 601, 701, 999_999, 101, 0, 202])

    assert response.status == 200
    assert body_of(response) == {
        "301": {
            "error": "invalidState",
            "errorDetails": "Sequence is active. Pause it first: archiving removes every contact currently in it.",
        },
        "401": {"error": "archived", "errorDetails": "Sequence is already archived."},
        "501": {"error": "forbidden", "errorDetails": "You do not have permission to archive this sequence."},
        "601": {"error": "teamMemberNotFound", "errorDetails": "Team member is not found."},
        "701": {
            "error": "salesAgentNotAllowed",
            "errorDetails": "This action is not allowed on a sales-agent sequence.",
        },
        "999999": {"error": "notFound", "errorDetails": "Sequence with ID 999999 not found."},
        "0": {"error": "notFound", "errorDetails": "Sequence with ID 0 not found."},
    }
    assert is_archived(api, 101)
    assert is_archived(api, 202)
    assert not is_archived(api, 301)
    assert api.simulator.requests[-1].sequence_ids == (101, 301, 401, 501, 601, 701, 999_999, 0, 202)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"ids": []}, [{"pointer": "/ids", "detail": "'ids' must contain between 1 and 100 items."}]),
        ({}, [{"pointer": "/ids", "detail": "'ids' must contain between 1 and 100 items."}]),
        (
            {"ids": list(range(1000, 1101))},
            [{"pointer": "/ids", "detail": "'ids' must contain between 1 and 100 items."}],
        ),
        (
            {"ids": [101, "102", True, 1.5]},
            [{"pointer": "/ids/" + str(i), "detail": "Value has an invalid type."} for i in (1, 2, 3)],
        ),
        ({"ids": 101}, [{"pointer": "/ids", "detail": "Value has an invalid type."}]),
        ([101], [{"pointer": "", "detail": "Value has an invalid type."}]),
    ],
    ids=["empty", "missing", "over-limit", "non-integers", "not-a-list", "not-an-object"],
)
def test_bulk_archive_validation(api: Api, body: Any, errors: list[dict[str, str]]) -> None:
    response = api.call("POST", "/v3/sequences/archive", json_body=body)

    problem = assert_problem(response, 400, detail="The request body contains validation errors.")
    assert problem["title"] == "Validation failed"
    assert problem["errors"] == errors
    assert not is_archived(api, 101)


@pytest.mark.parametrize(
    ("raw_body", "detail"),
    [(b"", "The request body is required and cannot be empty."), (b"{not json", "Request body is not valid JSON.")],
)
def test_bulk_archive_unreadable_body(api: Api, raw_body: bytes, detail: str) -> None:
    response = api.call("POST", "/v3/sequences/archive", raw_body=raw_body, headers={"Content-Type": JSON})

    problem = assert_problem(response, 400)
    assert problem["errors"] == [{"pointer": "", "detail": detail}]


def test_bulk_size_limit_is_configurable(make_api: Callable[..., Api]) -> None:
    api = make_api(bulk_max_ids=3)

    assert api.bulk_archive([101, 102, 103]).status == 200
    problem = assert_problem(api.bulk_archive([104, 105, 106, 107]), 400)

    assert problem["errors"] == [{"pointer": "/ids", "detail": "'ids' must contain between 1 and 3 items."}]


# Pause


@pytest.mark.parametrize(
    ("sequence_id", "status", "code", "detail", "status_after"),
    [
        (301, 200, None, None, "paused"),
        (101, 200, None, None, "paused"),
        (701, 200, None, None, "paused"),
        (401, 409, "sequenceAction.archived", "Sequence is archived and cannot be paused.", "paused"),
        (201, 409, "sequenceAction.notStarted", "Sequence has never been started.", "new"),
        (501, 403, "sequenceAction.forbidden", "You do not have permission to pause this sequence.", "paused"),
        (601, 400, "sequenceAction.teamMemberNotFound", "Team member is not found.", "paused"),
        (999, 404, "sequenceAction.notFound", "Sequence with ID 999 not found.", None),
    ],
)
def test_pause(
    api: Api, sequence_id: int, status: int, code: str | None, detail: str | None, status_after: str | None
) -> None:
    response = api.pause(sequence_id)

    if status == 200:
        assert response.status == 200
        assert response.headers["Content-Type"] == JSON
        assert body_of(response)["status"] == "paused"
        assert body_of(response)["isArchived"] is False
    else:
        assert_problem(response, status, code, detail)
    after = api.simulator.sequence(sequence_id)
    assert (after.status if after is not None else None) == status_after


def test_pause_then_archive_an_active_sequence(api: Api) -> None:
    assert_problem(api.archive(302), 409, "sequenceAction.invalidState")

    assert api.pause(302).status == 200

    assert body_of(api.archive(302))["isArchived"] is True


# Get one


def test_get_sequence(api: Api) -> None:
    response = api.get(301)

    assert response.status == 200
    assert body_of(response)["status"] == "active"
    assert_problem(api.get(501), 403, "sequence.forbidden", "You do not have permission to view this sequence.")
    assert_problem(api.get(42), 404, "sequence.notFound", "Sequence with ID 42 is not found.")


# List


def ids_of(response: urllib3.BaseHTTPResponse) -> list[int]:
    """Return the ids of a list page."""
    assert response.status == 200, response.data
    return [item["id"] for item in body_of(response)["items"]]


def test_list_defaults_to_25_newest_first_of_the_keys_user(api: Api) -> None:
    response = api.list_sequences()

    page = body_of(response)
    assert page["hasMore"] is True
    assert ids_of(response)[:5] == [702, 701, 601, 405, 404]
    assert len(page["items"]) == 25
    assert not any(501 <= item["id"] <= 505 for item in page["items"])
    assert set(page["items"][0]) == {"id", "ownerUserId", "name", "created", "status", "isArchived", "health"}


def test_list_paging(api: Api) -> None:
    last_page = api.list_sequences(top="10", skip="30")

    assert len(ids_of(last_page)) == SEEDED_OWNER_ONE_COUNT - 30
    assert body_of(last_page)["hasMore"] is False
    assert body_of(api.list_sequences(top="10", skip="28"))["hasMore"] is False
    assert body_of(api.list_sequences(top="10", skip="27"))["hasMore"] is True
    assert len(ids_of(api.list_sequences(top="1000"))) == SEEDED_OWNER_ONE_COUNT


@pytest.mark.parametrize(
    ("query", "expected_ids"),
    [
        ({"status": "active"}, [305, 304, 303, 302, 301]),
        ({"isArchived": "true"}, [405, 404, 403, 402, 401]),
        ({"name": "SALES", "sortBy": "name"}, [701, 702]),
        ({"ownerUserId": "2"}, []),
        ({"createdAfter": "2024-01-01T11:00:00+00:00"}, [702, 701]),
        ({"status": "new", "sortBy": "created", "sortDirection": "asc"}, [201, 202, 203, 204, 205]),
        ({"folderId": "0b0d9f32-6a38-4d2f-9a55-9a1f2d8e7c11"}, []),
    ],
)
def test_list_filters(api: Api, query: dict[str, str], expected_ids: list[int]) -> None:
    assert ids_of(api.list_sequences(**query)) == expected_ids


def test_list_sorting(api: Api) -> None:
    by_status = ids_of(api.list_sequences(sortBy="status", top="1000"))
    by_name_desc = ids_of(api.list_sequences(sortBy="name", sortDirection="desc", top="3"))

    assert by_status[:5] == [301, 302, 303, 304, 305]
    assert by_name_desc == [702, 701, 601]
    assert ids_of(api.list_sequences(sortBy="created", top="1")) == [702]


@pytest.mark.parametrize(
    ("query", "code", "detail"),
    [
        ({"sortDirection": "asc"}, "sequence.invalidSort", "sortDirection requires sortBy."),
        (
            {"sortBy": "foo"},
            "sequence.invalidSort",
            "Invalid sortBy value 'foo'. Allowed values: created, name, status.",
        ),
        ({"sortBy": "name", "sortDirection": "up"}, "sequence.invalidSort", None),
        ({"top": "0"}, "sequence.invalidPagination", "Invalid requested page view."),
        ({"top": "1001"}, "sequence.invalidPagination", "Invalid requested page view."),
        ({"skip": "-1"}, "sequence.invalidPagination", "Invalid requested page view."),
        ({"top": "ten"}, "sequence.invalidPagination", "Invalid requested page view."),
        ({"status": "archived"}, "sequence.invalidFilter", None),
        ({"isArchived": "maybe"}, "sequence.invalidFilter", None),
        ({"createdAfter": "yesterday"}, "sequence.invalidFilter", None),
    ],
)
def test_list_rejects_bad_queries(api: Api, query: dict[str, str], code: str, detail: str | None) -> None:
    problem = assert_problem(api.list_sequences(**query), 400, code, detail)

    assert problem["title"] == "Bad Request"


def test_list_sees_archiving(api: Api) -> None:
    api.bulk_archive([101, 102])

    assert ids_of(api.list_sequences(isArchived="true", sortBy="created", sortDirection="asc"))[:2] == [101, 102]


# Routing


def test_unknown_paths_are_404_problems(api: Api) -> None:
    assert_problem(api.call("GET", "/v3/contacts"), 404)
    assert_problem(api.call("POST", "/v3/sequences/101/delete"), 404)
    assert_problem(api.call("GET", "/"), 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v3/sequences/101", "GET"),
        ("GET", "/v3/sequences/101/archive", "POST"),
        ("GET", "/v3/sequences/archive", "POST"),
        ("POST", "/v3/sequences", "GET"),
    ],
)
def test_wrong_method_is_405(api: Api, method: str, path: str, allow: str) -> None:
    response = api.call(method, path)

    assert_problem(response, 405)
    assert response.headers["Allow"] == allow


# Rate limits


def wait_until(deadline: float) -> None:
    """Sleep until a time.monotonic() deadline."""
    time.sleep(max(0.0, deadline - time.monotonic()))


def test_rate_limit_429_then_allowed_again_a_window_later(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit(per_minute=5, minute_seconds=0.5, per_hour=None))
    for _ in range(5):
        assert api.get(101).status == 200
    first_at = api.simulator.requests[0].at

    refused = api.get(101)

    assert_problem(refused, 429, detail="Rate limit exceeded. Retry after 1 seconds.")
    assert refused.headers["Retry-After"] == "1"
    assert body_of(refused)["title"] == "Too Many Requests"
    wait_until(first_at + 0.55)
    assert api.get(101).status == 200


def test_refused_requests_do_not_use_budget(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit(per_minute=2, minute_seconds=0.5, per_hour=None))
    assert [api.get(101).status for _ in range(2)] == [200, 200]
    first_at = api.simulator.requests[0].at
    wait_until(first_at + 0.3)
    assert [api.get(101).status for _ in range(3)] == [429, 429, 429]

    wait_until(first_at + 0.55)

    assert [api.get(101).status for _ in range(3)] == [200, 200, 429]


def test_rate_limit_is_per_user_and_retry_after_rounds_up(make_api: Callable[..., Api]) -> None:
    # Reply counts per user, across every key acting for that user: KEY and "same-user-key" are both user 1's
    # (the legacy keys), "other-user-key" is user 2's.
    api = make_api(
        api_keys={KEY: ALL_SCOPES, "same-user-key": ALL_SCOPES},
        rate_limit=RateLimit(per_minute=1, minute_seconds=2.5, per_hour=None),
    )
    api.simulator.add_user(SimulatedUser(2, "user2@example.com"), api_keys={"other-user-key": ALL_SCOPES})
    assert api.get(101).status == 200

    refused = api.get(101)

    assert refused.status == 429
    assert refused.headers["Retry-After"] == "3"
    assert api.get(101, key="same-user-key").status == 429
    assert api.get(501, key="other-user-key").status == 200


def test_fixed_windows_count_from_each_window_start(make_api: Callable[..., Api]) -> None:
    # Given: fixed windows of 3 calls per 3 s, a window just begun
    window = 3.0
    api = make_api(rate_limit=RateLimit(per_minute=3, minute_seconds=window, per_hour=None, fixed_windows=True))
    time.sleep(window - time.monotonic() % window + 0.05)
    assert [api.get(101).status for _ in range(3)] == [200, 200, 200]

    # When: the window is spent, then the next one begins
    refused = api.get(101)
    time.sleep(window - time.monotonic() % window + 0.05)

    # Then: the fourth call was refused until the window's end, and the next window has all 3 calls again,
    # however recently the last 3 were made (a sliding window would still count them)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) <= 3
    assert [api.get(101).status for _ in range(3)] == [200, 200, 200]


def test_hour_window_binds_too(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit(per_minute=100, per_hour=3, hour_seconds=0.5))
    assert [api.get(101).status for _ in range(3)] == [200, 200, 200]

    refused = api.get(101)

    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"


def test_unauthenticated_requests_do_not_use_budget(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit(per_minute=1, minute_seconds=60, per_hour=None))

    assert api.get(101, key="wrong").status == 401

    assert api.get(101).status == 200


def test_rate_limit_headers(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit(per_minute=None, per_hour=10), rate_limit_headers=True)

    first = api.get(101)
    second = api.archive(999)

    assert first.headers["x-rate-limit-limit"] == "1h"
    assert first.headers["x-rate-limit-remaining"] == "9"
    assert second.headers["x-rate-limit-remaining"] == "8"
    reset = datetime.fromisoformat(first.headers["x-rate-limit-reset"])
    assert reset.tzinfo is not None
    assert reset > datetime.now(UTC)


def test_rate_limit_headers_are_off_by_default(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit())

    response = api.get(101)

    assert "x-rate-limit-remaining" not in response.headers


def test_default_rate_limit_is_100_a_minute(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit())

    statuses = Counter(api.get(101).status for _ in range(101))

    assert statuses == {200: 100, 429: 1}


# Faults


def test_status_fault_answers_then_expires(api: Api) -> None:
    api.simulator.inject(Fault(kind="status", status=503, times=2))

    first, second, third = (api.archive(101) for _ in range(3))

    assert_problem(first, 503, detail=None)
    assert body_of(first)["title"] == "Service Unavailable"
    assert_problem(second, 503)
    assert third.status == 200
    assert api.simulator.pending_faults() == []


def test_status_fault_changes_nothing(api: Api) -> None:
    api.simulator.inject(Fault(kind="status", status=500))

    assert api.archive(101).status == 500

    assert not is_archived(api, 101)


@pytest.mark.parametrize(("retry_after", "header"), [(2, "2"), (None, "1"), (0, "1")])
def test_429_fault_carries_retry_after(api: Api, retry_after: int | None, header: str) -> None:
    api.simulator.inject(Fault(kind="status", status=429, retry_after=retry_after))

    response = api.archive(101)

    assert_problem(response, 429, detail="Rate limit exceeded. Retry after " + header + " seconds.")
    assert response.headers["Retry-After"] == header


def test_5xx_fault_with_retry_after(api: Api) -> None:
    api.simulator.inject(Fault(kind="status", status=503, retry_after=7))

    assert api.archive(101).headers["Retry-After"] == "7"


def test_drop_fault_closes_the_connection_without_a_response(api: Api) -> None:
    api.simulator.inject(Fault(kind="drop"))

    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.archive(101)

    assert api.simulator.requests[-1].status == 0
    assert not is_archived(api, 101)
    assert api.archive(101).status == 200


def test_delay_fault_answers_normally_after_the_delay(api: Api) -> None:
    api.simulator.inject(Fault(kind="delay", seconds=0.3))

    started = time.monotonic()
    response = api.archive(101)
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3
    assert response.status == 200
    assert is_archived(api, 101)
    # The fault was used up by that call (a state check: how long the next call takes depends on the machine)
    assert api.simulator.pending_faults() == []
    assert api.archive(102).status == 200


def test_delay_fault_outlasting_the_client_timeout_still_archives(api: Api) -> None:
    api.simulator.inject(Fault(kind="delay", seconds=0.4))

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        api.http.request(
            "POST",
            api.simulator.base_url + "/v3/sequences/103/archive",
            headers={"Authorization": "Bearer " + KEY},
            timeout=urllib3.Timeout(read=0.1),
        )

    deadline = time.monotonic() + 2
    while not is_archived(api, 103) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert is_archived(api, 103)


def test_malformed_fault_sends_a_200_that_is_not_json(api: Api) -> None:
    api.simulator.inject(Fault(kind="malformed"))

    response = api.archive(101)

    assert response.status == 200
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        json.loads(response.data)
    assert not is_archived(api, 101)


def test_sequence_scoped_fault_only_hits_that_sequence(api: Api) -> None:
    api.simulator.inject(Fault(kind="status", status=503, times=None, sequence_id=105))

    assert api.archive(104).status == 200
    assert api.archive(105).status == 503
    assert api.pause(105).status == 503
    assert api.bulk_archive([106, 107]).status == 200
    assert api.bulk_archive([108, 105]).status == 503
    assert not is_archived(api, 108)

    api.simulator.clear_faults()

    assert api.archive(105).status == 200


def test_path_prefix_fault_only_hits_bulk(api: Api) -> None:
    api.simulator.inject(Fault(kind="status", status=502, path_prefix="/v3/sequences/archive"))

    assert api.archive(101).status == 200
    assert api.bulk_archive([102]).status == 502
    assert api.bulk_archive([102]).status == 200


def test_faults_fire_in_injection_order_one_per_request(api: Api) -> None:
    api.simulator.inject(Fault(kind="status", status=500))
    api.simulator.inject(Fault(kind="status", status=503))

    assert [api.get(101).status for _ in range(3)] == [500, 503, 200]


def test_unlimited_fault_lasts_until_cleared(api: Api) -> None:
    api.simulator.inject(Fault(kind="status", status=500, times=None))

    assert [api.get(101).status for _ in range(4)] == [500] * 4
    api.simulator.clear_faults()
    assert api.get(101).status == 200


def test_faults_apply_after_auth(api: Api) -> None:
    api.simulator.inject(Fault(kind="status", status=503))

    assert api.get(101, key="wrong").status == 401

    assert api.get(101).status == 503


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "explode"}, "fault kind"),
        ({"kind": "status"}, "status fault"),
        ({"kind": "status", "status": 200}, "status fault"),
        ({"kind": "delay"}, "delay fault"),
        ({"kind": "drop", "times": 0}, "times"),
    ],
)
def test_invalid_faults_are_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(**fields)


# Keys


def test_key_rotation(api: Api) -> None:
    api.simulator.set_api_keys({"new-key": ALL_SCOPES})

    assert api.get(101).status == 401
    assert api.get(101, key="new-key").status == 200


# Admin endpoints


def test_admin_faults(api: Api) -> None:
    created = api.admin("POST", "/faults", {"kind": "status", "status": 503, "times": 2, "sequence_id": 110})

    assert created.status == 201
    assert body_of(created)["sequence_id"] == 110
    assert api.archive(110).status == 503
    assert api.admin("DELETE", "/faults").status == 204
    assert api.archive(110).status == 200


def test_admin_rejects_a_bad_fault(api: Api) -> None:
    assert_problem(api.admin("POST", "/faults", {"kind": "status"}), 400)
    assert_problem(api.admin("POST", "/faults", {"kind": "status", "status": "503"}), 400)


def test_admin_keys(api: Api) -> None:
    response = api.admin("POST", "/keys", {"apiKeys": {"rotated": [SCOPE_READ]}})

    assert response.status == 204
    assert api.get(101).status == 401
    assert api.get(101, key="rotated").status == 200
    assert api.archive(101, key="rotated").status == 403
    assert_problem(api.admin("POST", "/keys", {"keys": []}), 400)


def test_admin_sequences(api: Api) -> None:
    added = api.admin("POST", "/sequences", {"ids": [9001, 9002], "status": "active"})

    assert added.status == 201
    assert body_of(added) == {"added": 2}
    snapshot = body_of(api.admin("GET", "/sequences/9001"))
    assert snapshot["status"] == "active"
    assert snapshot["is_archived"] is False
    assert snapshot["owner_user_id"] == 1
    assert api.archive(9002).status == 409
    assert_problem(api.admin("GET", "/sequences/424242"), 404)
    assert_problem(api.admin("POST", "/sequences", {"ids": [1], "status": "running"}), 400)


def test_admin_requests_never_show_the_key(api: Api) -> None:
    api.archive(101)
    api.archive(101, key="a-secret-wrong-key")

    response = api.admin("GET", "/requests")

    listing = body_of(response)
    assert [(entry["status"], entry["key_accepted"]) for entry in listing["requests"]] == [
        (200, True),
        (401, False),
    ]
    assert listing["api_calls"] == 2
    assert KEY.encode() not in response.data
    assert b"a-secret-wrong-key" not in response.data
    assert "a-secret-wrong-key" not in repr(api.simulator.requests)


def test_admin_reset(api: Api) -> None:
    api.archive(101)
    api.simulator.inject(Fault(kind="status", status=500))

    assert api.admin("POST", "/reset").status == 204

    assert not is_archived(api, 101)
    assert api.simulator.requests == []
    assert api.simulator.api_calls == 0
    assert api.archive(101).status == 200


def test_admin_calls_are_not_recorded_or_rate_limited(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit(per_minute=1, minute_seconds=60, per_hour=None))

    statuses = [api.admin("GET", "/sequences/101").status for _ in range(5)]

    assert statuses == [200] * 5
    assert api.simulator.api_calls == 0
    assert api.get(101).status == 200


def test_admin_settings_show_and_change_the_answers_while_running(api: Api) -> None:
    shown = body_of(api.admin("GET", "/settings"))
    assert shown["unauthorized_body"] == "empty"
    assert shown["bulk_max_ids"] == 100
    assert shown["rate_limit_headers"] is False
    assert shown["assumptions"] == dict.fromkeys(Assumptions.names(), True)
    assert api.archive(101, key="wrong").data == b""

    changed = api.admin(
        "POST",
        "/settings",
        {"unauthorized_body": "problem", "bulk_max_ids": 2, "assumptions": {"archive_invalid_state": False}},
    )

    assert changed.status == 200
    assert body_of(changed)["assumptions"]["archive_invalid_state"] is False
    assert body_of(changed)["assumptions"]["bulk_invalid_state"] is True
    assert_problem(api.archive(101, key="wrong"), 401)
    assert_problem(
        api.archive(301),
        409,
        None,
        "Sequence is active. Pause it first: archiving removes every contact currently in it.",
    )
    assert assert_problem(api.bulk_archive([102, 103, 104]), 400)["errors"][0]["pointer"] == "/ids"
    assert api.simulator.settings.bulk_max_ids == 2


@pytest.mark.parametrize(
    "body",
    [
        {"unauthorized_body": "html"},
        {"bulk_max_ids": 0},
        {"bulk_max_ids": True},
        {"latency_seconds": "slow"},
        {"rate_limit_headers": "yes"},
        {"assumptions": {"archive_invalid_state": "no"}},
        {"assumptions": {"no_such_switch": False}},
        {"assumptions": ["archive_invalid_state"]},
        {"no_such_setting": 1},
    ],
)
def test_admin_settings_reject_bad_values_and_change_nothing(api: Api, body: dict[str, Any]) -> None:
    before = api.simulator.settings

    assert_problem(api.admin("POST", "/settings", {"bulk_max_ids": 7, **body}), 400)

    assert api.simulator.settings == before


def test_admin_unknown_route_and_method(api: Api) -> None:
    assert_problem(api.admin("GET", "/nothing"), 404)
    assert_problem(api.admin("GET", "/reset"), 405)


# Python API


def test_recorded_requests(api: Api) -> None:
    api.archive(101)
    api.get(999, key="nope")
    api.bulk_archive([102, 102, 103])

    records = api.simulator.requests

    assert [(r.method, r.path, r.status, r.sequence_id, r.key_accepted) for r in records] == [
        ("POST", "/v3/sequences/101/archive", 200, 101, True),
        ("GET", "/v3/sequences/999", 401, 999, False),
        ("POST", "/v3/sequences/archive", 200, None, True),
    ]
    assert records[2].sequence_ids == (102, 103)
    assert records[0].at <= records[1].at <= records[2].at
    assert api.simulator.api_calls == 3
    records.clear()
    assert len(api.simulator.requests) == 3


def test_recorded_requests_name_the_key_each_call_used_by_its_fingerprint_only(make_api: Callable[..., Api]) -> None:
    api = make_api(api_keys={KEY: ALL_SCOPES, "second-key": ALL_SCOPES})

    api.archive(101)
    api.archive(102, key="second-key")
    api.archive(103, key="an-unknown-key")
    api.archive(104, key=None)

    records = api.simulator.requests
    assert [(r.key_fingerprint, r.key_accepted) for r in records] == [
        (key_fingerprint(KEY), True),
        (key_fingerprint("second-key"), True),
        (key_fingerprint("an-unknown-key"), False),
        (None, False),
    ]
    assert key_fingerprint(KEY) != key_fingerprint("second-key")
    listing = body_of(api.admin("GET", "/requests"))
    assert [entry["key_fingerprint"] for entry in listing["requests"]] == [r.key_fingerprint for r in records]
    assert "second-key" not in repr(records) + json.dumps(listing)


def test_add_sequence_and_reset(api: Api) -> None:
    added = api.simulator.add_sequence(1234, name="x", status="active", owner_user_id=1)

    assert added.name == "x"
    assert api.simulator.sequence(1234) == added
    assert api.simulator.add_sequences(range(10_000, 10_100), status="new") == 100
    bulk_added = api.simulator.sequence(10_050)
    assert bulk_added is not None
    assert (bulk_added.status, bulk_added.name, bulk_added.owner_user_id) == ("new", "Sequence 10050", 1)
    api.simulator.reset()
    assert api.simulator.sequence(1234) is None
    assert api.simulator.sequence(101) is not None


def test_unseeded_simulator_is_empty(make_api: Callable[..., Api]) -> None:
    api = make_api(seed=False)

    assert_problem(api.archive(101), 404, "sequenceAction.notFound")
    assert ids_of(api.list_sequences()) == []


def test_add_sequence_validates(api: Api) -> None:
    with pytest.raises(ValueError, match="status"):
        api.simulator.add_sequence(5, status="archived")
    with pytest.raises(ValueError, match="between 1 and 2147483647"):
        api.simulator.add_sequence(0)


def test_context_manager_and_default_key(http: urllib3.PoolManager) -> None:
    with ReplySimulator() as simulator:
        base_url = simulator.base_url
        response = http.request(
            "GET", base_url + "/v3/sequences/101", headers={"Authorization": "Bearer local-dev-key"}
        )
        assert response.status == 200
    with pytest.raises(RuntimeError, match="not running"):
        _ = simulator.base_url


def test_latency_is_added_to_every_api_response(make_api: Callable[..., Api]) -> None:
    api = make_api(latency_seconds=0.1)

    started = time.monotonic()
    api.get(101, key="wrong")
    api.get(101)

    assert time.monotonic() - started >= 0.2


# Robustness and concurrency


def test_client_disconnecting_mid_response_does_not_hurt_the_server(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    api.simulator.inject(Fault(kind="delay", seconds=0.2))
    port = api.simulator.port
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"GET /v3/sequences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n\r\n")
    time.sleep(0.35)  # the server writes its answer into a closed socket

    assert api.get(101).status == 200
    assert capfd.readouterr().err == ""


def test_concurrent_bulk_archives_archive_each_id_exactly_once(api: Api) -> None:
    api.simulator.add_sequences(range(10_000, 12_000), status="paused")
    chunks = [list(range(start, start + 100)) for start in range(10_000, 12_000, 100)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda ids: body_of(api.bulk_archive(ids)), chunks + chunks))

    already_archived = Counter(int(key) for failures in responses for key in failures)
    assert set(already_archived) == set(range(10_000, 12_000))
    assert set(already_archived.values()) == {1}
    assert all(failure["error"] == "archived" for failures in responses for failure in failures.values())
    assert all(is_archived(api, sequence_id) for sequence_id in range(10_000, 12_000))
    assert api.simulator.api_calls == 2 * len(chunks)


def handler_threads() -> list[threading.Thread]:
    """Return the live threads http.server started for connections."""
    return [thread for thread in threading.enumerate() if "process_request_thread" in thread.name]


def test_stop_closes_kept_alive_connections(make_api: Callable[..., Api]) -> None:
    api = make_api()
    assert api.get(101).status == 200  # leaves a kept-alive connection (and its thread) open
    assert handler_threads() != []

    api.simulator.stop()

    deadline = time.monotonic() + 2
    while handler_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert handler_threads() == []
    assert [thread for thread in threading.enumerate() if thread.name == "reply-simulator"] == []


# Command line


def test_cli_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.stand_ins.reply_simulator",
            "--port",
            "0",
            "--api-key",
            "cli-key",
            "--rate-limit",
            "none",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.startswith("Reply simulator listening on http://127.0.0.1:")
        base_url = first_line.rsplit(" ", 1)[1].strip()
        http = urllib3.PoolManager(retries=False, timeout=5.0)
        response = http.request(
            "POST", base_url + "/v3/sequences/101/archive", headers={"Authorization": "Bearer cli-key"}
        )
        assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.stdout is not None
    assert process.stderr is not None
    output, errors = process.stdout.read(), process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert process.returncode == 0, errors
    assert "101-120" in output
    assert "sequenceAction.invalidState" in output  # the seed table says what archiving answers
    assert "cli-key" not in output


@pytest.mark.parametrize(
    ("argv", "active", "sales_agent"),
    [
        ([], "sequenceAction.invalidState", "sequenceAction.salesAgentNotAllowed"),
        (["--spec-only"], "(no code)", "(no code)"),
        (["--no-assume", "archive_invalid_state"], "(no code)", "sequenceAction.salesAgentNotAllowed"),
    ],
    ids=["assumed", "spec-only", "one-off"],
)
def test_cli_seed_table_says_what_archiving_answers_under_the_chosen_assumptions(
    argv: list[str], active: str, sales_agent: str
) -> None:
    options = simulator_cli.build_parser().parse_args(argv)

    table = simulator_cli.seed_table(simulator_cli.assumptions_from(options))

    assert "301-305  active                archive 409 " + active in table
    assert "701-702  sales agent           archive 409 " + sales_agent in table
    assert "101-120  paused                archive 200" in table


# Contract: simulator responses against the OpenAPI excerpt


SINGLE = "/v3/sequences/{id}"
ARCHIVE = "/v3/sequences/{id}/archive"
PAUSE = "/v3/sequences/{id}/pause"
BULK = "/v3/sequences/archive"
LIST = "/v3/sequences"


def test_archive_200_matches_the_sequence_schema(api: Api) -> None:
    assert_valid(body_of(api.archive(101)), response_schema(ARCHIVE, "post", "200"))


def test_pause_get_list_and_bulk_200_match_their_schemas(api: Api) -> None:
    assert_valid(body_of(api.pause(301)), response_schema(PAUSE, "post", "200"))
    assert_valid(body_of(api.get(101)), response_schema(SINGLE, "get", "200"))
    assert_valid(body_of(api.list_sequences(top="1000")), response_schema(LIST, "get", "200"))
    bulk = body_of(api.bulk_archive([101, 302, 401, 501, 601, 701, 999]))
    assert len(bulk) == 6
    assert_valid(bulk, response_schema(BULK, "post", "200"))
    for item in bulk.values():
        assert set(item) == {"error", "errorDetails"}


def test_sequence_fields_are_all_declared(api: Api) -> None:
    parts = SPEC["components"]["schemas"]["sequence-response.model"]["allOf"]
    declared = set(parts[0]["properties"]) | set(parts[1]["properties"])

    assert set(body_of(api.archive(101))) <= declared
    assert set(body_of(api.archive(102))) == set(SPEC["components"]["schemas"]["sequence-response.model"]["example"])


ONE_OF_BRANCH = {"validation": ("oneOf", "0"), "business": ("oneOf", "1")}
BULK_BODY = {"ids": [101]}


@dataclass(frozen=True)
class ContractCase:
    operation: str  # the spec's path template
    url: str
    status: int
    variant: str = ""  # for a 400: "validation" or "business" (the oneOf branch); otherwise a label
    key: str | None = KEY
    scopes: frozenset[str] = ALL_SCOPES
    rate_limited: bool = False

    @property
    def method(self) -> str:
        """Return the operation's HTTP method."""
        return "GET" if self.operation in (SINGLE, LIST) else "POST"

    @property
    def schema(self) -> str:
        """Point at the schema this response must match (a 400 is checked against its oneOf branch)."""
        branch = ONE_OF_BRANCH.get(self.variant, ())
        return response_schema(self.operation, self.method.lower(), str(self.status), *branch)

    @property
    def label(self) -> str:
        """Name the case for pytest."""
        return " ".join(part for part in (self.method, self.url, str(self.status), self.variant) if part)


ERROR_CASES = [
    ContractCase(ARCHIVE, "/v3/sequences/0/archive", 400, "validation"),
    ContractCase(ARCHIVE, "/v3/sequences/601/archive", 400, "business"),
    ContractCase(ARCHIVE, "/v3/sequences/101/archive", 401, key=None),
    ContractCase(ARCHIVE, "/v3/sequences/501/archive", 403, "owner"),
    ContractCase(ARCHIVE, "/v3/sequences/101/archive", 403, "scope", scopes=frozenset({SCOPE_READ})),
    ContractCase(ARCHIVE, "/v3/sequences/999/archive", 404),
    ContractCase(ARCHIVE, "/v3/sequences/401/archive", 409, "archived"),
    ContractCase(ARCHIVE, "/v3/sequences/301/archive", 409, "active"),
    ContractCase(ARCHIVE, "/v3/sequences/701/archive", 409, "sales agent"),
    ContractCase(ARCHIVE, "/v3/sequences/101/archive", 429, rate_limited=True),
    ContractCase(PAUSE, "/v3/sequences/x/pause", 400, "validation"),
    ContractCase(PAUSE, "/v3/sequences/601/pause", 400, "business"),
    ContractCase(PAUSE, "/v3/sequences/101/pause", 401, key="wrong"),
    ContractCase(PAUSE, "/v3/sequences/501/pause", 403),
    ContractCase(PAUSE, "/v3/sequences/999/pause", 404),
    ContractCase(PAUSE, "/v3/sequences/401/pause", 409, "archived"),
    ContractCase(PAUSE, "/v3/sequences/201/pause", 409, "not started"),
    ContractCase(PAUSE, "/v3/sequences/301/pause", 429, rate_limited=True),
    ContractCase(SINGLE, "/v3/sequences/-5", 400, "validation"),
    ContractCase(SINGLE, "/v3/sequences/101", 401, key="wrong"),
    ContractCase(SINGLE, "/v3/sequences/501", 403),
    ContractCase(SINGLE, "/v3/sequences/999", 404),
    ContractCase(SINGLE, "/v3/sequences/101", 429, rate_limited=True),
    ContractCase(LIST, "/v3/sequences?sortDirection=asc", 400),
    ContractCase(LIST, "/v3/sequences?top=0", 400),
    ContractCase(LIST, "/v3/sequences", 401, key=None),
    ContractCase(LIST, "/v3/sequences", 403, scopes=frozenset({SCOPE_OPERATE})),
    ContractCase(LIST, "/v3/sequences", 429, rate_limited=True),
    ContractCase(BULK, BULK, 400, "validation"),
    ContractCase(BULK, BULK, 401, key=None),
    ContractCase(BULK, BULK, 403, scopes=frozenset({SCOPE_OPERATE})),
    ContractCase(BULK, BULK, 429, rate_limited=True),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.label)
def test_error_bodies_match_their_schemas(make_api: Callable[..., Api], case: ContractCase) -> None:
    rate_limit = RateLimit(per_minute=1, minute_seconds=60, per_hour=None) if case.rate_limited else None
    # The spec's 401 schema describes the problem+json body seen live (its description says the body is empty,
    # the simulator's default: see test_401_has_an_empty_body_and_www_authenticate_by_default_as_the_spec_says).
    api = make_api(api_keys={KEY: case.scopes}, rate_limit=rate_limit, unauthorized_body="problem")
    if case.rate_limited:
        api.get(999)
    body = ({"ids": []} if case.variant == "validation" else BULK_BODY) if case.operation == BULK else None

    response = api.call(case.method, case.url, json_body=body, key=case.key)

    assert response.status == case.status
    assert response.headers["Content-Type"] == PROBLEM
    problem = body_of(response)
    assert_valid(problem, case.schema)
    # The 400 schemas are oneOf [validation, business], but neither branch requires its extra field,
    # so every body matches both and oneOf as written rejects all of them (the spec's own examples
    # included: see test_spec_400_one_of_accepts_no_body). Each body is therefore checked against
    # its own branch, and the field that tells the branches apart must be present.
    if case.variant == "validation":
        assert "errors" in problem
        assert "code" not in problem
    elif case.status not in (401, 429):
        assert "code" in problem
    if case.status == 429:
        assert int(response.headers["Retry-After"]) >= 1


def test_spec_400_one_of_accepts_no_body() -> None:
    examples = SPEC["paths"][ARCHIVE]["post"]["responses"]["400"]["content"][PROBLEM]["examples"]
    whole = validator(response_schema(ARCHIVE, "post", "400"))
    branches = [validator(response_schema(ARCHIVE, "post", "400", *branch)) for branch in ONE_OF_BRANCH.values()]

    for example in examples.values():
        assert not whole.is_valid(example["value"])
        assert all(branch.is_valid(example["value"]) for branch in branches)


# Contract: every 4xx example in the spec has exactly the fields the simulator sends for it


def problem_kind(status: int, body: dict[str, Any]) -> str:
    """Name the kind of problem: the status, plus validation/business for 400."""
    if status == 400:
        return "400 validation" if "errors" in body else "400 business"
    return str(status)


def spec_error_examples() -> list[tuple[str, dict[str, Any]]]:
    """Return every example problem body under a 4xx response of every operation, with a label."""
    found: list[tuple[str, dict[str, Any]]] = []

    def collect(node: Any, label: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "example" and isinstance(value, dict) and "status" in value:
                    found.append((label, value))
                elif key == "examples" and isinstance(value, dict):
                    for name, example in value.items():
                        found.append((label + " " + name, example["value"]))
                else:
                    collect(value, label)
        elif isinstance(node, list):
            for item in node:
                collect(item, label)

    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    collect(response, method.upper() + " " + path + " " + status)
    return found


SPEC_ERROR_EXAMPLES = spec_error_examples()

# One request per kind of problem the simulator sends.
SIMULATOR_PROBLEMS = {
    "400 validation": ("GET", "/v3/sequences/0"),
    "400 business": ("POST", "/v3/sequences/601/archive"),
    "401": ("GET", "/v3/sequences/101"),
    "403": ("POST", "/v3/sequences/501/archive"),
    "404": ("POST", "/v3/sequences/999/archive"),
    "409": ("POST", "/v3/sequences/401/archive"),
    "429": ("GET", "/v3/sequences/101"),
}


def test_the_spec_has_examples_for_every_problem_kind() -> None:
    kinds = {problem_kind(example["status"], example) for _, example in SPEC_ERROR_EXAMPLES}

    assert kinds == set(SIMULATOR_PROBLEMS)
    assert len(SPEC_ERROR_EXAMPLES) >= 25


@pytest.mark.parametrize(("label", "example"), SPEC_ERROR_EXAMPLES, ids=[label for label, _ in SPEC_ERROR_EXAMPLES])
def test_spec_error_example_has_the_fields_the_simulator_sends(
    make_api: Callable[..., Api], label: str, example: dict[str, Any]
) -> None:
    kind = problem_kind(example["status"], example)
    method, path = SIMULATOR_PROBLEMS[kind]
    api = make_api(rate_limit=RateLimit(per_minute=1, minute_seconds=60, per_hour=None), unauthorized_body="problem")
    if kind == "429":
        api.get(999)

    response = api.call(method, path, key=None if kind == "401" else KEY)

    assert response.status == example["status"]
    problem = body_of(response)
    assert set(problem) == set(example), label
    if "errors" in example:
        assert {frozenset(error) for error in problem["errors"]} == {frozenset(error) for error in example["errors"]}
