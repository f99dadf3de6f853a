"""Snapshot object keys and bytes: UTC times, keys that never collide, JSON that always reads back."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sequence_archiver.aws.snapshot_store import S3SnapshotStore, encode_snapshot, snapshot_key
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import SnapshotStoreError

NOON_UTC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def key(**changes: object) -> str:
    arguments: dict[str, object] = {"workspace": None, "sequence_id": 42, "taken_at": NOON_UTC, "request_id": "r-1"}
    arguments.update(changes)
    return snapshot_key(**arguments)  # type: ignore[arg-type]


def test_the_key_holds_the_utc_time_whatever_the_zone() -> None:
    paris = NOON_UTC.astimezone(timezone(timedelta(hours=1)))
    assert key(taken_at=paris) == key() == "snapshots/_default/42/20261207T120000.000000Z-r-1.json.gz"
    with pytest.raises(ValueError, match="time zone"):
        key(taken_at=datetime(2026, 12, 7, 12, 0))


def test_request_ids_cleaned_alike_still_get_their_own_keys() -> None:
    assert key(request_id="a/b") != key(request_id="a?b")
    assert key(request_id="x" * 500) != key(request_id="x" * 501)
    assert all(len(key(request_id=text)) < 200 for text in ("x" * 5000, "é" * 300))


def test_the_default_key_and_a_workspace_named_default_have_different_folders() -> None:
    assert key(workspace="default").split("/")[1] == "default"
    assert key().split("/")[1] == "_default"


def test_a_lone_surrogate_from_reply_stays_an_escape_and_reads_back() -> None:
    document = {"contacts": [{"contactId": 1, "firstName": "\ud800x"}]}
    assert json.loads(gzip.decompress(encode_snapshot(document))) == document


def test_a_value_json_cannot_hold_is_a_store_error_not_a_crash() -> None:
    store = S3SnapshotStore(s3_client=lambda: None, bucket="b")
    deadline = Deadline(60.0, lambda: 0.0)
    with pytest.raises(SnapshotStoreError, match="cannot be written as JSON"):
        store.store("snapshots/_default/1/k.json.gz", {"sequence": {"score": float("nan")}}, deadline)
