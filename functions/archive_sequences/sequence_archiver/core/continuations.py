"""The continuation contract: the messages the function sends its own queue to carry a request on, sealed with
an HMAC so that it honours only the continuations it made.

A continuation is a request body with a `continuation` object: an archive request's unfinished IDs
(`{"sequenceIds": [...], "continuation": {"requestId": ..., "part": 2}}`) or a clean-up request's listing
progress (`{"select": ..., "continuation": {"requestId": ..., "selectedIds": [...], ...}}`). Whoever can send
to the queue could write one, and the function would report under the `requestId` it names (another
request's) and, for a clean-up request, enqueue `selectedIds` that no selection chose. So each one carries
`continuation.mac`: HMAC-SHA-256 over the whole body in canonical JSON (sorted keys, no spaces, ASCII, the
MAC itself left out), so every field that steers what the function does (requestId, part, failures, the IDs,
pauseFirst, workspace, the selection, dryRun, maxSequences, runAt, skip, selectedIds) is covered: a continuation
whose `workspace` was edited is not honoured, like any other altered one.

The key is derived from the Reply API key secret (HMAC-SHA-256 of a fixed label under the secret's value),
so no other secret is needed and nobody who cannot read that secret can make one. It is always the default
secret's (REPLY_API_KEY_SECRET_ID), whatever workspace a continuation carries on: one key opens every
continuation, and a workspace's secret (REPLY_WORKSPACE_SECRET_IDS) is only ever read for its own Reply
calls. A rotation of the secret changes the key: a continuation made before it is checked against the
secret's previous version (AWSPREVIOUS) while that is readable, and against a fresh read of the current
version (another instance may have signed with a newer key than this one has cached). A continuation that
no key opens is not honoured: `open_continuation` drops its `continuation`, so it is a new request under its
own message ID (its IDs are still real IDs someone asked to archive; a clean-up request lists its selection
again from the first page, never trusting `selectedIds`). See docs/security.md and docs/failure-semantics.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sequence_archiver.core.archive_request import WORKSPACE_FIELD
from sequence_archiver.core.exceptions import ApiKeyError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pydantic import SecretStr

    from sequence_archiver.core.archive_request import ContinuationOf
    from sequence_archiver.core.deadline import Deadline

MAX_CONTINUATION_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


def failure_backoff(failures: int) -> float:
    """The one backoff of every continuation after a real failure (an archive part's or a listing's): 2, 4, 8 ...
    seconds for its 1st, 2nd, 3rd ... failure, at most SQS's longest delay."""
    return float(min(MAX_CONTINUATION_DELAY_SECONDS, 2.0**failures))


logger = logging.getLogger(__name__)

CONTINUATION_FIELD = "continuation"
MAC_FIELD = "mac"
MAC_VERSION = "v1"
KEY_LABEL = b"reply-sequence-archiver continuation v1"
# Warming the key cache while parsing may take this share of the work time left, so a hanging Secrets Manager
# leaves the Reply client's own read the rest (its failure is the request-wide key error the results report),
# and is not tried again for WARM_BACKOFF_SECONDS after it failed (many records would each wait otherwise).
WARM_SHARE = 0.5
WARM_BACKOFF_SECONDS = 60.0


class ContinuationKeys(Protocol):
    """Where the sealing keys come from: the secret's current value, and the values that may have signed before."""

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The secret's current value (cached)."""
        ...

    def earlier_api_keys(self, *, deadline: Deadline | None = None) -> Sequence[SecretStr]:
        """Other values a continuation in flight may be signed with: a fresh read of the current version, the
        previous version while readable (each read at most so often)."""
        ...


def derive_key(secret_value: str) -> bytes:
    """The continuation key of one secret value: HMAC-SHA-256 of the fixed label, keyed by the value."""
    return hmac.new(secret_value.encode("utf-8"), KEY_LABEL, hashlib.sha256).digest()


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes the MAC covers: the body without `continuation.mac`, in canonical JSON."""
    marker = document.get(CONTINUATION_FIELD)
    unsealed = dict(document)
    if isinstance(marker, dict):
        unsealed[CONTINUATION_FIELD] = {name: value for name, value in marker.items() if name != MAC_FIELD}
    text = json.dumps(unsealed, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii")


def mac_of(document: dict[str, Any], key: bytes) -> str:
    """`v1:` and the hex HMAC-SHA-256 of the document's canonical bytes under `key`."""
    return f"{MAC_VERSION}:" + hmac.new(key, canonical(document), hashlib.sha256).hexdigest()


