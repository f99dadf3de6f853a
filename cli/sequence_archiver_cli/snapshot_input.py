"""Reading a sequence snapshot (issue 22) back: a local file or an S3 object, gzip-compressed or plain JSON.

A snapshot (schemas/sequence-snapshot.json, written by the function's archiving/snapshots.py) records a sequence and
its contacts before Reply's archive removed them. It is checked before anything is done with it: the schema
version, the sequence ID, and a contact list whose every item names a positive integer `contactId`. The errors say
where the snapshot is wrong (`contacts[3]: ...`), never what a contact holds: its personal data is not printed.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, cast
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from sequence_archiver.public import SNAPSHOT_SCHEMA_VERSION
from sequence_archiver_cli.aws import describe_aws_error, s3_client
from sequence_archiver_cli.errors import UnavailableError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sequence_archiver_cli.aws import AwsOptions

# A snapshot of the largest listing the function keeps (200,000 contacts of about 1 KB) is some 200 MB of JSON;
# more than this, compressed or not, is not a snapshot this command reads (and no gzip bomb fills the memory).
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK_BYTES = 1024 * 1024


class S3Objects(Protocol):
    """What reading a snapshot needs of an S3 client."""

    def get_object(self, *, Bucket: str, Key: str) -> Mapping[str, Any]: ...  # noqa: N803 - boto3's names


@dataclass(frozen=True, slots=True)
class SnapshotContact:
    """One contact of a snapshot: its ID and status in the sequence then, and Reply's item as recorded."""

    contact_id: int
    status: str
    item: Mapping[str, Any]

    def personal(self) -> dict[str, object]:
        """The fields that name the person (shown only when asked: --show-contacts)."""
        return {name: self.item.get(name) for name in ("email", "firstName", "lastName", "company")}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot, checked: the sequence it was taken of, when, and its contacts, each once."""

    source: str
    sequence_id: int
    taken_at: str | None
    workspace: str | None
    contact_count: int | None  # what the snapshot says it holds (None: not said)
    contacts: tuple[SnapshotContact, ...]
    duplicates: int  # items naming a contact already listed, left out


def is_s3_uri(location: str) -> bool:
    """True for `s3://bucket/key`."""
    return location.startswith("s3://")


def read_snapshot(location: str, *, aws: AwsOptions, s3: S3Objects | None = None) -> Snapshot:
    """The snapshot at a local path or an `s3://` URI, decompressed (gzip or not) and checked.

    UsageError (exit 2) for a file that cannot be read or is not a snapshot; UnavailableError (exit 3) for an S3
    object that cannot be read (missing, refused, S3 unreachable), naming it.
    """
    data = _read_s3(location, aws=aws, s3=s3) if is_s3_uri(location) else _read_file(location)
    return parse_snapshot(_decompressed(data, location), source=location)


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return _bounded(stream, path)
    except OSError as exc:
        raise UsageError(f"cannot read the snapshot {path}: {exc.strerror or exc}") from None


def _read_s3(uri: str, *, aws: AwsOptions, s3: S3Objects | None) -> bytes:
    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise UsageError(f"{uri} is not an S3 object URI: use s3://BUCKET/KEY")
    client = s3 if s3 is not None else cast("S3Objects", s3_client(aws))
    try:
        answer = client.get_object(Bucket=bucket, Key=key)
        body = answer["Body"]
        try:
            return _bounded(body, uri)
        finally:
            body.close()
    except (ClientError, BotoCoreError) as exc:
        raise UnavailableError(f"cannot read the snapshot {uri}: {describe_aws_error('S3', exc)}") from None


def _bounded(stream: Any, where: str) -> bytes:
    """All of a binary stream, or UsageError when it is larger than MAX_SNAPSHOT_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(_READ_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_SNAPSHOT_BYTES:
            raise UsageError(f"the snapshot {where} is larger than {MAX_SNAPSHOT_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)


def _decompressed(data: bytes, where: str) -> bytes:
    """gzip-compressed data (it starts with gzip's magic bytes) decompressed, at most MAX_SNAPSHOT_BYTES; other
    data as it is."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            return _bounded(stream, where)
    except (OSError, EOFError, zlib.error):
        raise UsageError(f"the snapshot {where} is not readable gzip data") from None


def parse_snapshot(data: bytes, *, source: str) -> Snapshot:
    """A snapshot document, checked (schemaVersion 1, an integer sequenceId, contacts with a positive contactId)."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UsageError(f"the snapshot {source} is neither gzip data nor UTF-8 JSON") from None
    except (ValueError, RecursionError):
        raise UsageError(f"the snapshot {source} is not JSON") from None

    def wrong(what: str) -> UsageError:
        return UsageError(f"the snapshot {source} is not a sequence snapshot: {what}")

    if not isinstance(document, dict):
        raise wrong("not a JSON object")
    version = document.get("schemaVersion")
    if version != SNAPSHOT_SCHEMA_VERSION or isinstance(version, bool):
        raise wrong(f"schemaVersion is {_shown(version)}, this command reads {SNAPSHOT_SCHEMA_VERSION}")
    sequence_id = document.get("sequenceId")
    if not _positive_int(sequence_id):
        raise wrong("sequenceId is not a positive integer")
    items = document.get("contacts")
    if not isinstance(items, list):
        raise wrong("contacts is not a list")
    contacts: dict[int, SnapshotContact] = {}
    duplicates = 0
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise wrong(f"contacts[{position}] is not an object")
        contact_id = item.get("contactId")
        if not _positive_int(contact_id):
            raise wrong(f"contacts[{position}] has no positive integer contactId")
        status = item.get("statusInSequence")
        if not isinstance(status, str) or not status:
            raise wrong(f"contacts[{position}] has no statusInSequence")
        if contact_id in contacts:
            duplicates += 1
            continue
        contacts[contact_id] = SnapshotContact(contact_id, status, item)
    count = document.get("contactCount")
    workspace = document.get("workspace")
    taken_at = document.get("takenAt")
    return Snapshot(
        source=source,
        sequence_id=sequence_id,
        taken_at=taken_at if isinstance(taken_at, str) else None,
        workspace=workspace if isinstance(workspace, str) else None,
        contact_count=count if type(count) is int and count >= 0 else None,
        contacts=tuple(contacts.values()),
        duplicates=duplicates,
    )


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _shown(value: object) -> str:
    """A schema version as it was written, short (it is not personal data, but it is someone else's text)."""
    return "missing" if value is None else json.dumps(value)[:20]
