"""A Master key: each sequence archived as its owner, owners taking turns, each stopped only by its own budget."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sequence_archiver.archiving.archiver import ArchiveMode, SequenceArchiver
from sequence_archiver.archiving.owners import SequenceOwners
from sequence_archiver.core.archive_request import parse_archive_request
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import RateBudgetExhaustedError, ReplyServerError
from sequence_archiver.core.outcomes import Outcome, SequenceSummary
from sequence_archiver.core.reply_answers import BulkArchiveResponse, Problem, ReplyResponse
from sequence_archiver.reply.listing import SequenceItem

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from tests.unit.conftest import FakeClock

OWNERS = {1: 10, 2: 20, 3: 10, 4: 30, 5: 20, 6: 10}


class ActingApi:
    """Answers as Reply would to a Master key: archive as the user acted as; lookups as the workspace owner."""

    def __init__(self, owners: Mapping[int, int], *, out_of_budget: frozenset[int] = frozenset()) -> None:
        self.owners = dict(owners)
        self.out_of_budget = out_of_budget  # users whose budget runs out before the deadline
        self.acting: int | None = None
        self.busy_for: dict[int, float] = {}
        self.calls: list[tuple[str, int | None, tuple[int, ...]]] = []

    @contextlib.contextmanager
    def acting_as(self, user_id: int) -> Iterator[None]:
        previous, self.acting = self.acting, user_id
        try:
            yield
        finally:
            self.acting = previous

    def release_unused_budget(self, deadline: Deadline) -> None:
        """Nothing booked here."""

    def release_acting_budget(self, deadline: Deadline) -> None:
        """Nothing booked here."""

    def budget_wait(self, deadline: Deadline) -> float:
        """Seconds before the user acted as may call: `busy_for` says, until its first call."""
        return self.busy_for.get(self.acting or 0, 0.0)

    def get_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.calls.append(("get", self.acting, (sequence_id,)))
        if sequence_id not in self.owners:
            return ReplyResponse(404, problem=Problem(title="Not Found", code="sequenceAction.notFound"))
        return ReplyResponse(
            200, sequence=SequenceSummary("s", "paused", False, owner_user_id=self.owners[sequence_id])
        )

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.calls.append(("archive", self.acting, (sequence_id,)))
        if self.acting in self.out_of_budget:
            raise RateBudgetExhaustedError("the rate budget frees up in 40.0s", retry_after_seconds=40)
        if self.acting != self.owners.get(sequence_id):
            return ReplyResponse(403, problem=Problem(title="Forbidden", code="sequenceAction.forbidden"))
        return ReplyResponse(200, sequence=SequenceSummary("s", "paused", True))

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        self.calls.append(("bulk", self.acting, tuple(sequence_ids)))
        return BulkArchiveResponse(200)

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        raise AssertionError("not paused in these tests")


class NoListing:
    def get_page(self, params: Mapping[str, str], deadline: Deadline) -> tuple[list[SequenceItem], bool]:
        raise ReplyServerError("Reply answered 503", http_status=503)


class Listing:
    def __init__(self, owners: Mapping[int, int]) -> None:
        self.items = [SequenceItem(id=i, owner_user_id=owner) for i, owner in owners.items()]
        self.pages = 0

    def get_page(self, params: Mapping[str, str], deadline: Deadline) -> tuple[list[SequenceItem], bool]:
        self.pages += 1
        skip = int(params["skip"])
        return self.items[skip : skip + 2], skip + 2 < len(self.items)


def archive(
    api: ActingApi, ids: list[int], clock: FakeClock, *, mode: ArchiveMode = ArchiveMode.SINGLE, listing: object = None
) -> dict[int | None, tuple[Outcome, int | None]]:
    owners = SequenceOwners(api, listing or NoListing(), clock=clock)  # type: ignore[arg-type]
    archiver = SequenceArchiver(api, mode=mode, owners=owners)
    results = archiver.archive(parse_archive_request({"sequenceIds": ids}), Deadline(clock.now + 60, clock))
    return {result.sequence_id: (result.outcome, result.acted_as) for result in results}


def test_each_sequence_is_archived_as_its_owner_and_says_so(clock: FakeClock) -> None:
    api = ActingApi(OWNERS)
    results = archive(api, [1, 2, 3, 4, 5, 6], clock)
    assert results == {i: (Outcome.ARCHIVED, OWNERS[i]) for i in OWNERS}
    assert {acting for kind, acting, _ in api.calls if kind == "get"} == {None}  # lookups as the workspace owner


def test_owners_take_turns_a_call_each(clock: FakeClock) -> None:
    api = ActingApi(OWNERS)
    archive(api, [1, 3, 6, 2, 5, 4], clock)
    archives = [(acting, ids[0]) for kind, acting, ids in api.calls if kind == "archive"]
    assert archives == [(10, 1), (20, 2), (30, 4), (10, 3), (20, 5), (10, 6)]


def test_bulk_calls_group_ids_by_owner(clock: FakeClock) -> None:
    api = ActingApi(OWNERS)
    results = archive(api, [1, 2, 3, 4, 5, 6], clock, mode=ArchiveMode.BULK)
    bulks = sorted((acting, ids) for kind, acting, ids in api.calls if kind == "bulk")
    assert bulks == [(10, (1, 3, 6)), (20, (2, 5)), (30, (4,))]
    assert all(outcome is Outcome.ARCHIVED for outcome, _ in results.values())


def test_an_owner_out_of_budget_fails_only_its_own_ids(clock: FakeClock) -> None:
    api = ActingApi(OWNERS, out_of_budget=frozenset({10}))
    results = archive(api, [1, 2, 3, 4, 5, 6], clock)
    assert {i: outcome for i, (outcome, _) in results.items()} == {
        1: Outcome.FAILED,
        2: Outcome.ARCHIVED,
        3: Outcome.FAILED,
        4: Outcome.ARCHIVED,
        5: Outcome.ARCHIVED,
        6: Outcome.FAILED,
    }
    assert results[2] == (Outcome.ARCHIVED, 20)


def test_a_sequence_that_does_not_exist_is_not_found_without_an_archive_call(clock: FakeClock) -> None:
    api = ActingApi(OWNERS)
    results = archive(api, [1, 99], clock)
    assert results[99] == (Outcome.NOT_FOUND, None)
    assert ("archive", None, (99,)) not in api.calls
    assert all(ids != (99,) for kind, _, ids in api.calls if kind == "archive")


def test_a_403_as_the_owner_is_final_never_retried_as_another_user(clock: FakeClock) -> None:
    api = ActingApi(OWNERS)
    api.owners[7] = 40
    listing = Listing({7: 40})
    api.owners[7] = 41  # Reply refuses user 40 (the listing was stale): forbidden, as user 40
    results = archive(api, [7], clock, listing=listing)
    assert results[7] == (Outcome.FORBIDDEN, 40)
    assert [(kind, acting) for kind, acting, _ in api.calls] == [("archive", 40)]


def test_owners_come_from_one_listing_of_the_workspace_then_are_remembered(clock: FakeClock) -> None:
    api = ActingApi(OWNERS)
    listing = Listing(OWNERS)
    owners = SequenceOwners(api, listing, clock=clock)
    deadline = Deadline(clock.now + 60, clock)
    assert owners.owners_of([1, 4, 6], deadline) == {1: 10, 4: 30, 6: 10}
    assert listing.pages == 3  # 6 sequences, 2 a page
    assert owners.owners_of([2, 5], deadline) == {2: 20, 5: 20}
    assert listing.pages == 3
    assert not [call for call in api.calls if call[0] == "get"]


def test_an_owner_whose_budget_is_spent_is_passed_over_while_the_others_go_on(clock: FakeClock) -> None:
    api = ActingApi(OWNERS)
    api.busy_for[10] = 5.0  # owner 10's window is full for 5 s more
    results = archive(api, [1, 2, 3, 4, 5, 6], clock)
    archives = [(acting, ids[0]) for kind, acting, ids in api.calls if kind == "archive"]
    # the others' calls first; owner 10's when nothing else is left (its call then waits for its budget)
    assert archives == [(20, 2), (30, 4), (20, 5), (10, 1), (10, 3), (10, 6)]
    assert all(outcome is Outcome.ARCHIVED for outcome, _ in results.values())


def test_owners_a_clean_up_listed_need_no_lookup_at_all(clock: FakeClock) -> None:
    api = ActingApi(OWNERS)
    listing = Listing(OWNERS)
    owners = SequenceOwners(api, listing, clock=clock)
    owners.learn_from([SequenceItem(id=1, owner_user_id=10), SequenceItem(id=4, owner_user_id=30)])
    assert owners.owners_of([1, 4], Deadline(clock.now + 60, clock)) == {1: 10, 4: 30}
    assert listing.pages == 0
    assert not api.calls
