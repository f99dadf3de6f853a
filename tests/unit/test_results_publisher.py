"""Results events: the detail shape, parts, entries that always fit, PutEvents chunking, retries and deadlines."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import EndpointConnectionError

from sequence_archiver.aws.results_publisher import (
    DETAIL_TYPE,
    MAX_ERROR_CHARS,
    MAX_INPUT_CHARS,
    MAX_REQUEST_BYTES,
    TRUNCATION_MARK,
    ResultsPublisher,
    split_detail,
)
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.outcomes import Outcome, SequenceResult, SequenceSummary, Via
from sequence_archiver.core.request_report import RequestReport, Trigger
from tests.unit.conftest import FakeClock

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "sequence-archive-results.json").read_text())


class FakeEventBridge:
    """Accepts PutEvents calls; can reject chosen entries or whole calls a number of times."""

    def __init__(self, *, reject_entries: int = 0, fail_calls: int = 0) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.reject_entries, self.fail_calls = reject_entries, fail_calls

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls.append(Entries)
        assert len(Entries) <= 10
        assert sum(len(e["Detail"].encode()) for e in Entries) <= MAX_REQUEST_BYTES
        if self.fail_calls:
            self.fail_calls -= 1
            raise EndpointConnectionError(endpoint_url="http://events")
        results = []
        for _ in Entries:
            if self.reject_entries:
                self.reject_entries -= 1
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                results.append({"EventId": "e"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def report(request_id: str, results: list[SequenceResult], trigger: Trigger = Trigger.SQS) -> RequestReport:
    return RequestReport(request_id, trigger, tuple(results))


def publisher(events: FakeEventBridge, sleeps: list[float] | None = None) -> ResultsPublisher:
    return ResultsPublisher(
        events_client=events,  # type: ignore[arg-type]
        event_bus_name="results",
        source="reply.sequence-archiver",
        max_attempts=3,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_detail_matches_the_contract_and_the_schema() -> None:
    detail = report(
        "msg-1",
        [
            SequenceResult(
                42, Outcome.ARCHIVED, 200, None, SequenceSummary("Q3 outreach", "paused", True), via=Via.SINGLE
            ),
            SequenceResult(43, Outcome.FAILED, 503, "Reply answered 503"),
            SequenceResult(None, Outcome.INVALID, None, "a boolean is not a sequence ID", input_value="true"),
        ],
    ).detail()

    jsonschema.validate(detail, SCHEMA)
    assert detail["requestId"] == "msg-1"
    assert detail["trigger"] == "sqs"
    assert detail["complete"] is False
    assert detail["counts"] == {
        "archived": 1,
        "already_archived": 0,
        "not_found": 0,
        "forbidden": 0,
        "conflict": 0,
        "invalid": 1,
        "failed": 1,
        "unconfirmed": 0,
    }
    assert detail["results"][0] == {
        "sequenceId": 42,
        "outcome": "archived",
        "httpStatus": 200,
        "via": "single",
        "error": None,
        "sequence": {"name": "Q3 outreach", "status": "paused", "isArchived": True},
    }


def test_unconfirmed_and_paused_results_match_the_schema() -> None:
    said_not = SequenceSummary(None, "active", False)
    detail = report(
        "msg-2",
        [
            SequenceResult(44, Outcome.UNCONFIRMED, 200, "Reply answered 200 to the archive with an empty body",
                           via=Via.SINGLE, paused=True),
            SequenceResult(45, Outcome.UNCONFIRMED, 200, "Reply answered 200 to the archive saying the sequence is "
                           "not archived (isArchived false)", said_not, via=Via.SINGLE),
            SequenceResult(46, Outcome.FAILED, 503, "Reply answered 503", via=Via.SINGLE, paused=True),
        ],
    ).detail()  # fmt: skip

    jsonschema.validate(detail, SCHEMA)
    assert (detail["complete"], detail["counts"]["unconfirmed"]) == (False, 2)
    assert [result.get("paused") for result in detail["results"]] == [True, None, True]
    for broken in ({"error": None}, {"via": None}, {"httpStatus": 409}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**detail, "results": [{**detail["results"][0], **broken}]}, SCHEMA)


def test_small_details_are_one_entry_and_big_ones_are_split_into_valid_parts() -> None:
    long_error = "x" * 900
    results = [SequenceResult(i, Outcome.CONFLICT, 409, long_error) for i in range(1, 1001)]
    detail = report("big", results).detail()

    parts = split_detail(detail)

    assert len(parts) > 1
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert {p["parts"] for p in parts} == {len(parts)}
    assert [r["sequenceId"] for p in parts for r in p["results"]] == list(range(1, 1001))
    for part in parts:
        jsonschema.validate(part, SCHEMA)
        assert part["counts"] == detail["counts"]
        assert len(json.dumps(part, separators=(",", ":")).encode()) < MAX_REQUEST_BYTES
    assert split_detail(report("small", results[:3]).detail()) == [report("small", results[:3]).detail()]


def test_entries_go_out_in_chunks_of_at_most_ten() -> None:
    events = FakeEventBridge()
    reports = [report(f"m{i}", [SequenceResult(i, Outcome.ARCHIVED, 200)]) for i in range(1, 24)]

    assert publisher(events).publish(reports) == set()

    assert [len(call) for call in events.calls] == [10, 10, 3]
    entry = events.calls[0][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "reply.sequence-archiver",
        DETAIL_TYPE,
        "results",
    )
    assert json.loads(entry["Detail"])["requestId"] == "m1"


def test_rejected_entries_are_retried_until_they_get_through() -> None:
    events, sleeps = FakeEventBridge(reject_entries=2), []
    reports = [report(f"m{i}", [SequenceResult(i, Outcome.ARCHIVED, 200)]) for i in range(1, 4)]

    assert publisher(events, sleeps).publish(reports) == set()

    assert [len(call) for call in events.calls] == [3, 2]
    assert [json.loads(e["Detail"])["requestId"] for e in events.calls[1]] == ["m1", "m2"]
    assert sleeps == [0.2]


def test_requests_whose_events_never_get_through_are_reported() -> None:
    events = FakeEventBridge(fail_calls=3)
    reports = [report("m1", [SequenceResult(1, Outcome.ARCHIVED, 200)])]

    assert publisher(events).publish(reports) == {"m1"}
    assert len(events.calls) == 3


@pytest.mark.parametrize("trigger", list(Trigger))
def test_every_trigger_value_is_in_the_schema(trigger: Trigger) -> None:
    jsonschema.validate(report("r", [SequenceResult(1, Outcome.ARCHIVED, 200)], trigger).detail(), SCHEMA)


def test_each_put_events_call_is_a_trace_subsegment() -> None:
    from contextlib import nullcontext

    spans: list[tuple[str, dict[str, str]]] = []

    class Recording:
        def span(self, name: str, **annotations: str) -> Any:
            spans.append((name, annotations))
            return nullcontext()

    events = FakeEventBridge()
    publisher = ResultsPublisher(
        events_client=events,  # type: ignore[arg-type]
        event_bus_name="results",
        source="reply.sequence-archiver",
        tracing=Recording(),
    )
    publisher.publish([report(f"m{i}", [SequenceResult(i, Outcome.ARCHIVED, 200)]) for i in range(1, 13)])

    assert spans == [("## results.PutEvents", {"entries": "10"}), ("## results.PutEvents", {"entries": "2"})]


# ---------------------------------------------------------------- every results event fits, and one report fails alone


def sent_details(events: FakeEventBridge) -> list[dict[str, Any]]:
    """Every detail sent, parsed back, after checking each entry encodes as UTF-8 and fits an entry."""
    details = []
    for call in events.calls:
        for entry in call:
            encoded = entry["Detail"].encode("utf-8")  # what botocore does; raises on a lone surrogate
            assert len(encoded) <= MAX_REQUEST_BYTES
            details.append(json.loads(encoded))
    return details


def test_a_lone_surrogate_is_published_as_visible_escape_text() -> None:
    events = FakeEventBridge()
    reports = [
        report("bad", [SequenceResult(None, Outcome.INVALID, None, "not an ID: \ud800", input_value='"\ud800"')]),
        report("good", [SequenceResult(1, Outcome.ARCHIVED, 200)]),
    ]

    assert publisher(events).publish(reports) == set()

    by_request = {detail["requestId"]: detail for detail in sent_details(events)}
    assert set(by_request) == {"bad", "good"}
    [result] = by_request["bad"]["results"]
    assert result["input"] == '"\\ud800"'
    assert result["error"] == "not an ID: \\ud800"
    jsonschema.validate(by_request["bad"], SCHEMA)


class ExplodingReport:
    """A report whose detail cannot be built."""

    request_id = "explodes"

    def detail(self) -> dict[str, Any]:
        raise RecursionError


def test_a_report_that_cannot_be_built_fails_alone() -> None:
    events = FakeEventBridge()
    reports = [report("m1", [SequenceResult(1, Outcome.ARCHIVED, 200)]), ExplodingReport()]

    assert publisher(events).publish(reports) == {"explodes"}  # type: ignore[arg-type]

    assert [detail["requestId"] for detail in sent_details(events)] == ["m1"]


def test_one_huge_result_is_cut_down_to_fit_one_entry() -> None:
    events = FakeEventBridge()
    huge_name = "N" * 20_000_000  # a 20 MB sequence name
    results = [
        SequenceResult(7, Outcome.ARCHIVED, 200, None, SequenceSummary(huge_name, "paused", True)),
        SequenceResult(8, Outcome.ARCHIVED, 200, None, SequenceSummary("small", "paused", True)),
    ]

    assert publisher(events).publish([report("huge", results)]) == set()

    details = sent_details(events)
    sent = [result for detail in details for result in detail["results"]]
    assert [result["sequenceId"] for result in sent] == [7, 8]
    assert sent[0]["sequence"]["name"].startswith("NNN")
    assert sent[0]["sequence"]["name"].endswith(TRUNCATION_MARK)
    assert sent[1]["sequence"]["name"] == "small"
    for detail in details:
        jsonschema.validate(detail, SCHEMA)


@pytest.mark.parametrize("character", ["é", "\U0001f600", '"', "\x00", "\ud800"])
def test_a_result_of_multibyte_or_escaped_text_is_cut_to_fit(character: str) -> None:
    result = SequenceResult(7, Outcome.ARCHIVED, 200, None, SequenceSummary(character * 300_000, "x" * 200_000, None))

    [part] = split_detail(report("r", [result]).detail())

    assert len(json.dumps(part, separators=(",", ":"), ensure_ascii=True).encode()) < MAX_REQUEST_BYTES


def test_error_and_input_are_held_to_the_schema_bounds() -> None:
    result = SequenceResult(None, Outcome.INVALID, None, "e" * 5_000, input_value="i" * 500)

    [part] = split_detail(report("r", [result]).detail())

    [sent] = part["results"]
    assert len(sent["error"]) == MAX_ERROR_CHARS
    assert len(sent["input"]) == MAX_INPUT_CHARS
    jsonschema.validate(part, SCHEMA)


class SurprisedEventBridge(FakeEventBridge):
    """Raises something that is neither a BotoCoreError nor a ClientError on its first call."""

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        if not self.calls:
            self.calls.append(Entries)
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        return super().put_events(Entries)


def test_an_unexpected_sdk_error_fails_one_attempt_not_the_batch() -> None:
    events = SurprisedEventBridge()

    assert publisher(events).publish([report("m1", [SequenceResult(1, Outcome.ARCHIVED, 200)])]) == set()
    assert len(events.calls) == 2


# ---------------------------------------------------------------- deadlines


def test_no_retry_is_started_when_its_pause_and_an_attempt_would_not_fit(clock: FakeClock) -> None:
    events = FakeEventBridge(fail_calls=3)
    deadline = Deadline(expires_at=clock.now + 0.25, clock=clock)
    publisher = ResultsPublisher(
        events_client=events,  # type: ignore[arg-type]
        event_bus_name="results",
        source="reply.sequence-archiver",
        max_attempts=3,
        sleep=clock.sleep,
    )

    assert publisher.publish([report("m1", [SequenceResult(1, Outcome.ARCHIVED, 200)])], deadline) == {"m1"}

    assert len(events.calls) == 1
    assert clock.sleeps == []


def test_retries_that_fit_are_made(clock: FakeClock) -> None:
    events = FakeEventBridge(fail_calls=2)
    deadline = Deadline(expires_at=clock.now + 5, clock=clock)
    publisher = ResultsPublisher(
        events_client=events,  # type: ignore[arg-type]
        event_bus_name="results",
        source="reply.sequence-archiver",
        sleep=clock.sleep,
    )

    assert publisher.publish([report("m1", [SequenceResult(1, Outcome.ARCHIVED, 200)])], deadline) == set()
    assert clock.sleeps == [0.2, 0.4]


class HangingEventBridge:
    """A PutEvents that never answers (until released at teardown)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls += 1
        self.release.wait()
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "late"} for _ in Entries]}


