"""The Reply simulator's users, workspaces and keys over real HTTP on 127.0.0.1: user keys, the Master API key with
X-User-Id / X-User-Email, per-user quotas, workspaces kept apart, the admin API for them, and their assumptions."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3

from local.stand_ins.reply_simulator import (
    ALL_SCOPES,
    SCOPE_READ,
    Assumptions,
    RateLimit,
    ReplySimulator,
    SimulatedUser,
    SimulatedWorkspace,
    UserCalls,
    UserKey,
)
from local.stand_ins.reply_simulator import __main__ as simulator_cli
from tests.integration.simulator_http import KEY, Api

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).parents[2]

MASTER = "master-key-a"
PROBLEM = "application/problem+json"
NOT_FOUND_CODE = "actingUser.notFound"
NOT_ALLOWED_CODE = "actingUser.notAllowed"
# Workspace 2: its owner 21, an admin 22 and a member 23, each with a user key; a master key; sequences 9001-9003.
WORKSPACE_B = SimulatedWorkspace(
    id=2,
    users=(
        SimulatedUser(21, "olga@b.example", role="owner"),
        SimulatedUser(22, "adam@b.example", role="admin"),
        SimulatedUser(23, "mia@b.example"),
    ),
    user_keys=(UserKey("key-olga", 21), UserKey("key-adam", 22), UserKey("key-mia", 23)),
    master_key="master-key-b",
)


def listed_ids(client: Api, **kwargs: Any) -> list[int]:
    """The ids GET /v3/sequences?top=1000 lists, oldest first."""
    response = client.call("GET", "/v3/sequences?top=1000&sortBy=created&sortDirection=asc", **kwargs)
    assert response.status == 200, response.data
    return [item["id"] for item in json.loads(response.data)["items"]]


@pytest.fixture
def client(make_api: Callable[..., Api]) -> Api:
    """The default seed and workspace, with workspace 1's master key `master-key-a` added."""
    client = make_api()
    client.simulator.set_master_key(MASTER)
    return client


def body_of(response: urllib3.BaseHTTPResponse) -> Any:
    """Decode a JSON body."""
    return json.loads(response.data)


