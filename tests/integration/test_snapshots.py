"""Snapshots before archiving, end to end (issue 22): the handler, moto's S3 and the Reply simulator over HTTP.

A sequence's contacts are listed (every page) and stored before its archive call; the results entry names the
object; with the bucket missing nothing is archived and the outcome says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

from local.stand_ins.aws_stack import (
    create_snapshot_bucket,
    read_results_events,
    read_snapshot,
)
from tests.integration.harness import details_by_request, received_sqs_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

SNAPSHOT_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "sequence-snapshot.json").read_text())
SEQUENCE = 880_001


@pytest.fixture
def snapshot_bucket(aws_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    """A bucket shaped like the template's SnapshotBucket, named to the function; its name and an S3 client."""
    name = aws_stack.queue_url.rsplit("/", 1)[-1].lower()[:40] + "-snapshots"
    s3 = create_snapshot_bucket(aws_stack, name)
    monkeypatch.setenv("SNAPSHOT_BUCKET_NAME", name)
    return name, s3


def test_a_sequence_of_1500_contacts_is_recorded_whole_before_its_archive_call(
    snapshot_bucket: tuple[str, Any],
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    bucket, s3 = snapshot_bucket
    reply_simulator.add_sequence(SEQUENCE, name="Q3 outreach", status="paused")
    enrolled = reply_simulator.add_contacts(SEQUENCE, 1200, status="active")
    enrolled += reply_simulator.add_contacts(SEQUENCE, 300, status="finished", start_id=5001)
    handler = load_handler()

    event = received_sqs_event(aws_stack, json.dumps({"sequenceIds": [SEQUENCE]}))
    answer = handler.lambda_handler(event, lambda_context())

    assert answer == {"batchItemFailures": []}
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    [entry] = detail["results"]
    assert entry["outcome"] == "archived"
    assert entry["snapshot"].startswith(f"s3://{bucket}/snapshots/_default/{SEQUENCE}/")
    snapshot = read_snapshot(s3, entry["snapshot"])
    jsonschema.validate(snapshot, SNAPSHOT_SCHEMA)
    assert snapshot["contactCount"] == 1500
    assert sorted(c["contactId"] for c in snapshot["contacts"]) == sorted(c["contactId"] for c in enrolled)
    assert snapshot["sequence"]["name"] == "Q3 outreach"
    assert snapshot["requestIds"] == [detail["requestId"]]
    # Listed first (the sequence, then two pages of contacts), archived last; Reply then holds no contact.
    calls = [(r.method, r.path) for r in reply_simulator.requests if r.sequence_id == SEQUENCE]
    base = f"/v3/sequences/{SEQUENCE}"
    assert calls == [
        ("GET", base),
        ("GET", base + "/contacts"),
        ("GET", base + "/contacts"),
        ("POST", base + "/archive"),
    ]
    assert reply_simulator.contacts(SEQUENCE) == []


def test_a_missing_bucket_archives_nothing_and_says_why(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNAPSHOT_BUCKET_NAME", "no-such-snapshot-bucket")
    reply_simulator.add_sequence(SEQUENCE, status="paused")
    reply_simulator.add_sequence(SEQUENCE + 1, status="paused")
    reply_simulator.add_contacts(SEQUENCE, 3)
    handler = load_handler()

    answer = handler.lambda_handler(
        received_sqs_event(aws_stack, json.dumps({"sequenceIds": [SEQUENCE, SEQUENCE + 1]})), lambda_context()
    )

    assert len(answer["batchItemFailures"]) == 1  # failed IDs: the record comes back (and, in time, the DLQ)
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert [entry["outcome"] for entry in detail["results"]] == ["failed", "failed"]
    assert "no-such-snapshot-bucket" in detail["results"][0]["error"]
    assert "NoSuchBucket" in detail["results"][0]["error"]
    assert detail["results"][1]["error"].startswith("not attempted: ")
    assert not any(r.path.endswith("/archive") for r in reply_simulator.requests)
    assert not any(s.is_archived for s in reply_simulator.sequences() if s.id in {SEQUENCE, SEQUENCE + 1})
    assert len(reply_simulator.contacts(SEQUENCE)) == 3
