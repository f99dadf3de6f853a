"""What Reply's answers say: their bodies and headers read into the answer types (core/reply_answers.py).

Every answer is untrusted input: huge numbers and deep nesting in JSON make a malformed answer, never a crash;
waits asked for by headers are capped (rate_limiter.MAX_SERVER_WAIT_SECONDS) and garbage is ignored; every text
copied from an answer goes through text.clean (bounded, the key redacted, encodable). A 2xx to an archive is
believed only when it says so (read_archive_answer, read_bulk_answer). The transport, retries and the deadline
are the client's (client.py).
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from sequence_archiver.core.exceptions import ReplyMalformedResponseError
from sequence_archiver.core.outcomes import SequenceSummary
from sequence_archiver.core.reply_answers import (
    MAX_ERROR_POINTERS,
    MAX_ERROR_TEXT,
    MAX_NAME_TEXT,
    MAX_POINTER_TEXT,
    MAX_STATUS_TEXT,
    BulkArchiveResponse,
    BulkItemFailure,
    Problem,
    ReplyResponse,
)
from sequence_archiver.reply import text as reply_text
from sequence_archiver.reply.rate_limiter import MAX_SERVER_WAIT_SECONDS, bounded_wait

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

logger = logging.getLogger(__name__)

_KNOWN_STATUSES = {"new": "new", "active": "active", "paused": "paused"}
_MAX_RETRY_AFTER_CHARS = 64  # an HTTP-date is 29 characters
_MAX_BULK_KEY_DIGITS = 10  # sequence IDs fit in 10 digits; int() of 5,000 digits raises
_FOREIGN_KEYS_LOGGED = 5  # keys of a bulk answer that are not IDs sent: how many are logged
_FOREIGN_KEY_TEXT = 20  # characters of each such key logged
_NOT_JSON = object()


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), at most MAX_SERVER_WAIT_SECONDS; None
    when absent or unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        # Compare lengths before converting: 400 digits would be float('inf'), 5,000 make int() raise.
        if len(digits) > len(str(int(MAX_SERVER_WAIT_SECONDS))):
            return MAX_SERVER_WAIT_SECONDS
        return bounded_wait(float(digits))
    if len(text) > _MAX_RETRY_AFTER_CHARS:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
        return bounded_wait(moment.timestamp() - now())
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _json_document(body: bytes) -> Any:
    """The parsed body, or _NOT_JSON: broken JSON, bad UTF-8, 5,000-digit numbers and deep nesting alike."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        return _NOT_JSON


def parse_problem(body: bytes, *, secret: str | None = None) -> Problem | None:
    """Read a problem+json body, its text cleaned (`secret` redacted); None when empty or not a JSON object."""
    if not body.strip():
        return None
    document = _json_document(body)
    if not isinstance(document, dict):
        return None

    def text(key: str) -> str | None:
        value = document.get(key)
        return reply_text.clean(value, secret=secret, limit=MAX_ERROR_TEXT) if isinstance(value, str) else None

    errors = document.get("errors")
    return Problem(
        title=text("title"),
        detail=text("detail"),
        code=text("code"),
        has_validation_errors=isinstance(errors, list) and bool(errors),
        error_pointers=_error_pointers(errors, secret=secret),
    )


def _error_pointers(errors: object, *, secret: str | None) -> tuple[str, ...]:
    """The `pointer` of each of a validation problem's `errors[]` (`/ids`, `id`), cleaned and bounded."""
    if not isinstance(errors, list):
        return ()
    pointers = [
        reply_text.clean(error["pointer"], secret=secret, limit=MAX_POINTER_TEXT)
        for error in errors[:MAX_ERROR_POINTERS]
        if isinstance(error, dict) and isinstance(error.get("pointer"), str)
    ]
    return tuple(pointers)


MAX_USER_ID = 2_147_483_647  # a Reply user ID: a positive 32-bit integer


def parse_sequence(body: bytes, *, sequence_id: int, secret: str | None = None) -> SequenceSummary:
    """Read the Sequence of a 200 answer to a pause (name and status cleaned); ReplyMalformedResponseError when it
    is not one."""
    document = _json_document(body)
    if document is _NOT_JSON:
        raise ReplyMalformedResponseError("Reply answered 200 with a body that is not JSON", http_status=200)
    if not isinstance(document, dict):
        raise ReplyMalformedResponseError("Reply answered 200 with JSON that is not an object", http_status=200)
    returned_id = document.get("id")
    if returned_id is not None and not _is_the_id(returned_id, sequence_id):
        raise ReplyMalformedResponseError("Reply answered 200 for a different sequence ID", http_status=200)
    return _sequence_summary(document, secret=secret)


def read_archive_answer(status: int, body: bytes, *, sequence_id: int, secret: str | None = None) -> ReplyResponse:
    """A 2xx to POST /v3/sequences/{id}/archive: the Sequence, and `unconfirmed` (why) when it does not confirm the
    archive.

    It confirms when it is a JSON object whose `id` is the requested ID and whose `isArchived` is true (or,
    without a boolean `isArchived`, whose `status` is `archived`). Reply's spec: an archived sequence keeps its
    status (new, active, paused) and its `isArchived` becomes true; the Sequence Reply answers with is the
    archived one. An empty body, JSON that is not an object, no `id` or another one, and `isArchived` false
    confirm nothing. A body that is not JSON at all (cut off, bad UTF-8, 5,000-digit numbers) was not read:
    ReplyMalformedResponseError, as for any 2xx.
    """

    doubt: str | None
    sequence: SequenceSummary | None
    if not body.strip():
        doubt, sequence = "with an empty body", None
    else:
        document = _json_document(body)
        if document is _NOT_JSON:
            raise ReplyMalformedResponseError(
                f"Reply answered {status} with a body that is not JSON", http_status=status
            )
        doubt, sequence = _archive_doubt(document, sequence_id, secret=secret)
    if doubt is None:
        return ReplyResponse(status, sequence=sequence)
    return ReplyResponse(status, sequence=sequence, unconfirmed=f"Reply answered {status} to the archive {doubt}")


