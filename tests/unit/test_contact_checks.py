"""The per-sequence checks, page by page: contactsFinished stops at the first unfinished contact, inactiveForDays
reads lastStepCompletedAt 100 a page, and what cannot be established leaves the sequence out."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import ReplyRefusedError
from sequence_archiver.reply.client import ListAnswer
from sequence_archiver.reply.contact_checks import (
    CheckStep,
    CheckVerdict,
    ContactCheck,
    check_step,
)
from tests.unit.policy_fakes import SequenceContacts, contact, contacts

SINCE = datetime(2026, 9, 1, tzinfo=UTC)


def deadline() -> Deadline:
    return Deadline(expires_at=time.monotonic() + 60)


def run_check(api: SequenceContacts, check: ContactCheck, sequence_id: int = 1) -> list[CheckStep]:
    """Every page of one check until its verdict."""
    steps = [check_step(api, check, sequence_id, skip=0, deadline=deadline(), active_since=SINCE)]
    while steps[-1].verdict is CheckVerdict.MORE:
        steps.append(
            check_step(api, check, sequence_id, skip=steps[-1].next_skip, deadline=deadline(), active_since=SINCE)
        )
    return steps


@pytest.mark.parametrize(
    ("listed", "verdict"),
    [
        ([], CheckVerdict.PASSED),
        ([contact("finished"), contact("inactive"), contact("Finished")], CheckVerdict.PASSED),
        ([contact("finished"), contact("active")], CheckVerdict.FAILED),
        ([contact("paused")], CheckVerdict.FAILED),
        ([contact("outOfOffice")], CheckVerdict.FAILED),
        ([contact("OUTOFOFFICE")], CheckVerdict.FAILED),
        ([contact("somethingNew")], CheckVerdict.FAILED),  # not known to be finished: not selected
        ([{"contactId": 1}], CheckVerdict.FAILED),
    ],
)
def test_contacts_finished_holds_only_when_every_contact_is_finished_or_inactive(
    listed: list[dict[str, object]], verdict: CheckVerdict
) -> None:
    api = SequenceContacts({1: listed})

    [step] = run_check(api, ContactCheck.CONTACTS_FINISHED)

    assert step.verdict is verdict
    assert api.calls == [("contacts", 1, {"top": "1000", "skip": "0"})]


def test_contacts_finished_stops_paging_at_the_first_unfinished_contact() -> None:
    listed = [*contacts(1_000), contact("active", contact_id=1_001), *contacts(3_000)]
    api = SequenceContacts({1: listed})

    steps = run_check(api, ContactCheck.CONTACTS_FINISHED)

    assert [step.verdict for step in steps] == [CheckVerdict.MORE, CheckVerdict.FAILED]
    assert api.calls_for(1) == [("contacts", 0), ("contacts", 1_000)]  # the last 2,999 are never read
    assert steps[-1].why == "a contact is active"


def test_inactive_for_days_reads_last_step_completed_at_a_hundred_a_page() -> None:
    listed = [*contacts(150, last_step="2026-08-31T23:59:59Z"), contact(last_step=None)]
    api = SequenceContacts({1: listed})

    steps = run_check(api, ContactCheck.INACTIVE_FOR_DAYS)

    assert [step.verdict for step in steps] == [CheckVerdict.MORE, CheckVerdict.PASSED]
    assert [query for _, _, query in api.calls] == [
        {"top": "100", "skip": "0", "additionalColumns": "LastStepCompletedAt"},
        {"top": "100", "skip": "100", "additionalColumns": "LastStepCompletedAt"},
    ]
    assert sum(step.contacts for step in steps) == 151


@pytest.mark.parametrize(
    ("last_step", "verdict"),
    [
        (None, CheckVerdict.PASSED),  # never completed a step
        ("2026-08-31T10:00:00+00:00", CheckVerdict.PASSED),
        ("2026-09-01T00:00:00Z", CheckVerdict.FAILED),  # at the bound: within the days
        ("2026-10-29T10:00:00.00", CheckVerdict.FAILED),  # no offset, as the spec's example: UTC
        ("yesterday", CheckVerdict.FAILED),  # not a date-time: not established
        (17, CheckVerdict.FAILED),
    ],
)
def test_inactive_for_days_holds_when_no_contact_completed_a_step_since_the_bound(
    last_step: object, verdict: CheckVerdict
) -> None:
    api = SequenceContacts({1: [{"contactId": 1, "lastStepCompletedAt": last_step}]})

    [step] = run_check(api, ContactCheck.INACTIVE_FOR_DAYS)

    assert step.verdict is verdict


@pytest.mark.parametrize(("status", "why"), [(404, "the sequence is not found"), (403, "the sequence is not visible")])
def test_a_sequence_gone_or_not_visible_is_left_out(status: int, why: str) -> None:
    api = SequenceContacts({}, status={1: status})

    [step] = run_check(api, ContactCheck.CONTACTS_FINISHED)

    assert step.verdict is CheckVerdict.FAILED
    assert step.why is not None
    assert step.why.startswith(why)


def test_any_other_refusal_would_repeat_for_every_sequence_so_it_is_raised() -> None:
    api = SequenceContacts({}, status={1: 400})

    with pytest.raises(ReplyRefusedError):
        run_check(api, ContactCheck.INACTIVE_FOR_DAYS)


class EmptyButMore(SequenceContacts):
    """Reply says more contacts follow, and lists none."""

    def _page(self, operation, sequence_id, query, parse_page):  # type: ignore[no-untyped-def]
        self.calls.append((operation, sequence_id, dict(query)))
        return ListAnswer(200, page=parse_page(b'{"items": [], "hasMore": true}', ""))


@pytest.mark.parametrize("check", list(ContactCheck))
def test_more_said_with_nothing_listed_establishes_nothing(check: ContactCheck) -> None:
    api = EmptyButMore({})

    [step] = run_check(api, check)

    assert step.verdict is CheckVerdict.FAILED
    assert len(api.calls) == 1
