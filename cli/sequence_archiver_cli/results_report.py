"""Results events read back: totals per outcome, complete and incomplete requests, the IDs that need attention.

An ID sent in several requests (a conflict, then the same ID again after pausing it) has a result in each: the
totals count each ID once, by its latest outcome, and the attempts (one result per ID per request) beside them.
"Latest" is the result of the results event with the latest time (the EventBridge envelope's `time`); among
events with the same time, or bare details that have none, the one read later (log group: log time, then event
ID; queue: order received; file: line order); within one event, the later result.

Plan events of clean-up requests read in the same go are joined to the results of the archiving they started
(sequence_archiver_cli.plan_report).

A deployment serving several Reply workspaces names a request's workspace in its events (`workspace`; none for
the default key's): the same sequence ID in two workspaces is two sequences, so "latest" is per workspace and ID.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sequence_archiver.public import PLAN_DETAIL_TYPE, RESULTS_DETAIL_TYPE, Outcome
from sequence_archiver_cli.errors import UsageError
from sequence_archiver_cli.plan_report import ID_ATTENTION_OUTCOMES, plan_event_from, summarise_plans

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sequence_archiver_cli.plan_report import PlanEvent, PlanSummary

ATTENTION_OUTCOMES = ID_ATTENTION_OUTCOMES  # failed, forbidden, conflict, invalid, unconfirmed: as for plans' IDs
OUTCOMES = tuple(outcome.value for outcome in Outcome)
_UNKNOWN_ORDER = (float("-inf"), -1)  # a result whose event's order is not known comes before every other


@dataclass(frozen=True, slots=True)
class ResultsEvent:
    """One results-event detail (or one part of a split one), with the envelope's time when known."""

    request_id: str
    trigger: str | None
    complete: bool
    counts: dict[str, int]
    results: tuple[dict[str, Any], ...]
    part: int = 1
    parts: int = 1
    time: str = ""
    continuation: int | None = None  # a request finished over several deliveries: which one this is
    received: int = 0  # its place among the events read (build_report numbers them): the tie-break for "latest"
    workspace: str | None = None  # the Reply workspace the request named; None: the default key's

    @property
    def order(self) -> tuple[float, int]:
        """Where it stands in time: its envelope time (none: before every timed event), then the order read."""
        return (_epoch_seconds(self.time), self.received)


def _epoch_seconds(text: str) -> float:
    """An envelope's ISO 8601 `time` as epoch seconds; -inf when there is none or it does not parse."""
    if not text:
        return float("-inf")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return float("-inf")
    return moment.timestamp() if moment.tzinfo is not None else float("-inf")


def results_event_from(item: object) -> ResultsEvent | None:
    """An EventBridge envelope (`detail`) or a bare detail as a ResultsEvent; None when it is neither."""
    if not isinstance(item, dict):
        return None
    when = ""
    if "detail" in item and ("detail-type" in item or "source" in item):
        if item.get("detail-type", RESULTS_DETAIL_TYPE) != RESULTS_DETAIL_TYPE:
            return None
        envelope_time = item.get("time")
        when = envelope_time if isinstance(envelope_time, str) else ""
        item = item["detail"]
        if not isinstance(item, dict):
            return None
    request_id, results, counts = item.get("requestId"), item.get("results"), item.get("counts")
    if not isinstance(request_id, str) or not isinstance(results, list) or not isinstance(counts, dict):
        return None
    part, parts, continuation = item.get("part", 1), item.get("parts", 1), item.get("continuation")
    return ResultsEvent(
        request_id=request_id,
        trigger=item.get("trigger") if isinstance(item.get("trigger"), str) else None,
        complete=item.get("complete") is True,
        counts={str(k): v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)},
        results=tuple(result for result in results if isinstance(result, dict)),
        part=part if isinstance(part, int) else 1,
        parts=parts if isinstance(parts, int) else 1,
        time=when,
        continuation=continuation if isinstance(continuation, int) and not isinstance(continuation, bool) else None,
        workspace=item.get("workspace") if isinstance(item.get("workspace"), str) else None,
    )


