"""Per-sequence checks of a clean-up selection, read from a sequence's contacts, one page at a time.

- `contactsFinished`: no contact of the sequence is still worked by it (GET /v3/sequences/{id}/contacts,
  `statusInSequence`): every contact `finished` or `inactive`, or none at all.
- `inactiveForDays`: no contact completed a step in the last N days (GET /v3/sequences/{id}/contacts/state
  with `additionalColumns=LastStepCompletedAt`, 100 a page, Reply's largest).

Both are "every contact" properties, so a check stops at the first contact that breaks it (the cheapest
answer), and one that has not decided yet resumes at the next page (`skip`): a clean-up's continuation
carries that offset, so no page is read twice. A check that cannot be established (the sequence is gone or not
visible, a contact Reply does not describe in a way we can read, more contacts than MAX_CHECKED_CONTACTS)
leaves the sequence out: a clean-up never archives what it could not verify.

The pages are read leniently on purpose, unlike the snapshot's strict `parse_contacts_page`: a status this
module does not know, or a timestamp it cannot read, is not a reason to fail the request, only a reason not
to select that sequence.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sequence_archiver.core.exceptions import ReplyMalformedResponseError
from sequence_archiver.reply.contacts import CONTACTS_PAGE_SIZE, MAX_LISTED_CONTACTS, UNFINISHED_STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.reply.client import ListAnswer

logger = logging.getLogger(__name__)

CONTACTS_STATE_PAGE_SIZE = 100  # Reply's largest page of GET /v3/sequences/{id}/contacts/state
MAX_CHECKED_CONTACTS = MAX_LISTED_CONTACTS  # past it a sequence is left out, not verified
FINISHED_STATUSES = frozenset({"finished", "inactive"})  # the contacts a sequence no longer works
_UNFINISHED_FOLDED = frozenset(status.casefold() for status in UNFINISHED_STATUSES)
# Reply answers 404 for a sequence deleted since it was listed, 403 for one this user may not see: that
# sequence is left out; any other 4xx (a parameter Reply does not take) would be refused for every sequence.
_SEQUENCE_NOT_READABLE = {404: "not found", 403: "not visible to this key"}


class ContactCheck(StrEnum):
    """A per-sequence key of a selection, in the order they run (the cheaper first)."""

    CONTACTS_FINISHED = "contactsFinished"  # up to 1,000 contacts a call
    INACTIVE_FOR_DAYS = "inactiveForDays"  # 100 contacts a call

    @property
    def page_size(self) -> int:
        """Contacts one call reads."""
        return CONTACTS_PAGE_SIZE if self is ContactCheck.CONTACTS_FINISHED else CONTACTS_STATE_PAGE_SIZE


class CheckVerdict(StrEnum):
    """What one page of a check says about the sequence."""

    PASSED = "passed"  # every contact holds: the check is met
    FAILED = "failed"  # a contact breaks it, or it cannot be established: the sequence is left out
    MORE = "more"  # no answer yet: read the page at `next_skip`


@dataclass(frozen=True, slots=True)
class CheckStep:
    """One page of a check: its verdict, where the next page starts, the contacts it read, and why it failed."""

    verdict: CheckVerdict
    next_skip: int
    contacts: int
    why: str | None = None


@dataclass(frozen=True, slots=True)
class ContactStatuses:
    """A page of GET /v3/sequences/{id}/contacts, reduced to each contact's statusInSequence (folded case)."""

    statuses: tuple[str, ...]
    has_more: bool


@dataclass(frozen=True, slots=True)
class LastSteps:
    """A page of GET /v3/sequences/{id}/contacts/state, reduced to each contact's lastStepCompletedAt (None: never;
    `unreadable`: how many contacts had a value that is not a date-time)."""

    last_steps: tuple[datetime | None, ...]
    unreadable: int
    has_more: bool


class ContactChecksApi(Protocol):
    """What the checks need of the Reply client: its pacing, retries and deadline (the listing's)."""

    def list_sequence_contacts(
        self,
        sequence_id: int,
        query: Mapping[str, str],
        deadline: Deadline,
        parse_page: Callable[[bytes, str], ContactStatuses],
    ) -> ListAnswer[ContactStatuses]: ...

    def list_sequence_contacts_state(
        self,
        sequence_id: int,
        query: Mapping[str, str],
        deadline: Deadline,
        parse_page: Callable[[bytes, str], LastSteps],
    ) -> ListAnswer[LastSteps]: ...


def _items(body: bytes) -> tuple[list[Any], bool]:
    try:
        document: Any = json.loads(body)
    except (ValueError, RecursionError):
        raise ReplyMalformedResponseError("Reply answered 200 with a body that is not JSON", http_status=200) from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise ReplyMalformedResponseError("Reply answered 200 without an items list", http_status=200)
    return document["items"], document.get("hasMore") is True


def parse_contact_statuses(body: bytes, secret: str) -> ContactStatuses:
    """Each listed contact's statusInSequence, case folded; "" for an item without one (not known finished)."""
    del secret  # nothing of the body is kept but the statuses
    items, has_more = _items(body)
    statuses = tuple(
        item["statusInSequence"].casefold()
        if isinstance(item, dict) and isinstance(item.get("statusInSequence"), str)
        else ""
        for item in items
    )
    return ContactStatuses(statuses, has_more)


