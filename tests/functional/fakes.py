"""The functional tier's fakes and builders: the function's pipeline (ArchiveService) wired to in-process fakes.

Every collaborator that would leave the process (Reply over HTTP, EventBridge, SQS, DynamoDB, Secrets Manager)
is replaced by a small fake that records what it was asked and answers as the real one does at its interface.
Nothing sleeps and no clock moves unless a test moves it: the same inputs always give the same run. The wiring
follows sequence_archiver/wiring.py (build_service), with the fakes in place of the AWS and HTTP objects.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import jsonschema
from pydantic import SecretStr

from local.stand_ins.lambda_context import LocalLambdaContext
from sequence_archiver.archiving.archiver import ArchiveMode, SequenceArchiver
from sequence_archiver.aws.idempotency import Claim
from sequence_archiver.aws.results_publisher import stamped
from sequence_archiver.core.continuations import ContinuationSeal
from sequence_archiver.core.exceptions import (
    ApiKeyUnavailableError,
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyServerError,
    ReplyThrottledError,
    ReplyUnconfirmedError,
)
from sequence_archiver.core.outcomes import SequenceSummary
from sequence_archiver.core.reply_answers import ApiCall, BulkArchiveResponse, BulkItemFailure, Problem, ReplyResponse
from sequence_archiver.observability import MetricsRecorder
from sequence_archiver.pipeline.effects.apply import Effects
from sequence_archiver.pipeline.selections import Selections
from sequence_archiver.pipeline.service import ArchiveService
from sequence_archiver.pipeline.work import Work
from sequence_archiver.reply.client import Timeouts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sequence_archiver.archiving.cleanup import CleanupPlan
    from sequence_archiver.aws.retry_timing import Continuation, Postponement
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.core.request_report import RequestReport

ROOT = Path(__file__).resolve().parents[2]
RESULTS_SCHEMA = json.loads((ROOT / "schemas" / "sequence-archive-results.json").read_text())
TEST_API_KEY = "functional-test-reply-api-key"
OTHER_API_KEY = "someone-elses-key"
STANDARD_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reply-sequence-archiver-requests"
FIFO_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reply-sequence-archiver-requests.fifo"
MAX_RECEIVE_COUNT = 4  # the queue's redrive policy in these tests (SQS_MAX_RECEIVE_COUNT)
BUDGET_WAIT_SECONDS = 40.0  # how long the fake rate budget says it needs to free up
THROTTLE_RETRY_AFTER_SECONDS = 30.0  # Retry-After of the fake Reply's 429
MINIMUM_CALL_SECONDS = Timeouts().minimum_call_seconds  # the real client starts no call with less time left


# ---------------------------------------------------------------- time


class FakeClock:
    """Stands in for time.monotonic: a clock that only moves when a test moves it."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds

    def hang_until(self, deadline: Deadline | None) -> None:
        """A call that never answers, bounded by its deadline: it returns (failing) when the deadline is up."""
        assert deadline is not None, "a call that can hang was made without a deadline"
        self.now = max(self.now, deadline.expires_at)


# ---------------------------------------------------------------- Reply


class Answer(Enum):
    """What the fake Reply answers one archive call for an ID (after the real client's own retries)."""

    ARCHIVE = "archive"  # 200 with the archived Sequence; 409 sequenceAction.archived once it is archived
    UNAVAILABLE = "unavailable"  # 503 on every attempt: the client gives up with ReplyServerError (a poison ID)
    NOT_ARCHIVED = "not_archived"  # 200 whose body says isArchived false: the client raises ReplyUnconfirmedError
    RUNNING = "running"  # 409 sequenceAction.invalidState: an active sequence that must be paused first
    THROTTLED = "throttled"  # 429 with Retry-After: the client gives up with ReplyThrottledError
    NOT_FOUND = "not_found"  # 404 sequenceAction.notFound
    FORBIDDEN = "forbidden"  # 403 sequenceAction.forbidden: the key's user may not archive it
    SALES_AGENT = "sales_agent"  # 409 sequenceAction.salesAgentNotAllowed: a sales agent's sequence
    TEAM_MEMBER_GONE = "team_member_gone"  # 400 sequenceAction.teamMemberNotFound: its owner left the team


