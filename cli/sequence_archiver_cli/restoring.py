"""Re-adding a snapshot's contacts to a sequence, a call of up to 10,000 contacts at a time, each contact ending
with an outcome (issue 22).

Every call is POST /v3/sequences/{id}/contact-links/bulk through the function's Reply client (its pacing, retries
and deadline). Its answer decides each contact of the call: `added`, `already_in_sequence` (Reply's
`contactAlreadyInSequence`, as good as added: a retry of a call that added it says so too), `refused` (Reply named
it not processed, with its slug; or refused the whole call), `unconfirmed` (the answer did not say, or no usable
answer came after the retries: adding it again is safe). Between calls the run stops when the person pressed
Ctrl-C, the time limit ran out, Reply refused a whole call, rejected the key, or did not answer: the contacts not
reached are then `not_attempted`, never reported as an outcome they did not have.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Protocol

from sequence_archiver.public import (
    ALREADY_IN_SEQUENCE,
    MAX_CONTACTS_PER_CALL,
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyAuthenticationError,
    ReplyPausedError,
    RetryableReplyError,
    contact_links_body,
    contact_links_parser,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sequence_archiver.public import ContactLinksAnswer, Deadline, ListAnswer
    from sequence_archiver_cli.interruption import Interruption
    from sequence_archiver_cli.snapshot_input import SnapshotContact


class ContactOutcome(StrEnum):
    """What became of one contact of the snapshot."""

    ADDED = "added"
    ALREADY_IN_SEQUENCE = "already_in_sequence"
    REFUSED = "refused"
    UNCONFIRMED = "unconfirmed"
    NOT_ATTEMPTED = "not_attempted"


# The outcomes that leave the contact in the sequence: a run of only these exits 0.
RESTORED = frozenset({ContactOutcome.ADDED, ContactOutcome.ALREADY_IN_SEQUENCE})


class StopReason(Enum):
    """Why a run ended before every contact was sent."""

    INTERRUPTED = "interrupted (Ctrl-C)"
    TIME_LIMIT = "the time limit ran out"
    CALL_REFUSED = "Reply refused a call"
    KEY_REJECTED = "Reply rejected the API key"
    UNREACHABLE = "Reply did not answer"


@dataclass(frozen=True, slots=True)
class ContactResult:
    """One contact's outcome; `code` groups refusals (Reply's slug), `reason` says it in full."""

    contact: SnapshotContact
    outcome: ContactOutcome
    code: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One bulk add as it ended: the contacts it sent and Reply's final status (None: no usable answer)."""

    contacts: int
    http_status: int | None


@dataclass
class RestoreRecord:
    """What a run did: every contact's outcome in the order sent, the calls made, and why it stopped (if it did)."""

    results: list[ContactResult] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    stop: StopReason | None = None
    stop_detail: str | None = None

    def counts(self) -> dict[str, int]:
        """Contacts per outcome, every outcome named (0 when none)."""
        found = Counter(result.outcome for result in self.results)
        return {outcome.value: found[outcome] for outcome in ContactOutcome}

    def refused_by_reason(self) -> dict[str, int]:
        """Refused contacts per Reply slug (or the refused call's code), most first."""
        refused = ContactOutcome.REFUSED
        found = Counter(result.code or "no reason given" for result in self.results if result.outcome is refused)
        return dict(found.most_common())

    @property
    def complete(self) -> bool:
        """True when every contact is in the sequence (added, or already there)."""
        return all(result.outcome in RESTORED for result in self.results)


class ContactLinksApi(Protocol):
    """What a restore needs of the Reply client."""

    def add_contacts_to_sequence(
        self,
        sequence_id: int,
        body: Mapping[str, object],
        deadline: Deadline,
        parse_answer: Callable[[bytes, str], ContactLinksAnswer],
    ) -> ListAnswer[ContactLinksAnswer]: ...


def chunks(contacts: Sequence[SnapshotContact], size: int) -> list[Sequence[SnapshotContact]]:
    """The contacts in calls of at most `size` (1..10,000), in the snapshot's order."""
    if not 1 <= size <= MAX_CONTACTS_PER_CALL:
        raise ValueError(f"a call takes 1 to {MAX_CONTACTS_PER_CALL} contacts")
    return [contacts[start : start + size] for start in range(0, len(contacts), size)]


