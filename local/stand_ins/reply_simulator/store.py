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
    SEQUENCE_STATUSES,
    SimulatedContact,
    SimulatedSequence,
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
) -> SimulatedSequence:
    """Validate the fields and build a sequence snapshot."""
    if isinstance(sequence_id, bool) or not MIN_SEQUENCE_ID <= sequence_id <= MAX_SEQUENCE_ID:
        raise ValueError("sequence ids must be integers between 1 and 2147483647")
    if status not in SEQUENCE_STATUSES:
        raise ValueError("sequence status must be one of: " + ", ".join(SEQUENCE_STATUSES))
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


def make_contacts(sequence_id: int, count: int, *, status: str = "active", start_id: int = 1) -> list[SimulatedContact]:
    """Build `count` deterministic contacts of one sequence, ids start_id, start_id + 1, ..."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("count must be an integer of at least 0")
    if isinstance(start_id, bool) or not isinstance(start_id, int) or start_id < 1:
        raise ValueError("start_id must be an integer of at least 1")
    if status not in CONTACT_STATUSES:
        raise ValueError("statusInSequence must be one of: " + ", ".join(CONTACT_STATUSES))
    on_a_step = status in ("active", "paused", "outOfOffice")
    return [
        SimulatedContact(
            contact_id=contact_id,
            sequence_id=sequence_id,
            email="contact" + str(contact_id) + "@example.com",
            first_name="Contact",
            last_name=str(contact_id),
            company="Company " + str(contact_id % 50),
            title="Buyer",
            status_in_sequence=status,
            is_opted_out=False,
            adding_date=ADDED_EPOCH + timedelta(seconds=contact_id),
            current_step_id=1 if on_a_step else None,
            current_step_name="1" if on_a_step else "Finished",
        )
        for contact_id in range(start_id, start_id + count)
    ]


class SequenceStore:
    """Sequences by id, and each one's contacts by contact id, behind one lock; every read returns immutable
    snapshots. A sequence that becomes archived loses every contact (_write_locked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, SimulatedSequence] = {}
        self._contacts: dict[int, dict[int, SimulatedContact]] = {}

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

    def add_contacts(self, sequence_id: int, contacts: Iterable[SimulatedContact]) -> None:
        """Add or replace (by contact id) contacts of an existing sequence that is not archived."""
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
