"""GET /v3/sequences/{id}/contacts (GetSequenceContacts) on the Reply simulator, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from local.stand_ins.reply_simulator import SCOPE_OPERATE, SCOPE_WRITE, SimulatedUser
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
PROBLEM = "application/problem+json"


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """A simulator with the default seed (101-120 paused, 401-405 archived, 501-505 user 2's)."""
    return make_api()


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