def test_a_hanging_put_events_reports_every_request_unpublished_by_the_deadline() -> None:
    events = HangingEventBridge()
    reports = [report(f"m{i}", [SequenceResult(i, Outcome.ARCHIVED, 200)]) for i in range(1, 13)]
    started = time.monotonic()
    try:
        failed = ResultsPublisher(
            events_client=events,  # type: ignore[arg-type]
            event_bus_name="results",
            source="reply.sequence-archiver",
        ).publish(reports, Deadline(expires_at=started + 0.3))
    finally:
        events.release.set()

    assert failed == {f"m{i}" for i in range(1, 13)}
    assert time.monotonic() - started < 0.3 + 0.3
    assert events.calls == 1  # the second chunk is not started once the time is up


def test_every_published_event_has_an_event_id_that_a_duplicate_publish_repeats() -> None:
    """An abandoned PutEvents call that still went through, then the retry: consumers see the same eventId."""
    events = FakeEventBridge()
    same = report("req-1", [SequenceResult(101, Outcome.ARCHIVED)])
    other = report("req-1", [SequenceResult(101, Outcome.ALREADY_ARCHIVED)])

    for item in (same, same, other):
        assert publisher(events).publish([item]) == set()

    details = [json.loads(entry["Detail"]) for call in events.calls for entry in call]
    for detail in details:
        jsonschema.validate(detail, SCHEMA)
    first, duplicate, redone = (detail["eventId"] for detail in details)
    assert first == duplicate  # the same event twice: recognisable
    assert redone != first  # a later delivery that saw something else is an event of its own


def test_each_part_of_a_split_event_has_its_own_event_id() -> None:
    events = FakeEventBridge()
    results = [SequenceResult(n, Outcome.FAILED, error="x" * 900) for n in range(1, 1001)]

    publisher(events).publish([report("req-big", results)])

    details = [json.loads(entry["Detail"]) for call in events.calls for entry in call]
    assert len(details) > 1
    assert len({detail["eventId"] for detail in details}) == len(details)