class FakeReply:
    """Stands in for ReplyClient (the SequenceArchiveApi the archiver calls): Reply's answers per ID, scripted.

    Each ID answers ARCHIVE unless scripted otherwise; a script's answers are given in turn, its last one for
    every later call. It raises what the real client raises once its own retries are over (ReplyServerError
    for a 503, ReplyUnconfirmedError for a 200 that does not confirm the archive...), and, with a `budget`,
    RateBudgetExhaustedError without making the call once that many calls were made, as the client does when
    its pacing would have to wait past the invocation's end, and DeadlineExceededError without making the call
    when the deadline leaves less than the client's minimum call time. Each call made is reported to
    `on_api_call` (the metrics' ReplyApiCalls), as the client reports each HTTP attempt (one attempt per call:
    the client's own retries are not modelled).
    """

    def __init__(self, on_api_call: Callable[[ApiCall], None] | None = None) -> None:
        self._on_api_call = on_api_call
        self.archived: set[int] = set()  # Reply's state: the sequences archived
        self.paused: set[int] = set()
        self.calls: Counter[int] = Counter()  # archive calls made that named the ID (single or bulk)
        self.archives: Counter[int] = Counter()  # calls that archived the ID (Reply's state changed)
        self.archive_order: list[int] = []  # IDs in the order Reply archived them
        self.pauses: Counter[int] = Counter()
        self.bulk_calls: list[tuple[int, ...]] = []
        self.budget: int | None = None  # calls left before RateBudgetExhaustedError; None: no limit
        self.budget_refusals = 0  # calls refused for the budget (never made)
        self.key_unreadable = False  # the API key's secret cannot be read: no call can be made
        self._bulk_refusals: deque[BulkArchiveResponse] = deque()  # whole-call answers for the next bulk calls
        self._bulk_refused_always: BulkArchiveResponse | None = None
        self._scripts: dict[int, deque[Answer]] = {}

    def script(self, sequence_id: int, *answers: Answer) -> None:
        """Reply answers these, in turn, to the ID's archive calls; the last one from then on."""
        self._scripts[sequence_id] = deque(answers)

    def refuse_bulk(self, status: int, code: str, *, times: int | None = None) -> None:
        """The bulk endpoint refuses whole calls with this status and problem code, archiving nothing: the next
        `times` calls, or every call from now on (None)."""
        refusal = BulkArchiveResponse(status, problem=Problem(title="Refused", detail="Refused.", code=code))
        if times is None:
            self._bulk_refused_always = refusal
        else:
            self._bulk_refusals.extend([refusal] * times)

    def poison(self, *sequence_ids: int) -> None:
        """These IDs always fail with a 503."""
        for sequence_id in sequence_ids:
            self.script(sequence_id, Answer.UNAVAILABLE)

    # ------------------------------------------------------------ SequenceArchiveApi

    def release_unused_budget(self, deadline: Deadline) -> None:
        """No rate budget here."""

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """POST /v3/sequences/{id}/archive."""
        self._spend(deadline)
        self.calls[sequence_id] += 1
        answer = self._answer(sequence_id, consume=True)
        self._report("archive_sequence", answer)
        if answer is Answer.UNAVAILABLE:
            raise ReplyServerError("Reply answered 503", http_status=503)
        if answer is Answer.THROTTLED:
            raise ReplyThrottledError(
                "Reply rate limit exceeded (429)", http_status=429, retry_after_seconds=THROTTLE_RETRY_AFTER_SECONDS
            )
        if answer is Answer.NOT_ARCHIVED:
            response = ReplyResponse(
                200,
                sequence=SequenceSummary(_name(sequence_id), "active", is_archived=False),
                unconfirmed="Reply answered 200 to the archive saying the sequence is not archived (isArchived false)",
            )
            raise ReplyUnconfirmedError(response.unconfirmed or "", answer=response)
        refusal = SINGLE_REFUSALS.get(answer)
        if refusal is not None:
            return refusal
        if sequence_id in self.archived:
            return ReplyResponse(
                409,
                problem=Problem(
                    title="Conflict", detail="Sequence is already archived", code="sequenceAction.archived"
                ),
            )
        self._archive(sequence_id)
        status = "paused" if sequence_id in self.paused else "active"
        return ReplyResponse(200, sequence=SequenceSummary(_name(sequence_id), status, is_archived=True))

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        """POST /v3/sequences/archive: a 503 or 429 for one ID fails the whole call; else 200 with the failed items."""
        self._spend(deadline)
        self.bulk_calls.append(tuple(sequence_ids))
        for sequence_id in sequence_ids:
            self.calls[sequence_id] += 1
        refusal = self._bulk_refusals.popleft() if self._bulk_refusals else self._bulk_refused_always
        if refusal is not None:
            self._report("bulk_archive", status=refusal.http_status)
            return refusal
        answers = {sequence_id: self._answer(sequence_id, consume=False) for sequence_id in sequence_ids}
        self._report("bulk_archive", *answers.values())
        if Answer.UNAVAILABLE in answers.values():
            raise ReplyServerError("Reply answered 503", http_status=503)
        if Answer.THROTTLED in answers.values():
            raise ReplyThrottledError(
                "Reply rate limit exceeded (429)", http_status=429, retry_after_seconds=THROTTLE_RETRY_AFTER_SECONDS
            )
        failures: dict[int, BulkItemFailure] = {}
        for sequence_id in sequence_ids:
            answer = self._answer(sequence_id, consume=True)
            if answer is Answer.NOT_FOUND:
                failures[sequence_id] = BulkItemFailure("notFound")
            elif answer is Answer.FORBIDDEN:
                failures[sequence_id] = BulkItemFailure("forbidden", FORBIDDEN_DETAIL)
            elif answer is Answer.SALES_AGENT:
                failures[sequence_id] = BulkItemFailure("salesAgentNotAllowed", SALES_AGENT_DETAIL)
            elif answer is Answer.TEAM_MEMBER_GONE:
                failures[sequence_id] = BulkItemFailure("teamMemberNotFound", "Team member is not found.")
            elif answer is Answer.RUNNING:
                failures[sequence_id] = BulkItemFailure("invalidState", "Sequence is active. Pause it first")
            elif sequence_id in self.archived:
                failures[sequence_id] = BulkItemFailure("archived")
            elif answer is Answer.ARCHIVE:
                self._archive(sequence_id)
        if Answer.NOT_ARCHIVED in answers.values():  # the answer leaves IDs out it did not archive
            response = BulkArchiveResponse(200, failures, unconfirmed="Reply answered 200 with an empty body")
            raise ReplyUnconfirmedError(response.unconfirmed or "", answer=response)
        return BulkArchiveResponse(200, failures)

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        """POST /v3/sequences/{id}/pause: always 200 (pausing is idempotent in Reply)."""
        self._spend(deadline)
        self._report("pause_sequence", Answer.ARCHIVE)
        self.pauses[sequence_id] += 1
        self.paused.add(sequence_id)
        return ReplyResponse(200, sequence=SequenceSummary(_name(sequence_id), "paused", is_archived=False))

    # ------------------------------------------------------------ internals

    def _spend(self, deadline: Deadline | None) -> None:
        """The client's checks before a call: the API key, the rate budget, then the time left; then the call
        is made."""
        if self.key_unreadable:
            raise ApiKeyUnavailableError("could not read the API key secret (ResourceNotFoundException)")
        if self.budget is not None and self.budget <= 0:
            self.budget_refusals += 1
            raise RateBudgetExhaustedError(
                f"the rate budget frees up in {BUDGET_WAIT_SECONDS:.1f}s, after this invocation ends",
                retry_after_seconds=BUDGET_WAIT_SECONDS,
            )
        if deadline is not None and not deadline.allows(MINIMUM_CALL_SECONDS):
            raise DeadlineExceededError("not enough time left in this invocation to call Reply")
        if self.budget is not None:
            self.budget -= 1

    def _report(self, operation: str, *answers: Answer, status: int | None = None) -> None:
        """One HTTP attempt made, with the status it got, to the metrics."""
        if self._on_api_call is None:
            return
        if status is None:
            status = 503 if Answer.UNAVAILABLE in answers else 429 if Answer.THROTTLED in answers else 200
        self._on_api_call(ApiCall(operation, status, 1.0))

    def _answer(self, sequence_id: int, *, consume: bool) -> Answer:
        script = self._scripts.get(sequence_id)
        if not script:
            return Answer.ARCHIVE
        if consume and len(script) > 1:
            return script.popleft()
        return script[0]

    def _archive(self, sequence_id: int) -> None:
        self.archived.add(sequence_id)
        self.archives[sequence_id] += 1
        self.archive_order.append(sequence_id)


