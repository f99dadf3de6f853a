"""A Master API key (REPLY_API_KEY_KIND=master): each sequence archived as its owner, on the owner's budget.

The simulator plays one workspace with an owner (user 1) and five members who own the sequences; the
function's secret holds the workspace's Master key. Reply's documents do not say whether the workspace owner
sees every sequence (the lookup the function makes when a request has only IDs): these tests switch the
simulator's `only_owner_sees_sequences` off for that, and check the strict reading separately.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from local.stand_ins.reply_simulator import Assumptions, RateLimit, SimulatedUser, SimulatedWorkspace

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

WORKSPACE_OWNER = 1
OWNERS = (11, 12, 13, 14, 15)
PER_MINUTE = 4  # each user's budget: 4 calls a minute (Reply's windows, not shrunk)


def workspace(master_key: str) -> SimulatedWorkspace:
    members = tuple(SimulatedUser(user, f"user{user}@example.com") for user in OWNERS)
    users = (SimulatedUser(WORKSPACE_OWNER, "owner@example.com", role="owner"), *members)
    return SimulatedWorkspace(id=1, users=users, master_key=master_key)


@pytest.fixture
def master_key_reply(
    start_reply_simulator: Callable[..., ReplySimulator],
    aws_stack: LocalStack,
    api_key: str,
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> ReplySimulator:
    """A workspace whose Master key is the function's secret; 4 sequences per owner; 4 calls a minute per user."""
    from local.stand_ins.aws_stack import function_environment

    strict = getattr(request, "param", False)
    simulator = start_reply_simulator(
        api_keys={},
        workspaces=[workspace(api_key)],
        rate_limit=RateLimit(per_minute=PER_MINUTE, per_hour=None),
        assumptions=Assumptions(only_owner_sees_sequences=strict),
        seed=False,
    )
    for index, owner in enumerate(OWNERS):
        first = 8000 + 10 * index
        simulator.add_sequences(range(first, first + 4), owner_user_id=owner)
    for name, value in function_environment(aws_stack, reply_base_url=simulator.base_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REPLY_API_KEY_KIND", "master")
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_MINUTE", str(PER_MINUTE))
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_HOUR", "0")
    monkeypatch.setenv("REPLY_RATE_LIMIT_INSTANCES", "1")
    monkeypatch.setenv("DEADLINE_SAFETY_MARGIN_SECONDS", "5")
    return simulator


def all_ids() -> list[int]:
    return [8000 + 10 * index + offset for index in range(len(OWNERS)) for offset in range(4)]


def owner_of(sequence_id: int) -> int:
    return OWNERS[(sequence_id - 8000) // 10]


def test_each_sequence_is_archived_as_its_owner_within_each_owners_budget(
    master_key_reply: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # When: one 30 s invocation archives 20 IDs of 5 owners, each owner allowed 4 calls a minute
    detail: dict[str, Any] = load_handler().lambda_handler(
        {"sequenceIds": all_ids()}, lambda_context(timeout_seconds=30)
    )

    # Then: all 20 archived (a user key would have had 4 calls this minute), each as its owner, and it says so
    assert detail["counts"]["archived"] == 20
    for result in detail["results"]:
        assert result["actedAs"] == owner_of(result["sequenceId"])
        sequence = master_key_reply.sequence(result["sequenceId"])
        assert sequence is not None
        assert sequence.archived_by_user_id == owner_of(result["sequenceId"])

    # And: no user was refused (0 429s), and the owners were found by one listing as the workspace owner
    calls = master_key_reply.user_calls()
    assert all(calls[user].too_many_requests == 0 for user in calls)
    assert {user: calls[user].calls for user in OWNERS} == dict.fromkeys(OWNERS, 4)
    lookups = [r for r in master_key_reply.requests if r.path.startswith("/v3/sequences") and r.method == "GET"]
    assert len(lookups) == 1
    assert lookups[0].acting_user_id == WORKSPACE_OWNER


def test_bulk_calls_hold_one_owners_ids_each(
    master_key_reply: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "bulk")
    detail: dict[str, Any] = load_handler().lambda_handler(
        {"sequenceIds": all_ids()}, lambda_context(timeout_seconds=30)
    )
    assert detail["counts"]["archived"] == 20
    bulk = [r for r in master_key_reply.requests if r.path == "/v3/sequences/archive"]
    assert sorted(r.acting_user_id for r in bulk) == sorted(OWNERS)  # one call per owner, as that owner


def test_an_unknown_id_is_not_found_without_an_archive_call(
    master_key_reply: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    detail: dict[str, Any] = load_handler().lambda_handler({"sequenceIds": [8000, 99999]}, lambda_context())
    outcomes = {result["sequenceId"]: result["outcome"] for result in detail["results"]}
    assert outcomes == {8000: "archived", 99999: "not_found"}
    assert not [r for r in master_key_reply.requests if r.path == "/v3/sequences/99999/archive"]


@pytest.mark.parametrize("master_key_reply", [True], indirect=True)
def test_when_the_workspace_owner_cannot_see_a_sequence_it_is_forbidden_and_never_archived_as_someone_else(
    master_key_reply: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given: the strict reading: only a sequence's owner sees it, so the workspace owner's listing and lookup
    # show none of the members' sequences
    # When / Then: the IDs end `forbidden` (final: the key's user may not see them), with no archive call at all
    detail: dict[str, Any] = load_handler().lambda_handler({"sequenceIds": [8000, 8010]}, lambda_context())
    assert {result["outcome"] for result in detail["results"]} == {"forbidden"}
    assert all(result["error"].startswith("the owner lookup was refused") for result in detail["results"])
    assert all("actedAs" not in result for result in detail["results"])
    assert not [r for r in master_key_reply.requests if r.method == "POST"]


def test_results_carry_acted_as_in_the_published_event(
    master_key_reply: ReplySimulator,
    aws_stack: LocalStack,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    from local.stand_ins.aws_stack import read_results_events
    from tests.integration.harness import validate_results_detail

    load_handler().lambda_handler({"sequenceIds": [8000, 8040]}, lambda_context())
    (event,) = read_results_events(aws_stack, expected=1)
    detail = validate_results_detail(cast("dict[str, Any]", event["detail"]))
    assert {result["sequenceId"]: result["actedAs"] for result in detail["results"]} == {8000: 11, 8040: 15}
