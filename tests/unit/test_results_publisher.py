"""Results events: the detail shape, splitting big requests into parts, PutEvents chunking and retries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import EndpointConnectionError

from sequence_archiver.outcomes import Outcome, SequenceResult, SequenceSummary
from sequence_archiver.request_report import RequestReport, Trigger
from sequence_archiver.results_publisher import (
    DETAIL_TYPE,
    MAX_REQUEST_BYTES,
    ResultsPublisher,
    split_detail,
)

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
            SequenceResult(42, Outcome.ARCHIVED, 200, None, SequenceSummary("Q3 outreach", "paused", True)),
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
    }
    assert detail["results"][0] == {
        "sequenceId": 42,
        "outcome": "archived",
        "httpStatus": 200,
        "error": None,
        "sequence": {"name": "Q3 outreach", "status": "paused", "isArchived": True},
    }


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