def assert_problem(response: urllib3.BaseHTTPResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """Check a problem+json answer and return its body."""
    assert response.status == status, response.data
    assert response.headers["Content-Type"] == PROBLEM
    problem: dict[str, Any] = body_of(response)
    assert (problem["status"], problem.get("code")) == (status, code)
    assert isinstance(problem["title"], str)
    assert isinstance(problem["detail"], str)
    return problem


def archived_by(client: Api, sequence_id: int) -> int | None:
    """The user the call that archived this sequence acted as (None if it is not archived by a call)."""
    sequence = client.simulator.sequence(sequence_id)
    assert sequence is not None
    return sequence.archived_by_user_id


def with_workspace_b(client: Api) -> Api:
    """Add workspace 2 and its sequences: 9001 is Olga's (the owner), 9002 Adam's (an admin), 9003 Mia's."""
    client.simulator.set_workspace(WORKSPACE_B)
    for sequence_id, owner in ((9001, 21), (9002, 22), (9003, 23)):
        client.simulator.add_sequence(sequence_id, owner_user_id=owner)
    return client


# The default: one workspace, user keys of user 1, no master key


def test_the_default_is_one_workspace_with_users_1_and_2_and_no_master_key(make_api: Callable[..., Api]) -> None:
    client = make_api()

    [workspace] = body_of(client.admin("GET", "/workspaces"))["workspaces"]

    assert workspace == {
        "id": 1,
        "owner_user_id": 1,
        "users": [
            {"id": 1, "email": "user1@example.com", "role": "owner"},
            {"id": 2, "email": "user2@example.com", "role": "member"},
        ],
        "user_keys": [{"user_id": 1, "scopes": sorted(ALL_SCOPES)}],
        "master_key": False,
        "master_key_scopes": sorted(ALL_SCOPES),
    }
    assert KEY.encode() not in client.admin("GET", "/workspaces").data
    assert client.archive(101).status == 200
    assert archived_by(client, 101) == 1
    [record] = client.simulator.requests
    assert (record.acting_user_id, record.workspace_id, record.via_master_key) == (1, 1, False)


def test_owner_user_id_is_in_listings_and_in_get(client: Api) -> None:
    listing = body_of(client.call("GET", "/v3/sequences?top=1000", key=MASTER, user_id=2))["items"]

    assert {(item["id"], item["ownerUserId"]) for item in listing} == {(i, 2) for i in range(501, 506)}
    assert body_of(client.get(101))["ownerUserId"] == 1
    assert body_of(client.get(501, key=MASTER, user_id=2))["ownerUserId"] == 2


# The master key


def test_the_master_key_without_a_header_acts_as_the_workspace_owner(client: Api) -> None:
    assert client.archive(101, key=MASTER).status == 200
    assert_problem(client.archive(501, key=MASTER), 403, "sequenceAction.forbidden")

    assert archived_by(client, 101) == 1
    assert [(r.acting_user_id, r.via_master_key) for r in client.simulator.requests] == [(1, True), (1, True)]


@pytest.mark.parametrize(
    "naming",
    [
        {"user_id": 2},
        {"user_id": " 2 "},
        {"email": "user2@example.com"},
        {"email": "USER2@Example.COM"},
        {"user_id": 2, "email": "user2@example.com"},
    ],
    ids=["id", "id-spaced", "email", "email-any-case", "both-agreeing"],
)
def test_the_master_key_acts_as_the_user_a_header_names_with_their_permissions(
    client: Api, naming: dict[str, Any]
) -> None:
    assert client.archive(501, key=MASTER, **naming).status == 200
    assert_problem(client.archive(101, key=MASTER, **naming), 403, "sequenceAction.forbidden")
    assert_problem(client.get(102, key=MASTER, **naming), 403, "sequence.forbidden")
    assert_problem(client.pause(103, key=MASTER, **naming), 403, "sequenceAction.forbidden")
    assert listed_ids(client, key=MASTER, **naming) == [501, 502, 503, 504, 505]

    assert archived_by(client, 501) == 2
    assert {r.acting_user_id for r in client.simulator.requests} == {2}


def test_a_bulk_archive_with_the_master_key_acts_as_one_user_for_the_whole_call(client: Api) -> None:
    response = client.bulk_archive([501, 502, 101], key=MASTER, user_id=2)

    assert response.status == 200
    assert body_of(response) == {
        "101": {"error": "forbidden", "errorDetails": "You do not have permission to archive this sequence."}
    }
    assert [archived_by(client, i) for i in (501, 502, 101)] == [2, 2, None]
    [record] = client.simulator.requests
    assert (record.acting_user_id, record.sequence_ids, record.via_master_key) == (2, (501, 502, 101), True)


@pytest.mark.parametrize(
    ("naming", "detail"),
    [
        ({"user_id": 3}, "No user with X-User-Id 3 in this workspace."),
        ({"user_id": "two"}, "X-User-Id must be a user id (a positive integer); got 'two'."),
        ({"user_id": ""}, "X-User-Id must be a user id (a positive integer); got ''."),
        ({"user_id": -2}, "X-User-Id must be a user id (a positive integer); got '-2'."),
        ({"email": "nobody@example.com"}, "No user with X-User-Email 'nobody@example.com' in this workspace."),
        ({"user_id": 1, "email": "user2@example.com"}, "X-User-Id and X-User-Email name two different users."),
    ],
    ids=["unknown-id", "not-a-number", "blank", "negative", "unknown-email", "disagreeing"],
)
def test_a_master_key_naming_nobody_of_its_workspace_is_a_400_that_acts_as_nobody(
    make_api: Callable[..., Api], naming: dict[str, Any], detail: str
) -> None:
    client = make_api(rate_limit=RateLimit(per_minute=1, minute_seconds=60, per_hour=None))
    client.simulator.set_master_key(MASTER)

    for operation in (client.archive, client.pause, client.get):
        problem = assert_problem(operation(101, key=MASTER, **naming), 400, NOT_FOUND_CODE)
        assert (problem["title"], problem["detail"]) == ("Bad Request", detail)
    assert_problem(client.bulk_archive([101, 501], key=MASTER, **naming), 400, NOT_FOUND_CODE)
    assert_problem(client.call("GET", "/v3/sequences", key=MASTER, **naming), 400, NOT_FOUND_CODE)

    # Nothing changed, no user's quota was spent (the limit is 1 a minute), and the calls acted as nobody
    sequence = client.simulator.sequence(101)
    assert sequence is not None
    assert not sequence.is_archived
    assert {(r.key_accepted, r.acting_user_id) for r in client.simulator.requests} == {(True, None)}
    assert client.simulator.user_calls() == {}
    assert client.archive(101, key=MASTER).status == 200


def test_a_user_of_another_workspace_is_nobody_to_this_master_key(client: Api) -> None:
    with_workspace_b(client)

    assert_problem(client.archive(9003, key=MASTER, user_id=23), 400, NOT_FOUND_CODE)
    assert_problem(client.archive(9003, key=MASTER, email="mia@b.example"), 400, NOT_FOUND_CODE)
    assert client.archive(9003, key="master-key-b", user_id=23).status == 200


def test_acting_user_not_found_switched_off_is_a_400_without_a_code(make_api: Callable[..., Api]) -> None:
    client = make_api(assumptions=Assumptions(acting_user_not_found=False))
    client.simulator.set_master_key(MASTER)

    problem = assert_problem(client.archive(101, key=MASTER, user_id=3), 400, None)

    assert problem["detail"] == "No user with X-User-Id 3 in this workspace."


def test_the_master_key_has_its_own_scopes(client: Api) -> None:
    client.simulator.set_master_key("read-only-master", scopes={SCOPE_READ})

    assert client.get(501, key="read-only-master", user_id=2).status == 200
    assert_problem(client.archive(501, key="read-only-master", user_id=2), 403, "sequenceAction.forbidden")
    assert client.archive(101, key=MASTER).status == 401  # a workspace has one master key: the old one is gone
    assert archived_by(client, 501) is None


# A user key with X-User-Id or X-User-Email


@pytest.mark.parametrize(
    "naming", [{"user_id": 2}, {"user_id": 1}, {"email": "user2@example.com"}], ids=["other", "self", "email"]
)
def test_a_user_key_with_an_acting_user_header_is_refused_by_default(client: Api, naming: dict[str, Any]) -> None:
    problem = assert_problem(client.archive(501, **naming), 400, NOT_ALLOWED_CODE)

    assert "Master API key" in problem["detail"]
    assert archived_by(client, 501) is None
    assert client.simulator.user_calls() == {}


def test_a_user_key_ignores_the_headers_when_the_switch_is_off(make_api: Callable[..., Api]) -> None:
    client = make_api(assumptions=Assumptions(user_key_refuses_acting_user=False))

    assert_problem(client.archive(501, user_id=2), 403, "sequenceAction.forbidden")
    assert client.archive(101, email="user2@example.com").status == 200

    assert archived_by(client, 101) == 1
    assert {r.acting_user_id for r in client.simulator.requests} == {1}


# Who sees what: only the owner (default), or the workspace's owner and admins too


def test_by_default_only_a_sequences_owner_sees_it_even_the_workspace_owner_does_not(client: Api) -> None:
    client = with_workspace_b(client)

    for key in ("key-olga", "key-adam"):
        assert_problem(client.archive(9003, key=key), 403, "sequenceAction.forbidden")
        assert_problem(client.get(9003, key=key), 403, "sequence.forbidden")
    assert listed_ids(client, key="key-olga") == [9001]
    assert listed_ids(client, key="master-key-b") == [9001]
    assert client.archive(9003, key="key-mia").status == 200


def test_with_the_switch_off_the_workspace_owner_and_admins_see_every_sequence_of_it(
    make_api: Callable[..., Api],
) -> None:
    client = with_workspace_b(make_api(assumptions=Assumptions(only_owner_sees_sequences=False)))

    assert listed_ids(client, key="key-olga") == [9001, 9002, 9003]
    assert listed_ids(client, key="master-key-b", user_id=22) == [9001, 9002, 9003]
    assert listed_ids(client, key="key-mia") == [9003]
    assert client.archive(9003, key="key-adam").status == 200
    assert client.bulk_archive([9001, 9002], key="master-key-b").status == 200
    assert_problem(client.get(9001, key="key-mia"), 403, "sequence.forbidden")

    assert [archived_by(client, i) for i in (9001, 9002, 9003)] == [21, 21, 22]
    # The default workspace's owner, user 1, now sees user 2's sequences too (its legacy key is the owner's)
    assert client.archive(501).status == 200


def test_the_visibility_switch_is_a_behaviour_switch_that_spec_only_keeps() -> None:
    assert Assumptions.spec_only().only_owner_sees_sequences is True
    assert Assumptions.spec_only().user_key_refuses_acting_user is False
    assert Assumptions.spec_only().acting_user_not_found is False
    assert "only_owner_sees_sequences" in Assumptions.names()
    assert "only_owner_sees_sequences" not in Assumptions.code_switch_names()


def test_switches_change_while_running_through_admin_settings(client: Api) -> None:
    changed = client.admin("POST", "/settings", {"assumptions": {"only_owner_sees_sequences": False}})

    assert body_of(changed)["assumptions"]["only_owner_sees_sequences"] is False
    assert client.archive(501, key=MASTER).status == 200
    assert archived_by(client, 501) == 1


# Per-user quotas


def test_quotas_are_per_user_across_every_key_acting_for_them(make_api: Callable[..., Api]) -> None:
    client = make_api(rate_limit=RateLimit(per_minute=2, minute_seconds=60, per_hour=None))
    client.simulator.set_master_key(MASTER)
    client.simulator.add_user(SimulatedUser(2, "user2@example.com"), api_keys={"key-user-2": ALL_SCOPES})

    # User 2 spends their budget through the master key and their own key together
    assert client.get(501, key=MASTER, user_id=2).status == 200
    assert client.get(502, key="key-user-2").status == 200
    assert client.get(503, key=MASTER, email="user2@example.com").status == 429
    assert client.get(504, key="key-user-2").status == 429
    # User 1's budget is theirs: the master key without a header, then their legacy key
    assert client.get(101, key=MASTER).status == 200
    assert client.get(102).status == 200
    assert client.get(103).status == 429

    assert client.simulator.user_calls() == {
        1: UserCalls(user_id=1, workspace_id=1, calls=3, too_many_requests=1, over_quota=1),
        2: UserCalls(user_id=2, workspace_id=1, calls=4, too_many_requests=2, over_quota=2),
    }
    assert body_of(client.admin("GET", "/user-calls")) == {
        "users": [
            {"user_id": 1, "workspace_id": 1, "calls": 3, "too_many_requests": 1, "over_quota": 1},
            {"user_id": 2, "workspace_id": 1, "calls": 4, "too_many_requests": 2, "over_quota": 2},
        ]
    }


def test_an_injected_429_counts_as_a_429_but_not_as_over_quota(client: Api) -> None:
    client.admin("POST", "/faults", {"kind": "status", "status": 429, "retry_after": 1})

    assert client.get(501, key=MASTER, user_id=2).status == 429

    assert client.simulator.user_calls()[2] == UserCalls(2, 1, calls=1, too_many_requests=1, over_quota=0)


def test_rate_limit_headers_describe_the_acting_users_budget(make_api: Callable[..., Api]) -> None:
    client = make_api(rate_limit=RateLimit(per_minute=None, per_hour=10), rate_limit_headers=True)
    client.simulator.set_master_key(MASTER)

    assert client.get(101, key=MASTER).headers["x-rate-limit-remaining"] == "9"
    assert client.get(101).headers["x-rate-limit-remaining"] == "8"
    assert client.get(501, key=MASTER, user_id=2).headers["x-rate-limit-remaining"] == "9"


def test_reset_forgets_the_counts_and_keeps_the_workspaces(client: Api) -> None:
    client.archive(501, key=MASTER, user_id=2)

    client.simulator.reset()

    assert client.simulator.user_calls() == {}
    assert archived_by(client, 501) is None
    assert client.archive(501, key=MASTER, user_id=2).status == 200


# Several workspaces


def test_a_key_never_sees_another_workspaces_sequences(client: Api) -> None:
    client = with_workspace_b(client)

    for key, naming in ((KEY, {}), (MASTER, {}), (MASTER, {"user_id": 2})):
        assert_problem(client.get(9001, key=key, **naming), 404, "sequence.notFound")
        assert_problem(client.archive(9001, key=key, **naming), 404, "sequenceAction.notFound")
        assert_problem(client.pause(9001, key=key, **naming), 404, "sequenceAction.notFound")
        assert not set(listed_ids(client, key=key, **naming)) & {9001, 9002, 9003}
    for key in ("key-olga", "master-key-b"):
        assert_problem(client.get(101, key=key), 404, "sequence.notFound")
        assert_problem(
            client.archive(501, key=key, user_id=23 if key == "master-key-b" else None), 404, "sequenceAction.notFound"
        )
    bulk = client.bulk_archive([9001, 101], key="key-olga")

    assert body_of(bulk) == {"101": {"error": "notFound", "errorDetails": "Sequence with ID 101 not found."}}
    assert (archived_by(client, 9001), archived_by(client, 101)) == (21, None)


def test_workspaces_given_at_start_each_have_their_keys_and_the_seed_goes_to_the_first(
    make_api: Callable[..., Api],
) -> None:
    first = SimulatedWorkspace(
        id=7,
        users=(SimulatedUser(70, "owner@seven.example", role="owner"), SimulatedUser(1, "one@seven.example")),
        master_key="master-seven",
    )
    client = make_api(workspaces=[first, WORKSPACE_B])  # KEY: a user key of 70, the first workspace's owner

    assert [w.id for w in client.simulator.workspaces()] == [7, 2]
    assert client.archive(101, key="master-seven", user_id=1).status == 200
    assert_problem(client.archive(102), 403, "sequenceAction.forbidden")  # user 70 owns no seeded sequence
    assert client.simulator.add_sequences([800], status="paused") == 1  # owned by 70, in 7
    assert client.archive(800).status == 200
    assert_problem(client.get(101, key="key-olga"), 404, "sequence.notFound")
    seeded = client.simulator.sequence(101)
    assert seeded is not None
    assert (seeded.workspace_id, seeded.owner_user_id) == (7, 1)


def test_sequences_go_to_their_owners_workspace(client: Api) -> None:
    client = with_workspace_b(client)

    added = client.simulator.add_sequence(9100, owner_user_id=23)
    departed = client.simulator.add_sequence(9101, owner_user_id=99)  # a user no workspace has: the first one
    chosen = client.simulator.add_sequence(9102, owner_user_id=98, workspace_id=2)

    assert (added.workspace_id, departed.workspace_id, chosen.workspace_id) == (2, 1, 2)
    with pytest.raises(ValueError, match="user 23 is in workspace 2, not 1"):
        client.simulator.add_sequence(9103, owner_user_id=23, workspace_id=1)
    with pytest.raises(ValueError, match="there is no workspace 5"):
        client.simulator.add_sequences([9104], workspace_id=5)
    # A sequence whose owner left: the master key cannot act as them
    assert_problem(client.archive(9101, key=MASTER, user_id=99), 400, NOT_FOUND_CODE)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SimulatedWorkspace(3, (SimulatedUser(31, "a@c.example"),)), "exactly one user with the role 'owner'"),
        (
            lambda: SimulatedWorkspace(
                3, (SimulatedUser(31, "a@c.example", "owner"), SimulatedUser(32, "b@c.example", "owner"))
            ),
            "exactly one user with the role 'owner'",
        ),
        (
            lambda: SimulatedWorkspace(
                3, (SimulatedUser(31, "a@c.example", "owner"), SimulatedUser(31, "b@c.example"))
            ),
            "user id twice",
        ),
        (
            lambda: SimulatedWorkspace(
                3, (SimulatedUser(31, "a@c.example", "owner"), SimulatedUser(32, "A@c.example"))
            ),
            "email twice",
        ),
        (
            lambda: SimulatedWorkspace(3, (SimulatedUser(31, "a@c.example", "owner"),), user_keys=(UserKey("k", 32),)),
            "not in it",
        ),
        (
            lambda: SimulatedWorkspace(
                3, (SimulatedUser(31, "a@c.example", "owner"),), user_keys=(UserKey("k", 31),), master_key="k"
            ),
            "one key twice",
        ),
        (lambda: SimulatedUser(31, "not-an-address"), "email"),
        (lambda: SimulatedUser(31, "a@c.example", role="boss"), "role"),
        (lambda: SimulatedUser(0, "a@c.example"), "user ids"),
        (lambda: UserKey("has space", 31), "whitespace"),
    ],
    ids=[
        "no-owner",
        "two-owners",
        "duplicate-id",
        "duplicate-email",
        "key-of-a-stranger",
        "key-twice",
        "email",
        "role",
        "id",
        "key",
    ],
)
def test_workspaces_users_and_keys_are_validated(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_ids_and_keys_are_unique_across_workspaces(client: Api) -> None:
    with_workspace_b(client)
    before = client.simulator.workspaces()

    with pytest.raises(ValueError, match="user ids are unique"):
        client.simulator.set_workspace(SimulatedWorkspace(3, (SimulatedUser(21, "x@c.example", "owner"),)))
    with pytest.raises(ValueError, match="a key is used twice"):
        client.simulator.set_workspace(
            SimulatedWorkspace(3, (SimulatedUser(31, "x@c.example", "owner"),), master_key=MASTER)
        )
    with pytest.raises(ValueError, match="a key is used twice"):
        client.simulator.add_user(SimulatedUser(24, "new@b.example"), workspace_id=2, api_keys={KEY: ALL_SCOPES})

    assert client.simulator.workspaces() == before


# Admin HTTP


def test_admin_configures_workspaces_users_and_master_keys(make_api: Callable[..., Api]) -> None:
    client = make_api()
    workspace = {
        "id": 2,
        "users": [{"id": 21, "email": "olga@b.example", "role": "owner"}, {"id": 23, "email": "mia@b.example"}],
        "masterKey": "master-key-b",
        "userKeys": {"key-mia": {"userId": 23, "scopes": [SCOPE_READ]}},
    }

    created = client.admin("POST", "/workspaces", workspace)
    user = client.admin(
        "POST",
        "/workspaces/2/users",
        {"id": 24, "email": "noah@b.example", "role": "admin", "api_keys": {"key-noah": sorted(ALL_SCOPES)}},
    )
    master = client.admin("POST", "/workspaces/1/master-key", {"key": MASTER})
    added = client.admin("POST", "/sequences", {"ids": [9001, 9002], "owner_user_id": 23})

    assert created.status == 201
    assert body_of(created)["user_keys"] == [{"user_id": 23, "scopes": [SCOPE_READ]}]
    assert body_of(created)["master_key"] is True
    assert b"master-key-b" not in created.data
    assert body_of(user) == {"id": 24, "email": "noah@b.example", "role": "admin"}
    assert master.status == 204
    assert body_of(added) == {"added": 2}
    shown = body_of(client.admin("GET", "/workspaces"))["workspaces"]
    assert [(w["id"], w["owner_user_id"], w["master_key"], len(w["users"])) for w in shown] == [
        (1, 1, True, 2),
        (2, 21, True, 3),
    ]
    assert b"key-noah" not in client.admin("GET", "/workspaces").data
    assert client.archive(501, key=MASTER, user_id=2).status == 200
    assert client.get(9001, key="key-mia").status == 200
    assert_problem(client.archive(9001, key="key-mia"), 403, "sequenceAction.forbidden")  # read scope only
    assert client.archive(9002, key="master-key-b", email="mia@b.example").status == 200
    assert_problem(client.get(9001, key="key-noah"), 403, "sequence.forbidden")  # an admin, but only owners see

    assert client.admin("POST", "/workspaces/1/master-key", {"key": None}).status == 204
    assert client.archive(502, key=MASTER, user_id=2).status == 401


def test_admin_reads_sequences_with_who_archived_them_and_requests_with_who_acted(client: Api) -> None:
    client.archive(501, key=MASTER, user_id=2)
    client.admin("POST", "/sequences", {"ids": [9001], "workspace_id": 1, "owner_user_id": 2})

    sequences = {entry["id"]: entry for entry in body_of(client.admin("GET", "/sequences"))["sequences"]}
    requests = client.admin("GET", "/requests")

    assert (sequences[501]["archived_by_user_id"], sequences[501]["owner_user_id"], sequences[501]["workspace_id"]) == (
        2,
        2,
        1,
    )
    assert sequences[502]["archived_by_user_id"] is None
    assert (sequences[9001]["owner_user_id"], sequences[9001]["workspace_id"]) == (2, 1)
    assert body_of(client.admin("GET", "/sequences/501"))["archived_by_user_id"] == 2
    [record] = body_of(requests)["requests"]
    assert (record["acting_user_id"], record["workspace_id"], record["via_master_key"], record["over_quota"]) == (
        2,
        1,
        True,
        False,
    )
    assert MASTER.encode() not in requests.data


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/workspaces", {"id": 3, "users": [{"id": 31, "email": "a@c.example"}]}),  # no owner
        (
            "POST",
            "/workspaces",
            {"id": 3, "users": [{"id": 2, "email": "a@c.example", "role": "owner"}]},
        ),  # user 2 is in 1
        ("POST", "/workspaces", {"id": 3, "users": "nobody"}),
        (
            "POST",
            "/workspaces",
            {"id": 3, "users": [{"id": 31, "email": "a@c.example", "role": "owner"}], "master_key": KEY},
        ),
        (
            "POST",
            "/workspaces",
            {
                "id": 3,
                "users": [{"id": 31, "email": "a@c.example", "role": "owner"}],
                "user_keys": {"k": {"user_id": 32}},
            },
        ),
        ("POST", "/workspaces/9/users", {"id": 91, "email": "a@c.example"}),
        ("POST", "/workspaces/one/users", {"id": 91, "email": "a@c.example"}),
        ("POST", "/workspaces/1/users", {"id": 3, "email": "a@c.example", "role": "owner"}),  # a second owner
        ("POST", "/workspaces/1/master-key", {}),
        ("POST", "/workspaces/1/master-key", {"key": 42}),
        ("POST", "/workspaces/9/master-key", {"key": "mk"}),
        ("POST", "/sequences", {"ids": [9001], "workspace_id": 9}),
        ("POST", "/sequences", {"ids": [9001], "owner_user_id": "2"}),
    ],
)
def test_admin_rejects_bad_identity_input_and_changes_nothing(client: Api, method: str, path: str, body: Any) -> None:
    before = client.simulator.workspaces()

    assert_problem(client.admin(method, path, body), 400)

    assert client.simulator.workspaces() == before
    assert client.simulator.sequence(9001) is None


