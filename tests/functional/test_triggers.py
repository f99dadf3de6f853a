"""Direct and SNS invocations: the return value and its results event, a payload that is not a request, and
pauseFirst (running sequences paused, then archived)."""

from __future__ import annotations

import json
from collections import Counter

import jsonschema
import pytest

from sequence_archiver.archiving.archiver import ArchiveMode
from tests.functional.fakes import (
    RESULTS_SCHEMA,
    Answer,
    Pipeline,
    PipelineBuilder,
    outcomes,
)
from tests.sample_events import load_event


@pytest.mark.parametrize(
    ("event_file", "expected"),
    [("direct-single.json", {110: "archived"}), ("sns-to-lambda.json", {111: "archived", 112: "archived"})],
)
def test_single_id_and_sns_payloads_return_their_published_detail(
    event_file: str, expected: dict[int, str], pipeline: Pipeline
) -> None:
    """The sample events: a direct single ID and an SNS notification, both reported as the direct trigger."""
    detail = pipeline.handle(load_event(event_file))

    jsonschema.validate(detail, RESULTS_SCHEMA)
    assert outcomes(detail) == expected
    assert detail["trigger"] == "direct"
    assert pipeline.publisher.only(detail["requestId"]) == detail


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"ids": [1, 2]}, 'no "sequenceIds"'),
        ({"sequenceIds": list(range(1, 1002))}, "at most 1000"),
        ([101, 102], "expected an object"),
    ],
)
def test_a_payload_that_is_not_a_request_gets_a_final_invalid_outcome(
    payload: object, reason: str, pipeline: Pipeline
) -> None:
    """Returned and published once: complete, one invalid item saying why, no Reply call."""
    detail = pipeline.handle(payload)

    jsonschema.validate(detail, RESULTS_SCHEMA)
    assert detail["complete"] is True
    [result] = detail["results"]
    assert (result["sequenceId"], result["outcome"]) == (None, "invalid")
    assert reason in result["error"]
    assert pipeline.reply.calls.total() == 0
    assert pipeline.publisher.only(detail["requestId"]) == detail


def test_the_direct_return_value_is_json_serialisable(pipeline: Pipeline) -> None:
    """What a direct invoker gets back survives a JSON round trip unchanged."""
    detail = pipeline.handle({"sequenceId": "115"})

    assert json.loads(json.dumps(detail)) == detail


@pytest.mark.parametrize("mode", [ArchiveMode.SINGLE, ArchiveMode.AUTO])
def test_pause_first_pauses_running_sequences_then_archives_them(
    mode: ArchiveMode, pipeline_builder: PipelineBuilder
) -> None:
    """The running sequences are paused once each and then archived, reported `paused`; the other is archived
    without a pause."""
    pipeline = pipeline_builder(mode=mode)
    pipeline.reply.script(301, Answer.RUNNING, Answer.ARCHIVE)
    pipeline.reply.script(302, Answer.RUNNING, Answer.ARCHIVE)

    detail = pipeline.handle({"sequenceIds": [301, 302, 116], "pauseFirst": True})

    jsonschema.validate(detail, RESULTS_SCHEMA)
    assert [(r["sequenceId"], r["outcome"], r.get("paused", False)) for r in detail["results"]] == [
        (301, "archived", True),
        (302, "archived", True),
        (116, "archived", False),
    ]
    assert pipeline.reply.pauses == Counter({301: 1, 302: 1})
    assert pipeline.reply.archived == {301, 302, 116}
    assert pipeline.publisher.only(detail["requestId"]) == detail


def test_without_pause_first_a_running_sequence_stays_a_conflict(pipeline: Pipeline) -> None:
    """Nothing is paused: the running sequence is a final conflict, not archived; its neighbour is archived."""
    pipeline.reply.script(303, Answer.RUNNING)

    detail = pipeline.handle({"sequenceIds": [303, 117]})

    assert outcomes(detail) == {303: "conflict", 117: "archived"}
    assert pipeline.reply.pauses == Counter()
    assert 303 not in pipeline.reply.archived
    assert pipeline.publisher.only(detail["requestId"]) == detail
