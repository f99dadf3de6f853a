"""What archive and pause do to one sequence, done as one user: the new state, or the failure Reply reports.

Answers the spec does not document are chosen by `Assumptions` (assumptions.py), never decided here. A sequence
of another workspace is not found; one of the acting user's workspace they may not see is forbidden
(identities.py, `ActingUser`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from local.stand_ins.reply_simulator.assumptions import Assumptions
from local.stand_ins.reply_simulator.identities import DEFAULT_ACTING_USER

if TYPE_CHECKING:
    from local.stand_ins.reply_simulator.identities import ActingUser
    from local.stand_ins.reply_simulator.models import SimulatedSequence

ACTIVE_DETAIL: Final = "Sequence is active. Pause it first: archiving removes every contact currently in it."
SALES_AGENT_DETAIL: Final = "This action is not allowed on a sales-agent sequence."
NOT_STARTED_DETAIL: Final = "Sequence has never been started."
ASSUMED: Final = Assumptions()


@dataclass(frozen=True, slots=True)
class ActionFailure:
    """Why an action on one sequence failed: a `SequenceActionError` variant, its status and text.

    `slug` is None for a refusal the spec documents no code for (answered without `code`, or a bulk item
    without `error`); `whole_call` marks a failure that refuses a whole bulk call (400, nothing archived).
    """

    slug: str | None
    status: int
    detail: str
    whole_call: bool = False

    @property
    def code(self) -> str | None:
        """Return the namespaced problem+json code, e.g. `sequenceAction.archived`, or None."""
        return "sequenceAction." + self.slug if self.slug is not None else None


TEAM_MEMBER_NOT_FOUND: Final = ActionFailure("teamMemberNotFound", 400, "Team member is not found.")
ARCHIVE_FORBIDDEN: Final = ActionFailure("forbidden", 403, "You do not have permission to archive this sequence.")
PAUSE_FORBIDDEN: Final = ActionFailure("forbidden", 403, "You do not have permission to pause this sequence.")
ALREADY_ARCHIVED: Final = ActionFailure("archived", 409, "Sequence is already archived.")
ARCHIVED_CANNOT_PAUSE: Final = ActionFailure("archived", 409, "Sequence is archived and cannot be paused.")
UNARCHIVE_FORBIDDEN: Final = ActionFailure("forbidden", 403, "You do not have permission to unarchive sequence.")
NOT_ARCHIVED: Final = ActionFailure("notArchived", 409, "Sequence is not archived.")
SALES_AGENT_NOT_ALLOWED: Final = ActionFailure("salesAgentNotAllowed", 409, SALES_AGENT_DETAIL)
# Assumed codes (see assumptions.py), and the documented answers given instead when a switch is off: the
# documented status, no code (the spec's only 409 code, `archived`, "never change[s] meaning").
ACTIVE_NOT_PAUSED: Final = ActionFailure("invalidState", 409, ACTIVE_DETAIL)
ACTIVE_NOT_PAUSED_DOCUMENTED: Final = ActionFailure(None, 409, ACTIVE_DETAIL)
SALES_AGENT_DOCUMENTED: Final = ActionFailure(None, 409, SALES_AGENT_DETAIL)
NOT_STARTED: Final = ActionFailure("notStarted", 409, NOT_STARTED_DETAIL)
NOT_STARTED_DOCUMENTED: Final = ActionFailure(None, 409, NOT_STARTED_DETAIL)
TEAM_MEMBER_NOT_FOUND_WHOLE_CALL: Final = replace(TEAM_MEMBER_NOT_FOUND, whole_call=True)


def not_found(sequence_id: int) -> ActionFailure:
    """Return the `sequenceAction.notFound` failure for an id that does not exist."""
    return ActionFailure("notFound", 404, "Sequence with ID " + str(sequence_id) + " not found.")


def archive(
    sequence: SimulatedSequence | None,
    sequence_id: int,
    assumptions: Assumptions = ASSUMED,
    acting_user: ActingUser = DEFAULT_ACTING_USER,
) -> SimulatedSequence | ActionFailure:
    """Archive a sequence (POST /v3/sequences/{id}/archive): the archived snapshot (status kept), or why not."""
    if sequence is None or not acting_user.finds(sequence):
        return not_found(sequence_id)
    refusal = (
        _common_refusal(
            sequence,
            acting_user,
            assumptions,
            forbidden=ARCHIVE_FORBIDDEN,
            team_member_gone=TEAM_MEMBER_NOT_FOUND,
            archived=ALREADY_ARCHIVED,
        )
        or _sales_agent_refusal(sequence, assumptions.archive_sales_agent_not_allowed)
        or _active_refusal(sequence, assumptions.archive_invalid_state)
    )
    return refusal if refusal is not None else _archived(sequence, acting_user)


def bulk_archive_item(
    sequence: SimulatedSequence | None,
    sequence_id: int,
    assumptions: Assumptions = ASSUMED,
    acting_user: ActingUser = DEFAULT_ACTING_USER,
) -> SimulatedSequence | ActionFailure:
    """Archive one item of POST /v3/sequences/archive: the archived snapshot, or why not (maybe for the whole call)."""
    if sequence is None or not acting_user.finds(sequence):
        return not_found(sequence_id)
    team_member_gone = (
        TEAM_MEMBER_NOT_FOUND if assumptions.bulk_team_member_not_found else TEAM_MEMBER_NOT_FOUND_WHOLE_CALL
    )
    refusal = (
        _common_refusal(
            sequence,
            acting_user,
            assumptions,
            forbidden=ARCHIVE_FORBIDDEN,
            team_member_gone=team_member_gone,
            archived=ALREADY_ARCHIVED,
        )
        or _sales_agent_refusal(sequence, assumed=True)  # a documented per-item slug
        or _active_refusal(sequence, assumptions.bulk_invalid_state)
    )
    return refusal if refusal is not None else _archived(sequence, acting_user)


def pause(
    sequence: SimulatedSequence | None,
    sequence_id: int,
    assumptions: Assumptions = ASSUMED,
    acting_user: ActingUser = DEFAULT_ACTING_USER,
) -> SimulatedSequence | ActionFailure:
    """Pause a sequence: the paused snapshot (unchanged if already paused), or why Reply refuses.

    Sales-agent sequences can be paused.
    """
    if sequence is None or not acting_user.finds(sequence):
        return not_found(sequence_id)
    refusal = _common_refusal(
        sequence,
        acting_user,
        assumptions,
        forbidden=PAUSE_FORBIDDEN,
        team_member_gone=TEAM_MEMBER_NOT_FOUND,
        archived=ARCHIVED_CANNOT_PAUSE,
    )
    if refusal is None and sequence.status == "new":
        refusal = NOT_STARTED if assumptions.pause_not_started else NOT_STARTED_DOCUMENTED
    if refusal is not None:
        return refusal
    return replace(sequence, status="paused") if sequence.status == "active" else sequence


def unarchive(
    sequence: SimulatedSequence | None,
    sequence_id: int,
    assumptions: Assumptions = ASSUMED,
    acting_user: ActingUser = DEFAULT_ACTING_USER,
) -> SimulatedSequence | ActionFailure:
    """Unarchive a sequence (POST /v3/sequences/{id}/unarchive, `Assumptions.unarchive_coming_soon` off): back to
    its old status (kept while archived), without its contacts ("Its contacts aren't put back"), or why not."""
    if sequence is None or not acting_user.finds(sequence):
        return ActionFailure("notFound", 404, "Sequence with ID " + str(sequence_id) + " is not found.")
    if not acting_user.sees(sequence, assumptions):
        return UNARCHIVE_FORBIDDEN
    if not sequence.is_archived:
        return NOT_ARCHIVED
    return replace(sequence, is_archived=False, archived_by_user_id=None)


def _archived(sequence: SimulatedSequence, acting_user: ActingUser) -> SimulatedSequence:
    return replace(sequence, is_archived=True, archived_by_user_id=acting_user.user_id)


def _common_refusal(
    sequence: SimulatedSequence,
    acting_user: ActingUser,
    assumptions: Assumptions,
    *,
    forbidden: ActionFailure,
    team_member_gone: ActionFailure,
    archived: ActionFailure,
) -> ActionFailure | None:
    """The refusals every action checks first, in this order: who may see it, team member, archived."""
    if not acting_user.sees(sequence, assumptions):
        return forbidden
    if sequence.team_member_removed:
        return team_member_gone
    if sequence.is_archived:
        return archived
    return None


def _sales_agent_refusal(sequence: SimulatedSequence, assumed: bool) -> ActionFailure | None:
    if not sequence.sales_agent:
        return None
    return SALES_AGENT_NOT_ALLOWED if assumed else SALES_AGENT_DOCUMENTED


def _active_refusal(sequence: SimulatedSequence, assumed: bool) -> ActionFailure | None:
    if sequence.status != "active":
        return None
    return ACTIVE_NOT_PAUSED if assumed else ACTIVE_NOT_PAUSED_DOCUMENTED
