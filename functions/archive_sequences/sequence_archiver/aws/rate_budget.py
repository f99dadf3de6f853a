"""One Reply rate budget shared by every instance: a DynamoDB item per Reply user, booked before each call.

Reply counts 100 calls a minute and 3,000 an hour per user, across every app and instance acting for
that user. Each budget (one per Reply user: the key's fingerprint, later also the acting user) is one
item in the rate budget table:

    pk           "budget#" + the budget key
    v            a version number: every write is conditional on the version it read (optimistic locking)
    w0, w1, ...  per window (minute, hour): a map from bucket number (wall-clock time // bucket) to the
                 number of calls booked in that bucket
    paused_until epoch seconds until which Reply's 429 stops every instance
    expires_at   the item's TTL: a budget nobody used for a while disappears

An instance books a few calls at a time (a grant): it reads the item (consistently), counts the calls
booked in each window, and books what fits with a write conditional on the version it read; on a
conflict it reads again. A grant is valid for GRANT_LIFETIME_SECONDS from the read: the calls must
start within it. Counting a window over span = window + lifetime + slack of booking times then bounds
every window of *send* times, sliding or fixed: a booking older than the span was sent before any call
booked now can start by more than a window. Bookings are never given back, so a lapsed grant costs
budget, never a 429.

When the table fails (an error, throttling, a hanging call: each call is bounded by TABLE_CALL_SECONDS
and by the invocation's deadline) `reserve` answers None and the caller falls back to its static share.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from sequence_archiver.aws.calls import call_within
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.rate_budgets import BudgetAnswer, RateBudget, Unused

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = logging.getLogger(__name__)

BUCKETS_PER_WINDOW = 60  # a booking is counted at its bucket's end: at most 1/60 of a window too long
GRANT_LIFETIME_SECONDS = 1.0  # the calls of a grant start within this long of the read that booked them
MIN_GRANT_LIFETIME_SECONDS = 0.25  # with windows shrunk for a benchmark: a table write must still fit
WINDOW_SLACK_FRACTION = 0.01  # send times are not Reply's receive times (network jitter, clock skew)
WINDOW_SLACK_MIN_SECONDS = 0.05
TABLE_CALL_SECONDS = 1.0  # one GetItem or UpdateItem, with botocore's retries; longer is the table failing
MAX_WRITE_ATTEMPTS = 6  # conflicting writes before answering "ask again shortly" (contention, not failure)
CONFLICT_WAIT_SECONDS = 0.02  # the most an instance waits (at random) before reading again after a conflict
RECHECK_FRACTION = 0.1  # of the shortest window: the longest wait before asking the table again
WAKE_SPREAD_FRACTION = 0.1  # of a bucket: instances waiting for the same bucket wake at different moments


@dataclass(frozen=True, slots=True)
class _Window:
    """One of Reply's windows as the table counts it."""

    limit: int
    bucket_seconds: float
    span_seconds: float

    @classmethod
    def of(cls, budget: RateBudget, lifetime: float) -> _Window:
        slack = max(WINDOW_SLACK_MIN_SECONDS, budget.window_seconds * WINDOW_SLACK_FRACTION)
        return cls(budget.limit, budget.window_seconds / BUCKETS_PER_WINDOW, budget.window_seconds + lifetime + slack)

    def live(self, buckets: dict[int, int], now: float) -> dict[int, int]:
        """The buckets still counted at `now`: those ending less than a span ago."""
        oldest = now - self.span_seconds
        return {bucket: count for bucket, count in buckets.items() if (bucket + 1) * self.bucket_seconds > oldest}

    def free_at(self, buckets: dict[int, int]) -> float:
        """When the oldest live bucket stops counting (the window has room then), in epoch seconds."""
        return (min(buckets) + 1) * self.bucket_seconds + self.span_seconds