def parse_last_steps(body: bytes, secret: str) -> LastSteps:
    """Each listed contact's lastStepCompletedAt (UTC when it has no offset)."""
    del secret
    items, has_more = _items(body)
    last_steps: list[datetime | None] = []
    unreadable = 0
    for item in items:
        value = item.get("lastStepCompletedAt") if isinstance(item, dict) else None
        if value is None:
            last_steps.append(None)
            continue
        moment = _moment(value)
        if moment is None:
            unreadable += 1
        last_steps.append(moment)
    return LastSteps(tuple(last_steps), unreadable, has_more)


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def check_step(
    api: ContactChecksApi,
    check: ContactCheck,
    sequence_id: int,
    *,
    skip: int,
    deadline: Deadline,
    active_since: datetime | None = None,
) -> CheckStep:
    """Read the page at `skip` and say what it decides (one Reply call).

    `active_since` is the run time minus inactiveForDays. Raises ReplyRefusedError for a 4xx other than 404/403,
    and the client's errors (DeadlineExceededError, RateBudgetExhaustedError, the last retryable error).
    """
    if skip >= MAX_CHECKED_CONTACTS:
        return CheckStep(CheckVerdict.FAILED, skip, 0, f"more than {MAX_CHECKED_CONTACTS} contacts: not verified")
    query = {"top": str(check.page_size), "skip": str(skip)}
    if check is ContactCheck.CONTACTS_FINISHED:
        statuses = api.list_sequence_contacts(sequence_id, query, deadline, parse_contact_statuses)
        if statuses.page is None:
            return _not_readable(statuses, skip)
        return _finished_step(statuses.page, skip)
    if active_since is None:
        raise ValueError("inactiveForDays needs the time a step must not be completed after")
    state = api.list_sequence_contacts_state(
        sequence_id, {**query, "additionalColumns": "LastStepCompletedAt"}, deadline, parse_last_steps
    )
    if state.page is None:
        return _not_readable(state, skip)
    return _inactive_step(state.page, skip, active_since)


def _finished_step(page: ContactStatuses, skip: int) -> CheckStep:
    count = len(page.statuses)
    for status in page.statuses:
        if status not in FINISHED_STATUSES:
            what = status if status in _UNFINISHED_FOLDED else "not known to be finished"
            return CheckStep(CheckVerdict.FAILED, skip + count, count, f"a contact is {what or 'without a status'}")
    return _more_or_passed(page.has_more, skip, count)


def _inactive_step(page: LastSteps, skip: int, active_since: datetime) -> CheckStep:
    count = len(page.last_steps)
    if page.unreadable:
        return CheckStep(CheckVerdict.FAILED, skip + count, count, "a contact's lastStepCompletedAt is not a date-time")
    recent = [moment for moment in page.last_steps if moment is not None and moment >= active_since]
    if recent:
        return CheckStep(
            CheckVerdict.FAILED, skip + count, count, "a contact completed a step since " + _day(active_since)
        )
    return _more_or_passed(page.has_more, skip, count)


def _more_or_passed(has_more: bool, skip: int, count: int) -> CheckStep:
    if not has_more:
        return CheckStep(CheckVerdict.PASSED, skip + count, count)
    if count == 0:  # "more follow" with nothing listed: the pages do not add up, so nothing is established
        return CheckStep(CheckVerdict.FAILED, skip, 0, "Reply said more contacts follow but listed none")
    return CheckStep(CheckVerdict.MORE, skip + count, count)


def _not_readable(answer: ListAnswer[Any], skip: int) -> CheckStep:
    if answer.http_status in _SEQUENCE_NOT_READABLE:
        return CheckStep(CheckVerdict.FAILED, skip, 0, f"the sequence is {_SEQUENCE_NOT_READABLE[answer.http_status]}")
    raise answer.refused("the contacts call")


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


@dataclass(frozen=True, slots=True)
class SequenceCheck:
    """Every check of one sequence, read to its end (the command line's way: no continuation to carry it on)."""

    left_out_by: ContactCheck | None  # None: every check passed
    why: str | None
    contacts: int  # contacts read by the last check run
    calls: int


def check_sequence(
    api: ContactChecksApi,
    checks: tuple[ContactCheck, ...],
    sequence_id: int,
    *,
    deadline: Deadline,
    active_since: datetime | None = None,
) -> SequenceCheck:
    """Run `checks` in order on one sequence, each page by page until its verdict; stop at the first that fails."""
    calls = contacts = 0
    for check in checks:
        skip = contacts = 0
        while True:
            step = check_step(api, check, sequence_id, skip=skip, deadline=deadline, active_since=active_since)
            calls += 1
            contacts += step.contacts
            skip = step.next_skip
            if step.verdict is CheckVerdict.FAILED:
                return SequenceCheck(check, step.why, contacts, calls)
            if step.verdict is CheckVerdict.PASSED:
                break
    return SequenceCheck(None, None, contacts, calls)
