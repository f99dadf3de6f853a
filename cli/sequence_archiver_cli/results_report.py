"""Results events read back: totals per outcome, complete and incomplete requests, the IDs that need attention."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sequence_archiver.outcomes import Outcome
from sequence_archiver_cli.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

RESULTS_DETAIL_TYPE = "Sequence Archive Results"
ATTENTION_OUTCOMES = frozenset({Outcome.FAILED, Outcome.FORBIDDEN, Outcome.CONFLICT, Outcome.INVALID})
OUTCOMES = tuple(outcome.value for outcome in Outcome)


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
    )


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


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """One ID (or invalid value) whose outcome a person should look at."""

    request_id: str
    sequence_id: int | None
    input_value: str | None
    outcome: str
    http_status: int | None
    error: str | None
    via: str | None = None  # which Reply endpoint answered: "bulk", "single", or none

    def to_json(self) -> dict[str, Any]:
        """The JSON report representation."""
        return {
            "requestId": self.request_id,
            "sequenceId": self.sequence_id,
            "input": self.input_value,
            "outcome": self.outcome,
            "httpStatus": self.http_status,
            "via": self.via,
            "error": self.error,
        }


@dataclass
class Report:
    """Totals over requests, and what needs attention."""

    events: int
    unrecognised: int
    requests: list[RequestSummary] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """IDs per outcome over every request, every outcome present."""
        totals = dict.fromkeys(OUTCOMES, 0)
        for request in self.requests:
            for outcome, count in request.counts.items():
                totals[outcome] = totals.get(outcome, 0) + count
        return totals

    @property
    def incomplete(self) -> list[RequestSummary]:
        """Requests with IDs still `failed` (they will be retried)."""
        return [request for request in self.requests if not request.complete]

    @property
    def attention(self) -> list[AttentionItem]:
        """Every failed, forbidden, conflict and invalid result."""
        return [
            AttentionItem(
                request.request_id,
                result.get("sequenceId") if isinstance(result.get("sequenceId"), int) else None,
                result.get("input") if isinstance(result.get("input"), str) else None,
                str(result.get("outcome")),
                result.get("httpStatus") if isinstance(result.get("httpStatus"), int) else None,
                result.get("error") if isinstance(result.get("error"), str) else None,
                result.get("via") if isinstance(result.get("via"), str) else None,
            )
            for request in self.requests
            for result in request.results
            if result.get("outcome") in ATTENTION_OUTCOMES
        ]

    @property
    def needs_attention(self) -> bool:
        """True when any ID needs a person, a request is incomplete or parts or inputs were unreadable."""
        return bool(self.attention or self.incomplete or self.unrecognised) or any(
            request.parts_missing for request in self.requests
        )

    def to_json(self) -> dict[str, Any]:
        """The `--format json` document."""
        return {
            "events": self.events,
            "unrecognised": self.unrecognised,
            "requests": {
                "total": len(self.requests),
                "complete": len(self.requests) - len(self.incomplete),
                "incomplete": len(self.incomplete),
            },
            "counts": self.counts,
            "incompleteRequests": [request.request_id for request in self.incomplete],
            "partsMissing": {r.request_id: r.parts_missing for r in self.requests if r.parts_missing},
            "needsAttention": [item.to_json() for item in self.attention],
        }


def build_report(events: Sequence[ResultsEvent], *, unrecognised: int = 0) -> Report:
    """One summary per request: a complete event wins (the request is done); else the latest attempt."""
    by_request: dict[str, list[ResultsEvent]] = {}
    for event in events:
        by_request.setdefault(event.request_id, []).append(event)
    return Report(
        events=len(events),
        unrecognised=unrecognised,
        requests=[_summarise(request_id, found) for request_id, found in by_request.items()],
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
    )


def _summarise_attempts(request_id: str, events: Iterable[ResultsEvent]) -> RequestSummary:
    """One delivery's summary from its attempts: a complete event wins; else the latest attempt."""
    ordered = sorted(events, key=lambda event: event.time)  # stable: input order among equal times
    complete = [event for event in ordered if event.complete]
    candidates = complete or ordered
    latest = candidates[-1]
    parts = {event.part: event for event in candidates}  # later events of the same part replace earlier ones
    results = tuple(result for number in sorted(parts) for result in parts[number].results)
    return RequestSummary(
        request_id=request_id,
        trigger=latest.trigger,
        complete=latest.complete,
        counts=dict(latest.counts),
        results=results,
        parts_missing=max(0, latest.parts - len(parts)),
    )
