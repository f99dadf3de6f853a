"""Who owns each sequence, for a Master API key: each sequence is archived as its owner (X-User-Id).

Reply counts its limits per user, and a call made for a user counts toward that user's budget. With a
Master key the function acts as each sequence's owner, so a clean-up across N owners draws on N budgets.
Owners are learnt three ways, cheapest first, and kept for the life of the instance:

1. from listings (a clean-up's GET /v3/sequences pages name each sequence's `ownerUserId`);
2. from a listing of the whole workspace, as the key's own user (the workspace owner): one call per
   1,000 sequences, at most once per DIRECTORY_REFRESH_SECONDS, and only when an ID is not known yet;
3. from GET /v3/sequences/{id}, for an ID the listing did not show (created since, or not listed).

An ID Reply says does not exist (404) or that the workspace owner may not see (403) gets that final
outcome without an archive call; one whose owner cannot be read now (a transient failure) is `failed`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from sequence_archiver.archiving.classification import REQUEST_WIDE_ERRORS, classify_response, failed_result
from sequence_archiver.core.exceptions import ReplyMalformedResponseError, SequenceArchiverError
from sequence_archiver.core.outcomes import Outcome, SequenceResult, Via
from sequence_archiver.core.reply_answers import MAX_ERROR_TEXT
from sequence_archiver.reply.listing import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from contextlib import AbstractContextManager

    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.core.reply_answers import ReplyResponse
    from sequence_archiver.reply.listing import SequenceItem


class SequenceLookupApi(Protocol):
    """The Reply client, as far as owners go: reading a sequence, and acting as a user (reply/client.py)."""

    def get_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """GET /v3/sequences/{id}: the sequence, or a 4xx with its problem."""
        ...

    def acting_as(self, user_id: int) -> AbstractContextManager[None]:
        """Every call inside acts as `user_id` (X-User-Id), on that user's budget."""
        ...

    def budget_wait(self, deadline: Deadline) -> float:
        """Seconds before a call as the user acted as may start; 0: now (booked, in a shared budget)."""
        ...

    def release_acting_budget(self, deadline: Deadline) -> None:
        """Give back what the budget of the user acted as holds for calls that will not be made."""
        ...


class SequenceListing(Protocol):
    """Pages of GET /v3/sequences (reply/listing.py SequencePages)."""

    def get_page(self, params: Mapping[str, str], deadline: Deadline) -> tuple[list[SequenceItem], bool]:
        """One page: its items and hasMore."""
        ...


logger = logging.getLogger(__name__)

MAX_KNOWN_OWNERS = 200_000  # owners remembered per instance (about 100 bytes each)
DIRECTORY_REFRESH_SECONDS = 600.0  # the workspace is listed again at most this often
DIRECTORY_MAX_PAGES = 50  # 50,000 sequences a listing at most; the rest are read one by one
DIRECTORY_SHARE = 0.5  # of the time left: the most a workspace listing may take


