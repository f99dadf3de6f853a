"""The clean-up select keys of issue 22 (health, exclude, contactsFinished, inactiveForDays): how they are read,
bounded and rejected, and how the listed-field keys leave sequences out."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sequence_archiver.archiving.selection import (
    MAX_CONTINUATION_BYTES,
    MAX_EXCLUDED_IDS,
    MAX_EXCLUDED_NAMES,
    Selection,
    parse_cleanup_request,
    parse_scheduled_run,
)
from sequence_archiver.core.exceptions import InvalidRequestError
from sequence_archiver.reply.contact_checks import ContactCheck
from tests.unit.policy_fakes import paused

RUN_AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
FOLDER = "6f1c3f5e-3a55-4ad3-9f77-0a4c1d2b9e10"


def select(**keys: object) -> Selection:
    return parse_cleanup_request({"select": keys}).select


def rejection(keys: object, **request: object) -> str:
    with pytest.raises(InvalidRequestError) as raised:
        parse_cleanup_request({"select": keys, **request})
    return str(raised.value)


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("blocked", ("blocked",)),
        ("BLOCKED", ("blocked",)),
        (["Stalled", "blocked"], ("stalled", "blocked")),
        ("blocked, stalled", ("stalled", "blocked")),
        (["blocked", "blocked"], ("blocked",)),
    ],
)
def test_health_is_one_value_or_a_list_in_any_case(given: object, read: tuple[str, ...]) -> None:
    selection = select(health=given)

    assert selection.health == read
    assert selection.to_json() == {"health": list(read)}


@pytest.mark.parametrize("given", ["sick", ["blocked", "sick"], [], 3, [None], ""])
def test_an_unknown_health_is_rejected_naming_the_values(given: object) -> None:
    assert "select.health: Value error, must be one of healthy, stalled, degraded, blocked" in rejection(
        {"health": given}
    )


def test_health_matches_the_listed_field_and_a_sequence_without_one_is_left_out() -> None:
    sequence_filter = select(health=["blocked", "stalled"]).sequence_filter(RUN_AT)

    verdicts = {
        health: sequence_filter.left_out_by(paused(1, health=health))
        for health in ("blocked", "Stalled", "healthy", "degraded", None)
    }

    assert verdicts == {"blocked": None, "Stalled": None, "healthy": "health", "degraded": "health", None: "health"}


def test_exclude_keeps_its_ids_names_and_owners_out_whatever_else_matches() -> None:
    sequence_filter = select(
        status="paused",
        exclude={"sequenceIds": [7], "nameContains": ["KEEP"], "ownerUserIds": [99]},
    ).sequence_filter(RUN_AT)

    assert sequence_filter.left_out_by(paused(7)) == "exclude"
    assert sequence_filter.left_out_by(paused(8, name="Q3 keep-forever")) == "exclude"
    assert sequence_filter.left_out_by(paused(9, owner=99)) == "exclude"
    assert sequence_filter.left_out_by(paused(10)) is None


@pytest.mark.parametrize(
    ("exclude", "problem"),
    [
        ({"ids": [1]}, "select.exclude.ids: Extra inputs are not permitted"),
        ({"sequenceIds": ["1"]}, "select.exclude.sequenceIds.0: Input should be a valid integer"),
        ({"sequenceIds": [0]}, "select.exclude.sequenceIds.0: Input should be greater than or equal to 1"),
        ({"nameContains": ["  "]}, "select.exclude.nameContains: Value error, a name part must not be blank"),
        ({"nameContains": ["x" * 201]}, "select.exclude.nameContains.0: String should have at most 200 characters"),
        ({"folderIds": ["not-a-uuid"]}, "select.exclude.folderIds.0: Input should be a valid UUID"),
        ({"folderIds": [42]}, "select.exclude.folderIds: Value error, must be folder IDs (UUIDs) as strings"),
        ({"sequenceIds": list(range(1, MAX_EXCLUDED_IDS + 2))}, "should have at most 10000 items"),
        ({"nameContains": [f"n{i}" for i in range(MAX_EXCLUDED_NAMES + 1)]}, "should have at most 100 items"),
        ("101", "select.exclude: Input should be a valid dictionary"),
    ],
)
def test_a_bad_keep_list_is_rejected_saying_where(exclude: object, problem: str) -> None:
    assert problem in rejection({"status": "paused", "exclude": exclude})


def test_exclude_alone_selects_nothing_it_is_rejected() -> None:
    assert "exclude alone selects everything" in rejection({"exclude": {"sequenceIds": [1]}})


def test_a_keep_list_too_large_to_carry_on_with_every_selected_id_asks_for_a_lower_max_sequences() -> None:
    keep = {"sequenceIds": list(range(1_000_000_000, 1_000_000_000 + MAX_EXCLUDED_IDS))}

    problem = rejection({"status": "paused", "exclude": keep}, maxSequences=20_000)
    fits = parse_cleanup_request({"select": {"status": "paused", "exclude": keep}, "maxSequences": 10_000})

    assert "could not be carried on in a continuation" in problem
    assert fits.select.continuation_bytes(fits.max_sequences) <= MAX_CONTINUATION_BYTES


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"contactsFinished": False}, "select.contactsFinished: Value error, takes true"),
        ({"contactsFinished": "true"}, "select.contactsFinished: Input should be a valid boolean"),
        ({"inactiveForDays": 0}, "select.inactiveForDays: Input should be greater than or equal to 1"),
        ({"inactiveForDays": 3651}, "select.inactiveForDays: Input should be less than or equal to 3650"),
        ({"inactiveForDays": "30"}, "select.inactiveForDays: Input should be a valid integer"),
    ],
)
def test_the_check_keys_are_bounded(keys: dict[str, object], problem: str) -> None:
    assert problem in rejection(keys)


def test_the_checks_run_cheapest_first_and_inactivity_counts_back_from_the_run_time() -> None:
    selection = select(inactiveForDays=90, contactsFinished=True)

    assert selection.checks == (ContactCheck.CONTACTS_FINISHED, ContactCheck.INACTIVE_FOR_DAYS)
    assert selection.active_since(RUN_AT) == RUN_AT - timedelta(days=90)
    assert select(status="paused").checks == ()


def test_the_keys_are_reported_in_the_order_they_are_applied_each_with_how() -> None:
    selection = select(
        inactiveForDays=30,
        health="blocked",
        exclude={"sequenceIds": [1]},
        status="paused",
        olderThanDays=180,
        contactsFinished=True,
    )

    assert selection.applied_keys() == [
        {"key": "status", "appliedAs": "listFilter"},
        {"key": "olderThanDays", "appliedAs": "listedField"},
        {"key": "health", "appliedAs": "listedField"},
        {"key": "exclude", "appliedAs": "listedField"},
        {"key": "contactsFinished", "appliedAs": "perSequenceCheck"},
        {"key": "inactiveForDays", "appliedAs": "perSequenceCheck"},
    ]


def test_excluded_folders_are_listed_only_when_the_selection_is_not_one_other_folder() -> None:
    other = "0b7a4c52-3b1e-4a0e-9b8e-2f3c4d5e6f70"

    assert select(status="paused", exclude={"folderIds": [FOLDER]}).excluded_folders == (uuid.UUID(FOLDER),)
    assert select(folderId=other, exclude={"folderIds": [FOLDER]}).excluded_folders == ()
    assert select(folderId=FOLDER, exclude={"folderIds": [FOLDER]}).excluded_folders == (uuid.UUID(FOLDER),)


def test_the_schedule_puts_its_keep_list_into_the_selection_and_refuses_two_of_them() -> None:
    keep = json.dumps({"sequenceIds": [5]})
    scheduled = parse_scheduled_run({"schedule": {"select": '{"status": "paused"}', "exclude": keep}})
    none = parse_scheduled_run({"schedule": {"select": '{"status": "paused"}', "exclude": ""}})

    assert scheduled.select.to_json() == {"status": "paused", "exclude": {"sequenceIds": [5]}}
    assert none.select.exclude is None
    with pytest.raises(InvalidRequestError, match="not both"):
        parse_scheduled_run(
            {"schedule": {"select": '{"status": "paused", "exclude": {"sequenceIds": [1]}}', "exclude": keep}}
        )
