"""Where `archive` stores the snapshot it takes of each sequence before archiving it: a local folder
(`--snapshot-dir`) or an S3 bucket (`--snapshot-bucket`), the same objects the function writes
(schemas/sequence-snapshot.json, gzip JSON, under `snapshots/<workspace>/<id>/`).

A snapshot holds contacts' names and emails: personal data. The folder's files are written owner-only (0600), each
one atomically (a temporary file renamed into place), so a snapshot is either whole or absent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sequence_archiver.public import SnapshotStoreError, snapshot_body

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sequence_archiver.public import Deadline


class FolderSnapshotStore:
    """Writes snapshot objects as files under one folder (created when missing); `store` returns the file's path."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def store(self, key: str, document: Mapping[str, Any], deadline: Deadline) -> str:
        """Write `<folder>/<key>`; SnapshotStoreError (naming the folder, never the data) when it cannot."""
        del deadline  # a local write does not wait on anyone
        if key.startswith("/") or ".." in Path(key).parts:
            raise SnapshotStoreError(f"snapshot folder {self._folder}: the key {key!r} is not inside it")
        body = snapshot_body(document)
        target = self._folder / key
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(prefix=".snapshot-", dir=target.parent)
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(body)
                    file.flush()
                    os.fsync(file.fileno())
                Path(temporary).replace(target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SnapshotStoreError(f"snapshot folder {self._folder}: the write failed ({reason})") from exc
        return str(target)
