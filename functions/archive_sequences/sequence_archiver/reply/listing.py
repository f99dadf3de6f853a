"""GET /v3/sequences: filters, paging with top/skip/hasMore, through the function's ReplyClient (same pacing,
429 and Retry-After handling, retries, 401 re-read and deadline).

Shared by the command line's `select` and the function's clean-up policies, so both select exactly the same
sequences for the same filters.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import ReplyMalformedResponseError, ReplyRefusedError
from sequence_archiver.core.reply_answers import MAX_NAME_TEXT
from sequence_archiver.reply.client import ReplyClient, RetryPolicy, Timeouts
from sequence_archiver.reply.text import clean

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable, Iterator, Mapping

    import urllib3

    from sequence_archiver.core.reply_answers import ApiCall, ReplyWait
    from sequence_archiver.reply.api_key import ApiKeySource
    from sequence_archiver.reply.rate_limiter import RateLimiter

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "HEALTH_VALUES",
    "MAX_PAGE_SIZE",
    "STATUSES",
    "MatchingPage",
    "ReplyRefusedError",
    "SequenceFilter",
    "SequenceItem",
    "SequenceListClient",
    "SequencePages",
    "list_sequences",
    "parse_page",
    "parse_timestamp",
    "read_matching_page",
]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000  # Reply's documented maximum for `top`
DEFAULT_PAGE_SIZE = 100
_NO_DEADLINE_SECONDS = 86_400.0
STATUSES = ("new", "active", "paused")
HEALTH_VALUES = ("healthy", "stalled", "degraded", "blocked")  # SequenceBase.health
OLDEST_FIRST = {"sortBy": "created", "sortDirection": "asc"}


@dataclass(frozen=True, slots=True)
class SequenceItem:
    """The SequenceBase fields of one listed sequence."""

    id: int
    name: str | None = None
    status: str | None = None
    is_archived: bool | None = None
    owner_user_id: int | None = None
    created: datetime | None = None
    health: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Reply's field names."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "isArchived": self.is_archived,
            "ownerUserId": self.owner_user_id,
            "created": self.created.isoformat() if self.created else None,
            "health": self.health,
        }


@dataclass(frozen=True, slots=True)
class SequenceFilter:
    """Which sequences to list; `created_before`, `health` and the exclusions are checked on the listed items."""

    status: str | None = None
    owner_user_id: int | None = None
    folder_id: uuid.UUID | None = None
    name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None  # client-side: the API only has createdAfter
    is_archived: bool | None = False  # None: archived or not
    health: frozenset[str] | None = None  # client-side: the listing has no health filter
    # A keep list, never selected whatever else matches (client-side; folders are resolved by the caller)
    exclude_ids: frozenset[int] = frozenset()
    exclude_names: tuple[str, ...] = ()  # case folded; a name containing one is kept out
    exclude_owner_ids: frozenset[int] = frozenset()

    def query(self, *, oldest_first: bool = False) -> dict[str, str]:
        """The server-side filters as query parameters (oldest first when asked, or when created_before is set)."""
        params: dict[str, str] = {}
        if self.status is not None:
            params["status"] = self.status
        if self.owner_user_id is not None:
            params["ownerUserId"] = str(self.owner_user_id)
        if self.folder_id is not None:
            params["folderId"] = str(self.folder_id)
        if self.name is not None:
            params["name"] = self.name
        if self.created_after is not None:
            params["createdAfter"] = self.created_after.isoformat()
        if self.is_archived is not None:
            params["isArchived"] = "true" if self.is_archived else "false"
        if oldest_first or self.created_before is not None:
            # Oldest first, so paging can stop at the first sequence created at or after the bound.
            params.update(OLDEST_FIRST)
        return params

    def matches(self, item: SequenceItem) -> bool:
        """The client-side checks: created_before, and the exact filters again (a campaign must not widen)."""
        return self.left_out_by(item) is None

    def left_out_by(self, item: SequenceItem) -> str | None:
        """The selection key that leaves a listed item out (a request's field name), or None when it matches."""
        checks = (
            (
                "createdBefore",
                self.created_before is not None and (item.created is None or item.created >= self.created_before),
            ),
            ("status", self.status is not None and (item.status or "").lower() != self.status),
            ("ownerUserId", self.owner_user_id is not None and item.owner_user_id != self.owner_user_id),
            ("isArchived", self.is_archived is not None and item.is_archived is not self.is_archived),
            ("health", self.health is not None and (item.health or "").lower() not in self.health),
            ("exclude", self.excludes(item)),
        )
        return next((key for key, leaves_out in checks if leaves_out), None)

    def excludes(self, item: SequenceItem) -> bool:
        """True for an item on the keep list (by ID, owner or part of its name)."""
        if item.id in self.exclude_ids or (
            item.owner_user_id is not None and item.owner_user_id in self.exclude_owner_ids
        ):
            return True
        name = (item.name or "").casefold()
        return bool(name) and any(part in name for part in self.exclude_names)

    def past_the_end(self, item: SequenceItem) -> bool:
        """True once an oldest-first listing reaches created_before: nothing later can match."""
        return self.created_before is not None and item.created is not None and item.created >= self.created_before


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is UTC. ValueError when unreadable."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_page(body: bytes) -> tuple[list[SequenceItem], bool]:
    """Read `{"items": [...], "hasMore": bool}`; items without a valid integer id are skipped."""
    try:
        document: Any = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, 5,000-digit numbers
        raise ReplyMalformedResponseError("Reply answered 200 with a body that is not JSON", http_status=200) from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise ReplyMalformedResponseError("Reply answered 200 without an items list", http_status=200)
    items = []
    for raw in document["items"]:
        item = _item(raw)
        if item is None:
            logger.warning("skipped a listed sequence without a valid id")
            continue
        items.append(item)
    return items, document.get("hasMore") is True


def _item(raw: object) -> SequenceItem | None:
    if not isinstance(raw, dict):
        return None
    sequence_id = raw.get("id")
    if isinstance(sequence_id, bool) or not isinstance(sequence_id, int) or sequence_id < 1:
        return None
    created: datetime | None = None
    if isinstance(raw.get("created"), str):
        try:
            created = parse_timestamp(raw["created"])
        except ValueError:
            created = None
    owner = raw.get("ownerUserId")

    def text(key: str) -> str | None:
        value = raw.get(key)
        return clean(value, secret=None, limit=MAX_NAME_TEXT) if isinstance(value, str) else None

    status = text("status")
    return SequenceItem(
        id=sequence_id,
        name=text("name"),
        status=status.lower() if status and status.lower() in STATUSES else status,
        is_archived=raw.get("isArchived") if isinstance(raw.get("isArchived"), bool) else None,
        owner_user_id=owner if isinstance(owner, int) and not isinstance(owner, bool) else None,
        created=created,
        health=text("health"),
    )


class SequencePages:
    """Pages of GET /v3/sequences through a ReplyClient: the caller's pacing, retries and deadline."""

    def __init__(self, client: ReplyClient, *, on_items: Callable[[list[SequenceItem]], None] | None = None) -> None:
        self._client = client
        self._on_items = on_items  # told every page's items (a Master key learns the owners from them)

    @property
    def client(self) -> ReplyClient:
        """The client the pages go through: a selection's per-sequence checks use it too (same budget, deadline)."""
        return self._client

    def get_page(self, params: Mapping[str, str], deadline: Deadline) -> tuple[list[SequenceItem], bool]:
        """One page: its items and hasMore. Raises ReplyRefusedError (a final 4xx), ReplyAuthenticationError,
        DeadlineExceededError or the last retryable error."""
        answer = self._client.list_sequences(params, deadline, parse_page)
        if answer.page is not None:
            if self._on_items is not None:
                self._on_items(answer.page[0])
            return answer.page
        raise answer.refused("the list call")


@dataclass(frozen=True, slots=True)
class MatchingPage:
    """One listed page: its sequences that match (new IDs only), where the next page starts, and whether it
    was the last page that can hold a match."""

    matches: list[SequenceItem]
    next_skip: int
    last: bool
    left_out: dict[str, int] = field(default_factory=dict)  # listed items left out, by the key that did it


def read_matching_page(
    get_page: Callable[[Mapping[str, str]], tuple[list[SequenceItem], bool]],
    sequence_filter: SequenceFilter,
    *,
    skip: int,
    page_size: int,
    seen: set[int],
    oldest_first: bool = False,
) -> MatchingPage:
    """List the page at `skip` and keep what matches and was not `seen` before (`seen` is updated)."""
    params = {**sequence_filter.query(oldest_first=oldest_first), "top": str(page_size), "skip": str(skip)}
    items, has_more = get_page(params)
    last = not has_more or not items
    matches: list[SequenceItem] = []
    left_out: dict[str, int] = {}
    for item in items:
        if sequence_filter.past_the_end(item):
            last = True
            break
        if item.id in seen:
            continue
        key = sequence_filter.left_out_by(item)
        if key is not None:
            left_out[key] = left_out.get(key, 0) + 1
            continue
        seen.add(item.id)
        matches.append(item)
    return MatchingPage(matches, skip + len(items), last, left_out)


class SequenceListClient:
    """GET /v3/sequences for one key with a ReplyClient of its own (a one-off command: no Lambda deadline)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key_source: ApiKeySource,
        rate_limiter: RateLimiter,
        retry_policy: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        http: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[ReplyWait], None] | None = None,
    ) -> None:
        self.calls = 0
        self._pages = SequencePages(
            ReplyClient(
                base_url=base_url,
                api_key_source=api_key_source,
                retry_policy=retry_policy or RetryPolicy(),
                timeouts=timeouts or Timeouts(),
                rate_limiter=rate_limiter,
                http=http,
                sleep=sleep,
                on_api_call=self._count_call,
                on_wait=on_wait,
            )
        )

    @property
    def reply_client(self) -> ReplyClient:
        """The command's Reply client, for a selection's per-sequence checks (its calls are counted too)."""
        return self._pages.client

    def _count_call(self, _call: ApiCall) -> None:
        self.calls += 1

    def get_page(self, params: Mapping[str, str]) -> tuple[list[SequenceItem], bool]:
        """One page: its items and hasMore. Raises ReplyRefusedError, ReplyAuthenticationError or the last retryable."""
        # A one-off command has no Lambda deadline; a day stands for "as long as it takes".
        return self._pages.get_page(params, Deadline(time.monotonic() + _NO_DEADLINE_SECONDS))


def list_sequences(
    client: SequenceListClient,
    sequence_filter: SequenceFilter,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    limit: int | None = None,
    oldest_first: bool = False,
) -> Iterator[list[SequenceItem]]:
    """Matching sequences page by page (each ID once), until hasMore is false or `limit` are found.

    `oldest_first` asks Reply for creation order whatever the filter (a `created_before` filter always does).
    """
    seen: set[int] = set()
    found = skip = 0
    while True:
        page = read_matching_page(
            client.get_page, sequence_filter, skip=skip, page_size=page_size, seen=seen, oldest_first=oldest_first
        )
        skip = page.next_skip
        matches = page.matches
        if limit is not None and found + len(matches) >= limit:
            matches = matches[: limit - found]
        found += len(matches)
        if matches:
            yield matches
        if page.last or (limit is not None and found >= limit):
            return
