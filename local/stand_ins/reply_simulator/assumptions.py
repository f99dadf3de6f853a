"""Every answer the simulator gives that Reply's spec does not document, in one place, each one switchable.

Reply's OpenAPI document (openapi/openapi-excerpt.yaml, summarised in openapi/README.md) leaves a few
answers open. The simulator fills each gap with an assumption: on by default, because it is the more
telling answer (a distinct code per refusal). Switched off, the simulator answers only with what the spec
documents, so tests can prove the archiver works either way (tests/integration/test_reply_spec.py).

The documented answer for a refusal the spec gives no code for is its documented status with a problem
body that has no ``code`` (a bulk item: no ``error``, only ``errorDetails``). The spec's schemas require
neither field, and it says a slug is stable and "never change[s] meaning under a given resource", so the one
documented 409 code, ``sequenceAction.archived``, is never borrowed for a sequence that is not archived.

Each field's docstring says what is assumed, what the spec says instead, and the documented answer given
when the switch is off. Switch them with ``ReplySimulator(assumptions=...)``, ``Assumptions.spec_only()``,
``python -m local.stand_ins.reply_simulator --spec-only`` (or ``--no-assume NAME``), or while running with
``POST /__sim/settings {"assumptions": {"<name>": false}}``.

Other behaviour the spec leaves open but that involves no undocumented code (request order, what the list
shows, scopes being exact...) is described in the package docstring (local/stand_ins/reply_simulator/__init__.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Switches for the simulator's undocumented answers: True gives the assumed code, False the spec's letter."""

    archive_invalid_state: bool = True
    """POST /v3/sequences/{id}/archive of an active sequence: 409 ``sequenceAction.invalidState``.

    The spec says "Pause it first", and documents one 409, "Sequence is already archived or in an
    incompatible state"; its only code, ``sequenceAction.archived``, is the already-archived one.
    Off: 409 without a ``code``, detail "Sequence is active. Pause it first: ...".
    """

    archive_sales_agent_not_allowed: bool = True
    """POST /v3/sequences/{id}/archive of a sales-agent sequence: 409 ``sequenceAction.salesAgentNotAllowed``.

    The spec documents ``salesAgentNotAllowed`` only as a per-item error of the bulk endpoint; the single
    endpoint's 409 ("already archived or in an incompatible state") documents ``sequenceAction.archived`` only.
    Off: 409 without a ``code``, detail "This action is not allowed on a sales-agent sequence.".
    """

    pause_not_started: bool = True
    """POST /v3/sequences/{id}/pause of a sequence that never started: 409 ``sequenceAction.notStarted``.

    The spec says "It must have started once", and documents one 409, "Sequence is in an incompatible
    state (archived)", with code ``sequenceAction.archived``.
    Off: 409 without a ``code``, detail "Sequence has never been started.".
    """

    bulk_invalid_state: bool = True
    """POST /v3/sequences/archive with an active sequence: the per-item error ``invalidState``.

    The spec says "Each must be paused or never started"; its "common per-item slugs" are ``notFound``,
    ``forbidden``, ``archived`` ("Sequence is already archived") and ``salesAgentNotAllowed``, none for this.
    Off: an item without ``error``, only errorDetails "Sequence is active. Pause it first: ..." (the item
    schema requires neither field).
    """

    bulk_team_member_not_found: bool = True
    """POST /v3/sequences/archive with a sequence whose owner's team member is gone: the per-item error
    ``teamMemberNotFound``, the other items archived.

    The spec documents ``sequenceAction.teamMemberNotFound`` only as a 400 business problem for the whole
    call, and lists no such per-item slug.
    Off: the whole call is 400 ``sequenceAction.teamMemberNotFound`` "Team member is not found.", and no
    item of it is archived.
    """

    list_invalid_filter: bool = True
    """GET /v3/sequences with a filter value it cannot read (``status=archived``, ``isArchived=maybe``...):
    400 ``sequence.invalidFilter``.

    The spec's list 400 is a business problem only, with the codes ``sequence.invalidPagination`` ("Invalid
    requested page view.") and ``sequence.invalidSort``; neither is about filters.
    Off: 400 without a ``code``, detail "Invalid status value 'archived'." (the query is refused, never
    ignored: a list that dropped a bad filter would select more than was asked).
    """

    @classmethod
    def spec_only(cls) -> Assumptions:
        """Every switch off: the simulator answers only with codes the spec documents."""
        return cls(**dict.fromkeys(cls.names(), False))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The switches' names, in declaration order."""
        return tuple(field.name for field in fields(cls))

    def updated(self, changes: Mapping[str, object]) -> Assumptions:
        """A copy with some switches changed (admin JSON: name to true/false); ValueError on anything else."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise ValueError("unknown assumption(s): " + ", ".join(unknown) + "; known: " + ", ".join(self.names()))
        for name, value in changes.items():
            if not isinstance(value, bool):
                raise ValueError("assumption '" + name + "' must be true or false")
        return replace(self, **{name: bool(value) for name, value in changes.items()})

    def to_json(self) -> dict[str, bool]:
        """The switches as a JSON object."""
        return asdict(self)