def _archive_doubt(
    document: object, sequence_id: int, *, secret: str | None
) -> tuple[str | None, SequenceSummary | None]:
    """Why an archive's 2xx JSON does not confirm it (None when it does), and its Sequence when it is this one."""
    if not isinstance(document, dict):
        return "with JSON that is not an object", None
    returned_id = document.get("id")
    if returned_id is None:
        return "without the sequence's id", None
    if not _is_the_id(returned_id, sequence_id):
        return "about another sequence", None  # that sequence's name and status are not this one's: not kept
    sequence = _sequence_summary(document, secret=secret)
    if sequence.is_archived is False:
        return "saying the sequence is not archived (isArchived false)", sequence
    if sequence.is_archived is None and (sequence.status or "").lower() != "archived":
        return "without saying the sequence is archived (no isArchived)", sequence
    return None, sequence


def _is_the_id(value: object, sequence_id: int) -> bool:
    """True when a body's `id` is the requested ID: an integer (not a boolean, a string or a float) equal to it."""
    return isinstance(value, int) and not isinstance(value, bool) and value == sequence_id


def _sequence_summary(document: dict[str, Any], *, secret: str | None) -> SequenceSummary:
    """The fields of a Sequence that results events carry, cleaned; unknown status values kept, short."""
    name, status, is_archived = document.get("name"), document.get("status"), document.get("isArchived")
    if isinstance(status, str):
        status = reply_text.clean(status, secret=secret, limit=MAX_STATUS_TEXT)
        # Reply's docs show both `paused` and `Paused`: compare case-insensitively, keep unknown values.
        status = _KNOWN_STATUSES.get(status.lower(), status)
    owner = document.get("ownerUserId")
    return SequenceSummary(
        name=reply_text.clean(name, secret=secret, limit=MAX_NAME_TEXT) if isinstance(name, str) else None,
        status=status if isinstance(status, str) else None,
        is_archived=is_archived if isinstance(is_archived, bool) else None,
        owner_user_id=owner
        if isinstance(owner, int) and not isinstance(owner, bool) and 1 <= owner <= MAX_USER_ID
        else None,
    )


def read_bulk_answer(
    status: int, body: bytes, *, requested: Collection[int], secret: str | None = None
) -> BulkArchiveResponse:
    """A 2xx to a bulk archive (`{"<id>": {"error": ..., "errorDetails": ...}}`, only failed items), its text cleaned.

    Leaving an ID out says it was archived only when every key is an ID that was sent. A key that is not (`" 7001"`,
    `"07001"`, an ID not sent, 5,000 digits) makes the answer `unconfirmed`: its keys are logged (a few, short)
    and counted, the items of the IDs sent are kept, and the IDs it leaves out are not known to be archived. An
    empty body or JSON that is not an object confirms nothing either; a body that is not JSON is malformed.
    """
    if not body.strip():
        return BulkArchiveResponse(status, unconfirmed=f"Reply answered {status} to a bulk archive with an empty body")
    document = _json_document(body)
    if document is _NOT_JSON:
        raise ReplyMalformedResponseError(
            f"Reply answered {status} to a bulk archive with a body that is not JSON", http_status=status
        )
    if not isinstance(document, dict):
        return BulkArchiveResponse(
            status, unconfirmed=f"Reply answered {status} to a bulk archive with JSON that is not an object"
        )
    failures: dict[int, BulkItemFailure] = {}
    foreign: list[str] = []
    for key, item in document.items():
        sequence_id = _bulk_key(key)
        if sequence_id is None or sequence_id not in requested:
            foreign.append(key)
            continue
        failures[sequence_id] = _bulk_item(item, secret=secret)
    if not foreign:
        return BulkArchiveResponse(status, failures=failures)
    logger.warning(
        "bulk archive answered for keys that are not ids sent",
        extra={
            "count": len(foreign),
            "keys": [
                reply_text.clean(key, secret=secret, limit=_FOREIGN_KEY_TEXT) for key in foreign[:_FOREIGN_KEYS_LOGGED]
            ],
        },
    )
    return BulkArchiveResponse(
        status,
        failures=failures,
        unconfirmed=f"Reply's bulk answer named {len(foreign)} key(s) that are not IDs sent",
        foreign_keys=len(foreign),
    )


def _bulk_item(item: object, *, secret: str | None) -> BulkItemFailure:
    """One failed item of a bulk answer; an item that is not an object has no error (a refusal without a reason)."""
    error = item.get("error") if isinstance(item, dict) else None
    details = item.get("errorDetails") if isinstance(item, dict) else None
    return BulkItemFailure(
        error=reply_text.clean(error, secret=secret, limit=MAX_ERROR_TEXT) if isinstance(error, str) else "",
        details=reply_text.clean(details, secret=secret, limit=MAX_ERROR_TEXT) if isinstance(details, str) else None,
    )


def _bulk_key(key: str) -> int | None:
    """A bulk answer's key as a sequence ID: up to 10 ASCII digits as Reply writes an integer (no sign, space or
    leading zero; int() of 5,000 digits would raise)."""
    if key.isascii() and key.isdigit() and len(key) <= _MAX_BULK_KEY_DIGITS and not key.startswith("0"):
        return int(key)
    return None