FORBIDDEN_DETAIL = "You are not allowed to archive this sequence"
SALES_AGENT_DETAIL = "A sales agent's sequence cannot be archived"
# Reply's final refusals of a single archive call, by the answer scripted.
SINGLE_REFUSALS = {
    Answer.NOT_FOUND: ReplyResponse(404, problem=Problem(title="Not Found", code="sequenceAction.notFound")),
    Answer.FORBIDDEN: ReplyResponse(
        403, problem=Problem(title="Forbidden", detail=FORBIDDEN_DETAIL, code="sequenceAction.forbidden")
    ),
    Answer.TEAM_MEMBER_GONE: ReplyResponse(
        400,
        problem=Problem(
            title="Bad Request", detail="Team member is not found.", code="sequenceAction.teamMemberNotFound"
        ),
    ),
    Answer.SALES_AGENT: ReplyResponse(
        409, problem=Problem(title="Conflict", detail=SALES_AGENT_DETAIL, code="sequenceAction.salesAgentNotAllowed")
    ),
    Answer.RUNNING: ReplyResponse(
        409,
        problem=Problem(
            title="Conflict", detail="Sequence is active. Pause it first", code="sequenceAction.invalidState"
        ),
    ),
}


def _name(sequence_id: int) -> str:
    return f"Sequence {sequence_id}"


