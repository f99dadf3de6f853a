"""Fakes of Reply for the clean-up policy keys (issue 22): listed sequences, and each sequence's contacts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sequence_archiver.core.exceptions import DeadlineExceededError
from sequence_archiver.reply.client import ListAnswer
from sequence_archiver.reply.listing import SequenceItem

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sequence_archiver.core.deadline import Deadline


class ListedSequences:
    """GET /v3/sequences: the items in order (oldest first), paged by top/skip; a folder query lists `folders`."""

    def __init__(self, items: list[SequenceItem], *, folders: dict[str, list[int]] | None = None) -> None:
        self.items = items
        self.folders = folders or {}
        self.calls: list[dict[str, str]] = []

    def get_page(self, params: Mapping[str, str], deadline: Deadline) -> tuple[list[SequenceItem], bool]:
        self.calls.append(dict(params))
        items = self.items
        if "folderId" in params:
            members = set(self.folders.get(params["folderId"], []))
            items = [item for item in self.items if item.id in members]
        skip, top = int(params["skip"]), int(params["top"])
        return items[skip : skip + top], skip + top < len(items)


class SequenceContacts:
    """GET /v3/sequences/{id}/contacts and /contacts/state over `contacts` (per sequence, Reply's item shapes);
    `answers_left` calls are answered, then DeadlineExceededError (the invocation's time ran out, no call made)."""

    def __init__(self, contacts: dict[int, list[dict[str, Any]]], *, status: dict[int, int] | None = None) -> None:
        self.contacts = contacts
        self.status = status or {}  # a sequence's HTTP status other than 200 (404, 403, 400)
        self.calls: list[tuple[str, int, dict[str, str]]] = []
        self.answers_left: int | None = None

    def _page(
        self, operation: str, sequence_id: int, query: Mapping[str, str], parse_page: Callable[[bytes, str], Any]
    ) -> ListAnswer[Any]:
        if self.answers_left is not None:
            if self.answers_left == 0:
                raise DeadlineExceededError("the invocation's time ran out")
            self.answers_left -= 1
        self.calls.append((operation, sequence_id, dict(query)))
        status = self.status.get(sequence_id, 200)
        if status != 200:
            return ListAnswer(status)
        contacts = self.contacts.get(sequence_id, [])
        skip, top = int(query["skip"]), int(query["top"])
        body = {"items": contacts[skip : skip + top], "hasMore": skip + top < len(contacts)}
        return ListAnswer(200, page=parse_page(json.dumps(body).encode(), "the-key"))

    def list_sequence_contacts(
        self, sequence_id: int, query: Mapping[str, str], deadline: Deadline, parse_page: Callable[[bytes, str], Any]
    ) -> ListAnswer[Any]:
        return self._page("contacts", sequence_id, query, parse_page)

    def list_sequence_contacts_state(
        self, sequence_id: int, query: Mapping[str, str], deadline: Deadline, parse_page: Callable[[bytes, str], Any]
    ) -> ListAnswer[Any]:
        return self._page("state", sequence_id, query, parse_page)

    def calls_for(self, sequence_id: int) -> list[tuple[str, int]]:
        """(operation, skip) of every call about one sequence, in order."""
        return [(operation, int(query["skip"])) for operation, id_, query in self.calls if id_ == sequence_id]


def contact(status: str = "finished", last_step: str | None = None, contact_id: int = 1) -> dict[str, Any]:
    """A contact as both listings give it (each listing reads its own field)."""
    return {
        "contactId": contact_id,
        "email": f"c{contact_id}@example.com",
        "statusInSequence": status,
        "lastStepCompletedAt": last_step,
    }


def contacts(count: int, status: str = "finished", last_step: str | None = None) -> list[dict[str, Any]]:
    """`count` contacts alike, with IDs 1..count."""
    return [contact(status, last_step, contact_id) for contact_id in range(1, count + 1)]


def paused(
    sequence_id: int, *, health: str | None = "healthy", name: str | None = None, owner: int = 42
) -> SequenceItem:
    """A paused, unarchived listed sequence."""
    return SequenceItem(
        id=sequence_id,
        name=name or f"Sequence {sequence_id}",
        status="paused",
        is_archived=False,
        owner_user_id=owner,
        health=health,
    )
