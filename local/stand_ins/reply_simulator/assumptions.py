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

Three switches are about users and keys (identities.py), where Reply's documentation pages describe user keys,
the Master API key with ``X-User-Id`` / ``X-User-Email`` and per-user quotas, but not what happens around them.
Two of them answer with an undocumented code and follow the rule above (``user_key_refuses_acting_user``,
``acting_user_not_found``). The third, ``only_owner_sees_sequences``, chooses between two readings that use
documented answers only; it is a behaviour switch, so ``spec_only()`` keeps it as it is.

The sequence contacts endpoints (openapi/contacts-excerpt.yaml) add one code switch,
``contact_links_archived_sequence``, and three behaviour switches: ``contacts_state_columns_exact_case``, and
``unarchive_coming_soon`` / ``unarchive_coming_soon_as_404`` for the unarchive endpoint the spec announces as
coming soon (by default it answers 404 as if it did not exist; switched off, it works).

Other behaviour the spec leaves open but that involves no undocumented code (request order, what the list
shows, scopes being exact...) is described in the package docstring (local/stand_ins/reply_simulator/__init__.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

# Field metadata marking a switch that chooses a behaviour, not a code: Assumptions.spec_only() leaves it alone.
_BEHAVIOUR: Final = {"behaviour": True}


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Switches for the simulator's undocumented answers: True gives the assumed answer, False the spec's letter."""

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

    user_key_refuses_acting_user: bool = True
    """A user API key (not a Master API key) sent with ``X-User-Id`` or ``X-User-Email``: 400
    ``actingUser.notAllowed``, and nothing else happens.

    Reply's pages document the two headers for the Master API key only ("it can act as any user of its
    workspace"); what a user key does with them is not said.
    Off: the headers are ignored, and the call acts as the key's own user (as it would without them).
    """

    acting_user_not_found: bool = True
    """A Master API key call whose ``X-User-Id`` or ``X-User-Email`` names no user of the key's workspace (or
    is not an id, is blank, or the two headers name different users): 400 ``actingUser.notFound``.

    Reply's pages say the master key acts as "any user of its workspace", and document no answer for a user
    it does not have. (Pause, archive and bulk archive document a 400 ``sequenceAction.teamMemberNotFound``;
    the simulator keeps that code for a sequence whose owner's team member was removed, and list and get have
    no such code.) The call acts as nobody: it spends no user's quota.
    Off: 400 without a ``code``, the same detail (every operation documents a 400).
    """

    only_owner_sees_sequences: bool = field(default=True, metadata=_BEHAVIOUR)
    """Only a sequence's owner sees it and acts on it (list, get, pause, archive, bulk archive); any other
    user of its workspace, the workspace owner and admins included, gets the documented 403 (a bulk item:
    ``forbidden``).

    Reply's pages say every call runs "with the permissions of the user it acts as", and do not say what a
    workspace's owner or admins may see. This is a behaviour switch (both readings answer with documented
    codes), so ``spec_only()`` does not change it.
    Off: the workspace's owner and its admins (``SimulatedUser.role``) see and act on every sequence of their
    workspace; members still see only their own.
    """

    contact_links_archived_sequence: bool = True
    """POST /v3/sequences/{id}/contact-links/bulk to an archived sequence: 400 ``sequenceContact.sequenceArchived``
    "Sequence is archived.", and no contact is added.

    The spec (openapi/contacts-excerpt.yaml) documents a 400 business problem for the whole call (its example:
    ``sequenceContact.noStepsInSequence``) and the per-item slugs ``invalidInput``, ``contactLimitExceeded``,
    ``contactAlreadyInSequence``, ``contactNotFound`` and ``forbidden``; nothing about an archived sequence.
    Off: 400 without a ``code``, the same detail.
    """

    contacts_state_columns_exact_case: bool = field(default=True, metadata=_BEHAVIOUR)
    """GET /v3/sequences/{id}/contacts/state accepts ``additionalColumns`` names only as the spec spells them:
    ``CurrentStep``, ``LastStepCompletedAt``, ``Status``; any other (``lastStepCompletedAt`` included) is the
    documented 400 ``sequenceContact.invalidInput``.

    The spec documents that 400 for an invalid value; whether the match ignores case is not said. This is the
    stricter reading for a client. A behaviour switch: ``spec_only()`` does not change it.
    Off: the names are read in any case.
    """

    unarchive_coming_soon: bool = field(default=True, metadata=_BEHAVIOUR)
    """POST /v3/sequences/{id}/unarchive is not available yet: the spec announces it as "Coming soon" ("available
    by late August 2026"). It answers as ``unarchive_coming_soon_as_404`` says, whatever the sequence.
    A behaviour switch: ``spec_only()`` does not change it.
    Off: it works as documented: an archived sequence gets its old status back and its contacts are NOT put
    back ("Its contacts aren't put back"); 404 ``sequenceAction.notFound``, 403 ``sequenceAction.forbidden``,
    409 ``sequenceAction.notArchived``.
    """

    unarchive_coming_soon_as_404: bool = field(default=True, metadata=_BEHAVIOUR)
    """While ``unarchive_coming_soon`` is on: the endpoint answers 404 without a ``code``, as for any path no
    operation matches (a route not deployed yet). A behaviour switch: ``spec_only()`` does not change it.
    Off: 501 Not Implemented without a ``code``, detail "This endpoint is coming soon.".
    """

    @classmethod
    def spec_only(cls) -> Assumptions:
        """Every code switch off: the simulator answers only with codes the spec documents.

        Behaviour switches (``only_owner_sees_sequences``) keep their defaults: they involve no undocumented code.
        """
        return cls(**dict.fromkeys(cls.code_switch_names(), False))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The switches' names, in declaration order."""
        return tuple(switch.name for switch in fields(cls))

    @classmethod
    def code_switch_names(cls) -> tuple[str, ...]:
        """The switches that choose between an assumed code and the spec's letter (all but behaviour switches)."""
        return tuple(switch.name for switch in fields(cls) if not switch.metadata.get("behaviour", False))

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
