"""Adding contacts to a sequence: POST /v3/sequences/{id}/contact-links/bulk, and what its answer says.

Reply's spec (BulkAddContactsToSequence): the body is `{"contactIds": [...]}` (up to 10,000 a call, with optional
`removeFromExisting`, `startStepId`, `ignoreStepDelay`, `startFrom`); a 200 answers `{"added": [ids],
"notProcessed": {"<id>": {"error": slug, "errorDetails": text}}}`. The answer is untrusted input like every other:
its text is cleaned (bounded, the key redacted), keys that are not contact IDs sent are counted and left out, and
a contact the answer does not mention, or mentions both ways, is `unconfirmed`, never taken as added.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sequence_archiver.core.exceptions import ReplyMalformedResponseError
from sequence_archiver.core.reply_answers import MAX_ERROR_TEXT
from sequence_archiver.reply import text as reply_text

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

logger = logging.getLogger(__name__)

# The spec's bound: "up to 10,000 ids per call".
MAX_CONTACTS_PER_CALL = 10_000
# The per-item slug of a contact that is already in the sequence: for a restore, as good as added.
ALREADY_IN_SEQUENCE = "contactAlreadyInSequence"
_MAX_CONTACT_ID_DIGITS = 19  # a contact ID fits in 64 bits; int() of 5,000 digits raises
_FOREIGN_KEYS_LOGGED = 5
_FOREIGN_KEY_TEXT = 20


@dataclass(frozen=True, slots=True)
class NotProcessedContact:
    """One contact Reply did not add: its error slug (empty when Reply gave none) and Reply's details."""

    error: str
    details: str | None = None

    def short_reason(self) -> str:
        """`slug: details`, or whichever exists."""
        text = ": ".join(part for part in (self.error, self.details) if part)
        return text[:MAX_ERROR_TEXT] or "not processed, without a reason"


@dataclass(frozen=True, slots=True)
class ContactLinksAnswer:
    """A 200 to a bulk add, about the contacts sent: those added, those not processed (and why), those it left
    unsaid; `foreign_keys` counts IDs the answer named that were not sent."""

    added: frozenset[int]
    not_processed: dict[int, NotProcessedContact] = field(default_factory=dict)
    unconfirmed: frozenset[int] = frozenset()
    foreign_keys: int = 0


def contact_links_body(contact_ids: Sequence[int]) -> dict[str, object]:
    """The request body for one call: the contacts only, so Reply's defaults hold (never pulled out of another
    sequence, the first step, no delay skipped, processing starts at once)."""
    if not 1 <= len(contact_ids) <= MAX_CONTACTS_PER_CALL:
        raise ValueError(f"a bulk add takes 1 to {MAX_CONTACTS_PER_CALL} contacts, not {len(contact_ids)}")
    return {"contactIds": list(contact_ids)}


def contact_links_parser(sent: Collection[int]) -> Callable[[bytes, str], ContactLinksAnswer]:
    """The `parse_answer` for ReplyClient.add_contacts_to_sequence, for a call that sent the contacts `sent`."""
    requested = frozenset(sent)

    def parse(body: bytes, secret: str) -> ContactLinksAnswer:
        return read_contact_links_answer(body, requested=requested, secret=secret)

    return parse


def read_contact_links_answer(body: bytes, *, requested: Collection[int], secret: str | None) -> ContactLinksAnswer:
    """A 200 to a bulk add read against the contacts sent; ReplyMalformedResponseError (retried by the client) when
    the body is not a JSON object. A retry is safe: a contact the first call added is then `contactAlreadyInSequence`.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise ReplyMalformedResponseError("Reply answered 200 to a bulk add with a body that is not JSON") from None
    if not isinstance(document, dict):
        raise ReplyMalformedResponseError("Reply answered 200 to a bulk add with JSON that is not an object")
    wanted = frozenset(requested)
    foreign: list[str] = []
    added: set[int] = set()
    raw_added = document.get("added")
    for value in raw_added if isinstance(raw_added, list) else []:
        contact_id = value if _is_contact_id(value) else None
        if contact_id is None or contact_id not in wanted:
            foreign.append(str(value))
            continue
        added.add(contact_id)
    not_processed: dict[int, NotProcessedContact] = {}
    raw_not_processed = document.get("notProcessed")
    for key, item in raw_not_processed.items() if isinstance(raw_not_processed, dict) else ():
        contact_id = _key_as_contact_id(key)
        if contact_id is None or contact_id not in wanted:
            foreign.append(key)
            continue
        not_processed[contact_id] = _not_processed_item(item, secret=secret)
    contradicted = added & not_processed.keys()
    unsaid = wanted - added - not_processed.keys()
    if foreign:
        logger.warning(
            "bulk add answered for contacts that were not sent",
            extra={
                "count": len(foreign),
                "keys": [
                    reply_text.clean(key, secret=secret, limit=_FOREIGN_KEY_TEXT)
                    for key in foreign[:_FOREIGN_KEYS_LOGGED]
                ],
            },
        )
    return ContactLinksAnswer(
        added=frozenset(added - contradicted),
        not_processed={key: item for key, item in not_processed.items() if key not in contradicted},
        unconfirmed=frozenset(unsaid | contradicted),
        foreign_keys=len(foreign),
    )


def _is_contact_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _key_as_contact_id(key: str) -> int | None:
    """A `notProcessed` key as a contact ID: ASCII digits as Reply writes an integer (no sign, space, leading zero)."""
    if key.isascii() and key.isdigit() and len(key) <= _MAX_CONTACT_ID_DIGITS and not key.startswith("0"):
        return int(key)
    return None


def _not_processed_item(item: object, *, secret: str | None) -> NotProcessedContact:
    error = item.get("error") if isinstance(item, dict) else None
    details = item.get("errorDetails") if isinstance(item, dict) else None
    return NotProcessedContact(
        error=reply_text.clean(error, secret=secret, limit=MAX_ERROR_TEXT) if isinstance(error, str) else "",
        details=reply_text.clean(details, secret=secret, limit=MAX_ERROR_TEXT) if isinstance(details, str) else None,
    )
