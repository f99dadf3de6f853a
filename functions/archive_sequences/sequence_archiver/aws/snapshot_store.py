"""Snapshot objects in S3: one gzip-compressed JSON object per sequence archived (schemas/sequence-snapshot.json).

The function only writes (s3:PutObject on `snapshots/*`); operators read them for `sequence-archiver restore`.
Every write, with botocore's retries, ends by the invocation's deadline; any failure is a SnapshotStoreError
naming the bucket and the error code, never a credential.
"""

from __future__ import annotations

import gzip
import json
import re
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


def snapshot_key(*, workspace: str | None, sequence_id: int, taken_at: datetime, request_id: str) -> str:
    """`snapshots/<workspace or default>/<sequenceId>/<UTC time>-<request>.json.gz`: one folder per sequence, its
    snapshots sorted by time, the request that archived it in the name (only safe characters, bounded)."""
    request = _UNSAFE.sub("_", request_id)[:_MAX_LABEL] or "request"
    folder = _UNSAFE.sub("_", workspace)[:_MAX_LABEL] if workspace else "default"
    return f"{SNAPSHOT_PREFIX}{folder}/{sequence_id}/{taken_at:%Y%m%dT%H%M%S.%fZ}-{request}.json.gz"


def encode_snapshot(document: Mapping[str, Any]) -> bytes:
    """The object's bytes: compact JSON (UTF-8), gzip-compressed (mtime 0: the same snapshot, the same bytes)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), mtime=0)


class S3SnapshotStore:
    """Writes snapshot objects to one bucket with an S3 client built on first use (cold starts build none)."""

    def __init__(self, *, s3_client: Callable[[], Any], bucket: str) -> None:
        self._s3_client = s3_client
        self._bucket = bucket

    def store(self, key: str, document: Mapping[str, Any], deadline: Deadline) -> str:
        """Put the object; its `s3://` URI. SnapshotStoreError when S3 refuses, fails or outlasts the deadline."""
        body = encode_snapshot(document)
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
