"""The Reply simulator's sequence contacts endpoints, over real HTTP: GET /v3/sequences/{id}/contacts
(GetSequenceContacts), GET .../contacts/state (GetSequenceContactsState), POST .../contact-links/bulk
(BulkAddContactsToSequence) and POST /v3/sequences/{id}/unarchive (UnarchiveSequence), what archiving does to
contacts, sequences' health, and the seeding and inspection hooks tests use."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from local.stand_ins.reply_simulator import (
    SCOPE_OPERATE,
    SCOPE_READ,
    SCOPE_WRITE,
    Assumptions,
    RateLimit,
    SimulatedUser,
    SimulatedWorkspace,
)
from tests.integration.simulator_http import KEY, Api

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTACTS_SPEC_PATH = REPO_ROOT / "local" / "stand_ins" / "reply_simulator" / "openapi" / "contacts-excerpt.yaml"
CONTACTS_SPEC: dict[str, Any] = yaml.safe_load(CONTACTS_SPEC_PATH.read_text(encoding="utf-8"))
OPERATION = CONTACTS_SPEC["paths"]["/v3/sequences/{id}/contacts"]["get"]
PAGE_SCHEMA = OPERATION["responses"]["200"]["content"]["application/json"]["schema"]


def with_nullable(schema: Any) -> Any:
    """Read the source's OpenAPI 3.0 `nullable: true` (no effect in 3.1 JSON Schema) as it is meant: null allowed.

    The spec's own item example has `linkedInAccountId: null`, which the schema taken literally refuses."""
    if isinstance(schema, list):
        return [with_nullable(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {name: with_nullable(value) for name, value in schema.items()}
    if converted.get("nullable") is True and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    return converted


ITEM_VALIDATOR = Draft202012Validator(with_nullable(PAGE_SCHEMA["properties"]["items"]["items"]))
PATHS = CONTACTS_SPEC["paths"]
STATE_OPERATION = PATHS["/v3/sequences/{id}/contacts/state"]["get"]
STATE_ITEM_SCHEMA = STATE_OPERATION["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["items"][
    "items"
]
STATE_ITEM_VALIDATOR = Draft202012Validator(with_nullable(STATE_ITEM_SCHEMA))
LINKS_OPERATION = PATHS["/v3/sequences/{id}/contact-links/bulk"]["post"]
LINKS_VALIDATOR = Draft202012Validator(
    with_nullable(LINKS_OPERATION["responses"]["200"]["content"]["application/json"]["schema"])
)
UNARCHIVE_OPERATION = PATHS["/v3/sequences/{id}/unarchive"]["post"]
PROBLEM = "application/problem+json"


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """A simulator with the default seed (101-120 paused, 401-405 archived, 501-505 user 2's)."""
    return make_api()


def body_of(response: Any) -> Any:
    return json.loads(response.data) if response.data else None


def state_page(api: Api, sequence_id: int | str, *, key: str = KEY, **query: str) -> tuple[int, Any]:
    path = "/v3/sequences/" + str(sequence_id) + "/contacts/state"
    response = api.call("GET", path, key=key, fields=query or None)
    return response.status, body_of(response)


def link_contacts(api: Api, sequence_id: int | str, body: Any, **kwargs: Any) -> tuple[int, Any]:
    response = api.call("POST", "/v3/sequences/" + str(sequence_id) + "/contact-links/bulk", json_body=body, **kwargs)
    return response.status, body_of(response)


def unarchive(api: Api, sequence_id: int | str, **kwargs: Any) -> Any:
    return api.call("POST", "/v3/sequences/" + str(sequence_id) + "/unarchive", **kwargs)


def contacts_page(api: Api, sequence_id: int | str, **query: str) -> tuple[int, Any]:
    response = api.call("GET", "/v3/sequences/" + str(sequence_id) + "/contacts", fields=query or None)
    return response.status, json.loads(response.data) if response.data else None


def every_contact(api: Api, sequence_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    skip = 0
    while True:
        status, body = contacts_page(api, sequence_id, top="1000", skip=str(skip))
        assert status == 200
        items.extend(body["items"])
        if not body["hasMore"]:
            return items
        skip += 1000


def test_operation_copied_from_the_spec_with_its_item_schema() -> None:
    assert OPERATION["operationId"] == "GetSequenceContacts"
    assert OPERATION["x-required-scope"] == "sequences:read"
    item_example = PAGE_SCHEMA["properties"]["items"]["items"]["example"]
    ITEM_VALIDATOR.validate(item_example)


def test_seeded_contacts_are_deterministic_and_readable(api: Api) -> None:
    added = api.simulator.add_contacts(101, 3, start_id=7)
    assert [item["contactId"] for item in added] == [7, 8, 9]
    assert api.simulator.contacts(101) == added
    assert api.simulator.add_contacts(102, 3, start_id=7) == [{**item, "sequenceId": 102} for item in added]
    first = added[0]
    assert first["email"] == "contact7@example.com"
    assert first["statusInSequence"] == "active"
    assert first["isOptedOut"] is False
    assert first["currentStep"] == {"stepId": 1323, "displayName": "1"}
    for item in added:
        ITEM_VALIDATOR.validate(item)
    finished = api.simulator.add_contacts(103, 1, status="finished")
    assert finished[0]["currentStep"] == {"stepId": None, "displayName": "Finished"}


def test_seeding_refuses_unknown_archived_sequences_and_bad_status(api: Api) -> None:
    with pytest.raises(ValueError, match="no sequence"):
        api.simulator.add_contacts(999, 1)
    with pytest.raises(ValueError, match="archived"):
        api.simulator.add_contacts(401, 1)
    with pytest.raises(ValueError, match="statusInSequence"):
        api.simulator.add_contacts(101, 1, status="Active")
    assert api.simulator.contacts(999) == []


def test_1500_contacts_come_in_pages_of_1000_and_500(api: Api) -> None:
    api.simulator.add_contacts(101, 1500)
    status, first = contacts_page(api, 101, top="1000")
    assert status == 200
    assert len(first["items"]) == 1000
    assert first["hasMore"] is True
    status, second = contacts_page(api, 101, top="1000", skip="1000")
    assert status == 200
    assert len(second["items"]) == 500
    assert second["hasMore"] is False
    ids = [item["contactId"] for item in first["items"] + second["items"]]
    assert sorted(ids) == list(range(1, 1501))
    assert ids == sorted(ids, reverse=True)  # most recently added first
    for item in first["items"][:5] + second["items"][-5:]:
        ITEM_VALIDATOR.validate(item)
        assert item["sequenceId"] == 101
    reads = [record for record in api.simulator.requests if record.path == "/v3/sequences/101/contacts"]
    assert [(record.status, record.sequence_id, record.acting_user_id) for record in reads] == [(200, 101, 1)] * 2


def test_default_page_is_25_and_skip_past_the_end_is_empty(api: Api) -> None:
    api.simulator.add_contacts(101, 30)
    status, body = contacts_page(api, 101)
    assert status == 200
    assert len(body["items"]) == 25
    assert body["hasMore"] is True
    assert contacts_page(api, 101, skip="30") == (200, {"items": [], "hasMore": False})
    assert contacts_page(api, 102) == (200, {"items": [], "hasMore": False})


@pytest.mark.parametrize(
    "query",
    [{"top": "0"}, {"top": "1001"}, {"top": "-1"}, {"top": "ten"}, {"skip": "-1"}, {"skip": "x"}],
    ids=["top-0", "top-1001", "top-negative", "top-text", "skip-negative", "skip-text"],
)
def test_pagination_out_of_range_is_a_400_problem(api: Api, query: dict[str, str]) -> None:
    response = api.call("GET", "/v3/sequences/101/contacts", fields=query)
    assert response.status == 400
    assert response.headers["Content-Type"].startswith(PROBLEM)
    body = json.loads(response.data)
    assert body["status"] == 400
    assert body["title"] == "Bad Request"
    assert body["code"] == "sequenceContact.invalidInput"
    assert body["detail"]


def test_top_at_the_limits_is_accepted(api: Api) -> None:
    api.simulator.add_contacts(101, 2)
    assert contacts_page(api, 101, top="1")[1]["hasMore"] is True
    assert contacts_page(api, 101, top="1000")[1]["hasMore"] is False


def test_unknown_sequence_is_404(api: Api) -> None:
    response = api.call("GET", "/v3/sequences/999999/contacts")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith(PROBLEM)
    assert json.loads(response.data) == {
        "title": "Not Found",
        "status": 404,
        "detail": "Sequence 999999 not found.",
        "code": "sequenceContact.sequenceNotFound",
    }


def test_invalid_path_id_is_400_validation(api: Api) -> None:
    status, body = contacts_page(api, 0)
    assert status == 400
    assert body["errors"] == [{"pointer": "id", "detail": "The field id must be between 1 and 2147483647."}]


def test_only_get_is_allowed(api: Api) -> None:
    response = api.call("POST", "/v3/sequences/101/contacts")
    assert response.status == 405
    assert response.headers["Allow"] == "GET"


def test_sequence_the_acting_user_may_not_see_is_403(make_api: Callable[..., Api]) -> None:
    api = make_api()
    member = SimulatedUser(3, "member@example.com", role="member")
    api.simulator.add_user(member, api_keys={"member-key": {"sequences:read"}})
    api.simulator.add_contacts(101, 2)
    assert contacts_page(api, 101)[0] == 200  # the owner sees it
    response = api.call("GET", "/v3/sequences/101/contacts", key="member-key")
    assert response.status == 403
    assert json.loads(response.data)["code"] == "sequenceContact.forbidden"


def test_needs_the_read_scope(make_api: Callable[..., Api]) -> None:
    api = make_api(api_keys={KEY: {SCOPE_OPERATE, SCOPE_WRITE}})
    response = api.call("GET", "/v3/sequences/101/contacts")
    assert response.status == 403
    assert json.loads(response.data)["code"] == "sequenceContact.forbidden"


def test_single_archive_removes_every_contact(api: Api) -> None:
    api.simulator.add_contacts(101, 1500)
    api.simulator.add_contacts(102, 5)
    assert api.archive(101).status == 200
    assert api.simulator.contacts(101) == []
    assert contacts_page(api, 101, top="1000") == (200, {"items": [], "hasMore": False})
    assert len(every_contact(api, 102)) == 5  # other sequences keep theirs


def test_refused_archive_keeps_the_contacts(api: Api) -> None:
    api.simulator.add_contacts(301, 3)  # active: 409, pause it first
    assert api.archive(301).status == 409
    assert len(api.simulator.contacts(301)) == 3


def test_bulk_archive_removes_every_contact_of_each_archived_sequence(api: Api) -> None:
    for sequence_id in (101, 102, 103, 301):
        api.simulator.add_contacts(sequence_id, 600)
    response = api.bulk_archive([101, 102, 301])
    assert response.status == 200
    assert set(json.loads(response.data)) == {"301"}  # active: not archived
    for sequence_id in (101, 102):
        assert api.simulator.contacts(sequence_id) == []
        assert every_contact(api, sequence_id) == []
    assert len(every_contact(api, 103)) == 600
    assert len(every_contact(api, 301)) == 600


def test_rate_limited_like_every_call(make_api: Callable[..., Api]) -> None:
    from local.stand_ins.reply_simulator import RateLimit

    api = make_api(rate_limit=RateLimit(per_minute=2, per_hour=None))
    assert contacts_page(api, 101)[0] == 200
    assert contacts_page(api, 101)[0] == 200
    response = api.call("GET", "/v3/sequences/101/contacts")
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert api.simulator.requests[-1].over_quota is True
    assert api.simulator.user_calls()[1].calls == 3


def test_reset_forgets_contacts(api: Api) -> None:
    api.simulator.add_contacts(101, 3)
    api.simulator.reset()
    assert api.simulator.contacts(101) == []


def test_the_four_operations_are_copied_from_the_spec() -> None:
    operations = {path: next(iter(item.values()))["operationId"] for path, item in PATHS.items()}
    assert operations == {
        "/v3/sequences/{id}/unarchive": "UnarchiveSequence",
        "/v3/sequences/{id}/contacts": "GetSequenceContacts",
        "/v3/sequences/{id}/contacts/state": "GetSequenceContactsState",
        "/v3/sequences/{id}/contact-links/bulk": "BulkAddContactsToSequence",
    }
    assert STATE_OPERATION["x-required-scope"] == SCOPE_READ
    assert LINKS_OPERATION["x-required-scope"] == SCOPE_OPERATE
    assert UNARCHIVE_OPERATION["x-required-scope"] == SCOPE_OPERATE
    assert "Coming soon" in UNARCHIVE_OPERATION["description"]
    STATE_ITEM_VALIDATOR.validate(STATE_ITEM_SCHEMA["example"])


# Sequences' health


def test_listed_and_fetched_sequences_carry_their_health(api: Api) -> None:
    api.simulator.add_sequence(9001, health="stalled")
    api.simulator.add_sequences([9002], health="blocked")
    listed = {item["id"]: item["health"] for item in body_of(api.list_sequences(top="1000"))["items"]}
    assert listed[101] == "healthy"
    assert listed[9001] == "stalled"
    assert listed[9002] == "blocked"
    assert body_of(api.get(9001))["health"] == "stalled"
    assert body_of(api.get(101))["health"] == "healthy"
    assert api.admin("POST", "/sequences", {"ids": [9003], "health": "degraded"}).status == 201
    assert body_of(api.get(9003))["health"] == "degraded"
    assert body_of(api.admin("GET", "/sequences/9003"))["health"] == "degraded"
    with pytest.raises(ValueError, match="health"):
        api.simulator.add_sequence(9004, health="sick")


# GET /v3/sequences/{id}/contacts: sorting, and the order of calls


def test_sort_by_a_field_defaults_to_descending(api: Api) -> None:
    api.simulator.add_contacts(101, 3, start_id=8)  # emails contact8, contact9, contact10
    emails = [item["email"] for item in contacts_page(api, 101, sort_by="email", sort_direction="asc")[1]["items"]]
    assert emails == ["contact10@example.com", "contact8@example.com", "contact9@example.com"]
    descending = [item["email"] for item in contacts_page(api, 101, sort_by="email")[1]["items"]]
    assert descending == list(reversed(emails))
    oldest_first = contacts_page(api, 101, sort_by="addingDate", sort_direction="asc")[1]["items"]
    assert [item["contactId"] for item in oldest_first] == [8, 9, 10]


def test_unknown_sort_field_is_the_documented_400(api: Api) -> None:
    status, body = contacts_page(api, 101, sort_by="foo")
    assert status == 400
    assert body["code"] == "sequenceContact.invalidSort"
    assert body["detail"] == (
        "Invalid sort_by value 'foo'. Allowed values: addingDate, email, firstName, lastName, company, statusInSequence"
    )
    assert contacts_page(api, 101, sort_direction="up")[1]["code"] == "sequenceContact.invalidSort"


def test_a_test_sees_the_contacts_listing_came_before_the_archive_call(api: Api) -> None:
    api.simulator.add_contacts(101, 1500)
    listed = every_contact(api, 101)
    assert api.archive(101).status == 200
    assert api.bulk_archive([102]).status == 200
    assert len(listed) == 1500
    assert [call.operation for call in api.simulator.sequence_calls(101)] == ["contacts", "contacts", "archive"]
    assert [call.operation for call in api.simulator.sequence_calls(102)] == ["bulk"]
    shown = body_of(api.admin("GET", "/sequences/101/calls"))["requests"]
    assert [(call["operation"], call["status"]) for call in shown] == [
        ("contacts", 200),
        ("contacts", 200),
        ("archive", 200),
    ]
    assert shown[0]["at"] < shown[2]["at"]


def test_admin_seeds_and_shows_a_sequences_contacts(api: Api) -> None:
    seeded = api.admin(
        "POST",
        "/sequences/101/contacts",
        {"count": 3, "status": "paused", "start_id": 5, "last_step_completed_at": "2024-05-01T09:00:00+00:00"},
    )
    assert seeded.status == 201
    assert body_of(seeded) == {"added": 3}
    shown = body_of(api.admin("GET", "/sequences/101/contacts"))["contacts"]
    assert [(item["contactId"], item["statusInSequence"]) for item in shown] == [
        (5, "paused"),
        (6, "paused"),
        (7, "paused"),
    ]
    assert shown == api.simulator.contacts(101)
    assert api.admin("POST", "/sequences/401/contacts", {"count": 1}).status == 400  # archived
    assert api.admin("POST", "/sequences/101/contacts", {"count": "3"}).status == 400
    workspace = api.admin("POST", "/contacts", {"count": 2, "start_id": 9001})
    assert body_of(workspace) == {"contact_ids": [9001, 9002]}


# GET /v3/sequences/{id}/contacts/state


def test_state_without_columns_has_only_the_base_fields(api: Api) -> None:
    api.simulator.add_contacts(101, 2)
    status, body = state_page(api, 101)
    assert status == 200
    assert body["hasMore"] is False
    assert body["items"][0] == {
        "contactId": 2,
        "email": "contact2@example.com",
        "firstName": "Contact",
        "lastName": "2",
        "title": "Buyer",
        "addedAt": "2024-03-01T00:00:02+00:00",
    }
    for item in body["items"]:
        STATE_ITEM_VALIDATOR.validate(item)


def test_state_adds_the_columns_asked_for(api: Api) -> None:
    completed = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    api.simulator.add_contacts(101, 1, status="active", last_step_completed_at=completed)
    api.simulator.add_contacts(101, 1, status="finished", start_id=2)
    status, body = state_page(api, 101, additionalColumns="LastStepCompletedAt")
    assert status == 200
    assert [(item["contactId"], item["lastStepCompletedAt"]) for item in body["items"]] == [
        (2, None),
        (1, "2024-05-01T09:00:00+00:00"),
    ]
    assert "currentStep" not in body["items"][0]
    assert "status" not in body["items"][0]
    status, body = state_page(api, 101, additionalColumns="CurrentStep,LastStepCompletedAt,Status")
    assert status == 200
    finished, active = body["items"]
    assert active["currentStep"] == {"stepId": 1323, "displayStepNumber": "1", "stepNumber": 1}
    assert finished["currentStep"]["stepId"] is None
    assert finished["currentStep"]["displayStepNumber"] == "Finished"
    assert active["status"] == {
        "status": "Active",
        "replied": False,
        "delivered": False,
        "bounced": False,
        "opened": False,
        "clicked": False,
    }
    assert finished["status"]["status"] == "Finished"
    for item in body["items"]:
        STATE_ITEM_VALIDATOR.validate(item)


def test_state_comes_in_pages_of_at_most_100(api: Api) -> None:
    api.simulator.add_contacts(101, 250)
    pages = [state_page(api, 101, top="100", skip=str(skip))[1] for skip in (0, 100, 200)]
    assert [(len(page["items"]), page["hasMore"]) for page in pages] == [(100, True), (100, True), (50, False)]
    ids = [item["contactId"] for page in pages for item in page["items"]]
    assert ids == list(range(250, 0, -1))
    assert len(state_page(api, 101)[1]["items"]) == 25
    for query in ({"top": "101"}, {"top": "0"}, {"skip": "-1"}):
        status, body = state_page(api, 101, **query)
        assert status == 400
        assert body["code"] == "sequenceContact.invalidInput"


def test_state_column_names_are_the_specs_unless_told_otherwise(make_api: Callable[..., Api]) -> None:
    api = make_api()
    api.simulator.add_contacts(101, 1)
    status, body = state_page(api, 101, additionalColumns="foo")
    assert status == 400
    assert body == {
        "title": "Bad Request",
        "status": 400,
        "detail": "Invalid additionalColumns value 'foo'. Allowed values: CurrentStep, LastStepCompletedAt, Status",
        "code": "sequenceContact.invalidInput",
    }
    assert state_page(api, 101, additionalColumns="lastStepCompletedAt")[0] == 400
    api.simulator.configure(assumptions={"contacts_state_columns_exact_case": False})
    status, body = state_page(api, 101, additionalColumns="lastStepCompletedAt, status")
    assert status == 200
    assert set(body["items"][0]) >= {"lastStepCompletedAt", "status"}


def test_state_answers_the_documented_404_and_403(make_api: Callable[..., Api]) -> None:
    api = make_api(api_keys={KEY: {SCOPE_OPERATE}, "reader": {SCOPE_READ}})
    status, body = state_page(api, 999999, key="reader")
    assert status == 404
    assert body["code"] == "sequenceContact.sequenceNotFound"
    assert state_page(api, 101)[1]["code"] == "sequenceContact.forbidden"  # no sequences:read
    assert state_page(api, 501, key="reader")[1]["code"] == "sequenceContact.forbidden"  # user 2's
    assert state_page(api, 101, key="reader")[0] == 200


# POST /v3/sequences/{id}/contact-links/bulk


def test_contact_links_answer_which_were_added_and_which_not_and_why(api: Api) -> None:
    api.simulator.add_contacts(101, 2)  # contacts 1 and 2, in sequence 101
    api.simulator.add_workspace_contacts(3, start_id=9001)
    api.simulator.set_workspace(SimulatedWorkspace(2, (SimulatedUser(20, "owner2@example.com", role="owner"),)))
    api.simulator.add_workspace_contacts(1, start_id=9501, workspace_id=2)

    status, body = link_contacts(api, 101, {"contactIds": [9001, 1, 9002, 777, 9001, 9501]})

    assert status == 200
    LINKS_VALIDATOR.validate(body)
    assert body == {
        "added": [9001, 9002],
        "notProcessed": {
            "1": {"error": "contactAlreadyInSequence", "errorDetails": "Contact is already enrolled."},
            "777": {"error": "contactNotFound", "errorDetails": "Contact does not exist."},
            "9501": {"error": "contactNotFound", "errorDetails": "Contact does not exist."},  # another workspace's
        },
    }
    listed = contacts_page(api, 101)[1]["items"]
    assert sorted(item["contactId"] for item in listed[:2]) == [9001, 9002]  # the most recently added first
    assert [item["contactId"] for item in listed[2:]] == [2, 1]
    assert listed[0]["statusInSequence"] == "active"
    assert {item["contactId"] for item in api.simulator.contacts(101)} == {1, 2, 9001, 9002}


def test_contact_links_can_take_contacts_out_of_their_other_sequences(api: Api) -> None:
    api.simulator.add_contacts(101, 2)
    assert link_contacts(api, 102, {"contactIds": [1]})[1]["added"] == [1]
    assert {item["contactId"] for item in api.simulator.contacts(101)} == {1, 2}  # kept in both by default
    assert link_contacts(api, 103, {"contactIds": [2], "removeFromExisting": True})[1]["added"] == [2]
    assert [item["contactId"] for item in api.simulator.contacts(101)] == [1]


def test_archived_sequences_contacts_can_be_enrolled_elsewhere(api: Api) -> None:
    api.simulator.add_contacts(101, 3)
    assert api.archive(101).status == 200
    assert link_contacts(api, 102, {"contactIds": [1, 2, 3]})[1] == {"added": [1, 2, 3], "notProcessed": {}}


def test_contact_links_to_an_archived_sequence_are_refused(make_api: Callable[..., Api]) -> None:
    api = make_api()
    api.simulator.add_workspace_contacts(1, start_id=9001)
    status, body = link_contacts(api, 401, {"contactIds": [9001]})
    assert status == 400
    assert body["code"] == "sequenceContact.sequenceArchived"
    assert body["detail"] == "Sequence is archived."
    assert api.simulator.contacts(401) == []
    api.simulator.configure(assumptions={"contact_links_archived_sequence": False})
    status, body = link_contacts(api, 401, {"contactIds": [9001]})
    assert status == 400
    assert "code" not in body


def test_contact_links_take_up_to_10000_ids(api: Api) -> None:
    api.simulator.add_workspace_contacts(10_000)
    status, body = link_contacts(api, 101, {"contactIds": list(range(1, 10_002))})
    assert status == 400
    assert body["errors"] == [
        {"pointer": "/contactIds", "detail": "'contactIds' must contain between 1 and 10000 items."}
    ]
    assert api.simulator.contacts(101) == []
    status, body = link_contacts(api, 101, {"contactIds": list(range(1, 10_001))})
    assert status == 200
    assert len(body["added"]) == 10_000
    assert body["notProcessed"] == {}
    assert len(every_contact(api, 101)) == 10_000


@pytest.mark.parametrize(
    ("body", "pointer", "detail"),
    [
        ({"contactIds": []}, "/contactIds", "'contactIds' must not be empty."),
        ({}, "/contactIds", "'contactIds' must not be empty."),
        ({"contactIds": "1"}, "/contactIds", "Value has an invalid type."),
        ({"contactIds": [1, "2"]}, "/contactIds/1", "Value has an invalid type."),
        ({"contactIds": [1], "removeFromExisting": "yes"}, "/removeFromExisting", "Value has an invalid type."),
        ({"contactIds": [1], "startFrom": "soon"}, "/startFrom", "Value has an invalid type."),
        ([1, 2], "", "Value has an invalid type."),
    ],
    ids=["empty", "missing", "not-a-list", "not-an-integer", "flag", "start-from", "not-an-object"],
)
def test_contact_links_body_validation(api: Api, body: Any, pointer: str, detail: str) -> None:
    status, answer = link_contacts(api, 101, body)
    assert status == 400
    assert answer["title"] == "Validation failed"
    assert answer["errors"] == [{"pointer": pointer, "detail": detail}]


def test_contact_links_answer_the_documented_404_and_403(make_api: Callable[..., Api]) -> None:
    api = make_api(api_keys={KEY: {SCOPE_OPERATE}, "reader": {SCOPE_READ}})
    api.simulator.add_workspace_contacts(1, start_id=9001)
    status, body = link_contacts(api, 999999, {"contactIds": [9001]})
    assert status == 404
    assert body["code"] == "sequenceContact.sequenceNotFound"
    status, body = link_contacts(api, 101, {"contactIds": [9001]}, key="reader")  # no sequences:operate
    assert status == 403
    assert body["code"] == "sequenceContact.forbidden"
    assert link_contacts(api, 501, {"contactIds": [9001]})[1]["code"] == "sequenceContact.forbidden"  # user 2's
    assert api.call("GET", "/v3/sequences/101/contact-links/bulk").status == 405


# POST /v3/sequences/{id}/unarchive


def test_unarchive_is_coming_soon_by_default(make_api: Callable[..., Api]) -> None:
    api = make_api()
    response = unarchive(api, 401)
    assert response.status == 404
    assert "code" not in body_of(response)
    assert api.simulator.sequence(401).is_archived  # type: ignore[union-attr]
    api.simulator.configure(assumptions={"unarchive_coming_soon_as_404": False})
    response = unarchive(api, 401)
    assert response.status == 501
    assert body_of(response)["detail"] == "This endpoint is coming soon."
    assert [call.operation for call in api.simulator.sequence_calls(401)] == ["unarchive", "unarchive"]


def test_unarchive_when_available_does_not_put_the_contacts_back(make_api: Callable[..., Api]) -> None:
    api = make_api(assumptions=Assumptions(unarchive_coming_soon=False))
    api.simulator.add_contacts(101, 1500)
    assert api.archive(101).status == 200
    response = unarchive(api, 101)
    assert response.status == 200
    body = body_of(response)
    assert (body["id"], body["isArchived"], body["status"]) == (101, False, "paused")
    assert api.simulator.contacts(101) == []
    assert contacts_page(api, 101) == (200, {"items": [], "hasMore": False})
    assert api.simulator.sequence(101).archived_by_user_id is None  # type: ignore[union-attr]
    assert api.simulator.add_contacts(101, 1)  # it takes contacts again


def test_unarchive_when_available_answers_the_documented_refusals(make_api: Callable[..., Api]) -> None:
    api = make_api(
        assumptions=Assumptions(unarchive_coming_soon=False), api_keys={KEY: {SCOPE_OPERATE}, "r": {SCOPE_READ}}
    )
    refusals = [
        (unarchive(api, 101), 409, "sequenceAction.notArchived", "Sequence is not archived."),
        (unarchive(api, 999999), 404, "sequenceAction.notFound", "Sequence with ID 999999 is not found."),
        (
            unarchive(api, 401, key="r"),
            403,
            "sequenceAction.forbidden",
            "You do not have permission to unarchive sequence.",
        ),
    ]
    for response, status, code, detail in refusals:
        assert response.status == status
        assert (body_of(response)["code"], body_of(response)["detail"]) == (code, detail)
    api.simulator.add_sequence(9001, is_archived=True, owner_user_id=2)
    assert body_of(unarchive(api, 9001))["code"] == "sequenceAction.forbidden"  # user 2's


# Rate limiting


def test_every_contacts_endpoint_spends_the_users_quota(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_limit=RateLimit(per_minute=4, per_hour=None))
    api.simulator.add_workspace_contacts(1, start_id=9001)
    statuses = [
        contacts_page(api, 101)[0],
        state_page(api, 101)[0],
        link_contacts(api, 101, {"contactIds": [9001]})[0],
        unarchive(api, 401).status,
        state_page(api, 101)[0],
        link_contacts(api, 101, {"contactIds": [9001]})[0],
    ]
    assert statuses == [200, 200, 200, 404, 429, 429]
    assert api.simulator.user_calls()[1].calls == 6
    assert api.simulator.user_calls()[1].over_quota == 2
    assert [call.operation for call in api.simulator.requests] == [
        "contacts",
        "contacts_state",
        "contact_links",
        "unarchive",
        "contacts_state",
        "contact_links",
    ]
    assert [item["contactId"] for item in api.simulator.contacts(101)] == [9001]