class SequenceOwners:
    """Owners of sequences, learnt from listings and lookups; one per Lambda instance."""

    def __init__(
        self,
        client: SequenceLookupApi,
        pages: SequenceListing,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_known: int = MAX_KNOWN_OWNERS,
    ) -> None:
        self._client = client
        self._pages = pages
        self._clock = clock
        self._max_known = max_known
        self._known: OrderedDict[int, int] = OrderedDict()
        self._listed_at: float | None = None

    def acting_as(self, user_id: int) -> AbstractContextManager[None]:
        """Every Reply call inside acts as `user_id`, on that user's rate budget."""
        return self._client.acting_as(user_id)

    def budget_wait(self, user_id: int, deadline: Deadline) -> float:
        """Seconds before a call as `user_id` may start (0: now, booked); 0 too when that cannot be known (the
        call itself then says why)."""
        try:
            with self._client.acting_as(user_id):
                return self._client.budget_wait(deadline)
        except SequenceArchiverError:
            return 0.0

    def release_budget(self, user_id: int, deadline: Deadline) -> None:
        """Give back the calls booked as `user_id` and not made: this owner's work here is done."""
        with self._client.acting_as(user_id):
            self._client.release_acting_budget(deadline)

    def learn_from(self, items: Iterable[SequenceItem]) -> None:
        """Remember the owners a listing (a clean-up's) shows."""
        self.learn((item.id, item.owner_user_id) for item in items)

    def learn(self, owners: Iterable[tuple[int, int | None]]) -> None:
        """Remember (sequence ID, owner) pairs seen elsewhere (a listing); pairs without an owner are skipped."""
        for sequence_id, owner in owners:
            if owner is not None:
                self._remember(sequence_id, owner)

    def owners_of(self, sequence_ids: Sequence[int], deadline: Deadline) -> dict[int, int | SequenceResult]:
        """Each ID's owner, or the final (or `failed`) result of an ID whose owner Reply would not tell."""
        if any(sequence_id not in self._known for sequence_id in sequence_ids) and self._may_list_again():
            self._list_workspace(deadline.share(DIRECTORY_SHARE))
        owners: dict[int, int | SequenceResult] = {}
        stop: SequenceArchiverError | None = None
        for sequence_id in sequence_ids:
            known = self._known.get(sequence_id)
            if known is not None:
                owners[sequence_id] = known
            elif stop is not None:
                owners[sequence_id] = failed_result(sequence_id, stop, prefix="not attempted: ")
            else:
                owners[sequence_id], stop = self._look_up(sequence_id, deadline)
        return owners

    def _look_up(
        self, sequence_id: int, deadline: Deadline
    ) -> tuple[int | SequenceResult, SequenceArchiverError | None]:
        """GET /v3/sequences/{id} as the key's own user: the owner or a result, and an error that stops every
        lookup after this one (the deadline, the key)."""
        try:
            answer = self._client.get_sequence(sequence_id, deadline)
        except REQUEST_WIDE_ERRORS as exc:
            return failed_result(sequence_id, exc), exc
        except SequenceArchiverError as exc:  # a retryable failure that lasted: this ID only
            return failed_result(sequence_id, exc), None
        if not 200 <= answer.http_status < 300:
            return _refused_lookup(sequence_id, answer), None
        owner = answer.sequence.owner_user_id if answer.sequence is not None else None
        if owner is None:
            return failed_result(
                sequence_id, ReplyMalformedResponseError("the owner lookup names no ownerUserId")
            ), None
        self._remember(sequence_id, owner)
        return owner, None

    def _may_list_again(self) -> bool:
        return self._listed_at is None or self._clock() - self._listed_at >= DIRECTORY_REFRESH_SECONDS

    def _list_workspace(self, deadline: Deadline) -> None:
        """List every sequence of the workspace (archived or not) and remember their owners; a failure only
        means the owners left are looked up one by one."""
        self._listed_at = self._clock()
        skip = 0
        for _ in range(DIRECTORY_MAX_PAGES):
            try:
                items, has_more = self._pages.get_page({"top": str(MAX_PAGE_SIZE), "skip": str(skip)}, deadline)
            except SequenceArchiverError as exc:
                logger.warning("workspace listing for owners stopped", extra={"error_type": type(exc).__name__})
                return
            self.learn((item.id, item.owner_user_id) for item in items)
            if not has_more or not items:
                return
            skip += len(items)

    def _remember(self, sequence_id: int, owner: int) -> None:
        self._known[sequence_id] = owner
        self._known.move_to_end(sequence_id)
        while len(self._known) > self._max_known:
            self._known.popitem(last=False)


def _refused_lookup(sequence_id: int, answer: ReplyResponse) -> SequenceResult:
    """The result of an ID whose owner lookup Reply refused: not found (final, no archive call can do better),
    forbidden (the key's own user may not see it: whose it is stays unknown), or failed."""
    result = classify_response(sequence_id, answer)
    if result.outcome is Outcome.NOT_FOUND:
        return replace(result, via=Via.SINGLE)
    if result.outcome is Outcome.FORBIDDEN:
        error = f"the owner lookup was refused (the Master key's own user may not see it): {result.error}"
        return replace(result, via=Via.SINGLE, error=error[:MAX_ERROR_TEXT])
    return failed_result(
        sequence_id, ReplyMalformedResponseError(f"Reply answered {answer.http_status} to the owner lookup")
    )
