"""A clean-up with the issue 22 keys: cheapest first (list filters, listed fields, then per-sequence calls only for
the candidates left), within the deadline, carried on by continuations without re-checking or losing a
candidate, and a plan that says which keys matched, what each left out and what the calls cost."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sequence_archiver.archiving.cleanup import CleanupPlan, CleanupPolicies, ListingStop, SelectionRun
from sequence_archiver.archiving.selection import parse_cleanup_request
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.request_report import Trigger
from sequence_archiver.core.results_contract import PlanOutcome
from tests.unit.policy_fakes import ListedSequences, SequenceContacts, contact, contacts, paused

PLAN_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "sequence-archive-plan.json").read_text())
RUN_AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
RECENT, LONG_AGO = "2026-11-20T09:00:00Z", "2026-01-05T09:00:00Z"
FOLDER = "6f1c3f5e-3a55-4ad3-9f77-0a4c1d2b9e10"


def policies_of(listed: ListedSequences, api: SequenceContacts, *, page_size: int = 1000) -> CleanupPolicies:
    return CleanupPolicies(
        pages=listed,  # type: ignore[arg-type]
        archive_queue=None,
        seal=None,  # type: ignore[arg-type]  # continuations are read unsealed here
        page_size=page_size,
        now=lambda: RUN_AT,
        contact_checks=api,
    )


def deadline() -> Deadline:
    return Deadline(expires_at=time.monotonic() + 60)


def listed_run(policies: CleanupPolicies, request: dict[str, Any]) -> SelectionRun:
    run = policies.start(parse_cleanup_request(request), delivery_id="req-1", trigger=Trigger.DIRECT)
    policies.list_pages(run, deadline())
    return run


def continued(policies: CleanupPolicies, run: SelectionRun) -> SelectionRun:
    """The next invocation, from the continuation this one would send."""
    later = policies.start(
        parse_cleanup_request(run.continuation_document()), delivery_id="continuation", trigger=Trigger.SQS
    )
    policies.list_pages(later, deadline())
    return later


def test_health_and_exclude_select_from_the_listed_fields_without_a_call_per_sequence() -> None:
    listed = ListedSequences(
        [
            paused(1, health="blocked"),
            paused(2, health="stalled"),
            paused(3, health="healthy"),
            paused(4, health="Blocked", name="KEEP: board deck"),
            paused(5, health="blocked"),
            paused(6, health="degraded"),
            paused(7, health="stalled", owner=99),
        ]
    )
    api = SequenceContacts({})
    request = {
        "select": {
            "status": "paused",
            "health": ["blocked", "stalled"],
            "exclude": {"sequenceIds": [5], "nameContains": ["keep"], "ownerUserIds": [99]},
        }
    }

    run = listed_run(policies_of(listed, api), request)
    detail = CleanupPlan(run, PlanOutcome.PLANNED).detail()

    assert run.stop is ListingStop.FINISHED
    assert detail["sequenceIds"] == [1, 2]
    assert detail["leftOut"] == {"exclude": 3, "health": 2}
    assert detail["replyCalls"] == {"listing": 1, "checks": 0, "total": 1}
    assert api.calls == []
    assert [key["key"] for key in detail["matchedKeys"]] == ["status", "health", "exclude"]
    jsonschema.validate(detail, PLAN_SCHEMA)


def test_per_sequence_checks_run_only_for_the_candidates_every_cheaper_key_left() -> None:
    listed = ListedSequences([paused(1, health="blocked"), paused(2, health="healthy"), paused(3, health="blocked")])
    api = SequenceContacts(
        {
            1: contacts(2_500, last_step=LONG_AGO),  # 3 contacts pages, 25 state pages
            2: contacts(5),  # never checked: health left it out
            3: [contact("finished"), contact("active", contact_id=2)],  # left out by contactsFinished
        }
    )
    request = {"select": {"health": "blocked", "contactsFinished": True, "inactiveForDays": 90}}

    run = listed_run(policies_of(listed, api), request)
    detail = CleanupPlan(run, PlanOutcome.PLANNED).detail()

    assert detail["sequenceIds"] == [1]
    assert api.calls_for(2) == []
    assert api.calls_for(3) == [("contacts", 0)]  # inactiveForDays is not asked once contactsFinished failed
    assert api.calls_for(1) == [("contacts", skip) for skip in (0, 1000, 2000)] + [
        ("state", skip) for skip in range(0, 2500, 100)
    ]
    assert detail["leftOut"] == {"contactsFinished": 1, "health": 1}
    assert detail["replyCalls"] == {"listing": 1, "checks": 29, "total": 30}
    assert detail["liveRunEstimate"] == {
        "sequences": 1,
        "bulkArchiveCalls": 1,
        "singleArchiveCalls": 1,
        "pauseCalls": 0,
        "snapshotCallsAtLeast": 2 + 3,  # the sequence and its 2,500 contacts, 1,000 a call
    }
    jsonschema.validate(detail, PLAN_SCHEMA)


def test_contacts_finished_keeps_a_sequence_without_contacts_and_leaves_out_one_with_an_active_contact() -> None:
    listed = ListedSequences([paused(1), paused(2), paused(3)])
    api = SequenceContacts({1: [], 2: [contact("active")], 3: contacts(3, "inactive")})

    run = listed_run(policies_of(listed, api), {"select": {"contactsFinished": True}})

    assert run.selected_ids == [1, 3]


def test_inactive_for_days_uses_the_last_completed_step_of_every_contact() -> None:
    listed = ListedSequences([paused(1), paused(2), paused(3)])
    api = SequenceContacts(
        {
            1: contacts(3, last_step=LONG_AGO),
            2: [*contacts(3, last_step=LONG_AGO), contact(last_step=RECENT, contact_id=4)],
            3: contacts(2, last_step=None),  # added, never a step completed
        }
    )

    run = listed_run(policies_of(listed, api), {"select": {"inactiveForDays": 30}})

    assert run.selected_ids == [1, 3]
    assert run.left_out == {"inactiveForDays": 1}


def test_time_running_out_mid_check_is_carried_on_without_rechecking_or_losing_a_candidate() -> None:
    def reply() -> tuple[ListedSequences, SequenceContacts]:
        items = [paused(sequence_id) for sequence_id in range(1, 8)]
        api = SequenceContacts(
            {
                1: contacts(10),
                2: contacts(2_400),  # 3 pages
                3: [contact("paused")],
                4: contacts(1_500),
                5: [],
                6: [*contacts(1_200), contact("active", contact_id=5_000)],
                7: contacts(1),
            }
        )
        return ListedSequences(items), api

    request = {"select": {"status": "paused", "contactsFinished": True}}
    whole_listing, whole_api = reply()
    in_one = listed_run(policies_of(whole_listing, whole_api, page_size=3), request)

    listing, api = reply()
    policies = policies_of(listing, api, page_size=3)
    api.answers_left = 2  # the first invocation: sequence 1, then the first page of sequence 2
    run = listed_run(policies, request)
    parts = [run]
    while run.stop is ListingStop.WAITING:
        api.answers_left = 2
        run = continued(policies, run)
        parts.append(run)

    assert run.stop is ListingStop.FINISHED
    assert run.selected_ids == in_one.selected_ids == [1, 2, 4, 5, 7]
    assert (parts[0].pending, parts[0].check_skip) == ([2, 3], 1000)  # carried on: sequence 2 from its second page
    assert api.calls == whole_api.calls  # every contacts page read once, in the same order
    assert len(listing.calls) == len(whole_listing.calls)  # and every page of sequences
    assert (run.check_calls, run.listing_calls) == (len(api.calls), len(listing.calls))
    assert run.left_out == {"contactsFinished": 2}


def test_the_checks_stop_once_the_selection_passes_max_sequences() -> None:
    listed = ListedSequences([paused(sequence_id) for sequence_id in range(1, 10)])
    api = SequenceContacts({})

    run = listed_run(policies_of(listed, api), {"select": {"contactsFinished": True}, "maxSequences": 3})

    assert run.stop is ListingStop.OVER_LIMIT
    assert run.selected_ids == [1, 2, 3, 4]
    assert len(api.calls) == 4
    assert run.pending == []


def test_a_sequence_deleted_since_it_was_listed_is_left_out_and_the_rest_go_on() -> None:
    listed = ListedSequences([paused(1), paused(2)])
    api = SequenceContacts({2: []}, status={1: 404})

    run = listed_run(policies_of(listed, api), {"select": {"contactsFinished": True}})

    assert (run.stop, run.selected_ids, run.left_out) == (ListingStop.FINISHED, [2], {"contactsFinished": 1})


def test_a_refused_check_refuses_the_request() -> None:
    listed = ListedSequences([paused(1)])
    api = SequenceContacts({}, status={1: 400})

    run = listed_run(policies_of(listed, api), {"select": {"inactiveForDays": 10}})

    assert run.stop is ListingStop.REFUSED


def test_excluded_folders_are_listed_to_keep_their_sequences_out() -> None:
    listed = ListedSequences([paused(1), paused(2), paused(3)], folders={FOLDER: [2]})

    run = listed_run(
        policies_of(listed, SequenceContacts({})),
        {"select": {"status": "paused", "exclude": {"folderIds": [FOLDER]}}},
    )

    assert run.selected_ids == [1, 3]
    assert run.left_out == {"exclude": 1}
    assert listed.calls[0]["folderId"] == str(uuid.UUID(FOLDER))
    assert run.listing_calls == 2


@pytest.mark.parametrize("pause_first", [False, True])
def test_the_estimate_of_a_live_run_counts_archive_and_pause_calls(pause_first: bool) -> None:
    listed = ListedSequences([paused(sequence_id) for sequence_id in range(1, 251)])

    run = listed_run(
        policies_of(listed, SequenceContacts({})), {"select": {"status": "paused"}, "pauseFirst": pause_first}
    )
    estimate = CleanupPlan(run, PlanOutcome.PLANNED).detail()["liveRunEstimate"]

    assert estimate == {
        "sequences": 250,
        "bulkArchiveCalls": 3,
        "singleArchiveCalls": 250,
        "pauseCalls": 250 if pause_first else 0,
        "snapshotCallsAtLeast": 500,
    }


def test_a_plan_that_did_not_finish_estimates_nothing() -> None:
    listed = ListedSequences([paused(1)])
    run = listed_run(policies_of(listed, SequenceContacts({})), {"select": {"status": "paused"}})

    detail = CleanupPlan(run, PlanOutcome.FAILED, "why").detail()

    assert detail["liveRunEstimate"]["sequences"] == 0
    assert detail["liveRunEstimate"]["snapshotCallsAtLeast"] == 0
    jsonschema.validate(detail, PLAN_SCHEMA)
