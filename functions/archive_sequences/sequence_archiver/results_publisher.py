"""Results events: one EventBridge entry per request (split into parts when too big), sent with PutEvents."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sequence_archiver.batching import chunk_by_count_and_size
from sequence_archiver.observability import NoTracing

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from sequence_archiver.deadline import Deadline
    from sequence_archiver.observability import Tracing
    from sequence_archiver.request_report import RequestReport

logger = logging.getLogger(__name__)

DETAIL_TYPE = "Sequence Archive Results"
MAX_ENTRIES_PER_CALL = 10
MAX_REQUEST_BYTES = 256 * 1024  # EventBridge's limit for one entry and for a whole PutEvents call
_ENTRY_HEADROOM_BYTES = 2 * 1024  # Source, DetailType, Time and the part fields


def _size(document: object) -> int:
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def split_detail(
    detail: dict[str, Any], *, max_bytes: int = MAX_REQUEST_BYTES - _ENTRY_HEADROOM_BYTES
) -> list[dict[str, Any]]:
    """The detail itself when it fits one entry; otherwise parts with `part`/`parts` and a share of results."""
    if _size(detail) <= max_bytes:
        return [detail]
    header = {key: value for key, value in detail.items() if key != "results"}
    budget = max_bytes - _size({**header, "results": [], "part": 99_999, "parts": 99_999})
    chunks: list[list[dict[str, Any]]] = [[]]
    used = 0
    for result in detail["results"]:
        cost = _size(result) + 1
        if chunks[-1] and used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(result)
        used += cost
    return [
        {**header, "part": number, "parts": len(chunks), "results": chunk}
        for number, chunk in enumerate(chunks, start=1)
    ]


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

    def publish(self, reports: Iterable[RequestReport], deadline: Deadline | None = None) -> set[str]:
        """Publish every report; return the request IDs with at least one entry that never got through."""
        entries = [entry for report in reports for entry in self._entries(report)]
        failed: set[str] = set()
        chunks = chunk_by_count_and_size(
            entries, size_of=lambda entry: entry.size, max_items=MAX_ENTRIES_PER_CALL, max_bytes=MAX_REQUEST_BYTES
        )
        for chunk in chunks:
            failed.update(self._put_with_retries(chunk))
        return failed

    def _entries(self, report: RequestReport) -> list[_Entry]:
        entries = []
        for part in split_detail(report.detail()):
            detail_json = json.dumps(part, separators=(",", ":"), ensure_ascii=False)
            entry: PutEventsRequestEntryTypeDef = {
                "Source": self._source,
                "DetailType": DETAIL_TYPE,
                "Detail": detail_json,
                "EventBusName": self._event_bus_name,
            }
            size = len(detail_json.encode("utf-8")) + len(self._source) + len(DETAIL_TYPE)
            entries.append(_Entry(report.request_id, entry, size))
        return entries

    def _put_with_retries(self, chunk: Sequence[_Entry]) -> set[str]:
        pending = list(chunk)
        for attempt in range(1, self._max_attempts + 1):
            try:
                with self._tracing.span("## results.PutEvents", entries=str(len(pending))):
                    response = self._events.put_events(Entries=[item.entry for item in pending])
            except (BotoCoreError, ClientError) as exc:
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
            if attempt < self._max_attempts:
                self._sleep(0.2 * 2 ** (attempt - 1))
        failed = {item.request_id for item in pending}
        logger.error("results events not published", extra={"request_ids": sorted(failed)})
        return failed
