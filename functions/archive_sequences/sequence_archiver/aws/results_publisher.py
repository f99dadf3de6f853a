"""Results events: one EventBridge entry per request (split into parts when too big), sent with PutEvents.

Every entry fits: text that cannot be encoded (a lone surrogate) is published as a visible escape, and
a single result too big for an entry of its own has its long text fields cut down. A report whose
entries still cannot be built fails alone: its request ID is returned as not published, and the other
reports go out. The PutEvents calls, their SDK retries and our own retries all end by the deadline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sequence_archiver.aws.calls import MIN_ATTEMPT_SECONDS, call_within
from sequence_archiver.core.batching import chunk_by_count_and_size
from sequence_archiver.core.exceptions import AwsCallTimeoutError
from sequence_archiver.core.results_contract import PLAN_DETAIL_TYPE
from sequence_archiver.core.results_contract import RESULTS_DETAIL_TYPE as DETAIL_TYPE
from sequence_archiver.observability import NoTracing

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef, PutEventsResponseTypeDef

    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.core.request_report import RequestReport
    from sequence_archiver.observability import Tracing

logger = logging.getLogger(__name__)

MAX_ENTRIES_PER_CALL = 10
MAX_REQUEST_BYTES = 256 * 1024  # EventBridge's limit for one entry and for a whole PutEvents call
_ENTRY_HEADROOM_BYTES = 2 * 1024  # Source, DetailType, Time and the part fields
# The results schema's bounds on a result's text fields (schemas/sequence-archive-results.json).
MAX_ERROR_CHARS = 1_000
MAX_INPUT_CHARS = 100
TRUNCATION_MARK = "…"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_RETRY_BASE_SECONDS = 0.2
EVENT_ID_FIELD = "eventId"
EVENT_ID_HEX_DIGITS = 32  # 128 bits of SHA-256


def _json(document: object) -> str:
    """Compact JSON that always encodes as UTF-8: a lone surrogate (say from `"\\ud800"` in a request, which
    JSON allows and UTF-8 cannot carry) is published as the six characters `\\ud800`, visible and harmless."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    if text.isascii():
        return text
    # Outside strings JSON has no surrogates; inside one, an escaped backslash makes the escape plain text.
    return _LONE_SURROGATE.sub(lambda match: f"\\\\u{ord(match.group()):04x}", text)