def is_other_event(item: object) -> bool:
    """True for an EventBridge envelope of a detail type the report does not read (neither results nor plan)."""
    return (
        isinstance(item, dict)
        and "detail" in item
        and "detail-type" in item
        and item.get("detail-type") not in (RESULTS_DETAIL_TYPE, PLAN_DETAIL_TYPE)
    )


@dataclass
class EventsRead:
    """The events among what a source gave: results, plans, and how many items were neither."""

    results: list[ResultsEvent] = field(default_factory=list)
    plans: list[PlanEvent] = field(default_factory=list)
    unrecognised: int = 0  # items that are not readable events (counted, and they need attention)
    other: int = 0  # events of the function's source with another detail type (skipped)

    def add(self, item: object, *, skip_other: bool = False) -> bool:
        """Sort one item; True when it was a results or plan event."""
        if skip_other and is_other_event(item):
            self.other += 1
            return False
        results = results_event_from(item)
        if results is not None:
            self.results.append(results)
            return True
        plan = plan_event_from(item)
        if plan is not None:
            self.plans.append(plan)
            return True
        self.unrecognised += 1
        return False


def sort_events(items: Iterable[object], *, skip_other: bool = False) -> EventsRead:
    """The results and plan events among the items; with `skip_other`, other detail types are skipped, not counted."""
    read = EventsRead()
    for item in items:
        read.add(item, skip_other=skip_other)
    return read


