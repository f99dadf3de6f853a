"""Summarising results events: envelopes or bare details, retries of a request, split events, attention."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sequence_archiver_cli.errors import UsageError
from sequence_archiver_cli.results_log import epoch_milliseconds, parse_since
from sequence_archiver_cli.results_report import build_report, is_other_event, load_items, results_event_from

pytestmark = pytest.mark.usefixtures("no_network")
ZERO = {
    "archived": 0,
    "already_archived": 0,
    "not_found": 0,
    "forbidden": 0,
    "conflict": 0,
    "invalid": 0,
    "failed": 0,
    "unconfirmed": 0,
}


def detail(request_id: str, *results: tuple[int | None, str], **extra: Any) -> dict[str, Any]:
    counts = dict(ZERO)
    for _, outcome in results:
        counts[outcome] += 1
    body = [
        {"sequenceId": sid, "outcome": outcome, "httpStatus": None, "error": None if outcome == "archived" else "why"}
        for sid, outcome in results
    ]
    return {
        "requestId": request_id,
        "trigger": "sqs",
        "complete": counts["failed"] == 0,
        "counts": counts,
        "results": body,
        **extra,
    }


def envelope(detail_: dict[str, Any], time: str = "2026-11-29T09:00:00Z") -> dict[str, Any]:
    return {
        "detail-type": "Sequence Archive Results",
        "source": "reply.sequence-archiver",
        "time": time,
        "detail": detail_,
    }


def test_envelopes_and_bare_details_are_both_results_events() -> None:
    bare = detail("r1", (101, "archived"))

    from_envelope = results_event_from(envelope(bare))
    from_bare = results_event_from(bare)

    assert from_envelope is not None
    assert from_bare is not None
    assert (from_envelope.request_id, from_envelope.complete) == ("r1", True)
    assert from_bare.results == from_envelope.results
    assert results_event_from({"detail-type": "Something Else", "source": "x", "detail": bare}) is None
    assert results_event_from({"sequenceIds": [1]}) is None


def test_totals_per_outcome_and_the_ids_that_need_attention() -> None:
    events = [
        results_event_from(detail("r1", (101, "archived"), (301, "conflict"), (401, "already_archived"))),
        results_event_from(detail("r2", (501, "forbidden"), (999, "not_found"), (None, "invalid"))),
    ]

    report = build_report([e for e in events if e])

    assert report.counts == {**ZERO, "archived": 1, "conflict": 1, "already_archived": 1, "forbidden": 1,
                             "not_found": 1, "invalid": 1}  # fmt: skip
    assert [(a.request_id, a.sequence_id, a.outcome) for a in report.attention] == [
        ("r1", 301, "conflict"),
        ("r2", 501, "forbidden"),
        ("r2", None, "invalid"),
    ]
    assert report.needs_attention


def test_an_unconfirmed_id_needs_attention_and_a_pause_that_happened_is_shown() -> None:
    event = detail("r1", (104, "unconfirmed"), (301, "failed"), (105, "archived"))
    event["results"][1]["paused"] = True

    report = build_report([e for e in [results_event_from(event)] if e])

    assert report.counts["unconfirmed"] == 1
    assert [(a.sequence_id, a.outcome, a.paused) for a in report.attention] == [
        (104, "unconfirmed", False),
        (301, "failed", True),
    ]
    assert report.retry_ids == [104, 301]
    assert [item.to_json()["paused"] for item in report.items] == [False, True, False]


def test_a_complete_event_supersedes_the_incomplete_attempts_of_the_same_request() -> None:
    first = envelope(detail("r1", (101, "archived"), (105, "failed")), time="2026-11-29T09:00:00Z")
    retry = envelope(detail("r1", (101, "already_archived"), (105, "archived")), time="2026-11-29T09:05:00Z")
    pending = envelope(detail("r2", (106, "failed")))

    report = build_report([e for e in map(results_event_from, [retry, first, pending]) if e])

    assert [(r.request_id, r.complete) for r in report.requests] == [("r1", True), ("r2", False)]
    assert report.counts["failed"] == 1
    assert [(a.sequence_id, a.outcome) for a in report.attention] == [(106, "failed")]
    assert report.to_json()["requests"] == {"total": 2, "complete": 1, "incomplete": 1}


def test_parts_of_a_split_event_are_joined_and_missing_parts_are_reported() -> None:
    whole = detail("r1", (101, "archived"), (301, "conflict"), (302, "conflict"))
    part_1 = {**whole, "part": 1, "parts": 3, "results": whole["results"][:1]}
    part_3 = {**whole, "part": 3, "parts": 3, "results": whole["results"][2:]}

    report = build_report([e for e in map(results_event_from, [part_3, part_1]) if e])

    [request] = report.requests
    assert request.counts["conflict"] == 2  # counts are the whole request's
    assert [r["sequenceId"] for r in request.results] == [101, 302]
    assert request.parts_missing == 1
    assert report.needs_attention


def test_nothing_needs_attention_when_every_id_is_archived_or_gone() -> None:
    report = build_report([e for e in [results_event_from(detail("r1", (101, "archived"), (9, "not_found")))] if e])

    assert not report.needs_attention
    assert report.attention == []


def test_files_hold_a_json_array_a_single_object_or_json_lines() -> None:
    one, two = detail("r1", (1, "archived")), detail("r2", (2, "archived"))

    assert load_items(json.dumps([one, two]), source="f") == [one, two]
    assert load_items(json.dumps(one), source="f") == [one]
    assert load_items(json.dumps(one) + "\n\n" + json.dumps(two) + "\n", source="f") == [one, two]
    with pytest.raises(UsageError, match=r"^f:2 is not JSON"):
        load_items(json.dumps(one) + "\nnot json\n", source="f")


def test_a_request_carried_on_by_continuations_adds_up_to_one_request() -> None:
    first = {**detail("r1", (101, "archived"), (401, "already_archived")), "continuation": 1}
    first.update(complete=False, deferredIds=[102, 103])
    second = {**detail("r1", (102, "archived"), (103, "not_found")), "continuation": 2}

    waiting = build_report([e for e in map(results_event_from, [first]) if e])
    done = build_report([e for e in map(results_event_from, [second, first]) if e])

    assert [(r.request_id, r.complete) for r in waiting.requests] == [("r1", False)]
    [request] = done.requests
    assert request.complete
    assert [r["sequenceId"] for r in request.results] == [101, 401, 102, 103]  # every ID once, in part order
    assert {k: v for k, v in request.counts.items() if v} == {"archived": 2, "already_archived": 1, "not_found": 1}
    assert request.parts_missing == 0


def test_a_continuation_not_seen_yet_is_reported_missing() -> None:
    third = {**detail("r1", (104, "archived")), "continuation": 3}
    first = {**detail("r1", (101, "archived")), "continuation": 1, "complete": False, "deferredIds": [104]}

    [request] = build_report([e for e in map(results_event_from, [first, third]) if e]).requests

    assert not request.complete
    assert request.parts_missing == 1


def test_an_id_a_later_request_archived_no_longer_needs_attention() -> None:
    conflict = envelope(detail("r1", (301, "conflict"), (501, "forbidden")), time="2026-11-29T09:00:00Z")
    retried = envelope(detail("r2", (301, "archived")), time="2026-11-29T10:00:00Z")

    report = build_report([e for e in map(results_event_from, [retried, conflict]) if e])

    assert [(a.request_id, a.sequence_id, a.outcome) for a in report.attention] == [("r1", 501, "forbidden")]
    assert {k: v for k, v in report.counts.items() if v} == {"archived": 1, "forbidden": 1}  # 301 once, as archived
    assert {k: v for k, v in report.attempt_counts.items() if v} == {"archived": 1, "conflict": 1, "forbidden": 1}
    assert report.retry_ids == [501]


def test_the_ids_to_try_again_are_each_id_once_without_invalid_inputs() -> None:
    first = envelope(detail("r1", (301, "conflict"), (None, "invalid"), (105, "failed")), time="2026-11-29T09:00:00Z")
    again = envelope(detail("r2", (301, "conflict")), time="2026-11-29T09:30:00Z")

    report = build_report([e for e in map(results_event_from, [first, again]) if e])

    assert report.retry_ids == [105, 301]
    assert [(a.request_id, a.sequence_id) for a in report.attention] == [("r1", None), ("r1", 105), ("r2", 301)]


def test_every_item_of_every_request_is_listed_in_order() -> None:
    report = build_report(
        [e for e in map(results_event_from, [detail("r1", (1, "archived")), detail("r2", (2, "not_found"))]) if e]
    )

    assert [(item.request_id, item.sequence_id, item.outcome) for item in report.items] == [
        ("r1", 1, "archived"),
        ("r2", 2, "not_found"),
    ]


def test_other_detail_types_of_an_envelope_are_told_apart_from_unreadable_items() -> None:
    audit = {"detail-type": "Sequence Archive Audit", "source": "reply.sequence-archiver", "detail": {"runId": "x"}}
    plan = {"detail-type": "Sequence Archive Plan", "source": "reply.sequence-archiver", "detail": {"runId": "x"}}

    assert is_other_event(audit)
    assert not is_other_event(plan)  # the report reads plans: one it cannot read is unrecognised, not skipped
    assert not is_other_event(envelope(detail("r1", (1, "archived"))))
    assert not is_other_event(detail("r1", (1, "archived")))
    assert not is_other_event("not an event")


NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", datetime(2026, 11, 29, 11, 30, tzinfo=UTC)),
        ("12h", datetime(2026, 11, 29, 0, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 22, 12, 0, tzinfo=UTC)),
        ("2W", datetime(2026, 11, 15, 12, 0, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:30", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30:00Z", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T10:30:00+02:00", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_since_is_a_duration_ago_or_a_moment_utc_unless_an_offset_is_given(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "7", "d7", "-7d", "7 days", ""])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_since(text, now=NOW)


def test_log_times_are_epoch_milliseconds() -> None:
    assert epoch_milliseconds(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1000
    assert epoch_milliseconds(NOW) == 1_795_953_600_000


def test_totals_count_each_id_once_by_its_latest_outcome_and_attempts_beside_them() -> None:
    # Given 301 and 302 conflicting twice (sent again before pausing them), then 301 archived the third time
    first = envelope(detail("r1", (301, "conflict"), (302, "conflict"), (None, "invalid")), "2026-11-29T09:00:00Z")
    second = envelope(detail("r2", (301, "conflict"), (302, "conflict")), "2026-11-29T09:30:00Z")
    third = envelope(detail("r3", (301, "archived"), (303, "archived")), "2026-11-29T10:00:00Z")

    # When the events are read in any order
    report = build_report([e for e in map(results_event_from, [third, first, second]) if e])

    # Then each ID counts once, by its latest outcome, and the attempts count every request's result
    assert {k: v for k, v in report.counts.items() if v} == {"archived": 2, "conflict": 1, "invalid": 1}
    assert {k: v for k, v in report.attempt_counts.items() if v} == {"archived": 2, "conflict": 4, "invalid": 1}
    assert report.distinct_ids == 3
    attention_total = sum(report.counts[outcome] for outcome in ("failed", "forbidden", "conflict", "invalid"))
    assert attention_total == len(report.attention) == 2
    assert [(a.request_id, a.sequence_id) for a in report.attention] == [("r1", None), ("r2", 302)]
    assert sum(item.latest for item in report.items) == sum(report.counts.values())
    assert report.to_json()["attempts"] == {"total": 7, "counts": report.attempt_counts}


@pytest.mark.parametrize(
    ("times", "latest"),
    [
        (("2026-11-29T09:00:00Z", "2026-11-29T10:00:00Z"), "archived"),  # the later time wins, whatever the order read
        (("2026-11-29T10:00:00Z", "2026-11-29T09:00:00Z"), "conflict"),
        (("2026-11-29T09:00:00Z", "2026-11-29T09:00:00Z"), "archived"),  # the same time: the one read later
        (("2026-11-29T10:00:00+01:00", "2026-11-29T09:30:00Z"), "archived"),  # offsets are compared as times
        (("", ""), "archived"),  # bare details: the one read later
    ],
)
def test_the_latest_outcome_is_the_latest_events_then_the_last_read(times: tuple[str, str], latest: str) -> None:
    conflict, archived = detail("r1", (301, "conflict")), detail("r2", (301, "archived"))
    read = [
        envelope(conflict, times[0]) if times[0] else conflict,
        envelope(archived, times[1]) if times[1] else archived,
    ]

    report = build_report([e for e in map(results_event_from, read) if e])

    assert report.latest_outcomes == {(None, 301): latest}
    assert [item.outcome for item in report.items if item.latest] == [latest]
