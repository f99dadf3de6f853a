"""The clean-up request: the `select` filters (the CLI's), their validation, the bounds and the continuation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sequence_archiver.archiving.cleanup import ListingStop, SelectionRun
from sequence_archiver.archiving.selection import (
    DEFAULT_MAX_SEQUENCES,
    MAX_SEQUENCES_CAP,
    CleanupRequest,
    Selection,
    parse_cleanup_request,
    parse_scheduled_run,
)
from sequence_archiver.core.continuations import compact, derive_key, seal_with
from sequence_archiver.core.exceptions import InvalidRequestError
from sequence_archiver.core.request_report import EventShape, Trigger
from sequence_archiver.reply.listing import SequenceFilter, SequenceItem

RUN_AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SQS_MESSAGE_LIMIT_BYTES = 256 * 1024


def test_the_issue_example_reads_as_the_cli_filters_relative_to_the_run_time() -> None:
    request = parse_cleanup_request(
        {
            "select": {
                "status": "Paused",
                "ownerUserId": 42,
                "folderId": "6f1c3f5e-3a55-4ad3-9f77-0a4c1d2b9e10",
                "name": "Q3",
                "createdAfter": "2024-01-01",
                "createdBefore": "2025-01-01",
                "olderThanDays": 180,
            },
            "dryRun": True,
            "pauseFirst": False,
            "maxSequences": 10000,
        }
    )

    assert request.select.sequence_filter(RUN_AT) == SequenceFilter(
        status="paused",
        owner_user_id=42,
        folder_id=uuid.UUID("6f1c3f5e-3a55-4ad3-9f77-0a4c1d2b9e10"),
        name="Q3",
        created_after=datetime(2024, 1, 1, tzinfo=UTC),
        created_before=datetime(2025, 1, 1, tzinfo=UTC),  # earlier than the run time minus 180 days
        is_archived=False,
    )


def test_older_than_days_counts_back_from_the_run_time_and_the_earlier_bound_wins() -> None:
    selection = Selection.model_validate({"olderThanDays": 30, "createdBefore": "2026-12-01"})

    assert selection.sequence_filter(RUN_AT).created_before == RUN_AT - timedelta(days=30)
    assert Selection.model_validate({"olderThanDays": 30}).cutoff(RUN_AT + timedelta(days=1)) == RUN_AT - timedelta(
        days=29
    )


def test_a_request_is_a_dry_run_of_at_most_ten_thousand_sequences_unless_it_says_otherwise() -> None:
    request = parse_cleanup_request({"select": {"status": "paused"}})

    assert (request.dry_run, request.pause_first, request.max_sequences) == (True, False, DEFAULT_MAX_SEQUENCES)


def test_archived_sequences_are_never_selected() -> None:
    sequence_filter = Selection.model_validate({"status": "paused"}).sequence_filter(RUN_AT)

    assert sequence_filter.query()["isArchived"] == "false"
    assert not sequence_filter.matches(SequenceItem(1, status="paused", is_archived=True))
    assert not sequence_filter.matches(SequenceItem(2, status="paused", is_archived=None))
    assert sequence_filter.matches(SequenceItem(3, status="paused", is_archived=False))


@pytest.mark.parametrize(
    ("request_document", "says"),
    [
        ({"select": {}}, "at least one filter"),
        ({"select": {"status": "archived"}}, "select.status"),
        ({"select": {"status": 1}}, "select.status"),
        ({"select": {"isArchived": True}}, "select.isArchived"),
        ({"select": {"ownerUserId": "42"}}, "select.ownerUserId"),
        ({"select": {"ownerUserId": True}}, "select.ownerUserId"),
        ({"select": {"folderId": "f-1"}}, "select.folderId"),
        ({"select": {"createdAfter": "last week"}}, "select.createdAfter"),
        ({"select": {"createdAfter": "2025-01-01", "createdBefore": "2024-01-01"}}, "earlier than createdBefore"),
        ({"select": {"olderThanDays": -1}}, "select.olderThanDays"),
        ({"select": {"olderThanDays": 1.5}}, "select.olderThanDays"),
        ({"select": {"name": ""}}, "select.name"),
        ({"select": "paused"}, '"select" must be an object'),
        ({"select": {"status": "paused"}, "dryRun": "false"}, "dryRun"),
        ({"select": {"status": "paused"}, "dryrun": False}, "dryrun"),
        ({"select": {"status": "paused"}, "maxSequences": 0}, "maxSequences"),
        ({"select": {"status": "paused"}, "maxSequences": MAX_SEQUENCES_CAP + 1}, "maxSequences"),
        ({"select": {"status": "paused"}, "sequenceIds": [1]}, "not both"),
    ],
)
def test_a_bad_request_is_rejected_saying_what_is_wrong(request_document: object, says: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_cleanup_request(request_document)

    assert says in str(raised.value)


def test_a_continuation_carries_the_request_its_run_time_and_progress_and_reads_back_the_same() -> None:
    request = parse_cleanup_request({"select": {"olderThanDays": 90}, "dryRun": False, "pauseFirst": True})
    run = SelectionRun.start(request, delivery_id="evt-1", trigger=Trigger.EVENTBRIDGE, now=RUN_AT)
    run.skip, run.pages, run.selected_ids, run.stop = 2_000, 2, [101, 102], ListingStop.WAITING

    continued = parse_cleanup_request(run.continuation_document())
    resumed = SelectionRun.start(continued, delivery_id="sqs-message-2", trigger=Trigger.SQS, now=RUN_AT + timedelta(1))

    assert continued.select == request.select
    assert (continued.dry_run, continued.pause_first) == (False, True)
    assert (resumed.request_id, resumed.trigger, resumed.run_at, resumed.part) == (
        "evt-1",
        Trigger.EVENTBRIDGE,
        RUN_AT,
        2,
    )
    assert (resumed.skip, resumed.pages, resumed.selected_ids, resumed.failures) == (2_000, 2, [101, 102], 0)


def test_the_largest_continuation_fits_one_sqs_message() -> None:
    request = CleanupRequest.model_validate(
        {"select": {"name": "x" * 200, "status": "paused"}, "maxSequences": MAX_SEQUENCES_CAP}
    )
    run = SelectionRun.start(request, delivery_id="r" * 128, trigger=Trigger.SQS, now=RUN_AT)
    run.selected_ids = list(range(2_147_483_647 - MAX_SEQUENCES_CAP, 2_147_483_647 + 1))  # maxSequences + 1

    body = compact(seal_with(run.continuation_document(), derive_key("a-reply-api-key")))

    assert len(body.encode()) < SQS_MESSAGE_LIMIT_BYTES


def test_archive_messages_hold_at_most_100_ids_and_pass_pause_first_on() -> None:
    request = parse_cleanup_request({"select": {"status": "paused"}, "dryRun": False, "pauseFirst": True})
    run = SelectionRun.start(request, delivery_id="r-1", trigger=Trigger.DIRECT, now=RUN_AT)
    run.selected_ids = list(range(1, 251))

    bodies = [json.loads(body) for body in run.archive_bodies()]

    assert [len(body["sequenceIds"]) for body in bodies] == [100, 100, 50]
    assert [id_ for body in bodies for id_ in body["sequenceIds"]] == run.selected_ids
    assert all(body["pauseFirst"] is True for body in bodies)


def test_a_continuation_keeps_the_trigger_its_request_arrived_on_and_an_older_one_takes_its_trigger() -> None:
    request = parse_cleanup_request({"select": {"status": "new"}})
    run = SelectionRun.start(request, delivery_id="sns-1", trigger=Trigger.DIRECT, now=RUN_AT, origin=EventShape.SNS)

    continued = parse_cleanup_request(run.continuation_document())
    older = run.continuation_document()
    del older["continuation"]["origin"]

    assert continued.continuation is not None
    assert (continued.continuation.trigger, continued.continuation.origin) == (Trigger.DIRECT, EventShape.SNS)
    resumed = SelectionRun.start(continued, delivery_id="m-2", trigger=Trigger.SQS, now=RUN_AT, origin=EventShape.SQS)
    assert resumed.origin is EventShape.SNS
    legacy = parse_cleanup_request(older).continuation
    assert legacy is not None
    assert legacy.origin is EventShape.DIRECT


@pytest.mark.parametrize(
    "schedule",
    [
        {"select": '{"status": "paused", "olderThanDays": 180}', "dryRun": "true", "maxSequences": "10000"},
        {"select": {"status": "paused", "olderThanDays": 180}, "dryRun": True, "maxSequences": 10000},
        {"select": '{"status": "paused", "olderThanDays": 180}'},
    ],
)
def test_the_schedule_sets_only_the_selection_dry_run_and_max_sequences(schedule: dict[str, object]) -> None:
    request = parse_scheduled_run({"schedule": schedule})

    assert request.select == Selection(status="paused", older_than_days=180)
    assert (request.dry_run, request.pause_first, request.max_sequences) == (True, False, DEFAULT_MAX_SEQUENCES)
    assert request.continuation is None


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"schedule": {"select": '{"status": "paused", "pauseFirst": true}'}}, "schedule.select.pauseFirst: Extra"),
        ({"schedule": {"select": '{"status": "paused"}, "pauseFirst": true'}}, "schedule.select: Value error, must"),
        ({"schedule": {"select": '{"status": "paused"}', "pauseFirst": True}}, "schedule.pauseFirst: Extra"),
        ({"schedule": {"select": '{"status": "paused"}', "continuation": {}}}, "schedule.continuation: Extra"),
        ({"schedule": {"select": '{"status": "paused"}'}, "continuation": {}}, "continuation: Extra"),
        ({"schedule": {"select": '["status"]'}}, "schedule.select: Value error, must be a JSON object"),
        ({"schedule": {"select": '{"status": "paused"}', "dryRun": "yes"}}, "schedule.dryRun"),
        ({"schedule": {"select": '{"status": "paused"}', "maxSequences": "20001"}}, "schedule.maxSequences"),
        ({"schedule": {"select": "{" * 5000}}, "at most 4096 characters"),
    ],
)
def test_a_schedule_input_with_more_than_its_fields_is_rejected_saying_where(document: object, says: str) -> None:
    with pytest.raises(InvalidRequestError, match="not a valid scheduled clean-up") as raised:
        parse_scheduled_run(document)

    assert says in str(raised.value)