def load_items(text: str, *, source: str) -> list[object]:
    """A JSON array, a single JSON object, or JSON lines; UsageError naming the first bad line."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        document: object = json.loads(stripped)
    except json.JSONDecodeError:
        pass
    else:
        return list(document) if isinstance(document, list) else [document]
    items: list[object] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError:
            raise UsageError(f"{source}:{number} is not JSON (expected JSON lines or a JSON array)") from None
    return items


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """What is known about one request: its latest (or complete) results, part by part."""

    request_id: str
    trigger: str | None
    complete: bool
    counts: dict[str, int]
    results: tuple[dict[str, Any], ...]
    parts_missing: int
    time: str = ""  # the envelope time of its latest event ("" for bare details)
    # For each of `results`, the order (time, then read) of the event that carried it: which result is an ID's latest.
    result_orders: tuple[tuple[float, int], ...] = ()
    workspace: str | None = None  # the Reply workspace the request named; None: the default key's


@dataclass(frozen=True, slots=True)
class ResultItem:
    """One ID's (or invalid value's) outcome in one request."""

    request_id: str
    sequence_id: int | None
    input_value: str | None
    outcome: str
    http_status: int | None
    error: str | None
    via: str | None = None  # which Reply endpoint answered: "bulk", "single", or none
    paused: bool = False  # the pause of a pauseFirst request succeeded, whatever the archive did after it
    latest: bool = True  # False when a later request gave the same ID an outcome (this one is only an attempt)
    workspace: str | None = None  # the Reply workspace of its request; None: the default key's

    def to_json(self) -> dict[str, Any]:
        """The JSON report representation."""
        return {
            "requestId": self.request_id,
            "workspace": self.workspace,
            "sequenceId": self.sequence_id,
            "input": self.input_value,
            "outcome": self.outcome,
            "httpStatus": self.http_status,
            "via": self.via,
            "error": self.error,
            "paused": self.paused,
            "latest": self.latest,
        }


def _sequence_id(result: dict[str, Any]) -> int | None:
    value = result.get("sequenceId")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _result_item(
    request_id: str, result: dict[str, Any], *, latest: bool = True, workspace: str | None = None
) -> ResultItem:
    return ResultItem(
        request_id,
        _sequence_id(result),
        result.get("input") if isinstance(result.get("input"), str) else None,
        str(result.get("outcome")),
        result.get("httpStatus") if isinstance(result.get("httpStatus"), int) else None,
        result.get("error") if isinstance(result.get("error"), str) else None,
        result.get("via") if isinstance(result.get("via"), str) else None,
        result.get("paused") is True,
        latest,
        workspace,
    )


@dataclass
class Report:
    """Totals over requests, and what needs attention (worked out once: the requests are not changed after)."""

    events: int
    unrecognised: int
    requests: list[RequestSummary] = field(default_factory=list)
    other_events: int = 0  # events of the function's source with another detail type (not results; not counted)
    plan_events: list[PlanEvent] = field(default_factory=list)  # clean-up plans (parts of split ones each)

    @property
    def counts(self) -> dict[str, int]:
        """Distinct IDs per outcome, each by its latest outcome (invalid: each input value that is not an ID)."""
        totals = dict.fromkeys(OUTCOMES, 0)
        for item in self.items:
            if item.latest:
                totals[item.outcome] = totals.get(item.outcome, 0) + 1
        return totals

    @property
    def attempt_counts(self) -> dict[str, int]:
        """Results per outcome over every request read: an ID sent in three requests counts three times here."""
        totals = dict.fromkeys(OUTCOMES, 0)
        for item in self.items:
            totals[item.outcome] = totals.get(item.outcome, 0) + 1
        return totals

    @property
    def incomplete(self) -> list[RequestSummary]:
        """Requests with IDs still `failed` (they will be retried)."""
        return [request for request in self.requests if not request.complete]

    @cached_property
    def items(self) -> list[ResultItem]:
        """Every result of every request, request by request, each marked whether it is its ID's latest."""
        latest = self._latest
        return [
            _result_item(
                request.request_id,
                result,
                latest=(sequence_id := _sequence_id(result)) is None
                or latest[(request.workspace, sequence_id)] == (index, position),
                workspace=request.workspace,
            )
            for index, request in enumerate(self.requests)
            for position, result in enumerate(request.results)
        ]

    @cached_property
    def _latest(self) -> dict[tuple[str | None, int], tuple[int, int]]:
        """(Workspace, sequence ID) -> (request index, position) of its latest result (see the module's docstring)."""
        best: dict[tuple[str | None, int], tuple[tuple[float, int, int], tuple[int, int]]] = {}
        for index, request in enumerate(self.requests):
            for position, result in enumerate(request.results):
                sequence_id = _sequence_id(result)
                if sequence_id is None:
                    continue
                when = request.result_orders[position] if position < len(request.result_orders) else _UNKNOWN_ORDER
                key, place = (*when, position), (request.workspace, sequence_id)
                if place not in best or key >= best[place][0]:
                    best[place] = (key, (index, position))
        return {place: found for place, (_, found) in best.items()}

    @property
    def latest_outcomes(self) -> dict[tuple[str | None, int], str]:
        """Each (workspace, sequence ID)'s latest outcome over every request read (workspace None: the default)."""
        return {
            (item.workspace, item.sequence_id): item.outcome
            for item in self.items
            if item.latest and item.sequence_id is not None
        }

    @property
    def distinct_ids(self) -> int:
        """How many different sequence IDs the results name, per workspace (invalid input values not counted)."""
        return len(self._latest)

    @cached_property
    def attention(self) -> list[ResultItem]:
        """Every failed, forbidden, conflict, invalid and unconfirmed result, unless a later request gave that ID
        another outcome.

        An ID sent again after a conflict (`report --needs-attention --output ids | enqueue -`) and archived then
        needs nothing more, so only its latest outcome counts: the same rule as `counts`.
        """
        return [item for item in self.items if item.latest and item.outcome in ATTENTION_OUTCOMES]

    @property
    def retry_ids(self) -> list[int]:
        """The default workspace's sequence IDs that need another try, once each, in report order (invalid inputs
        have no ID): what `enqueue -` sends again, which names no workspace."""
        return list(
            dict.fromkeys(
                item.sequence_id for item in self.attention if item.sequence_id is not None and item.workspace is None
            )
        )

    @property
    def workspace_retry_ids(self) -> dict[str, list[int]]:
        """The named workspaces' IDs that need another try, by workspace (left out of `retry_ids`)."""
        found: dict[str, dict[int, None]] = {}
        for item in self.attention:
            if item.sequence_id is not None and item.workspace is not None:
                found.setdefault(item.workspace, {})[item.sequence_id] = None
        return {workspace: list(ids) for workspace, ids in found.items()}

    @cached_property
    def plans(self) -> list[PlanSummary]:
        """One summary per clean-up request whose plan was read, with how far the archiving of its IDs got."""
        return summarise_plans(self.plan_events, self.requests, self.latest_outcomes)

    @property
    def stopped_plans(self) -> list[PlanSummary]:
        """Plans that need a person by themselves: they stopped (over_limit, refused, failed) or lack parts."""
        return [plan for plan in self.plans if plan.stopped or plan.parts_missing]

    @property
    def needs_attention(self) -> bool:
        """True when any ID or plan needs a person, a request is incomplete or parts or inputs were unreadable."""
        return bool(self.attention or self.incomplete or self.unrecognised or self.stopped_plans) or any(
            request.parts_missing for request in self.requests
        )

    def to_json(self) -> dict[str, Any]:
        """The `--format json` document."""
        return {
            "events": self.events,
            "unrecognised": self.unrecognised,
            "otherEvents": self.other_events,
            "requests": {
                "total": len(self.requests),
                "complete": len(self.requests) - len(self.incomplete),
                "incomplete": len(self.incomplete),
            },
            "ids": self.distinct_ids,
            "counts": self.counts,
            "attempts": {"total": len(self.items), "counts": self.attempt_counts},
            "incompleteRequests": [request.request_id for request in self.incomplete],
            "partsMissing": {r.request_id: r.parts_missing for r in self.requests if r.parts_missing},
            "needsAttention": [item.to_json() for item in self.attention],
            "planEvents": len(self.plan_events),
            "plans": [plan.to_json() for plan in self.plans],
        }