# ---------------------------------------------------------------- metrics


class FakeMetrics:
    """Stands in for Powertools Metrics (EMF): keeps every value added, by metric name."""

    def __init__(self) -> None:
        self.values: defaultdict[str, list[float]] = defaultdict(list)

    def add_metric(self, name: str, unit: object, value: float) -> None:
        """Record one value of a metric."""
        del unit
        self.values[name].append(value)

    def total(self, name: str) -> float:
        """The sum of every value of the metric (0 when never added)."""
        return sum(self.values.get(name, []))


# ---------------------------------------------------------------- EventBridge


class FakeResultsPublisher:
    """Stands in for ResultsPublisher (EventBridge PutEvents): keeps the details it published, each checked
    against the published results schema; told to, it fails whole calls (an outage), publishing nothing."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.events: list[dict[str, Any]] = []  # the results-event details published, in order
        self.plans: list[dict[str, Any]] = []
        self.calls = 0
        self.failed_calls = 0
        self.fail_next = 0  # calls to fail from now on, every report of them unpublished
        self.hangs = False  # PutEvents never answers: each call takes all the time it is given, and fails
        self._clock = clock

    def publish(
        self, reports: Iterable[RequestReport], deadline: Deadline | None = None, *, plans: Iterable[CleanupPlan] = ()
    ) -> set[str]:
        """Publish every report; the request IDs that were not published."""
        reports, plans = list(reports), list(plans)
        self.calls += 1
        if self.hangs and self._clock is not None:
            self._clock.hang_until(deadline)
        if self.fail_next > 0 or self.hangs:
            self.fail_next = max(0, self.fail_next - 1)
            self.failed_calls += 1
            return {report.request_id for report in reports} | {plan.request_id for plan in plans}
        for report in reports:
            detail = stamped(report.detail())
            jsonschema.validate(detail, RESULTS_SCHEMA)
            self.events.append(detail)
        self.plans.extend(stamped(plan.detail()) for plan in plans)
        return set()

    def of(self, request_id: str) -> list[dict[str, Any]]:
        """The details published under this request ID, in order."""
        return [detail for detail in self.events if detail["requestId"] == request_id]

    def only(self, request_id: str) -> dict[str, Any]:
        """The one detail published under this request ID (asserts there is exactly one)."""
        details = self.of(request_id)
        assert len(details) == 1, f"{len(details)} results events for {request_id}: {details}"
        return details[0]


def outcomes(detail: dict[str, Any]) -> dict[int | None, str]:
    """A results detail's outcome per sequence ID."""
    return {result["sequenceId"]: result["outcome"] for result in detail["results"]}


