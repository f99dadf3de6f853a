"""The simulator's contacts listing (GET /v3/sequences/{id}/contacts) as Reply's GetSequenceContacts says: paging
with `top` (default 25, at most 1,000) and `skip`, the spec's problem codes, and archiving removing every contact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from local.stand_ins.reply_simulator import RateLimit

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.integration.simulator_http import Api

pytestmark = pytest.mark.integration

SEQUENCE = 990_001


def contacts(client: Api, sequence_id: int, query: str = "") -> tuple[int, dict]:
    response = client.call("GET", f"/v3/sequences/{sequence_id}/contacts{query}")
    return response.status, json.loads(response.data)


@pytest.fixture
def client(make_api: Callable[..., Api]) -> Api:
    api = make_api()
    api.simulator.add_sequence(SEQUENCE, status="paused")
    return api


def test_1500_contacts_come_in_a_page_of_1000_then_one_of_500(client: Api) -> None:
    client.simulator.add_contacts(SEQUENCE, 1500)

    first_status, first = contacts(client, SEQUENCE, "?top=1000&skip=0")
    second_status, second = contacts(client, SEQUENCE, "?top=1000&skip=1000")

    assert (first_status, len(first["items"]), first["hasMore"]) == (200, 1000, True)
    assert (second_status, len(second["items"]), second["hasMore"]) == (200, 500, False)
    listed = [item["contactId"] for item in first["items"] + second["items"]]
    assert sorted(listed) == list(range(1, 1501))
    assert listed[0] == 1500  # the most recently added first
    assert set(first["items"][0]) >= {
        "contactId",
        "sequenceId",
        "email",
        "statusInSequence",
        "currentStep",
        "addingDate",
    }


def test_the_default_page_is_25(client: Api) -> None:
    client.simulator.add_contacts(SEQUENCE, 30)
    _, page = contacts(client, SEQUENCE)
    assert (len(page["items"]), page["hasMore"]) == (25, True)


@pytest.mark.parametrize("query", ["?top=0", "?top=1001", "?skip=-1", "?top=many"])
def test_a_page_out_of_bounds_is_a_400_problem(client: Api, query: str) -> None:
    status, problem = contacts(client, SEQUENCE, query)
    assert status == 400
    assert problem["status"] == 400


def test_an_unknown_sequence_is_the_specs_404(client: Api) -> None:
    status, problem = contacts(client, 424_242)
    assert (status, problem["code"]) == (404, "sequenceContact.sequenceNotFound")


def test_a_key_without_sequences_read_is_refused(make_api: Callable[..., Api]) -> None:
    client = make_api(api_keys={"test-key": {"sequences:operate"}})
    client.simulator.add_sequence(SEQUENCE, status="paused")
    status, problem = contacts(client, SEQUENCE)
    assert (status, problem["code"]) == (403, "sequenceContact.forbidden")


@pytest.mark.parametrize("bulk", [False, True])
def test_archiving_removes_every_contact(client: Api, bulk: bool) -> None:
    client.simulator.add_contacts(SEQUENCE, 40)
    response = client.bulk_archive([SEQUENCE]) if bulk else client.archive(SEQUENCE)
    assert response.status == 200
    _, page = contacts(client, SEQUENCE)
    assert page == {"items": [], "hasMore": False}
    assert client.simulator.contacts(SEQUENCE) == []


def test_the_listing_is_rate_limited_like_every_call(make_api: Callable[..., Api]) -> None:
    client = make_api(rate_limit=RateLimit(per_minute=2, per_hour=None, minute_seconds=60))
    client.simulator.add_sequence(SEQUENCE, status="paused")
    statuses = [contacts(client, SEQUENCE)[0] for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_items_use_the_specs_fields_only(client: Api) -> None:
    excerpt = (
        Path(__file__).resolve().parents[2] / "local/stand_ins/reply_simulator/openapi/openapi-contacts-excerpt.yaml"
    )
    operation = yaml.safe_load(excerpt.read_text())["paths"]["/v3/sequences/{id}/contacts"]["get"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    fields = set(answer["items"]["items"]["properties"])
    statuses = set(answer["items"]["items"]["properties"]["statusInSequence"]["enum"])
    for status in sorted(statuses):
        client.simulator.add_contacts(
            SEQUENCE, 1, status=status, first_contact_id=len(client.simulator.contacts(SEQUENCE)) + 1
        )

    _, page = contacts(client, SEQUENCE, "?top=100")

    assert {item["statusInSequence"] for item in page["items"]} == statuses
    assert all(set(item) <= fields for item in page["items"])