def build_report(
    events: Sequence[ResultsEvent],
    *,
    unrecognised: int = 0,
    other_events: int = 0,
    plans: Sequence[PlanEvent] = (),
) -> Report:
    """One summary per request: a complete event wins (the request is done); else the latest attempt. Plans too."""
    by_request: dict[str, list[ResultsEvent]] = {}
    for received, event in enumerate(events):
        by_request.setdefault(event.request_id, []).append(replace(event, received=received))
    return Report(
        events=len(events),
        unrecognised=unrecognised,
        requests=[_summarise(request_id, found) for request_id, found in by_request.items()],
        other_events=other_events,
        plan_events=list(plans),
    )


def _summarise(request_id: str, events: Iterable[ResultsEvent]) -> RequestSummary:
    """A request's summary; one carried on by continuations (1, 2, ...) adds up every continuation's results."""
    by_continuation: dict[int | None, list[ResultsEvent]] = {}
    for event in events:
        by_continuation.setdefault(event.continuation, []).append(event)
    if set(by_continuation) == {None}:
        return _summarise_attempts(request_id, by_continuation[None])
    numbered = {number: found for number, found in by_continuation.items() if number is not None}
    summaries = [_summarise_attempts(request_id, numbered[number]) for number in sorted(numbered)]
    missing = max(numbered) - len(numbered)  # continuations not (yet) seen
    last = summaries[-1]
    counts: dict[str, int] = {}
    for summary in summaries:
        for outcome, count in summary.counts.items():
            counts[outcome] = counts.get(outcome, 0) + count
    return RequestSummary(
        request_id=request_id,
        trigger=last.trigger,
        complete=last.complete and missing == 0,
        counts=counts,
        results=tuple(result for summary in summaries for result in summary.results),
        parts_missing=missing + sum(summary.parts_missing for summary in summaries),
        time=max(summary.time for summary in summaries),
        result_orders=tuple(order for summary in summaries for order in summary.result_orders),
        workspace=last.workspace,
    )


def _summarise_attempts(request_id: str, events: Iterable[ResultsEvent]) -> RequestSummary:
    """One delivery's summary from its attempts: a complete event wins; else the latest attempt."""
    ordered = sorted(events, key=lambda event: event.order)
    complete = [event for event in ordered if event.complete]
    candidates = complete or ordered
    latest = candidates[-1]
    parts = {event.part: event for event in candidates}  # later events of the same part replace earlier ones
    results = tuple(result for number in sorted(parts) for result in parts[number].results)
    orders = tuple(parts[number].order for number in sorted(parts) for _ in parts[number].results)
    return RequestSummary(
        request_id=request_id,
        trigger=latest.trigger,
        complete=latest.complete,
        counts=dict(latest.counts),
        results=results,
        parts_missing=max(0, latest.parts - len(parts)),
        time=ordered[-1].time,
        result_orders=orders,
        workspace=latest.workspace,
    )