def seal_with(document: dict[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of the continuation document with its MAC in `continuation.mac`."""
    marker = document.get(CONTINUATION_FIELD)
    if not isinstance(marker, dict):
        raise TypeError("only a document with a continuation object is sealed")
    return {**document, CONTINUATION_FIELD: {**marker, MAC_FIELD: mac_of(document, key)}}


def matches(document: dict[str, Any], key: bytes) -> bool:
    """True when the document's `continuation.mac` is the one `key` makes (compared in constant time)."""
    marker = document.get(CONTINUATION_FIELD)
    given = marker.get(MAC_FIELD) if isinstance(marker, dict) else None
    if not isinstance(given, str):
        return False
    try:
        expected = mac_of(document, key)
    except (TypeError, ValueError):  # a NaN, or a value JSON cannot hold: nothing the function wrote
        return False
    return hmac.compare_digest(given.encode("utf-8", errors="replace"), expected.encode("ascii"))


def archive_continuation(
    sequence_ids: Sequence[int], marker: ContinuationOf, *, pause_first: bool, workspace: str | None = None
) -> dict[str, Any]:
    """The body that carries an archive request's unfinished IDs on (sealed by `ContinuationSeal.seal`): the same
    `workspace` as the request, so the continuation uses the same key."""
    body: dict[str, Any] = {"sequenceIds": list(sequence_ids), CONTINUATION_FIELD: marker.to_json()}
    if pause_first:
        body["pauseFirst"] = True
    if workspace is not None:
        body[WORKSPACE_FIELD] = workspace
    return body


def compact(document: object) -> str:
    """A message body: compact JSON."""
    return json.dumps(document, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Opened:
    """A request document after its continuation was checked: what to parse, and why it is not honoured."""

    document: object
    forged: str | None = None  # why the continuation was dropped (the request is then a new one), else None


class ContinuationSeal:
    """Seals the continuations the function sends and opens the ones it receives."""

    def __init__(
        self,
        *,
        keys: ContinuationKeys,
        on_forged: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._on_forged = on_forged
        self._clock = clock
        self._warm_failed_at: float | None = None

    def seal(self, document: dict[str, Any], deadline: Deadline | None = None) -> str:
        """The message body of a continuation, with its MAC; ApiKeyError when the secret cannot be read."""
        key = derive_key(self._keys.api_key(deadline=deadline).get_secret_value())
        return compact(seal_with(document, key))

    def open(self, document: object, deadline: Deadline | None = None) -> Opened:
        """The document to parse: a continuation the function made without its MAC; one it did not make without
        its `continuation` (a new request). ApiKeyError when the secret cannot be read (the delivery is retried).
        """
        if not isinstance(document, dict):
            return Opened(document)
        if CONTINUATION_FIELD not in document:
            self._warm(deadline)
            return Opened(document)
        marker = document[CONTINUATION_FIELD]
        if isinstance(marker, dict) and isinstance(marker.get(MAC_FIELD), str):
            if self._opens(document, deadline):
                return Opened(_without_mac(document))
            reason = "its MAC is not one the function made (altered, forged, or signed with a retired key)"
        else:
            reason = "it carries no MAC"
        if self._on_forged is not None:
            self._on_forged()
        logger.warning("continuation not authentic: treated as a new request", extra={"reason": reason})
        return Opened({name: value for name, value in document.items() if name != CONTINUATION_FIELD}, reason)

    def _warm(self, deadline: Deadline | None) -> None:
        """Read the key now (it is cached), while the work time lasts: a request whose work runs out of time
        before its first Reply call can still be sealed in the little time left after it. A failure here is the
        Reply client's to report, when it reads the key itself."""
        now = self._clock()
        if self._warm_failed_at is not None and now - self._warm_failed_at < WARM_BACKOFF_SECONDS:
            return
        try:
            self._keys.api_key(deadline=deadline.share(WARM_SHARE) if deadline is not None else None)
        except ApiKeyError:
            self._warm_failed_at = self._clock()
            return
        self._warm_failed_at = None

    def _opens(self, document: dict[str, Any], deadline: Deadline | None) -> bool:
        if matches(document, derive_key(self._keys.api_key(deadline=deadline).get_secret_value())):
            return True
        # Rare: a rotation (or a forgery). Only then are the other versions read.
        return any(
            matches(document, derive_key(secret.get_secret_value()))
            for secret in self._keys.earlier_api_keys(deadline=deadline)
        )


def _without_mac(document: dict[str, Any]) -> dict[str, Any]:
    marker = document[CONTINUATION_FIELD]
    return {**document, CONTINUATION_FIELD: {name: value for name, value in marker.items() if name != MAC_FIELD}}


def open_continuation(document: object, seal: ContinuationSeal | None, deadline: Deadline | None = None) -> object:
    """The document to parse: see `ContinuationSeal.open`; without a seal no continuation is honoured."""
    if seal is not None:
        return seal.open(document, deadline).document
    if isinstance(document, dict) and CONTINUATION_FIELD in document:
        return {name: value for name, value in document.items() if name != CONTINUATION_FIELD}
    return document
