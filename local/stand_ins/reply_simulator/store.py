"""Thread-safe in-memory sequences, their contacts, and the default seed the demo and the tests rely on."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from local.stand_ins.reply_simulator.models import (
    CONTACT_STATUSES,
    DEFAULT_WORKSPACE_ID,
    KEY_OWNER_USER_ID,
    MAX_SEQUENCE_ID,
    MIN_SEQUENCE_ID,
    SEQUENCE_HEALTHS,
    SEQUENCE_STATUSES,
    SimulatedContact,
    SimulatedSequence,
    WorkspaceContact,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from local.stand_ins.reply_simulator.rules import ActionFailure

    SequenceRule = Callable[[SimulatedSequence | None, int], SimulatedSequence | ActionFailure]

# Creation times are derived from the id so that sorting and `createdAfter` are deterministic.
CREATED_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
# Contacts' addingDate is derived from the contact id the same way (one second apart, ascending).
ADDED_EPOCH: Final = datetime(2024, 3, 1, tzinfo=UTC)
OTHER_OWNER_USER_ID: Final = 2
# The step a seeded contact that is on a step is on: the first step of every simulated sequence (messages.py).
FIRST_STEP_ID: Final = 1323
CONTACT_STATUSES_ON_A_STEP: Final = ("active", "paused", "outOfOffice")


@dataclass(frozen=True, slots=True)
class SeedGroup:
    """A range of seeded sequence ids sharing one state, and what archiving them returns."""

    first_id: int
    last_id: int
    label: str
    outcome: str
    status: str = "paused"
    is_archived: bool = False
    owner_user_id: int = KEY_OWNER_USER_ID
    sales_agent: bool = False
    team_member_removed: bool = False

    @property
    def ids(self) -> range:
        """Return the group's ids."""
        return range(self.first_id, self.last_id + 1)


DEFAULT_SEED: Final = (
    SeedGroup(101, 120, "paused", "archive 200"),
    SeedGroup(201, 205, "new", "archive 200", status="new"),
    SeedGroup(301, 305, "active", "archive 409 sequenceAction.invalidState", status="active"),
    SeedGroup(401, 405, "archived", "archive 409 sequenceAction.archived", is_archived=True),
    SeedGroup(501, 505, "other owner", "archive 403 sequenceAction.forbidden", owner_user_id=OTHER_OWNER_USER_ID),
    SeedGroup(
        601,
        601,
        "team member removed",
        "archive 400 sequenceAction.teamMemberNotFound",
        team_member_removed=True,
    ),
    SeedGroup(701, 702, "sales agent", "archive 409 sequenceAction.salesAgentNotAllowed", sales_agent=True),
)


def created_for(sequence_id: int) -> datetime:
    """Return the deterministic creation time of a sequence id (one minute apart, ascending)."""
    return CREATED_EPOCH + timedelta(minutes=sequence_id)


def make_sequence(
    sequence_id: int,
    *,
    name: str | None = None,
    status: str = "paused",
    is_archived: bool = False,
    owner_user_id: int = KEY_OWNER_USER_ID,
    sales_agent: bool = False,
    team_member_removed: bool = False,
    created: datetime | None = None,
    workspace_id: int = DEFAULT_WORKSPACE_ID,
    health: str = "healthy",
) -> SimulatedSequence:
    """Validate the fields and build a sequence snapshot."""
    if isinstance(sequence_id, bool) or not MIN_SEQUENCE_ID <= sequence_id <= MAX_SEQUENCE_ID:
        raise ValueError("sequence ids must be integers between 1 and 2147483647")
    if status not in SEQUENCE_STATUSES:
        raise ValueError("sequence status must be one of: " + ", ".join(SEQUENCE_STATUSES))
    if health not in SEQUENCE_HEALTHS:
        raise ValueError("sequence health must be one of: " + ", ".join(SEQUENCE_HEALTHS))
    if created is not None and created.tzinfo is None:
        raise ValueError("created must be timezone-aware")
    for field_name, identifier in (("owner_user_id", owner_user_id), ("workspace_id", workspace_id)):
        if isinstance(identifier, bool) or not isinstance(identifier, int):
            raise ValueError(field_name + " must be an integer")
    return SimulatedSequence(
        id=sequence_id,
        name=name if name is not None else "Sequence " + str(sequence_id),
        status=status,
        is_archived=is_archived,
        owner_user_id=owner_user_id,
        sales_agent=sales_agent,
        created=created if created is not None else created_for(sequence_id),
        team_member_removed=team_member_removed,
        workspace_id=workspace_id,
        health=health,
    )