# ---------------------------------------------------------------- SQS


@dataclass(frozen=True)
class SentContinuation:
    """One continuation message the function sent: to which queue, for which record, what it says, when."""

    event_source_arn: str
    key: str
    body: str
    delay_seconds: float

    @property
    def document(self) -> dict[str, Any]:
        """The body as JSON (still sealed)."""
        document: dict[str, Any] = json.loads(self.body)
        return document

    @property
    def marker(self) -> dict[str, Any]:
        """The body's `continuation` object."""
        marker: dict[str, Any] = self.document["continuation"]
        return marker


class FakeContinuationQueue:
    """Stands in for ContinuationQueue (SendMessage to the record's own queue): keeps every continuation sent;
    told to, it refuses the next calls (nothing sent)."""

    def __init__(self) -> None:
        self.sent: list[SentContinuation] = []
        self.fail_next = 0

    def send(self, continuations: Sequence[Continuation], deadline: Deadline | None = None) -> set[str]:
        """Send every continuation; the keys of those sent."""
        if self.fail_next > 0:
            self.fail_next -= 1
            return set()
        for item in continuations:
            self.sent.append(SentContinuation(item.event_source_arn, item.key, item.body, item.delay_seconds))
        return {item.key for item in continuations}


@dataclass(frozen=True)
class ParkedMessage:
    """One message the function put on the dead-letter queue itself."""

    body: str
    reason: str
    message_id: str
    message_group_id: str | None


class FakeDeadLetterQueue:
    """Stands in for DeadLetterQueue (SendMessage to the DLQ): keeps every message parked; with `unavailable`,
    every SendMessage fails (nothing parked), as when SQS cannot be reached."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.parked: list[ParkedMessage] = []
        self.unavailable = False
        self.hangs = False  # SendMessage never answers: each call takes all the time it is given, and fails
        self.refused = 0  # park calls that failed
        self._clock = clock

    def park(
        self,
        *,
        body: str,
        reason: str,
        message_id: str,
        deadline: Deadline | None = None,
        message_group_id: str | None = None,
    ) -> bool:
        """Park the message; True when the DLQ holds it."""
        if self.hangs and self._clock is not None:
            self._clock.hang_until(deadline)
        if self.unavailable or self.hangs:
            self.refused += 1
            return False
        self.parked.append(ParkedMessage(body, reason, message_id, message_group_id))
        return True


class FakeRecordVisibility:
    """Stands in for RecordVisibility (ChangeMessageVisibilityBatch): keeps every postponement asked for."""

    def __init__(self) -> None:
        self.postponed: list[Postponement] = []

    def postpone(self, postponements: Sequence[Postponement], deadline: Deadline | None = None) -> int:
        """Postpone every record; how many were."""
        self.postponed.extend(postponements)
        return len(postponements)


# ---------------------------------------------------------------- DynamoDB (idempotency)


@dataclass
class _Record:
    status: str  # "in_progress" or "completed"
    state: dict[str, Any] = field(default_factory=dict)


class FakeIdempotency:
    """Stands in for RequestIdempotency (Powertools idempotency on DynamoDB): the table as a dict; with
    `unavailable` every call fails as a table that cannot be reached does (claims UNAVAILABLE, nothing kept)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.records: dict[str, _Record] = {}
        self.unavailable = False
        self.hangs = False  # the table never answers: each call takes all the time it is given, and fails
        self.claims: list[tuple[str, Claim]] = []
        self.contexts: list[LambdaContext] = []
        self._clock = clock

    def _reachable(self, deadline: Deadline | None) -> bool:
        """False when the table cannot be reached (a hanging one only after the call's time is up)."""
        if self.hangs and self._clock is not None:
            self._clock.hang_until(deadline)
        return not (self.unavailable or self.hangs)

    def completed_before(self, request_id: str) -> None:
        """An earlier delivery of the request finished it."""
        self.records[request_id] = _Record("completed", {"complete": True})

    def held_elsewhere(self, request_id: str) -> None:
        """Another invocation is processing the request right now."""
        self.records[request_id] = _Record("in_progress")

    def start_invocation(self, context: LambdaContext) -> None:
        """Claims from now on expire with this invocation."""
        self.contexts.append(context)

    def claim(self, request_id: str, deadline: Deadline | None = None) -> Claim:
        """Mark the request in progress, unless it is done or being done."""
        if not self._reachable(deadline):
            claim = Claim.UNAVAILABLE
        elif request_id not in self.records:
            self.records[request_id] = _Record("in_progress")
            claim = Claim.NEW
        else:
            claim = Claim.COMPLETED if self.records[request_id].status == "completed" else Claim.IN_PROGRESS
        self.claims.append((request_id, claim))
        return claim

    def complete(self, request_id: str, summary: dict[str, Any], deadline: Deadline | None = None) -> None:
        """Record the request as done."""
        if self._reachable(deadline):
            self.records[request_id] = _Record("completed", dict(summary))

    def release(self, request_id: str, reason: str, deadline: Deadline | None = None) -> None:
        """Drop the claim so the retry is processed."""
        if self._reachable(deadline):
            self.records.pop(request_id, None)

    def recall(self, key: str, deadline: Deadline | None = None) -> dict[str, Any] | None:
        """The state remembered under `key`, if any."""
        record = self.records.get(key) if self._reachable(deadline) else None
        return dict(record.state) if record is not None and record.status == "completed" else None

    def remember(self, key: str, state: dict[str, Any], deadline: Deadline | None = None) -> bool:
        """Remember an effect done; False when the table cannot be written."""
        if not self._reachable(deadline):
            return False
        self.records[key] = _Record("completed", dict(state))
        return True