def restore_contacts(
    api: ContactLinksApi,
    sequence_id: int,
    contacts: Sequence[SnapshotContact],
    deadline: Deadline,
    *,
    interruption: Interruption,
    attempts_made: Callable[[], int],
    per_call: int = MAX_CONTACTS_PER_CALL,
    on_call: Callable[[RestoreRecord], None] | None = None,
) -> RestoreRecord:
    """Add the contacts to the sequence, a call at a time; every contact ends with an outcome.

    `attempts_made` counts the HTTP attempts the client has made so far: a call that failed before any attempt
    (the deadline, the rate budget past it) sent nothing, so its contacts are `not_attempted`, not `unconfirmed`.
    """
    record = RestoreRecord()
    pending = chunks(contacts, per_call)
    for position, chunk in enumerate(pending):
        if interruption.requested:
            _stop(record, StopReason.INTERRUPTED, None, pending[position:])
            break
        stopped = _one_call(
            api, sequence_id, chunk, deadline, record=record, interruption=interruption, attempts_made=attempts_made
        )
        if on_call is not None:
            on_call(record)
        if stopped:
            record.results.extend(_not_attempted(pending[position + 1 :]))
            break
    return record


def _one_call(
    api: ContactLinksApi,
    sequence_id: int,
    chunk: Sequence[SnapshotContact],
    deadline: Deadline,
    *,
    record: RestoreRecord,
    interruption: Interruption,
    attempts_made: Callable[[], int],
) -> bool:
    """One bulk add, its contacts' outcomes appended to the record; True when the run must stop after it."""
    ids = [contact.contact_id for contact in chunk]
    before = attempts_made()
    try:
        answer = api.add_contacts_to_sequence(sequence_id, contact_links_body(ids), deadline, contact_links_parser(ids))
    except ReplyAuthenticationError as exc:  # a 401 adds nothing
        _stop(record, StopReason.KEY_REJECTED, str(exc), [chunk])
        return True
    except (DeadlineExceededError, RetryableReplyError) as exc:
        sent = attempts_made() > before
        stop = _stop_reason(exc, interruption)
        if not sent:
            _stop(record, stop, str(exc), [chunk])
            return True
        record.calls.append(CallRecord(len(chunk), getattr(exc, "http_status", None)))
        detail = f"{exc}: adding it again is safe"
        record.results.extend(ContactResult(c, ContactOutcome.UNCONFIRMED, "no answer", detail) for c in chunk)
        record.stop, record.stop_detail = stop, str(exc)
        return True
    record.calls.append(CallRecord(len(chunk), answer.http_status))
    if answer.page is None:  # a 4xx for the whole call: the sequence, the scope, the body
        problem = answer.problem
        code = (problem.code if problem else None) or f"HTTP {answer.http_status}"
        reason = (problem.short_reason() if problem else None) or f"HTTP {answer.http_status}"
        text = f"Reply refused the call ({answer.http_status}): {reason}"
        record.results.extend(ContactResult(c, ContactOutcome.REFUSED, code, text) for c in chunk)
        record.stop, record.stop_detail = StopReason.CALL_REFUSED, text
        return True
    record.results.extend(_decided(chunk, answer.page))
    return False


def _decided(chunk: Sequence[SnapshotContact], answer: ContactLinksAnswer) -> list[ContactResult]:
    """Each contact of a call as its 200 answer says."""
    results = []
    for contact in chunk:
        contact_id = contact.contact_id
        refusal = answer.not_processed.get(contact_id)
        if contact_id in answer.added:
            results.append(ContactResult(contact, ContactOutcome.ADDED))
        elif refusal is not None and refusal.error == ALREADY_IN_SEQUENCE:
            results.append(ContactResult(contact, ContactOutcome.ALREADY_IN_SEQUENCE, refusal.error))
        elif refusal is not None:
            results.append(
                ContactResult(contact, ContactOutcome.REFUSED, refusal.error or None, refusal.short_reason())
            )
        else:
            reason = "Reply's answer does not say it was added: adding it again is safe"
            results.append(ContactResult(contact, ContactOutcome.UNCONFIRMED, "not in the answer", reason))
    return results


def _stop_reason(error: Exception, interruption: Interruption) -> StopReason:
    if interruption.requested:
        return StopReason.INTERRUPTED
    if isinstance(error, DeadlineExceededError | RateBudgetExhaustedError | ReplyPausedError):
        return StopReason.TIME_LIMIT  # no time left for the call, the budget's wait or Reply's pause
    return StopReason.UNREACHABLE


def _stop(
    record: RestoreRecord, reason: StopReason, detail: str | None, left: Sequence[Sequence[SnapshotContact]]
) -> None:
    record.stop, record.stop_detail = reason, detail
    record.results.extend(_not_attempted(left))


def _not_attempted(left: Sequence[Sequence[SnapshotContact]]) -> list[ContactResult]:
    return [ContactResult(contact, ContactOutcome.NOT_ATTEMPTED) for chunk in left for contact in chunk]