def seed_sequences(workspace_id: int = DEFAULT_WORKSPACE_ID) -> list[SimulatedSequence]:
    """Return the default seed's sequences, in this workspace."""
    return [
        make_sequence(
            sequence_id,
            name="Seed " + str(sequence_id) + " (" + group.label + ")",
            status=group.status,
            is_archived=group.is_archived,
            owner_user_id=group.owner_user_id,
            sales_agent=group.sales_agent,
            team_member_removed=group.team_member_removed,
            workspace_id=workspace_id,
        )
        for group in DEFAULT_SEED
        for sequence_id in group.ids
    ]


def make_workspace_contacts(workspace_id: int, count: int, *, start_id: int = 1) -> list[WorkspaceContact]:
    """Build `count` deterministic contacts of a workspace, ids start_id, start_id + 1, ...: contact 7 is
    "Contact 7" <contact7@example.com>, title Buyer, of "Company 7" (the company number is the id modulo 50)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("count must be an integer of at least 0")
    if isinstance(start_id, bool) or not isinstance(start_id, int) or start_id < 1:
        raise ValueError("start_id must be an integer of at least 1")
    return [
        WorkspaceContact(
            contact_id=contact_id,
            workspace_id=workspace_id,
            email="contact" + str(contact_id) + "@example.com",
            first_name="Contact",
            last_name=str(contact_id),
            company="Company " + str(contact_id % 50),
            title="Buyer",
        )
        for contact_id in range(start_id, start_id + count)
    ]


def enrolment(
    contact: WorkspaceContact,
    sequence_id: int,
    *,
    status: str = "active",
    adding_date: datetime | None = None,
    last_step_completed_at: datetime | None = None,
) -> SimulatedContact:
    """A workspace contact as a contact of one sequence. `adding_date` defaults to ADDED_EPOCH plus the contact
    id in seconds (so the API lists higher ids first); a contact that is active, paused or out of office is on
    the first step ("1"), any other on none ("Finished")."""
    if status not in CONTACT_STATUSES:
        raise ValueError("statusInSequence must be one of: " + ", ".join(CONTACT_STATUSES))
    for name, moment in (("adding_date", adding_date), ("last_step_completed_at", last_step_completed_at)):
        if moment is not None and moment.tzinfo is None:
            raise ValueError(name + " must be timezone-aware")
    on_a_step = status in CONTACT_STATUSES_ON_A_STEP
    return SimulatedContact(
        contact_id=contact.contact_id,
        sequence_id=sequence_id,
        email=contact.email,
        first_name=contact.first_name,
        last_name=contact.last_name,
        company=contact.company,
        title=contact.title,
        status_in_sequence=status,
        is_opted_out=contact.is_opted_out,
        adding_date=adding_date if adding_date is not None else ADDED_EPOCH + timedelta(seconds=contact.contact_id),
        current_step_id=FIRST_STEP_ID if on_a_step else None,
        current_step_name="1" if on_a_step else "Finished",
        current_step_number=1 if on_a_step else 0,
        last_step_completed_at=last_step_completed_at,
    )


@dataclass(frozen=True, slots=True)
class ContactLinks:
    """What linking contacts to a sequence did: the ids added, and the ones not processed with the per-item
    slug of each (contactAlreadyInSequence, contactNotFound), in request order."""

    added: tuple[int, ...]
    not_processed: tuple[tuple[int, str], ...]


class SequenceStore:
    """Sequences by id, each one's contacts by contact id, and the workspaces' contacts, behind one lock; every
    read returns immutable snapshots. A sequence that becomes archived loses every contact (_write_locked); the
    workspace keeps them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, SimulatedSequence] = {}
        self._contacts: dict[int, dict[int, SimulatedContact]] = {}
        self._workspace_contacts: dict[int, WorkspaceContact] = {}

    def get(self, sequence_id: int) -> SimulatedSequence | None:
        """Return the sequence with this id, if any."""
        with self._lock:
            return self._by_id.get(sequence_id)

    def all(self) -> list[SimulatedSequence]:
        """Return every sequence (in insertion order)."""
        with self._lock:
            return list(self._by_id.values())

    def put_many(self, sequences: Iterable[SimulatedSequence]) -> int:
        """Insert or replace sequences; return how many were written."""
        batch = {sequence.id: sequence for sequence in sequences}
        with self._lock:
            self._write_locked(batch)
        return len(batch)

    def replace_all(self, sequences: Iterable[SimulatedSequence]) -> None:
        """Drop every sequence (and every contact) and store these instead."""
        batch = {sequence.id: sequence for sequence in sequences}
        with self._lock:
            self._by_id = batch
            self._contacts = {}
            self._workspace_contacts = {}

    def put_workspace_contacts(self, contacts: Iterable[WorkspaceContact]) -> None:
        """Add or replace (by contact id) contacts of workspaces, in no sequence."""
        with self._lock:
            self._workspace_contacts.update((contact.contact_id, contact) for contact in contacts)

    def workspace_contact(self, contact_id: int) -> WorkspaceContact | None:
        """Return the workspace contact with this id, if any."""
        with self._lock:
            return self._workspace_contacts.get(contact_id)

    def add_contacts(self, sequence_id: int, contacts: Iterable[SimulatedContact]) -> None:
        """Add or replace (by contact id) contacts of an existing sequence that is not archived; each becomes a
        contact of the sequence's workspace too."""
        with self._lock:
            sequence = self._by_id.get(sequence_id)
            if sequence is None:
                raise ValueError("there is no sequence " + str(sequence_id))
            if sequence.is_archived:
                raise ValueError("sequence " + str(sequence_id) + " is archived: archiving removed its contacts")
            held = self._contacts.setdefault(sequence_id, {})
            for contact in contacts:
                if contact.sequence_id != sequence_id:
                    raise ValueError("contact " + str(contact.contact_id) + " is not of sequence " + str(sequence_id))
                held[contact.contact_id] = contact
                self._workspace_contacts[contact.contact_id] = WorkspaceContact(
                    contact_id=contact.contact_id,
                    workspace_id=sequence.workspace_id,
                    email=contact.email,
                    first_name=contact.first_name,
                    last_name=contact.last_name,
                    company=contact.company,
                    title=contact.title,
                    is_opted_out=contact.is_opted_out,
                )

    def link_contacts(
        self, sequence_id: int, contact_ids: Iterable[int], *, adding_date: datetime, remove_from_existing: bool
    ) -> ContactLinks | None:
        """Enrol workspace contacts in a sequence at once, as active contacts on its first step: each id is added,
        or not processed because it is already in the sequence or is no contact of the sequence's workspace.
        `remove_from_existing` takes the added contacts out of every other sequence first. None (nothing done)
        when the sequence does not exist or is archived."""
        with self._lock:
            sequence = self._by_id.get(sequence_id)
            if sequence is None or sequence.is_archived:
                return None
            held = self._contacts.setdefault(sequence_id, {})
            added: list[int] = []
            not_processed: list[tuple[int, str]] = []
            for contact_id in contact_ids:
                contact = self._workspace_contacts.get(contact_id)
                if contact is None or contact.workspace_id != sequence.workspace_id:
                    not_processed.append((contact_id, "contactNotFound"))
                elif contact_id in held:
                    not_processed.append((contact_id, "contactAlreadyInSequence"))
                else:
                    if remove_from_existing:
                        for other_id, others in self._contacts.items():
                            if other_id != sequence_id:
                                others.pop(contact_id, None)
                    held[contact_id] = enrolment(contact, sequence_id, adding_date=adding_date)
                    added.append(contact_id)
            return ContactLinks(tuple(added), tuple(not_processed))

    def contacts(self, sequence_id: int) -> list[SimulatedContact]:
        """Return a sequence's contacts in the order they were first added (none for an unknown sequence)."""
        with self._lock:
            return list(self._contacts.get(sequence_id, {}).values())

    def apply(self, sequence_id: int, rule: SequenceRule) -> SimulatedSequence | ActionFailure:
        """Run a rule on one sequence atomically and store the snapshot it returns."""
        with self._lock:
            return self._apply_locked(sequence_id, rule)

    def apply_many(self, sequence_ids: Iterable[int], rule: SequenceRule) -> dict[int, ActionFailure] | ActionFailure:
        """Run a rule on each id atomically; return the failures by id, or the one failure that refuses the
        whole call (`whole_call`), in which case nothing changes."""
        failures: dict[int, ActionFailure] = {}
        staged: dict[int, SimulatedSequence] = {}
        with self._lock:
            for sequence_id in sequence_ids:
                current = staged.get(sequence_id, self._by_id.get(sequence_id))
                result = rule(current, sequence_id)
                if isinstance(result, SimulatedSequence):
                    if result is not current:
                        staged[sequence_id] = result
                elif result.whole_call:
                    return result
                else:
                    failures[sequence_id] = result
            self._write_locked(staged)
        return failures

    def _apply_locked(self, sequence_id: int, rule: SequenceRule) -> SimulatedSequence | ActionFailure:
        current = self._by_id.get(sequence_id)
        result = rule(current, sequence_id)
        if isinstance(result, SimulatedSequence) and result is not current:
            self._write_locked({sequence_id: result})
        return result

    def _write_locked(self, batch: dict[int, SimulatedSequence]) -> None:
        """Store snapshots: the one place a sequence becomes archived (single and bulk archive, or a seeded
        replacement). "Archiving removes every contact currently in it": an archived snapshot keeps none."""
        for sequence_id, sequence in batch.items():
            if sequence.is_archived:
                self._contacts.pop(sequence_id, None)
        self._by_id.update(batch)