def event_id(detail: dict[str, Any]) -> str:
    """The `eventId` of a results (or plan) event: a hash of its detail, so the same event published twice (a
    retry after an abandoned PutEvents call that went through late) has the same ID and consumers can drop it."""
    unstamped = {key: value for key, value in detail.items() if key != EVENT_ID_FIELD}
    canonical = json.dumps(unstamped, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii", errors="backslashreplace")).hexdigest()[:EVENT_ID_HEX_DIGITS]


def stamped(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail with its `eventId` (what is published, and what a direct invocation returns)."""
    return {**detail, EVENT_ID_FIELD: event_id(detail)}


def _size(document: object) -> int:
    return len(_json(document).encode("utf-8"))


def _cut(text: str, max_chars: int) -> str:
    """`text` itself when short enough, else its start and a mark, `max_chars` characters in all."""
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - len(TRUNCATION_MARK))] + TRUNCATION_MARK


def _fitted(result: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], int]:
    """The result with `error` and `input` within the schema's bounds and, its longest text fields cut down, at
    most `max_bytes` of JSON; and the size of that JSON."""
    fitted = result
    for name, limit in (("error", MAX_ERROR_CHARS), ("input", MAX_INPUT_CHARS)):
        value = fitted.get(name)
        if isinstance(value, str) and len(value) > limit:
            fitted = {**fitted, name: _cut(value, limit)}
    size = _size(fitted)
    if size <= max_bytes:
        return fitted, size
    fitted = {**fitted}
    if isinstance(fitted.get("sequence"), dict):
        fitted["sequence"] = dict(fitted["sequence"])
    while size > max_bytes:
        fields = [
            (len(holder[name]), holder, name)
            for holder in (fitted, fitted.get("sequence") or {})
            for name in ("error", "input", "name", "status")
            if isinstance(holder.get(name), str) and len(holder[name]) > len(TRUNCATION_MARK)
        ]
        if not fields:
            break  # nothing left to cut: the numbers and enums of one result are far below any limit
        length, holder, name = max(fields, key=lambda field: field[0])
        # Each character is at least one byte: cutting the excess in characters (and the mark) converges in
        # a few rounds, even for multi-byte or escaped text.
        excess = size - max_bytes
        holder[name] = _cut(holder[name], max(len(TRUNCATION_MARK), length - excess - len(TRUNCATION_MARK)))
        size = _size(fitted)
    return fitted, size


def split_detail(
    detail: dict[str, Any], *, max_bytes: int = MAX_REQUEST_BYTES - _ENTRY_HEADROOM_BYTES, items_key: str = "results"
) -> list[dict[str, Any]]:
    """The detail itself when it fits one entry; otherwise parts with `part`/`parts` and a share of results
    (of `items_key`: a plan's `sequenceIds`).

    Every result is first held to the schema's text bounds, and one too big for a part of its own has
    its long text fields cut down, so every part fits in `max_bytes`.
    """
    header = {key: value for key, value in detail.items() if key != items_key}
    budget = max_bytes - _size({**header, items_key: [], "part": 99_999, "parts": 99_999})
    sized = [
        _fitted(result, budget - 1) if isinstance(result, dict) else (result, _size(result))
        for result in detail[items_key]
    ]
    results = [result for result, _ in sized]
    # Compact JSON of a list is its items joined by commas: the whole size without encoding it again.
    whole_size = _size({**detail, items_key: []}) + sum(size for _, size in sized) + max(0, len(sized) - 1)
    if whole_size <= max_bytes:
        return [{**detail, items_key: results}]
    chunks: list[list[Any]] = [[]]
    used = 0
    for result, size in sized:
        cost = size + 1
        if chunks[-1] and used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(result)
        used += cost
    return [
        {**header, "part": number, "parts": len(chunks), items_key: chunk}
        for number, chunk in enumerate(chunks, start=1)
    ]


class Publishable(Protocol):
    """What an event is published from: a results report, or a clean-up plan (archiving.cleanup.CleanupPlan)."""

    @property
    def request_id(self) -> str: ...

    def detail(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    request_id: str
    entry: PutEventsRequestEntryTypeDef
    size: int


class ResultsPublisher:
    """Puts results events on the bus; reports which requests could not be published."""

    def __init__(
        self,
        *,
        events_client: EventBridgeClient,
        event_bus_name: str,
        source: str,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        tracing: Tracing | None = None,
    ) -> None:
        self._events = events_client
        self._tracing: Tracing = tracing or NoTracing()
        self._event_bus_name = event_bus_name
        self._source = source
        self._max_attempts = max_attempts
        self._sleep = sleep

    def publish(
        self, reports: Iterable[RequestReport], deadline: Deadline | None = None, *, plans: Iterable[Publishable] = ()
    ) -> set[str]:
        """Publish every report (and clean-up plan); return the request IDs with an entry that never got through."""
        failed: set[str] = set()
        entries: list[_Entry] = []
        documents: list[tuple[Publishable, str, str]] = [
            *((report, DETAIL_TYPE, "results") for report in reports),
            *((plan, PLAN_DETAIL_TYPE, "sequenceIds") for plan in plans),
        ]
        for report, detail_type, items_key in documents:
            try:
                entries.extend(self._entries(report.request_id, report.detail(), detail_type, items_key))
            except Exception as exc:  # whatever one report holds, it fails only that report
                logger.error(  # no traceback: it could quote the report's content
                    "results event could not be built",
                    extra={"request_id": report.request_id, "error": type(exc).__name__},
                )
                failed.add(report.request_id)
        chunks = chunk_by_count_and_size(
            entries, size_of=lambda entry: entry.size, max_items=MAX_ENTRIES_PER_CALL, max_bytes=MAX_REQUEST_BYTES
        )
        for chunk in chunks:
            failed.update(self._put_with_retries(chunk, deadline))
        return failed

    def _entries(self, request_id: str, detail: dict[str, Any], detail_type: str, items_key: str) -> list[_Entry]:
        entries = []
        for part in split_detail(detail, items_key=items_key):
            detail_json = _json(stamped(part))
            entry: PutEventsRequestEntryTypeDef = {
                "Source": self._source,
                "DetailType": detail_type,
                "Detail": detail_json,
                "EventBusName": self._event_bus_name,
            }
            size = len(detail_json.encode("utf-8")) + len(self._source) + len(detail_type)
            entries.append(_Entry(request_id, entry, size))
        return entries

    def _put_with_retries(self, chunk: Sequence[_Entry], deadline: Deadline | None) -> set[str]:
        pending = list(chunk)
        for attempt in range(1, self._max_attempts + 1):
            try:
                with self._tracing.span("## results.PutEvents", entries=str(len(pending))):
                    response = self._put(pending, deadline)
            except AwsCallTimeoutError:
                logger.warning("put_events call ran out of time", extra={"attempt": attempt, "entries": len(pending)})
                break
            except Exception as exc:  # SDK errors and any surprise fail this attempt, not the batch
                logger.warning(
                    "put_events call failed",
                    extra={"attempt": attempt, "entries": len(pending), "error": type(exc).__name__},
                )
            else:
                pending = [
                    item for item, result in zip(pending, response["Entries"], strict=False) if result.get("ErrorCode")
                ] + pending[len(response["Entries"]) :]
                if not pending:
                    return set()
                logger.warning(
                    "some results events were rejected",
                    extra={"attempt": attempt, "failed_entries": len(pending)},
                )
            if attempt == self._max_attempts:
                break
            pause = _RETRY_BASE_SECONDS * 2 ** (attempt - 1)
            if deadline is not None and not deadline.allows(pause + MIN_ATTEMPT_SECONDS):
                logger.warning("no time left to retry put_events", extra={"attempt": attempt})
                break
            self._sleep(pause)
        failed = {item.request_id for item in pending}
        logger.error("results events not published", extra={"request_ids": sorted(failed)})
        return failed

    def _put(self, pending: Sequence[_Entry], deadline: Deadline | None) -> PutEventsResponseTypeDef:
        entries = [item.entry for item in pending]
        return call_within(deadline, "PutEvents", self._events.put_events, Entries=entries)
