"""A sequence's contacts as Reply lists them: GET /v3/sequences/{id}/contacts, page after page.

The items are kept as Reply gave them (a snapshot records what Reply said, not our reading of it), after two
checks that make a listing usable as a record: every item names an integer `contactId` and a known
`statusInSequence`, and the pages add up (no page past the end, no contact twice).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sequence_archiver.core.exceptions import ReplyMalformedResponseError, SnapshotListingError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.reply.client import ListAnswer

# Reply's largest page of the contacts listing (`top`, default 25): one call of the rate budget per 1,000.
CONTACTS_PAGE_SIZE = 1000
# The contacts one listing keeps in memory. Past it, the listing stops and says so (a sequence that large is
# not archived under the `required` snapshot policy): 200,000 items of about 1 KB fit a 512 MB function.
MAX_LISTED_CONTACTS = 200_000
# Reply's statuses of a contact in a sequence (spec: ContactStatusInSequence), as the listing spells them.
CONTACT_STATUSES = frozenset({"active", "paused", "finished", "inactive", "outOfOffice"})
# The statuses of a contact that is still being worked by the sequence (issue 22: `contactsFinished`).
UNFINISHED_STATUSES = frozenset({"active", "paused", "outOfOffice"})
_REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class ContactsPage:
    """One page of the listing: Reply's items, as listed, and whether more follow."""

    items: tuple[dict[str, Any], ...]
    has_more: bool


class ContactsListingApi(Protocol):
    """What the listing needs of the Reply client (its pacing, retries, deadline and owner routing)."""

    def list_sequence_contacts(
        self,
        sequence_id: int,
        query: Mapping[str, str],
        deadline: Deadline,
        parse_page: Callable[[bytes, str], ContactsPage],
    ) -> ListAnswer[ContactsPage]: ...


def _json_without_key(body: bytes, secret: str) -> Any:
    """The JSON of a 2xx body, the API key replaced first were Reply to echo it in a field (a snapshot keeps
    what Reply said); ReplyMalformedResponseError when it is not JSON."""
    text = body.decode("utf-8", errors="replace")
    if secret and secret in text:
        text = text.replace(secret, _REDACTED)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ReplyMalformedResponseError("Reply answered 200 with a body that is not JSON", http_status=200) from None


def parse_sequence_document(body: bytes, secret: str) -> dict[str, Any]:
    """The Sequence object of a 200 answer to GET /v3/sequences/{id}, as Reply wrote it."""
    document = _json_without_key(body, secret)
    sequence_id = document.get("id") if isinstance(document, dict) else None
    if not isinstance(sequence_id, int) or isinstance(sequence_id, bool):
        raise ReplyMalformedResponseError("Reply answered 200 without a Sequence object", http_status=200)
    return dict(document)


def parse_contacts_page(body: bytes, secret: str) -> ContactsPage:
    """`{"items": [...], "hasMore": bool}` with every item a contact; ReplyMalformedResponseError otherwise (the
    client retries it)."""
    document = _json_without_key(body, secret)
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise ReplyMalformedResponseError("Reply answered 200 without an items list", http_status=200)
    items = document["items"]
    for position, item in enumerate(items):
        if not _is_contact(item):
            raise ReplyMalformedResponseError(
                f"Reply listed item {position} without an integer contactId and a known statusInSequence",
                http_status=200,
            )
    return ContactsPage(tuple(items), document.get("hasMore") is True)


def _is_contact(item: object) -> bool:
    if not isinstance(item, dict):
        return False
    contact_id = item.get("contactId")
    valid_id = isinstance(contact_id, int) and not isinstance(contact_id, bool) and contact_id > 0
    return valid_id and item.get("statusInSequence") in CONTACT_STATUSES


def list_contacts(
    client: ContactsListingApi, sequence_id: int, deadline: Deadline, *, page_size: int = CONTACTS_PAGE_SIZE
) -> list[dict[str, Any]]:
    """Every contact of the sequence, in Reply's order, each once.

    Raises ReplyRefusedError for a final 4xx (404: no such sequence; 403: not visible to this user), the
    client's errors (ReplyAuthenticationError, DeadlineExceededError, the last retryable error), and
    SnapshotListingError when the pages do not add up or the listing passes MAX_LISTED_CONTACTS.
    """
    contacts: dict[int, dict[str, Any]] = {}
    skip = 0
    while True:
        query = {"top": str(page_size), "skip": str(skip)}
        answer = client.list_sequence_contacts(sequence_id, query, deadline, parse_contacts_page)
        if answer.page is None:
            raise answer.refused("the contacts listing")
        page = answer.page
        for item in page.items:
            contacts.setdefault(item["contactId"], item)  # a contact added during the listing may shift a page
        if not page.has_more:
            return list(contacts.values())
        if not page.items:
            raise SnapshotListingError("Reply said more contacts follow but listed none: the listing is incomplete")
        if len(contacts) > MAX_LISTED_CONTACTS:
            raise SnapshotListingError(f"the sequence lists more than {MAX_LISTED_CONTACTS} contacts")
        skip += len(page.items)
