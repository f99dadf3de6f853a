"""Clean-up policies: list what a selection matches, then publish the plan (dry run) or enqueue the IDs.

One request may take several invocations. Listing pages goes on until the work deadline; what is left is
carried on by a continuation message on the archive queue (the same request with where to resume, the IDs
selected so far and the run time, so olderThanDays means the same in every part). Nothing is enqueued until
the listing has reached its last page, so a selection that turns out larger than maxSequences enqueues
nothing, however many invocations it took to find out. Then one plan is published for the request.

Listing failures are contained like archiving failures: a 4xx (a filter Reply does not accept) is final for
that request; a 429, 5xx or timeout ends this invocation's listing and the continuation waits (Retry-After,
or a backoff) before it tries again, up to the queue's maxReceiveCount times in a row.

Enqueueing happens once. With the idempotency table, what a live run's last part enqueued (its selection, its
run time and the SQS message ID of every archive message sent) is recorded in the table before the plan is
published (`EnqueueRecord`). A redelivery of that part (its plan not published, some messages not sent)
lists nothing: it sends only the messages not sent yet and publishes the plan the first delivery would have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - pydantic reads EnqueueRecord's annotations at runtime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sequence_archiver.archiving.selection import SelectionProgress, utc_now
from sequence_archiver.aws.sqs import OutgoingMessage
from sequence_archiver.core.archive_request import MAX_CONTINUATION_PARTS, archive_request_body
from sequence_archiver.core.continuations import failure_backoff
from sequence_archiver.core.exceptions import (
    ApiKeyError,
    ConfigurationError,
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyApiError,
    ReplyPausedError,
    ReplyRefusedError,
    RetryableReplyError,
    UnknownWorkspaceError,
)
from sequence_archiver.core.request_report import EventShape
from sequence_archiver.core.results_contract import PlanOutcome
from sequence_archiver.reply.contact_checks import CheckVerdict, check_step
from sequence_archiver.reply.contacts import CONTACTS_PAGE_SIZE
from sequence_archiver.reply.listing import MAX_PAGE_SIZE, SequenceFilter, read_matching_page

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver.archiving.selection import CleanupRequest
    from sequence_archiver.aws.sqs import SqsSender
    from sequence_archiver.core.continuations import ContinuationSeal
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.core.request_report import Trigger
    from sequence_archiver.reply.contact_checks import ContactChecksApi
    from sequence_archiver.reply.listing import SequencePages

logger = logging.getLogger(__name__)

IDS_PER_MESSAGE = 100  # what one archive request message carries (the bulk endpoint's size)
FIFO_MESSAGE_GROUP_ID = "sequence-archiver-cleanup"
MAX_REASON_CHARS = 2_000  # the plan schema's bound
# A snapshot before archiving (being added) reads the sequence and its contacts: at least this many calls a
# sequence, plus one per CONTACTS_PAGE_SIZE contacts.
SNAPSHOT_CALLS_PER_SEQUENCE = 2
# Errors raised before any call was made: they spend nothing of the rate budget.
# The keys of the listed items' fields a plan counts in leftOut (the query's own are Reply's to apply).
_REPORTED_KEYS = frozenset({"createdBefore", "health", "exclude"})
_NO_CALL_MADE = (RateBudgetExhaustedError, ReplyPausedError, DeadlineExceededError, ApiKeyError)


class EffectRecords(Protocol):
    """Where the effects a delivery did are recorded for its redelivery (the idempotency table)."""

    def recall(self, key: str, deadline: Deadline | None = None) -> dict[str, Any] | None: ...

    def remember(self, key: str, state: dict[str, Any], deadline: Deadline | None = None) -> bool: ...


class EnqueueRecord(BaseModel):
    """What a live run's last part enqueued, recorded so that a redelivery enqueues nothing twice."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)

    selected_ids: list[int] = Field(alias="selectedIds")
    pages: int = Field(ge=0)
    skip: int = Field(ge=0)
    run_at: datetime = Field(alias="runAt", strict=False)
    message_ids: list[str | None] = Field(alias="messageIds")  # one per archive message, None where not sent
    # What the plan reports of the listing and its checks (records written before these existed lack them)
    listing_calls: int = Field(default=0, alias="listingCalls", ge=0)
    check_calls: int = Field(default=0, alias="checkCalls", ge=0)
    contact_pages: int = Field(default=0, alias="contactPages", ge=0)
    left_out: dict[str, int] = Field(default_factory=dict, alias="leftOut")

    @model_validator(mode="after")
    def _one_message_id_per_message(self) -> EnqueueRecord:
        messages = -(-len(self.selected_ids) // IDS_PER_MESSAGE)
        if len(self.message_ids) != messages:
            raise ValueError(f"{len(self.message_ids)} message IDs for {messages} archive messages")
        return self


class ListingStop(StrEnum):
    """Why one invocation's listing stopped."""

    FINISHED = "finished"
    OVER_LIMIT = "over_limit"
    REFUSED = "refused"
    WAITING = "waiting"  # the rate budget, a 429 pause or the invocation's time ran out: not a failure
    FAILED = "failed"  # Reply kept failing (5xx, timeouts, malformed pages), the key could not be read


@dataclass
class SelectionRun:
    """One invocation's part of a clean-up request: its listing state, and how the listing stopped."""

    request: CleanupRequest
    request_id: str
    trigger: Trigger
    run_at: datetime
    part: int = 1
    skip: int = 0
    pages: int = 0
    selected_ids: list[int] = field(default_factory=list)
    failures: int = 0
    stop: ListingStop = ListingStop.WAITING
    reason: str | None = None
    wait_seconds: float = 0.0
    pages_now: int = 0  # pages listed by this invocation
    origin: EventShape | None = None  # the trigger the request arrived on (CLEANUP_ALLOWED_TRIGGERS); see start
    # What an earlier delivery of this part enqueued (from the idempotency table): its message ID per archive
    # message, None where it was not sent. Set, the selection is the recorded one and nothing is listed.
    sent: list[str | None] | None = None
    recordable: bool = False  # what this part enqueues is recorded (the table is configured and answered)
    # The per-sequence checks (contactsFinished, inactiveForDays): listed candidates not decided yet, in order
    # (the first is being checked, at check `check_stage` of the selection's checks, contact offset `check_skip`,
    # `check_contacts` read so far); carried by continuations, so no candidate is lost or checked twice.
    pending: list[int] = field(default_factory=list)
    check_stage: int = 0
    check_skip: int = 0
    check_contacts: int = 0
    listed_all: bool = False  # the listing reached its last page (candidates may still wait for their checks)
    listing_calls: int = 0  # Reply calls spent, over every invocation (a retried call counts once)
    check_calls: int = 0
    contact_pages: int = 0  # Σ ceil(contacts / 1,000) of the selected sequences whose contacts were all read
    left_out: dict[str, int] = field(default_factory=dict)  # listed sequences left out, by the key that did it
    checks_now: int = 0  # check calls answered in this invocation

    @property
    def progressed_now(self) -> bool:
        """True when this invocation listed a page or had a check answered (a failure after it starts a new count)."""
        return self.pages_now > 0 or self.checks_now > 0

    def leave_out(self, key: str, count: int = 1) -> None:
        """Count listed sequences a key left out (the plan's leftOut)."""
        if count:
            self.left_out[key] = self.left_out.get(key, 0) + count

    @property
    def recalled(self) -> bool:
        """True when this part's selection was listed and (partly) enqueued by an earlier delivery."""
        return self.sent is not None

    @property
    def record_key(self) -> str:
        """This part's key in the idempotency table (request IDs never hold '#', so no request claims it)."""
        return f"cleanup-enqueued#{self.request_id}#{self.part}"

    def restore(self, record: EnqueueRecord) -> None:
        """Take up the selection an earlier delivery of this part listed and enqueued (some of)."""
        self.selected_ids = list(record.selected_ids)
        self.pages, self.skip, self.run_at = record.pages, record.skip, record.run_at
        self.stop, self.reason, self.wait_seconds = ListingStop.FINISHED, None, 0.0
        self.sent = list(record.message_ids)
        self.listing_calls, self.check_calls = record.listing_calls, record.check_calls
        self.contact_pages, self.left_out = record.contact_pages, dict(record.left_out)

    def enqueue_record(self, message_ids: Sequence[str | None]) -> dict[str, Any]:
        """The state to record once archive messages were sent (see EnqueueRecord)."""
        return {
            "selectedIds": self.selected_ids,
            "pages": self.pages,
            "skip": self.skip,
            "runAt": _timestamp(self.run_at),
            "messageIds": list(message_ids),
            "listingCalls": self.listing_calls,
            "checkCalls": self.check_calls,
            "contactPages": self.contact_pages,
            "leftOut": self.left_out,
        }

    @classmethod
    def start(
        cls,
        request: CleanupRequest,
        *,
        delivery_id: str,
        trigger: Trigger,
        now: datetime,
        origin: EventShape | None = None,
    ) -> SelectionRun:
        """A new request starts at the first page; a continuation where its previous part stopped.

        `origin` is the event shape the request arrived on (its trigger when not given); a continuation keeps
        its original request's.
        """
        progress = request.continuation
        if progress is None:
            return cls(request, delivery_id, trigger, now, origin=origin or EventShape(trigger.value))
        return cls(
            request,
            progress.request_id,
            progress.trigger,
            progress.run_at,
            origin=progress.origin,
            part=progress.part,
            skip=progress.skip,
            pages=progress.pages,
            selected_ids=list(progress.selected_ids),
            failures=progress.failures,
            pending=list(progress.pending),
            check_stage=progress.check_stage,
            check_skip=progress.check_skip,
            check_contacts=progress.check_contacts,
            listed_all=progress.listed_all,
            listing_calls=progress.listing_calls,
            check_calls=progress.check_calls,
            contact_pages=progress.contact_pages,
            left_out=dict(progress.left_out),
        )

    def continuation_document(self) -> dict[str, Any]:
        """The message that carries this request on from where its listing stopped (unsealed)."""
        # Failures in a row: an invocation that listed a page before failing starts the count again.
        failures = (1 if self.progressed_now else self.failures + 1) if self.stop is ListingStop.FAILED else 0
        progress = SelectionProgress(
            request_id=self.request_id,
            part=self.part + 1,
            trigger=self.trigger,
            run_at=self.run_at,
            skip=self.skip,
            pages=self.pages,
            selected_ids=self.selected_ids,
            failures=failures,
            origin=self.origin or EventShape(self.trigger.value),
            pending=self.pending,
            check_stage=self.check_stage,
            check_skip=self.check_skip,
            check_contacts=self.check_contacts,
            listed_all=self.listed_all,
            listing_calls=self.listing_calls,
            check_calls=self.check_calls,
            contact_pages=self.contact_pages,
            left_out=self.left_out,
        )
        return self.request.to_json(progress)

    def continuation_delay(self) -> float:
        """When the continuation should come: when Reply said, or a backoff after a real failure."""
        if self.stop is ListingStop.FAILED:
            return max(self.wait_seconds, failure_backoff(self.failures + 1))
        return self.wait_seconds

    def archive_bodies(self) -> list[str]:
        """The archive request messages for the selected IDs: at most IDS_PER_MESSAGE each, pauseFirst and the
        workspace passed on (its IDs are archived with the key that listed them)."""
        ids, request = self.selected_ids, self.request
        return [
            archive_request_body(
                ids[start : start + IDS_PER_MESSAGE], pause_first=request.pause_first, workspace=request.workspace
            )
            for start in range(0, len(ids), IDS_PER_MESSAGE)
        ]


@dataclass(frozen=True, slots=True)
class CleanupPlan:
    """The plan of one clean-up request: what it selected and what was done with it; one event per request."""

    run: SelectionRun
    outcome: PlanOutcome
    reason: str | None = None
    enqueued_ids: int = 0
    message_ids: tuple[str, ...] = ()
    enqueued_now: int = 0  # the IDs this invocation put on the queue (an earlier delivery may have sent the rest)

    @property
    def request_id(self) -> str:
        """The original request's ID (continuations report under it)."""
        return self.run.request_id

    @property
    def final(self) -> bool:
        """True for the request's plan; False while its listing goes on in a continuation (nothing to publish)."""
        return self.outcome is not PlanOutcome.CONTINUED

    @property
    def complete(self) -> bool:
        """True when every page was listed and the request was carried out as asked (planned, or all enqueued)."""
        return self.outcome in (PlanOutcome.PLANNED, PlanOutcome.ENQUEUED)

    @property
    def sequence_ids(self) -> list[int]:
        """The IDs the plan selects; none when it did not reach its end or exceeds maxSequences."""
        return self.run.selected_ids if self.outcome in (PlanOutcome.PLANNED, PlanOutcome.ENQUEUED) else []

    def detail(self) -> dict[str, Any]:
        """The plan event's detail (schemas/sequence-archive-plan.json); also what a direct invocation returns."""
        run, request = self.run, self.run.request
        cutoff = request.select.cutoff(run.run_at)
        workspace = {"workspace": request.workspace} if request.workspace is not None else {}
        return {
            "requestId": run.request_id,
            **workspace,
            "trigger": run.trigger.value,
            "dryRun": request.dry_run,
            "pauseFirst": request.pause_first,
            "maxSequences": request.max_sequences,
            "selection": request.select.to_json(),
            "runAt": _timestamp(run.run_at),
            "createdBeforeApplied": _timestamp(cutoff) if cutoff is not None else None,
            "outcome": self.outcome.value,
            "complete": self.complete,
            "reason": self.reason[:MAX_REASON_CHARS] if self.reason is not None else None,
            "selected": len(run.selected_ids),
            "pages": run.pages,
            "invocations": run.part,
            "enqueued": {
                "messages": len(self.message_ids),
                "ids": self.enqueued_ids,
                "messageIds": list(self.message_ids),
            },
            "matchedKeys": request.select.applied_keys(),
            "leftOut": dict(sorted(run.left_out.items())),
            "replyCalls": {
                "listing": run.listing_calls,
                "checks": run.check_calls,
                "total": run.listing_calls + run.check_calls,
            },
            "liveRunEstimate": self.live_run_estimate(),
            "sequenceIds": self.sequence_ids,
        }

    def live_run_estimate(self) -> dict[str, int]:
        """What archiving the selected IDs will cost in Reply calls: bulk archive calls (at most 100 IDs each; an
        ID that bulk cannot settle is archived on its own, up to one call per ID), a pause per ID with pauseFirst,
        and, with snapshots before archiving, at least two calls per ID plus one per 1,000 contacts (exact when
        contactsFinished read every contact, else a lower bound)."""
        count = len(self.sequence_ids)
        return {
            "sequences": count,
            "bulkArchiveCalls": -(-count // IDS_PER_MESSAGE),
            "singleArchiveCalls": count,
            "pauseCalls": count if self.run.request.pause_first else 0,
            "snapshotCallsAtLeast": SNAPSHOT_CALLS_PER_SEQUENCE * count + (self.run.contact_pages if count else 0),
        }


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _stopped_by(error: Exception) -> tuple[ListingStop, str, float]:
    """How a list call's error stops this invocation's listing: why, and how long a continuation should wait."""
    if isinstance(error, ReplyRefusedError):  # a 4xx: the same call would be refused again
        return ListingStop.REFUSED, f"Reply refused the list call: {error.reason}", 0.0
    if isinstance(error, (RateBudgetExhaustedError, ReplyPausedError)):  # waiting is not failing
        return ListingStop.WAITING, str(error), error.retry_after_seconds or 0.0
    if isinstance(error, DeadlineExceededError):
        return ListingStop.WAITING, "the invocation's time ran out", 0.0
    if isinstance(error, RetryableReplyError):  # 429 past its retries, 5xx, timeouts, malformed pages
        return ListingStop.FAILED, f"the list call failed: {error}", error.retry_after_seconds or 0.0
    return ListingStop.FAILED, f"the list call failed ({type(error).__name__})", 0.0  # 401 after a re-read, the key


class ArchiveQueue:
    """Sends archive requests to the archive queue (ARCHIVE_QUEUE_URL), every call by the deadline."""

    def __init__(self, *, sender: SqsSender, queue_url: str) -> None:
        self._sender = sender
        self.queue_url = queue_url

    def send(self, bodies: Sequence[str], deadline: Deadline, *, delay_seconds: float = 0.0) -> list[str | None]:
        """Send every body; return each one's SQS message ID, None for those not sent by the deadline."""
        messages = [
            OutgoingMessage(str(index), body, delay_seconds=delay_seconds, message_group_id=FIFO_MESSAGE_GROUP_ID)
            for index, body in enumerate(bodies)
        ]
        taken = self._sender.send(self.queue_url, messages, deadline)
        return [taken.get(message.key) for message in messages]


class CleanupPolicies:
    """Runs clean-up requests: lists their selection within the work deadline, then plans, enqueues or continues."""

    def __init__(
        self,
        *,
        pages: SequencePages,
        archive_queue: ArchiveQueue | None,
        seal: ContinuationSeal,
        records: EffectRecords | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_failures: int = 5,
        now: Callable[[], datetime] = utc_now,
        workspace_pages: Callable[[str], SequencePages] | None = None,
        contact_checks: ContactChecksApi | None = None,
        workspace_contact_checks: Callable[[str], ContactChecksApi] | None = None,
    ) -> None:
        self._pages = pages  # the default key's
        # The per-sequence checks' client: the listing's (the same rate budget, deadline and retries)
        self._contact_checks = contact_checks
        self._workspace_contact_checks = workspace_contact_checks
        self._workspace_pages = workspace_pages  # a named workspace's, through its own client (REPLY_WORKSPACES)
        self.archive_queue = archive_queue
        self._seal = seal
        self._records = records  # the idempotency table, when configured: enqueueing is then recorded
        self._page_size = page_size
        self._max_failures = max_failures
        self._now = now

    def start(
        self,
        request: CleanupRequest,
        *,
        delivery_id: str,
        trigger: Trigger,
        origin: EventShape | None = None,
        recall_within: Deadline | None = None,
    ) -> SelectionRun:
        """This invocation's part of the request (run time, progress and origin carried by a continuation); for a
        live run, what an earlier delivery of the same part recorded as enqueued, if anything, read by
        `recall_within` (None: not read, as when the table did not answer the claim)."""
        run = SelectionRun.start(request, delivery_id=delivery_id, trigger=trigger, now=self._now(), origin=origin)
        if request.dry_run or self._records is None or recall_within is None:
            return run
        run.recordable = True
        state = self._records.recall(run.record_key, recall_within)
        if state is None:
            return run
        try:
            record = EnqueueRecord.model_validate(state)
        except ValidationError as exc:  # not what this function writes: list and enqueue as if it were not there
            logger.warning(
                "ignoring an unreadable enqueue record", extra={"record": run.record_key, "errors": exc.error_count()}
            )
            return run
        run.restore(record)
        logger.info(
            "taking up what an earlier delivery enqueued",
            extra={
                "request_id": run.request_id,
                "part": run.part,
                "selected": len(record.selected_ids),
                "messages_sent": sum(message_id is not None for message_id in record.message_ids),
                "messages": len(record.message_ids),
            },
        )
        return run

    def list_pages(self, run: SelectionRun, deadline: Deadline) -> None:
        """List pages until the selection's end, maxSequences is passed, Reply refuses, or time runs out; nothing
        when an earlier delivery of this part already listed and enqueued its selection.

        Cheapest first: the query parameters of the listing, then the fields of the listed items (health, the
        keep list), then, for a selection with per-sequence checks, each remaining candidate's checks, one page
        of contacts a call, before the next page is listed (so at most a page of candidates waits).
        """
        if run.recalled:
            return
        workspace = run.request.workspace
        pages = self._pages_of(workspace)
        select = run.request.select
        sequence_filter = select.sequence_filter(run.run_at)
        seen = set(run.selected_ids) | set(run.pending)
        checks = self._checks_of(workspace) if select.checks else None
        try:
            # Once every page is listed, the candidates left were kept out of the folders when they were listed
            excluded_by_folder = frozenset() if run.listed_all else self._folder_members(run, pages, deadline)
            while True:
                if checks is not None and not self._check_pending(run, checks, deadline):
                    return
                if run.listed_all:
                    run.stop, run.reason = ListingStop.FINISHED, None
                    return
                if not self._list_page(run, pages, sequence_filter, seen, excluded_by_folder, deadline):
                    return
        except (ReplyApiError, ApiKeyError, DeadlineExceededError) as exc:
            run.stop, run.reason, run.wait_seconds = _stopped_by(exc)

    def _list_page(  # noqa: PLR0917 - private, and each argument is what this invocation's listing holds
        self,
        run: SelectionRun,
        pages: SequencePages,
        sequence_filter: SequenceFilter,
        seen: set[int],
        excluded_by_folder: frozenset[int],
        deadline: Deadline,
    ) -> bool:
        """List the next page; False when the run stops here (over maxSequences)."""
        try:
            page = read_matching_page(
                lambda params: pages.get_page(params, deadline),
                sequence_filter,
                skip=run.skip,
                page_size=self._page_size,
                seen=seen,
                oldest_first=True,  # new sequences land after the pages already listed
            )
        except Exception as exc:
            if not isinstance(exc, _NO_CALL_MADE):
                run.listing_calls += 1
            raise
        run.listing_calls += 1
        run.pages += 1
        run.pages_now += 1
        run.skip = page.next_skip
        for key, count in page.left_out.items():
            if key in _REPORTED_KEYS:
                run.leave_out(key, count)
        matches = [item.id for item in page.matches if item.id not in excluded_by_folder]
        run.leave_out("exclude", len(page.matches) - len(matches))
        if page.last:
            run.listed_all = True
        if run.request.select.checks:
            run.pending.extend(matches)
            return True
        run.selected_ids.extend(matches)
        return not self._over_limit(run)

    def _check_pending(self, run: SelectionRun, checks: ContactChecksApi, deadline: Deadline) -> bool:
        """Check the candidates waiting, in order, one page of contacts a call; False when the run stops here
        (over maxSequences). Reply's errors are raised with the progress kept in `run` (the candidate, its check
        and contact offset), so a continuation resumes with the page that was not answered."""
        select = run.request.select
        active_since = select.active_since(run.run_at)
        while run.pending:
            sequence_id, check = run.pending[0], select.checks[run.check_stage]
            try:
                step = check_step(
                    checks, check, sequence_id, skip=run.check_skip, deadline=deadline, active_since=active_since
                )
            except Exception as exc:
                if not isinstance(exc, _NO_CALL_MADE):
                    run.check_calls += 1
                raise
            run.check_calls += 1
            run.checks_now += 1
            run.check_skip = step.next_skip
            run.check_contacts += step.contacts
            if step.verdict is CheckVerdict.MORE:
                continue
            if step.verdict is CheckVerdict.FAILED:
                logger.info(
                    "sequence left out by a check",
                    extra={"sequence_id": sequence_id, "check": check.value, "why": step.why},
                )
                run.leave_out(check.value)
                self._next_candidate(run)
                continue
            if run.check_stage + 1 < len(select.checks):  # passed this one: on to the next check
                run.check_stage, run.check_skip, run.check_contacts = run.check_stage + 1, 0, 0
                continue
            if select.contacts_finished:  # every contact was read: what a snapshot of it would take
                run.contact_pages += -(-run.check_contacts // CONTACTS_PAGE_SIZE)
            run.selected_ids.append(sequence_id)
            self._next_candidate(run)
            if self._over_limit(run):
                return False
        return True

    @staticmethod
    def _next_candidate(run: SelectionRun) -> None:
        del run.pending[0]
        run.check_stage = run.check_skip = run.check_contacts = 0

    @staticmethod
    def _over_limit(run: SelectionRun) -> bool:
        limit = run.request.max_sequences
        if len(run.selected_ids) <= limit:
            return False
        run.stop = ListingStop.OVER_LIMIT
        run.reason = (
            f"the selection holds more than maxSequences ({limit}) sequences: nothing was enqueued; "
            "narrow the selection or raise maxSequences"
        )
        del run.selected_ids[limit + 1 :]
        run.pending.clear()
        return True

    def _folder_members(self, run: SelectionRun, pages: SequencePages, deadline: Deadline) -> frozenset[int]:
        """The unarchived sequences in the keep list's folders, listed afresh in every invocation (listed items
        do not name their folder, and carrying them on would not fit a continuation): one call per page."""
        members: set[int] = set()
        for folder in run.request.select.excluded_folders:
            query = SequenceFilter(folder_id=folder, is_archived=False)
            skip = 0
            while True:
                try:
                    page = read_matching_page(
                        lambda params: pages.get_page(params, deadline),
                        query,
                        skip=skip,
                        page_size=MAX_PAGE_SIZE,
                        seen=members,
                    )
                except Exception as exc:
                    if not isinstance(exc, _NO_CALL_MADE):
                        run.listing_calls += 1
                    raise
                run.listing_calls += 1
                skip = page.next_skip
                if page.last:
                    break
        return frozenset(members)

    def _checks_of(self, workspace: str | None) -> ContactChecksApi:
        """The client the per-sequence checks go through: the same as the listing's."""
        if workspace is not None and self._workspace_contact_checks is not None:
            return self._workspace_contact_checks(workspace)
        if workspace is None and self._contact_checks is not None:
            return self._contact_checks
        raise ConfigurationError("per-sequence checks (contactsFinished, inactiveForDays) have no Reply client")

    def _pages_of(self, workspace: str | None) -> SequencePages:
        """The pages a request lists: its workspace's (checked to be served when the request was read), else the
        default key's."""
        if workspace is None:
            return self._pages
        if self._workspace_pages is None:
            raise UnknownWorkspaceError(f'workspace "{workspace}" is not served by this function')
        return self._workspace_pages(workspace)

    def settle(self, run: SelectionRun, deadline: Deadline) -> CleanupPlan | None:
        """Act on how the listing stopped: the plan, or None when the request must be retried (nothing sent)."""
        if run.stop is ListingStop.FINISHED:
            return self._finish(run, deadline)
        final = self._final_plan(run)
        if final is not None or self.archive_queue is None:
            return final
        try:
            body = self._seal.seal(run.continuation_document(), deadline)
        except ApiKeyError as exc:  # no key to seal it with: nothing is sent, the request is retried
            logger.warning("could not seal the continuation", extra={"error": type(exc).__name__})
            return None
        sent = self.archive_queue.send([body], deadline, delay_seconds=run.continuation_delay())
        if sent[0] is None:
            return None
        return CleanupPlan(run, PlanOutcome.CONTINUED, run.reason)

    def _final_plan(self, run: SelectionRun) -> CleanupPlan | None:
        """The plan of a listing that stopped for good before its end; None when it goes on in a continuation."""
        if run.stop is ListingStop.OVER_LIMIT:
            return CleanupPlan(run, PlanOutcome.OVER_LIMIT, run.reason)
        if run.stop is ListingStop.REFUSED:
            return CleanupPlan(run, PlanOutcome.REFUSED, run.reason)
        if run.stop is ListingStop.FAILED and not run.progressed_now and run.failures + 1 >= self._max_failures:
            reason = f"gave up after {run.failures + 1} invocations in a row without an answer: {run.reason}"
            return CleanupPlan(run, PlanOutcome.FAILED, reason)
        if self.archive_queue is None:
            reason = f"the listing did not finish ({run.reason}) and ARCHIVE_QUEUE_URL is not set to continue it on"
            return CleanupPlan(run, PlanOutcome.FAILED, reason)
        if run.part >= MAX_CONTINUATION_PARTS:
            return CleanupPlan(run, PlanOutcome.FAILED, f"the listing took {run.part} invocations and did not finish")
        return None

    def _finish(self, run: SelectionRun, deadline: Deadline) -> CleanupPlan | None:
        if run.request.dry_run:
            return CleanupPlan(run, PlanOutcome.PLANNED)
        if self.archive_queue is None:  # checked before listing; kept here so a plan never claims to enqueue
            return CleanupPlan(run, PlanOutcome.FAILED, "ARCHIVE_QUEUE_URL is not set: nothing was enqueued")
        bodies = run.archive_bodies()
        message_ids: list[str | None] = list(run.sent) if run.sent is not None else [None] * len(bodies)
        unsent = [index for index, message_id in enumerate(message_ids) if message_id is None]
        sent_now = self.archive_queue.send([bodies[index] for index in unsent], deadline) if unsent else []
        enqueued_now = 0
        for index, message_id in zip(unsent, sent_now, strict=True):
            message_ids[index] = message_id
            if message_id is not None:
                enqueued_now += len(run.selected_ids[index * IDS_PER_MESSAGE : (index + 1) * IDS_PER_MESSAGE])
        if enqueued_now and self._records is not None and run.recordable:  # before the plan is published
            self._records.remember(run.record_key, run.enqueue_record(message_ids), deadline)
        if any(message_id is None for message_id in message_ids):
            logger.warning(
                "selected IDs not all enqueued: the request is retried",
                extra={"messages": len(bodies), "not_sent": sum(message_id is None for message_id in message_ids)},
            )
            return None
        return CleanupPlan(
            run,
            PlanOutcome.ENQUEUED,
            enqueued_ids=len(run.selected_ids),
            message_ids=tuple(message_id for message_id in message_ids if message_id is not None),
            enqueued_now=enqueued_now,
        )