# ---------------------------------------------------------------- Secrets Manager (continuation keys)


class FakeKeys:
    """Stands in for SecretsManagerApiKey as the ContinuationKeys of the seal: a fixed key, no earlier version."""

    def __init__(self, current: str = TEST_API_KEY) -> None:
        self.current = current

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        """The secret's current value."""
        return SecretStr(self.current)

    def earlier_api_keys(self, *, deadline: Deadline | None = None) -> tuple[SecretStr, ...]:
        """No rotation in progress: no other value signed before."""
        return ()


# ---------------------------------------------------------------- SQS events


class SqsQueue:
    """Builds SQS records as Lambda's poller delivers them from one queue (standard, or FIFO by its ARN).

    Message IDs are deterministic (a UUID made from the queue and a counter), so runs repeat exactly.
    """

    def __init__(self, arn: str = STANDARD_QUEUE_ARN) -> None:
        self.arn = arn
        self._sent = 0

    @property
    def fifo(self) -> bool:
        """A FIFO queue (its ARN ends in .fifo)."""
        return self.arn.endswith(".fifo")

    def record(self, body: str, *, receive_count: int = 1, group: str | None = None) -> dict[str, Any]:
        """A record of a new message with this body (a FIFO queue's needs its message group)."""
        if self.fifo and group is None:
            raise ValueError("a FIFO record needs a message group")
        self._sent += 1
        message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.arn}/{self._sent}"))
        attributes = {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(1_732_870_805_000 + self._sent),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(1_732_870_805_037 + self._sent),
        }
        if group is not None:
            attributes |= {
                "MessageGroupId": group,
                "MessageDeduplicationId": message_id,
                "SequenceNumber": str(18_849_496_460_467_696_128 + self._sent),
            }
        return {
            "messageId": message_id,
            "receiptHandle": f"AQEB{uuid.uuid5(uuid.NAMESPACE_OID, message_id).hex}/1",
            "body": body,
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": "0" * 32,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": "us-east-1",
        }

    def request(
        self, *sequence_ids: int, pause_first: bool = False, group: str | None = None, receive_count: int = 1
    ) -> dict[str, Any]:
        """A record of an archive request `{"sequenceIds": [...]}`."""
        document: dict[str, Any] = {"sequenceIds": list(sequence_ids)}
        if pause_first:
            document["pauseFirst"] = True
        return self.record(json.dumps(document), group=group, receive_count=receive_count)

    def continuation(self, sent: SentContinuation) -> dict[str, Any]:
        """The record of a continuation the function sent to this queue (a new message)."""
        assert sent.event_source_arn == self.arn
        return self.record(sent.body)


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    """The event of one batch of records."""
    return {"Records": list(records)}