class SharedRateBudget:
    """Books Reply calls in the rate budget table; one per Lambda instance, safe across invocations."""

    def __init__(
        self,
        *,
        dynamodb_client: DynamoDBClient,
        table_name: str,
        budgets: Sequence[RateBudget],
        grant_lifetime_seconds: float = GRANT_LIFETIME_SECONDS,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        spread: Callable[[float], float] = lambda most: random.uniform(0.0, most),  # noqa: S311 - not security
    ) -> None:
        self._client = dynamodb_client
        self._table_name = table_name
        self._windows = [_Window.of(budget, grant_lifetime_seconds) for budget in budgets]
        self._lifetime = grant_lifetime_seconds
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._spread = spread
        self._ttl_seconds = math.ceil(max((window.span_seconds for window in self._windows), default=0.0)) + 3600
        # The longest wait one answer gives: calls another instance gives back free room sooner.
        self._recheck_seconds = RECHECK_FRACTION * min((w.span_seconds for w in self._windows), default=0.0)

    @classmethod
    def for_limits(
        cls,
        *,
        dynamodb_client: DynamoDBClient,
        table_name: str,
        per_minute: int | None,
        per_hour: int | None,
        time_scale: float = 1.0,
    ) -> SharedRateBudget:
        """Reply's per-minute and per-hour limits in `table_name`. Benchmarks shrink the windows (`time_scale`):
        a grant's lifetime shrinks with them, never below what a table write and a call's start need."""
        return cls(
            dynamodb_client=dynamodb_client,
            table_name=table_name,
            budgets=windows_for(per_minute=per_minute, per_hour=per_hour, time_scale=time_scale),
            grant_lifetime_seconds=max(MIN_GRANT_LIFETIME_SECONDS, GRANT_LIFETIME_SECONDS * time_scale),
        )

    @property
    def grant_lifetime_seconds(self) -> float:
        """How long after a read its grant may still start calls."""
        return self._lifetime

    def reserve(
        self,
        budget_key: str,
        calls: int,
        deadline: Deadline,
        *,
        pause_until: float = 0.0,
        give_back: Sequence[Unused] = (),
    ) -> BudgetAnswer | None:
        """Book up to `calls` calls now; on the way record a 429 pause until `pause_until` (epoch seconds) and
        give back calls booked before and not made.

        None when the table failed: the caller keeps to its static share for a while.
        """
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                answer = self._try_reserve(budget_key, calls, deadline, pause_until, give_back)
            except _Conflict:
                self._sleep(self._spread(CONFLICT_WAIT_SECONDS))
                continue
            except Exception as exc:
                logger.warning(
                    "rate budget table unavailable; keeping to the static share",
                    extra={"error_type": type(exc).__name__, "error_code": _error_code(exc)},
                )
                return None
            return answer
        # Many instances wrote at once: ask again shortly (contention is not a failure, the table is fine).
        return BudgetAnswer(granted=0, wait_seconds=self._spread(CONFLICT_WAIT_SECONDS * 5))

    def _try_reserve(
        self, budget_key: str, calls: int, deadline: Deadline, pause_until: float, give_back: Sequence[Unused]
    ) -> BudgetAnswer:
        key = {"pk": {"S": "budget#" + budget_key}}
        item = call_within(
            self._call_deadline(deadline),
            "GetItem",
            self._client.get_item,
            TableName=self._table_name,
            Key=key,
            ConsistentRead=True,
        ).get("Item", {})
        read_at = self._wall_clock()
        version = int(item["v"]["N"]) if "v" in item else None
        recorded_pause = float(item["paused_until"]["N"]) if "paused_until" in item else 0.0
        pause = max(recorded_pause, pause_until)
        windows = [window.live(_buckets(item.get(f"w{index}")), read_at) for index, window in enumerate(self._windows)]
        given_back = self._give_back(windows, give_back)
        counted = zip(self._windows, windows, strict=True)
        room = min((window.limit - sum(live.values()) for window, live in counted), default=calls)
        granted = 0 if pause > read_at else max(0, min(calls, room))
        if granted == 0 and pause <= recorded_pause and not given_back:
            return self._wait_answer(windows, read_at, pause)  # nothing to write
        if granted:
            for window, live in zip(self._windows, windows, strict=True):
                bucket = math.floor(read_at / window.bucket_seconds)
                live[bucket] = live.get(bucket, 0) + granted
        self._write(key, version=version, windows=windows, pause=pause, now=read_at, deadline=deadline)
        if not granted:
            return self._wait_answer(windows, read_at, pause)
        # The grant counts from the read: what the write took is gone from it.
        return BudgetAnswer(
            granted=granted, use_within_seconds=self._lifetime - (self._wall_clock() - read_at), booked_at=read_at
        )

    def _give_back(self, windows: list[dict[int, int]], unused: Sequence[Unused]) -> bool:
        """Take calls booked and not made out of the buckets that still count them; True when any was."""
        changed = False
        for booking in unused:
            for window, live in zip(self._windows, windows, strict=True):
                bucket = math.floor(booking.booked_at / window.bucket_seconds)
                if live.get(bucket, 0) > 0 and booking.calls > 0:
                    live[bucket] = max(0, live[bucket] - booking.calls)
                    changed = True
        return changed

    def _write(
        self,
        key: dict[str, Any],
        *,
        version: int | None,
        windows: list[dict[int, int]],
        pause: float,
        now: float,
        deadline: Deadline,
    ) -> None:
        names = {"#v": "v", "#e": "expires_at", "#p": "paused_until"}
        values: dict[str, Any] = {
            ":next": {"N": str((version or 0) + 1)},
            ":expires": {"N": str(math.ceil(max(now, pause)) + self._ttl_seconds)},
            ":pause": {"N": repr(pause)},
        }
        assignments = ["#v = :next", "#e = :expires", "#p = :pause"]
        for index, live in enumerate(windows):
            names[f"#w{index}"] = f"w{index}"
            values[f":w{index}"] = {"M": {str(bucket): {"N": str(count)} for bucket, count in live.items()}}
            assignments.append(f"#w{index} = :w{index}")
        if version is None:
            condition = "attribute_not_exists(#v)"
        else:
            condition = "#v = :read"
            values[":read"] = {"N": str(version)}
        try:
            call_within(
                self._call_deadline(deadline),
                "UpdateItem",
                self._client.update_item,
                TableName=self._table_name,
                Key=key,
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise _Conflict from None
            raise

    def _wait_answer(self, windows: list[dict[int, int]], now: float, pause: float) -> BudgetAnswer:
        """How long until a call may be booked: the pause, or the fullest window's oldest bucket expiring."""
        if pause > now:
            return BudgetAnswer(granted=0, wait_seconds=pause - now, paused=True)
        free_at = max(
            (
                window.free_at(live) + self._spread(window.bucket_seconds * WAKE_SPREAD_FRACTION)
                for window, live in zip(self._windows, windows, strict=True)
                if live and sum(live.values()) >= window.limit
            ),
            default=now,
        )
        return BudgetAnswer(granted=0, wait_seconds=max(0.0, min(free_at - now, self._recheck_seconds)))

    def _call_deadline(self, deadline: Deadline) -> Deadline:
        """The invocation's deadline, or TABLE_CALL_SECONDS from now if that comes first."""
        expires_at = min(deadline.expires_at, deadline.clock() + TABLE_CALL_SECONDS)
        return Deadline(expires_at=expires_at, clock=deadline.clock)


class _Conflict(Exception):  # noqa: N818 - internal signal: another instance wrote first
    """The item changed between our read and our write."""


def _buckets(attribute: Mapping[str, Any] | None) -> dict[int, int]:
    """A window's bucket map as numbers; anything unreadable counts as no bookings there (it expires)."""
    if not attribute or "M" not in attribute:
        return {}
    buckets: dict[int, int] = {}
    for bucket, count in attribute["M"].items():
        try:
            buckets[int(bucket)] = int(count["N"])
        except (KeyError, TypeError, ValueError):
            continue
    return buckets


def _error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def windows_for(*, per_minute: int | None, per_hour: int | None, time_scale: float = 1.0) -> list[RateBudget]:
    """The whole budget (not a share): per-minute and per-hour windows, shrunk by `time_scale` in benchmarks."""
    budgets = []
    if per_minute:
        budgets.append(RateBudget(per_minute, 60.0 * time_scale))
    if per_hour:
        budgets.append(RateBudget(per_hour, 3600.0 * time_scale))
    return budgets
