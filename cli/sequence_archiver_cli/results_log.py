"""Reading events back from the results log group (FilterLogEvents, paged and bounded) without consuming them.

The template's rule writes every event of the function's source to the group as one log event whose message is
the EventBridge envelope, JSON. Reading leaves the group as it was, so two reports over the same window agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_logs import CloudWatchLogsClient

MAX_PER_PAGE = 10_000  # the largest `limit` FilterLogEvents takes
DEFAULT_SINCE = "14d"
_RELATIVE = re.compile(r"^(\d{1,7})([mhdw])$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_since(text: str, *, now: datetime) -> datetime:
    """`30m`, `12h`, `7d` or `2w` before `now`, or an ISO 8601 date/time (UTC without an offset); else ValueError."""
    relative = _RELATIVE.match(text.strip().lower())
    if relative:
        return now - int(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a duration (30m, 12h, 7d, 2w) nor an ISO 8601 date or time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def epoch_milliseconds(moment: datetime) -> int:
    """A time as CloudWatch Logs counts it: milliseconds since 1970-01-01 UTC."""
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class LogRead:
    """What one read of the group found: the messages as JSON (oldest first), the rest, and whether it stopped early."""

    documents: list[object]
    not_json: int
    truncated: bool  # `max_events` were read and the group holds more in the window


def read_log_group(
    logs: CloudWatchLogsClient,
    group_name: str,
    *,
    start_ms: int,
    max_events: int,
    on_progress: Callable[[int], None] | None = None,
) -> LogRead:
    """Every log event of the group from `start_ms` on, at most `max_events`; `on_progress` gets the count so far."""
    found: list[tuple[int, str, str]] = []
    arguments: dict[str, Any] = {"logGroupName": group_name, "startTime": start_ms}
    truncated = False
    while True:
        page = logs.filter_log_events(**arguments, limit=min(MAX_PER_PAGE, max_events - len(found)))
        for event in page.get("events", []):
            # Whole milliseconds: some implementations keep fractions, which would order events differently.
            found.append((int(event.get("timestamp", 0)), event.get("eventId", ""), event.get("message", "")))
        if on_progress is not None:
            on_progress(len(found))
        token = page.get("nextToken")
        if not token:
            break
        if len(found) >= max_events:
            truncated = True
            break
        arguments["nextToken"] = token
    # Pages interleave log streams; time, then event ID, gives the same order on every read.
    found.sort(key=lambda event: (event[0], event[1]))
    truncated = truncated or len(found) > max_events
    documents: list[object] = []
    not_json = 0
    for _, _, message in found[:max_events]:
        try:
            documents.append(json.loads(message))
        except (ValueError, RecursionError):
            not_json += 1
    return LogRead(documents, not_json, truncated)