def redelivered(event: dict[str, Any]) -> dict[str, Any]:
    """The same batch delivered again: each record's receive count one higher, with a new receipt handle."""
    records = []
    for record in event["Records"]:
        count = int(record["attributes"]["ApproximateReceiveCount"]) + 1
        handle = record["receiptHandle"].rsplit("/", 1)[0] + f"/{count}"
        attributes = {**record["attributes"], "ApproximateReceiveCount": str(count)}
        records.append({**record, "receiptHandle": handle, "attributes": attributes})
    return {"Records": records}


def failed_items(response: dict[str, Any]) -> list[str]:
    """The message IDs a partial batch response names for a retry."""
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


@dataclass(frozen=True)
class Batch:
    """One batch the event source handed the function: its records' message IDs, the ones it asked back, and
    the bulk calls Reply got while the function handled it."""

    message_ids: tuple[str, ...]
    failed: tuple[str, ...]
    bulk_calls: tuple[tuple[int, ...], ...]


@dataclass
class EventSource:
    """Lambda's event source mapping on one queue, with the queue's redrive policy, in-process.

    It hands the function batches of the visible messages (at most `batch_size`), deletes what the partial
    batch response acknowledges, makes the records it names visible again one receive later (in their order,
    ahead of newer messages, as a FIFO group keeps them), and moves a record asked back at its
    `max_receive_count`th receive to `redriven` (SQS's redrive to the DLQ) instead. Continuations the function
    sent to this queue become new messages. Delays and visibility timeouts are not modelled: what comes back
    comes back in the next batch.
    """

    queue: SqsQueue
    pipeline: Pipeline
    max_receive_count: int = MAX_RECEIVE_COUNT
    batch_size: int = 10
    visible: deque[dict[str, Any]] = field(default_factory=deque)
    redriven: list[dict[str, Any]] = field(default_factory=list)  # moved to the DLQ by the redrive policy
    batches: list[Batch] = field(default_factory=list)
    _continuations_seen: int = 0

    def send(self, *records: dict[str, Any]) -> None:
        """Messages on the queue, in this order."""
        self.visible.extend(records)

    def drain(self, max_batches: int = 50) -> None:
        """Deliver batches until the queue is empty (asserts it empties within `max_batches`)."""
        self._continuations_seen = len(self.pipeline.continuations.sent)
        for _ in range(max_batches):
            if not self.visible:
                return
            records = [self.visible.popleft() for _ in range(min(self.batch_size, len(self.visible)))]
            bulk_calls_before = len(self.pipeline.reply.bulk_calls)
            response = self.pipeline.handle(sqs_event(*records))
            failed = failed_items(response)
            message_ids = tuple(str(record["messageId"]) for record in records)
            bulk_calls = tuple(self.pipeline.reply.bulk_calls[bulk_calls_before:])
            self.batches.append(Batch(message_ids, tuple(failed), bulk_calls))
            again = []
            for record in records:
                if record["messageId"] not in failed:
                    continue
                if int(record["attributes"]["ApproximateReceiveCount"]) >= self.max_receive_count:
                    self.redriven.append(record)
                else:
                    again.extend(redelivered(sqs_event(record))["Records"])
            self.visible.extendleft(reversed(again))
            sent = self.pipeline.continuations.sent[self._continuations_seen :]
            self._continuations_seen = len(self.pipeline.continuations.sent)
            ours = [item for item in sent if item.event_source_arn == self.queue.arn]
            self.visible.extend(self.queue.continuation(item) for item in ours)
        raise AssertionError(f"the queue still held {len(self.visible)} messages after {max_batches} batches")


# ---------------------------------------------------------------- the pipeline