def test_admin_identity_routes_and_methods(client: Api) -> None:
    assert_problem(client.admin("DELETE", "/workspaces"), 405)
    assert_problem(client.admin("GET", "/workspaces/1/users"), 405)
    assert_problem(client.admin("POST", "/user-calls"), 405)
    assert_problem(client.admin("GET", "/workspaces/1/nothing"), 404)


# Command line


def test_cli_master_key_option_accepts_the_master_key() -> None:
    options = simulator_cli.build_parser().parse_args(
        ["--master-key", "cli-master", "--no-assume", "only_owner_sees_sequences"]
    )

    assert options.master_key == "cli-master"
    assert simulator_cli.assumptions_from(options).only_owner_sees_sequences is False
    # Under the spec-only answers, the owner still sees only their own: 501-505 stay forbidden
    spec_only = simulator_cli.assumptions_from(simulator_cli.build_parser().parse_args(["--spec-only"]))
    assert "501-505  other owner           archive 403 sequenceAction.forbidden" in simulator_cli.seed_table(spec_only)


def test_cli_serves_a_master_key() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stand_ins.reply_simulator", "--port", "0", "--master-key", "cli-master"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().rsplit(" ", 1)[1].strip()
        http = urllib3.PoolManager(retries=False, timeout=5.0)
        headers = {"Authorization": "Bearer cli-master", "X-User-Id": "2"}
        response = http.request("POST", base_url + "/v3/sequences/501/archive", headers=headers)
        assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.stdout is not None
    assert process.stderr is not None
    # Read through the text streams: readline() above may already hold the rest of the output in its buffer.
    output, errors = process.stdout.read(), process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert process.returncode == 0, errors
    assert "Master API key accepted" in output
    assert "cli-master" not in output


# The integration tests' factory (tests/integration/conftest.py) passes workspaces through


def test_the_integration_factory_takes_workspaces_and_gives_its_key_to_the_first_owner(
    start_reply_simulator: Callable[..., ReplySimulator], api_key: str, http: urllib3.PoolManager
) -> None:
    simulator = start_reply_simulator(workspaces=[WORKSPACE_B])
    client = Api(simulator, http)
    simulator.add_sequence(9001, owner_user_id=21)

    assert client.archive(9001, key=api_key).status == 200
    assert client.archive(9001, key="key-olga").status == 409  # the same user: already archived
    assert archived_by(client, 9001) == 21
    assert [user_key.user_id for user_key in simulator.workspaces()[0].user_keys] == [21, 21, 22, 23]
