"""Clean-up plans read back: one plan per clean-up request, its parts joined, linked to the archiving it started.

A live plan names the SQS message IDs of the archive requests it enqueued (`enqueued.messageIds`); each of those
messages is archived as a request of that ID, so the results events of the same read say how far the plan got.
The plan's shape is schemas/sequence-archive-plan.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sequence_archiver.public import PLAN_DETAIL_TYPE, Outcome, PlanOutcome

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sequence_archiver_cli.results_report import RequestSummary

# Any other plan outcome (over_limit, refused, failed, or one this version does not know) stopped: a person reads
# the reason.
CARRIED_OUT = frozenset({PlanOutcome.PLANNED, PlanOutcome.ENQUEUED})  # every page listed; done as asked
IN_PROGRESS = frozenset({PlanOutcome.CONTINUED})  # only returned to a direct caller while the listing goes on
# The outcomes that need a person, for the IDs of any request (results_report.ATTENTION_OUTCOMES is this set).
# `unconfirmed`: Reply answered 2xx but did not say the sequence is archived; check it in Reply, or send it again.
ID_ATTENTION_OUTCOMES = frozenset(
    {Outcome.FAILED, Outcome.FORBIDDEN, Outcome.CONFLICT, Outcome.INVALID, Outcome.UNCONFIRMED}
)
_SPLIT_FIELDS = frozenset({"sequenceIds", "part", "parts"})  # what differs between the parts of one plan event


MAX_LISTED_KEYS = 16  # a plan's matchedKeys and leftOut (the schema's bound)


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """One plan-event detail (or one part of a split one), with the envelope's time when known."""

    request_id: str
    header: dict[str, Any]  # every field but the parts' share of sequenceIds and the part numbers
    sequence_ids: tuple[int, ...]
    part: int = 1
    parts: int = 1
    time: str = ""

    @property
    def attempt(self) -> str:
        """What the parts of one published plan share; a request retried and planned again differs (runAt...)."""
        return json.dumps(self.header, sort_keys=True, default=str)


def plan_event_from(item: object) -> PlanEvent | None:
    """An EventBridge envelope (`detail`) or a bare plan detail as a PlanEvent; None when it is neither."""
    if not isinstance(item, dict):
        return None
    when = ""
    if "detail" in item and ("detail-type" in item or "source" in item):
        if item.get("detail-type", PLAN_DETAIL_TYPE) != PLAN_DETAIL_TYPE:
            return None
        when = _text(item.get("time")) or ""
        item = item["detail"]
        if not isinstance(item, dict):
            return None
    request_id, outcome, enqueued, sequence_ids = (
        item.get("requestId"),
        item.get("outcome"),
        item.get("enqueued"),
        item.get("sequenceIds"),
    )
    if not (
        isinstance(request_id, str)
        and request_id
        and isinstance(outcome, str)
        and isinstance(enqueued, dict)
        and isinstance(sequence_ids, list)
    ):
        return None
    return PlanEvent(
        request_id=request_id,
        header={key: value for key, value in item.items() if key not in _SPLIT_FIELDS},
        sequence_ids=tuple(_int(value) for value in sequence_ids if _int(value) > 0),
        part=_int(item.get("part"), 1),
        parts=_int(item.get("parts"), 1),
        time=when,
    )


