"""Snapshot objects in S3: one gzip-compressed JSON object per sequence archived (schemas/sequence-snapshot.json).

The function only writes (s3:PutObject on `snapshots/*`); operators read them for `sequence-archiver restore`.
Every write, with botocore's retries, ends by the invocation's deadline; any failure is a SnapshotStoreError
naming the bucket and the error code, never a credential.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sequence_archiver.aws.calls import call_within
from sequence_archiver.core.exceptions import AwsCallTimeoutError, SnapshotStoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from sequence_archiver.core.deadline import Deadline

# Where the snapshots go in the bucket: the template grants s3:PutObject on this prefix only.
SNAPSHOT_PREFIX = "snapshots/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_LABEL = 80
# The default key's folder: a workspace name (a-z 0-9 -, see archive_request.WORKSPACE_PATTERN) is never this.
DEFAULT_WORKSPACE_FOLDER = "_default"


def snapshot_key(*, workspace: str | None, sequence_id: int, taken_at: datetime, request_id: str) -> str:
    """`snapshots/<workspace or _default>/<sequenceId>/<UTC time>-<request>.json.gz`: one folder per sequence, its
    snapshots sorted by time, the request that archived it in the name. A request ID that is not made of safe
    characters, or is too long, is cleaned and followed by a digest of the original, so two never share a key."""
    if taken_at.tzinfo is None:
        raise ValueError("taken_at must carry its time zone")
    moment = taken_at.astimezone(UTC)
    request = _UNSAFE.sub("_", request_id)[:_MAX_LABEL]
    if request != request_id or not request:
        request = f"{request}~{hashlib.sha256(request_id.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
    folder = _UNSAFE.sub("_", workspace)[:_MAX_LABEL] if workspace else DEFAULT_WORKSPACE_FOLDER
    return f"{SNAPSHOT_PREFIX}{folder}/{sequence_id}/{moment:%Y%m%dT%H%M%S.%fZ}-{request}.json.gz"


def encode_snapshot(document: Mapping[str, Any]) -> bytes:
    """The object's bytes: compact ASCII JSON (a lone surrogate Reply sent stays an escape), gzip-compressed (mtime
    0: the same snapshot, the same bytes). ValueError for what JSON cannot hold (NaN)."""
    text = json.dumps(document, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return gzip.compress(text.encode("ascii"), mtime=0)


def snapshot_body(document: Mapping[str, Any]) -> bytes:
    """encode_snapshot for a store: what JSON cannot hold is a SnapshotStoreError (the snapshot cannot be stored)."""
    try:
        return encode_snapshot(document)
    except (ValueError, TypeError) as exc:
        raise SnapshotStoreError("the snapshot cannot be written as JSON (a value JSON cannot hold)") from exc


class S3SnapshotStore:
    """Writes snapshot objects to one bucket with an S3 client built on first use (cold starts build none)."""

    def __init__(self, *, s3_client: Callable[[], Any], bucket: str) -> None:
        self._s3_client = s3_client
        self._bucket = bucket

    def store(self, key: str, document: Mapping[str, Any], deadline: Deadline) -> str:
        """Put the object; its `s3://` URI. SnapshotStoreError when S3 refuses, fails or outlasts the deadline."""
        body = snapshot_body(document)
        try:
            call_within(
                deadline,
                "PutObject",
                self._s3_client().put_object,
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ContentEncoding="gzip",
                ServerSideEncryption="AES256",
            )
        except AwsCallTimeoutError as exc:
            raise SnapshotStoreError(f"snapshot bucket {self._bucket}: the write did not finish in time") from exc
        except Exception as exc:  # ClientError, BotoCoreError (endpoint, credentials), or any surprise
            code = _error_code(exc)
            raise SnapshotStoreError(f"snapshot bucket {self._bucket}: the write failed ({code})") from exc
        return f"s3://{self._bucket}/{key}"


def _error_code(error: Exception) -> str:
    """S3's error code (NoSuchBucket, AccessDenied...) or the exception's type: never its text."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return _UNSAFE.sub("_", code)[:_MAX_LABEL]
    return type(error).__name__
