"""What archive and pause do to one sequence: the new state, or the failure Reply reports."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from local.reply_simulator.models import KEY_OWNER_USER_ID

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.reply_simulator.models import SimulatedSequence

ACTIVE_DETAIL: Final = "Sequence is active. Pause it first: archiving removes every contact currently in it."


@dataclass(frozen=True, slots=True)
class ActionFailure:
    """Why an action on one sequence failed: a `SequenceActionError` variant, its status and text."""

    slug: str
    status: int
    detail: str

    @property
    def code(self) -> str:
        """Return the namespaced problem+json code, e.g. `sequenceAction.archived`."""
        return "sequenceAction." + self.slug


TEAM_MEMBER_NOT_FOUND: Final = ActionFailure("teamMemberNotFound", 400, "Team member is not found.")
ARCHIVE_FORBIDDEN: Final = ActionFailure("forbidden", 403, "You do not have permission to archive this sequence.")
PAUSE_FORBIDDEN: Final = ActionFailure("forbidden", 403, "You do not have permission to pause this sequence.")
ALREADY_ARCHIVED: Final = ActionFailure("archived", 409, "Sequence is already archived.")
ARCHIVED_CANNOT_PAUSE: Final = ActionFailure("archived", 409, "Sequence is archived and cannot be paused.")
# Assumptions (Reply documents neither code): an active sequence is `invalidState`, pausing a sequence
# that never started is `notStarted`, and a sales-agent sequence is `salesAgentNotAllowed` on single
# archive too (the bulk endpoint documents that slug per item).
ACTIVE_NOT_PAUSED: Final = ActionFailure("invalidState", 409, ACTIVE_DETAIL)
NOT_STARTED: Final = ActionFailure("notStarted", 409, "Sequence has never been started.")
SALES_AGENT_NOT_ALLOWED: Final = ActionFailure(
    "salesAgentNotAllowed", 409, "This action is not allowed on a sales-agent sequence."
)


def not_found(sequence_id: int) -> ActionFailure:
    """Return the `sequenceAction.notFound` failure for an id that does not exist."""
    return ActionFailure("notFound", 404, "Sequence with ID " + str(sequence_id) + " not found.")


def archive(sequence: SimulatedSequence | None, sequence_id: int) -> SimulatedSequence | ActionFailure:
    """Archive a sequence: the archived snapshot (status kept), or why Reply refuses."""
    if sequence is None:
        return not_found(sequence_id)
    refusal = _first_refusal(sequence, _ARCHIVE_REFUSALS)
    return refusal if refusal is not None else replace(sequence, is_archived=True)


def pause(sequence: SimulatedSequence | None, sequence_id: int) -> SimulatedSequence | ActionFailure:
    """Pause a sequence: the paused snapshot (unchanged if already paused), or why Reply refuses."""
    if sequence is None:
        return not_found(sequence_id)
    refusal = _first_refusal(sequence, _PAUSE_REFUSALS)
    if refusal is not None:
        return refusal
    return replace(sequence, status="paused") if sequence.status == "active" else sequence


def _owned_by_someone_else(sequence: SimulatedSequence) -> bool:
    return sequence.owner_user_id != KEY_OWNER_USER_ID


# Checked in order: the first refusal that applies is the answer.
_ARCHIVE_REFUSALS: Final[tuple[tuple[Callable[[SimulatedSequence], bool], ActionFailure], ...]] = (
    (_owned_by_someone_else, ARCHIVE_FORBIDDEN),
    (lambda sequence: sequence.team_member_removed, TEAM_MEMBER_NOT_FOUND),
    (lambda sequence: sequence.is_archived, ALREADY_ARCHIVED),
    (lambda sequence: sequence.sales_agent, SALES_AGENT_NOT_ALLOWED),
    (lambda sequence: sequence.status == "active", ACTIVE_NOT_PAUSED),
)
_PAUSE_REFUSALS: Final[tuple[tuple[Callable[[SimulatedSequence], bool], ActionFailure], ...]] = (
    (_owned_by_someone_else, PAUSE_FORBIDDEN),
    (lambda sequence: sequence.team_member_removed, TEAM_MEMBER_NOT_FOUND),
    (lambda sequence: sequence.is_archived, ARCHIVED_CANNOT_PAUSE),
    (lambda sequence: sequence.status == "new", NOT_STARTED),
)


def _first_refusal(
    sequence: SimulatedSequence,
    refusals: tuple[tuple[Callable[[SimulatedSequence], bool], ActionFailure], ...],
) -> ActionFailure | None:
    for applies, failure in refusals:
        if applies(sequence):
            return failure
    return None