@dataclass(frozen=True, slots=True)
class ArchiveProgress:
    """How far the archiving of a plan's enqueued IDs got, from the results events of its messages in this read."""

    messages_reported: int  # of the plan's messages, those with a results event in this read
    counts: dict[str, int]  # IDs per outcome (an ID that needed attention counts with its latest outcome)
    not_yet_reported: int  # enqueued IDs without a result in this read: still queued, or outside the read

    @property
    def needing_attention(self) -> int:
        """IDs whose latest outcome needs a person (failed, forbidden, conflict, invalid, unconfirmed)."""
        return sum(self.counts.get(outcome, 0) for outcome in ID_ATTENTION_OUTCOMES)

    def to_json(self) -> dict[str, Any]:
        """The JSON report representation."""
        return {
            "messagesReported": self.messages_reported,
            "counts": self.counts,
            "idsNeedingAttention": self.needing_attention,
            "idsNotYetReported": self.not_yet_reported,
        }


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """One clean-up request's plan (its parts joined) and what became of the IDs it enqueued."""

    request_id: str
    header: dict[str, Any]
    sequence_ids: tuple[int, ...]
    parts_missing: int
    progress: ArchiveProgress
    time: str = ""

    @property
    def outcome(self) -> str:
        """planned, enqueued, over_limit, refused, failed (or continued)."""
        return str(self.header.get("outcome"))

    @property
    def dry_run(self) -> bool:
        """True when the plan only lists (a plan whose dryRun is missing counts as live: it may have enqueued)."""
        return self.header.get("dryRun") is True

    @property
    def trigger(self) -> str | None:
        """How the clean-up request arrived: sqs, eventbridge or direct."""
        return _text(self.header.get("trigger"))

    @property
    def workspace(self) -> str | None:
        """The Reply workspace whose key listed (and archives) the selection; None: the default key's."""
        return _text(self.header.get("workspace"))

    @property
    def reason(self) -> str | None:
        """Why the plan is not complete; None when it is."""
        return _text(self.header.get("reason"))

    @property
    def selected(self) -> int:
        """Matching sequences listed."""
        return _int(self.header.get("selected"))

    @property
    def enqueued_messages(self) -> int:
        """Archive request messages sent."""
        enqueued = self.header.get("enqueued")
        return _int(enqueued.get("messages")) if isinstance(enqueued, dict) else 0

    @property
    def enqueued_ids(self) -> int:
        """Sequence IDs in those messages."""
        return _enqueued(self.header)[0]

    @property
    def message_ids(self) -> tuple[str, ...]:
        """The SQS message IDs of those messages: the request IDs of the results events that report them."""
        return _enqueued(self.header)[1]

    @property
    def matched_keys(self) -> list[tuple[str, str]]:
        """The selection's keys as applied, with how (listFilter, listedField, perSequenceCheck); none in plans
        published before they existed."""
        keys = self.header.get("matchedKeys")
        if not isinstance(keys, list):
            return []
        return [
            (str(key.get("key")), str(key.get("appliedAs"))) for key in keys[:MAX_LISTED_KEYS] if isinstance(key, dict)
        ]

    @property
    def left_out(self) -> dict[str, int]:
        """Listed sequences each key left out."""
        counts = self.header.get("leftOut")
        if not isinstance(counts, dict):
            return {}
        return {str(key): _int(value) for key, value in list(counts.items())[:MAX_LISTED_KEYS]}

    @property
    def reply_calls(self) -> dict[str, int] | None:
        """Reply calls the request spent (listing, checks, total); None in plans without them."""
        calls = self.header.get("replyCalls")
        return (
            {key: _int(calls.get(key)) for key in ("listing", "checks", "total")} if isinstance(calls, dict) else None
        )

    @property
    def live_run_estimate(self) -> dict[str, int] | None:
        """What archiving the selection will cost in Reply calls; None in plans without it."""
        estimate = self.header.get("liveRunEstimate")
        if not isinstance(estimate, dict):
            return None
        names = ("sequences", "bulkArchiveCalls", "singleArchiveCalls", "pauseCalls", "snapshotCallsAtLeast")
        return {name: _int(estimate.get(name)) for name in names}

    @property
    def stopped(self) -> bool:
        """True when the plan itself needs a person: it stopped (over_limit, refused, failed), or is unknown."""
        return self.outcome not in CARRIED_OUT | IN_PROGRESS

    @property
    def needs_attention(self) -> bool:
        """True when the plan stopped, parts of its event are missing, or any ID it enqueued needs a person."""
        return self.stopped or self.parts_missing > 0 or self.progress.needing_attention > 0

    def to_json(self) -> dict[str, Any]:
        """The JSON report representation: the plan's fields, its IDs joined, and its archiving so far."""
        return {
            **self.header,
            "requestId": self.request_id,
            "sequenceIds": list(self.sequence_ids),
            "partsMissing": self.parts_missing,
            "needsAttention": self.needs_attention,
            "archive": self.progress.to_json(),
        }


def summarise_plans(
    events: Iterable[PlanEvent],
    requests: Sequence[RequestSummary],
    latest_outcomes: Mapping[tuple[str | None, int], str],
) -> list[PlanSummary]:
    """One summary per clean-up request (in the order first seen), linked to the requests of its messages.

    `latest_outcomes` is each (workspace, sequence ID)'s latest outcome over every request read: an ID of the plan that
    needed attention and was then archived by a later request counts as archived, as in the report's attention.
    """
    by_request: dict[str, list[PlanEvent]] = {}
    for event in events:
        by_request.setdefault(event.request_id, []).append(event)
    requests_by_id = {request.request_id: request for request in requests}
    summaries = []
    for request_id, found in by_request.items():
        # A request retried after its plan was published plans again (another runAt, other messages): the plan
        # published last is the one whose messages were enqueued last. Its parts are joined; a part seen twice
        # (EventBridge delivers at least once) counts once.
        ordered = sorted(found, key=lambda event: event.time)  # stable: input order among equal times
        latest = [event for event in ordered if event.attempt == ordered[-1].attempt]
        parts = {event.part: event for event in latest}
        header = latest[-1].header
        summaries.append(
            PlanSummary(
                request_id=request_id,
                header=header,
                sequence_ids=tuple(
                    sequence_id for number in sorted(parts) for sequence_id in parts[number].sequence_ids
                ),
                parts_missing=max(0, max(event.parts for event in latest) - len(parts)),
                progress=_progress(header, requests_by_id, latest_outcomes),
                time=latest[-1].time,
            )
        )
    return summaries


def _enqueued(header: Mapping[str, Any]) -> tuple[int, tuple[str, ...]]:
    """The IDs a plan enqueued, and the SQS message IDs of the messages that carried them."""
    enqueued = header.get("enqueued")
    if not isinstance(enqueued, dict):
        return 0, ()
    found = enqueued.get("messageIds")
    message_ids = tuple(value for value in found if isinstance(value, str)) if isinstance(found, list) else ()
    return _int(enqueued.get("ids")), message_ids


def _progress(
    header: Mapping[str, Any],
    requests_by_id: Mapping[str, RequestSummary],
    latest_outcomes: Mapping[tuple[str | None, int], str],
) -> ArchiveProgress:
    """What the results events of the plan's messages say about its IDs."""
    enqueued_ids, message_ids = _enqueued(header)
    linked = [requests_by_id[message_id] for message_id in message_ids if message_id in requests_by_id]
    counts = {outcome.value: 0 for outcome in Outcome}
    reported: set[int] = set()
    for request in linked:
        for result in request.results:
            sequence_id, outcome = _int(result.get("sequenceId")), str(result.get("outcome"))
            if sequence_id <= 0 or sequence_id in reported:
                continue
            reported.add(sequence_id)
            if outcome in ID_ATTENTION_OUTCOMES:
                # a later request of the same workspace may have settled it
                outcome = latest_outcomes.get((request.workspace, sequence_id), outcome)
            counts[outcome] = counts.get(outcome, 0) + 1
    return ArchiveProgress(
        messages_reported=len(linked), counts=counts, not_yet_reported=max(0, enqueued_ids - len(reported))
    )