@dataclass
class Pipeline:
    """An ArchiveService wired as build_service wires it, with every fake it talks to at hand."""

    service: ArchiveService
    reply: FakeReply
    publisher: FakeResultsPublisher
    continuations: FakeContinuationQueue
    dead_letters: FakeDeadLetterQueue
    visibility: FakeRecordVisibility
    idempotency: FakeIdempotency | None
    metrics: FakeMetrics
    seal: ContinuationSeal
    clock: FakeClock
    timeout_seconds: float = 60.0
    invocations: int = 0

    def context(self) -> LocalLambdaContext:
        """A fresh Lambda context whose countdown runs on the fake clock."""
        self.invocations += 1
        return LocalLambdaContext(
            timeout_seconds=self.timeout_seconds,
            aws_request_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"invocation-{self.invocations}")),
            clock=self.clock,
        )

    def handle(self, event: object, context: LocalLambdaContext | None = None) -> dict[str, Any]:
        """One invocation of the function with this event."""
        return self.service.handle(event, context or self.context())


class PipelineBuilder(Protocol):
    """The `pipeline_builder` fixture: a pipeline on the test's clock, configured like the function's settings."""

    def __call__(
        self,
        *,
        mode: ArchiveMode = ArchiveMode.SINGLE,
        bulk_max_ids: int = 100,
        idempotency: bool = False,
        max_receive_count: int = MAX_RECEIVE_COUNT,
        dead_letter_queue: bool = True,
    ) -> Pipeline:
        """REPLY_ARCHIVE_MODE, REPLY_BULK_MAX_IDS, an IDEMPOTENCY_TABLE_NAME or none, SQS_MAX_RECEIVE_COUNT, a
        DEAD_LETTER_QUEUE_URL or none."""
        ...


def build_pipeline(
    clock: FakeClock,
    *,
    mode: ArchiveMode = ArchiveMode.SINGLE,
    bulk_max_ids: int = 100,
    idempotency: bool = False,
    max_receive_count: int = MAX_RECEIVE_COUNT,
    dead_letter_queue: bool = True,
    deadline_safety_margin_seconds: float = 5.0,
) -> Pipeline:
    """The ArchiveService build_service would make, with fakes in place of Reply, AWS and the secret: the archive
    mode and bulk size, whether an idempotency table is configured, the queue's maxReceiveCount, whether a
    dead-letter queue URL is configured (without one the function parks nothing: `dead_letters` is still there,
    and stays empty)."""
    metrics = FakeMetrics()
    recorder = MetricsRecorder(metrics)  # type: ignore[arg-type]
    reply = FakeReply(on_api_call=recorder.record_api_call)
    publisher = FakeResultsPublisher(clock)
    continuations = FakeContinuationQueue()
    dead_letters = FakeDeadLetterQueue(clock)
    visibility = FakeRecordVisibility()
    table = FakeIdempotency(clock) if idempotency else None
    seal = ContinuationSeal(keys=FakeKeys(), on_forged=recorder.record_forged_continuation, clock=clock)
    service = ArchiveService(
        work=Work(
            archiver=SequenceArchiver(reply, mode=mode, bulk_max_ids=bulk_max_ids),
            selections=Selections(metrics=recorder),
            idempotency=table,  # type: ignore[arg-type]
            seal=seal,
        ),
        effects=Effects(
            publisher=publisher,  # type: ignore[arg-type]
            metrics=recorder,
            dead_letters=dead_letters if dead_letter_queue else None,  # type: ignore[arg-type]
            visibility=visibility,  # type: ignore[arg-type]
            continuations=continuations,  # type: ignore[arg-type]
            idempotency=table,  # type: ignore[arg-type]
            seal=seal,
        ),
        metrics=recorder,
        max_receive_count=max_receive_count,
        idempotency=table,  # type: ignore[arg-type]
        deadline_safety_margin_seconds=deadline_safety_margin_seconds,
        clock=clock,
    )
    return Pipeline(
        service=service,
        reply=reply,
        publisher=publisher,
        continuations=continuations,
        dead_letters=dead_letters,
        visibility=visibility,
        idempotency=table,
        metrics=metrics,
        seal=seal,
        clock=clock,
    )
