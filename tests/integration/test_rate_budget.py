"""The shared rate budget (aws/rate_budget.py) on a real DynamoDB endpoint (moto's server, over HTTP).

Every instance books its Reply calls in one item per Reply user: a lone instance gets the whole budget
(not its static share), concurrent instances never exceed any window together, a 429 pause one instance
records stops the others, and a table that hangs costs at most the time the call was given before the
instance falls back to its static share.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest

from local.stand_ins.aws_stack import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    create_rate_budget_table,
)
from local.stand_ins.fault_proxy import FaultProxy
from sequence_archiver.aws.rate_budget import TABLE_CALL_SECONDS, SharedRateBudget
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import SequenceArchiveIncomplete
from sequence_archiver.core.rate_budgets import RateBudget, key_fingerprint
from sequence_archiver.reply.rate_limiter import RateLimiter
from sequence_archiver.wiring import AWS_CLIENT_CONFIG

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

BUDGET_KEY = "key:" + "0" * 32
ALLOWED_OVERRUN_SECONDS = 0.3


def dynamodb_client(endpoint_url: str, region: str) -> Any:
    """A DynamoDB client with the function's own configuration."""
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY_ID, aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY, region_name=region
    )
    return session.client("dynamodb", endpoint_url=endpoint_url, config=AWS_CLIENT_CONFIG)


@pytest.fixture
def budget_table(aws_stack: LocalStack) -> str:
    name = aws_stack.queue_url.rsplit("/", 1)[-1] + "-rate-budget"
    create_rate_budget_table(aws_stack, name)
    return name


def limiter_on(
    endpoint_url: str,
    stack: LocalStack,
    table: str,
    budget: RateBudget,
    *,
    instances: int = 2,
    grant_lifetime_seconds: float = 0.5,
) -> RateLimiter:
    """One instance's limiter: its static share of `budget`, and the shared budget in `table`."""
    shared = SharedRateBudget(
        dynamodb_client=dynamodb_client(endpoint_url, stack.region),
        table_name=table,
        budgets=[budget],
        grant_lifetime_seconds=grant_lifetime_seconds,
    )
    return RateLimiter([budget.share(instances)], instances=instances, shared=shared)


def calls_started_without_waiting(limiter: RateLimiter, deadline: Deadline, *, most: int) -> int:
    """Start calls as long as the limiter lets them start at once (at most `most`)."""
    started = 0
    while started < most:
        wait, _ = limiter.next_wait(deadline, BUDGET_KEY)
        if wait > 0:
            break
        if limiter.take_call():
            started += 1
    return started


def test_a_lone_instance_draws_the_whole_budget_not_its_static_share(
    moto_server: MotoServer, aws_stack: LocalStack, budget_table: str
) -> None:
    # Given: a budget of 10 calls a minute, statically shared by 2 instances (5 each), and the table
    limiter = limiter_on(moto_server.endpoint_url, aws_stack, budget_table, RateBudget(10, 60.0))
    deadline = Deadline(expires_at=time.monotonic() + 20)

    # When: one instance calls as fast as it may
    started = calls_started_without_waiting(limiter, deadline, most=50)

    # Then: it got all 10, and the 11th waits (asking the table again after a tenth of the window at most)
    assert started == 10
    wait, paused = limiter.next_wait(deadline, BUDGET_KEY)
    assert 5 < wait <= 0.1 * 62
    assert not paused
    assert limiter.sharing


def test_a_second_instance_gets_only_what_the_first_left(
    moto_server: MotoServer, aws_stack: LocalStack, budget_table: str
) -> None:
    # Given: two instances on one budget of 10 a minute; the first took 7
    budget = RateBudget(10, 60.0)
    first = limiter_on(moto_server.endpoint_url, aws_stack, budget_table, budget)
    second = limiter_on(moto_server.endpoint_url, aws_stack, budget_table, budget)
    deadline = Deadline(expires_at=time.monotonic() + 20)
    assert calls_started_without_waiting(first, deadline, most=7) == 7

    # When: the second calls as fast as it may, then the first once more
    second_started = calls_started_without_waiting(second, deadline, most=50)
    first_more = calls_started_without_waiting(first, deadline, most=50)

    # Then: the second got what the first had not booked (the first books a few calls ahead): not its static
    # 5, and never more than the 10 together; then both wait for the window
    assert 1 <= second_started <= 3
    assert 7 + first_more + second_started <= 10
    assert first.next_wait(deadline, BUDGET_KEY)[0] > 5
    assert second.next_wait(deadline, BUDGET_KEY)[0] > 5


def test_budgets_of_different_users_are_apart(
    moto_server: MotoServer, aws_stack: LocalStack, budget_table: str
) -> None:
    limiter = limiter_on(moto_server.endpoint_url, aws_stack, budget_table, RateBudget(3, 60.0))
    deadline = Deadline(expires_at=time.monotonic() + 20)
    assert calls_started_without_waiting(limiter, deadline, most=10) == 3
    other = limiter_on(moto_server.endpoint_url, aws_stack, budget_table, RateBudget(3, 60.0))
    other_user = key_fingerprint("another user's key")
    for _ in range(3):
        assert other.next_wait(deadline, other_user)[0] == 0
        assert other.take_call()
    assert other.next_wait(deadline, other_user)[0] > 5


def test_concurrent_instances_never_exceed_any_window_together(
    moto_server: MotoServer, aws_stack: LocalStack, budget_table: str
) -> None:
    # Given: six instances (threads, each with its own client) on one budget of 12 calls per 1.5 s
    budget = RateBudget(12, 1.5)
    limiters = [limiter_on(moto_server.endpoint_url, aws_stack, budget_table, budget, instances=6) for _ in range(6)]
    send_times: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 5.0

    def run(limiter: RateLimiter) -> None:
        deadline = Deadline(expires_at=stop_at + 5)
        while time.monotonic() < stop_at:
            wait, _ = limiter.next_wait(deadline, BUDGET_KEY)
            if wait > 0:
                time.sleep(min(wait, max(0.0, stop_at - time.monotonic())))
                continue
            # A call's moment is taken just before take_call, which checks its grant at that moment or later:
            # the budget bounds those checks. Not after it returns: six threads and the moto server share one
            # process (and its GIL) on a loaded host, and a stall after the check is not the budget's to bound (in
            # production the windows' slack, 0.6 s a minute, covers it).
            asked = time.monotonic()
            if limiter.take_call():
                with lock:
                    send_times.append(asked)
                time.sleep(0.005)  # the call itself

    # When: they all call as fast as they may for 5 s
    threads = [threading.Thread(target=run, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then: no sliding window of 1.5 s holds more than 12 calls (so no fixed window does either)
    send_times.sort()
    busiest = max(
        sum(1 for moment in send_times[index:] if moment < start + budget.window_seconds)
        for index, start in enumerate(send_times)
    )
    assert send_times, "no call was booked at all"
    assert busiest <= budget.limit
    assert all(limiter.sharing for limiter in limiters), "contention is not a table failure"


def test_a_429_pause_one_instance_records_stops_the_others(
    moto_server: MotoServer, aws_stack: LocalStack, budget_table: str
) -> None:
    # Given: two instances; the second holds a grant (one lasting long enough for a loaded host's table calls)
    budget = RateBudget(100, 60.0)
    first = limiter_on(moto_server.endpoint_url, aws_stack, budget_table, budget, grant_lifetime_seconds=10.0)
    second = limiter_on(moto_server.endpoint_url, aws_stack, budget_table, budget, grant_lifetime_seconds=10.0)
    deadline = Deadline(expires_at=time.monotonic() + 60)
    assert second.next_wait(deadline, BUDGET_KEY)[0] == 0

    # When: Reply answers the first instance 429 with Retry-After: 30
    first.pause(30.0)
    first_wait, first_paused = first.next_wait(deadline, BUDGET_KEY)  # records the pause in the table

    # Then: the second instance, once its grant is used, waits out the same pause
    assert second.take_call()
    wait, paused = second.next_wait(deadline, BUDGET_KEY)
    assert first_paused
    assert paused
    assert 20.0 < wait <= 30.0
    assert 20.0 < first_wait <= 30.0


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy before the moto server; afterwards, the table calls abandoned at their deadline are waited
    for (their own socket timeouts end them), so none is still retrying when the next test on this worker runs."""
    with FaultProxy(moto_server.endpoint_url) as started:
        yield started
    for thread in threading.enumerate():
        if thread.name in {"aws-GetItem", "aws-UpdateItem"}:
            thread.join(timeout=20)


@pytest.mark.parametrize("operation", ["GetItem", "UpdateItem"])
def test_a_hanging_table_costs_one_bounded_call_then_the_static_share_rules(
    operation: str, proxy: FaultProxy, aws_stack: LocalStack, budget_table: str
) -> None:
    # Given: the table's endpoint never answers this operation
    proxy.hang("dynamodb", operations={operation})
    limiter = limiter_on(proxy.endpoint_url, aws_stack, budget_table, RateBudget(10, 60.0), instances=2)
    deadline = Deadline(expires_at=time.monotonic() + 5)

    # When: the instance asks for a call
    started = time.monotonic()
    wait, _ = limiter.next_wait(deadline, BUDGET_KEY)
    used = time.monotonic() - started

    # Then: it waited at most one table call's bound, and keeps to its static share (5 of 10) from then on
    assert used <= TABLE_CALL_SECONDS + ALLOWED_OVERRUN_SECONDS
    assert wait == 0
    assert not limiter.sharing
    assert limiter.take_call()
    assert calls_started_without_waiting(limiter, deadline, most=50) == 4
    assert deadline.remaining_seconds() > 0


def test_a_hanging_table_never_outlasts_a_short_deadline(
    proxy: FaultProxy, aws_stack: LocalStack, budget_table: str
) -> None:
    proxy.hang("dynamodb")
    limiter = limiter_on(proxy.endpoint_url, aws_stack, budget_table, RateBudget(10, 60.0))
    deadline = Deadline(expires_at=time.monotonic() + 0.4)
    started = time.monotonic()
    limiter.next_wait(deadline, BUDGET_KEY)
    assert time.monotonic() - started <= 0.4 + ALLOWED_OVERRUN_SECONDS


def test_the_item_holds_counts_and_a_fingerprint_never_the_key(
    moto_server: MotoServer, aws_stack: LocalStack, budget_table: str, api_key: str
) -> None:
    limiter = limiter_on(moto_server.endpoint_url, aws_stack, budget_table, RateBudget(10, 60.0))
    deadline = Deadline(expires_at=time.monotonic() + 20)
    assert limiter.next_wait(deadline, key_fingerprint(api_key))[0] == 0
    items = dynamodb_client(moto_server.endpoint_url, aws_stack.region).scan(TableName=budget_table)["Items"]
    assert len(items) == 1
    assert items[0]["pk"]["S"] == "budget#" + key_fingerprint(api_key)
    assert api_key not in repr(items)
    assert int(items[0]["expires_at"]["N"]) > time.time() + 60


def archive_twenty(
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
    simulator: ReplySimulator,
    *,
    timeout_seconds: int = 30,
) -> dict[str, Any]:
    """One invocation (30 s unless told) archiving 20 IDs under a budget of 20 a minute shared by 2 instances."""
    ids = list(range(7000, 7020))
    simulator.add_sequences(ids, status="paused")
    context = lambda_context(timeout_seconds=timeout_seconds)
    detail: dict[str, Any] = load_handler().lambda_handler({"sequenceIds": ids}, context)
    return detail


@pytest.fixture
def twenty_a_minute(
    start_reply_simulator: Callable[..., ReplySimulator],
    aws_stack: LocalStack,
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> ReplySimulator:
    """A simulator allowing 20 calls a minute; the function told so, with REPLY_RATE_LIMIT_INSTANCES=2."""
    from local.stand_ins.aws_stack import function_environment
    from local.stand_ins.reply_simulator import RateLimit

    simulator = start_reply_simulator(rate_limit=RateLimit(per_minute=20, per_hour=None))
    for name, value in function_environment(aws_stack, reply_base_url=simulator.base_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_MINUTE", "20")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_HOUR", "0")
    monkeypatch.setenv("REPLY_RATE_LIMIT_INSTANCES", "2")
    monkeypatch.setenv("DEADLINE_SAFETY_MARGIN_SECONDS", "5")
    return simulator


def test_with_the_table_a_lone_invocation_archives_the_whole_budget(
    twenty_a_minute: ReplySimulator,
    aws_stack: LocalStack,
    budget_table: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("RATE_BUDGET_TABLE_NAME", budget_table)
    detail = archive_twenty(load_handler, lambda_context, twenty_a_minute)
    assert detail["counts"]["archived"] == 20
    assert not [request for request in twenty_a_minute.requests if request.status == 429]


def test_without_the_table_a_lone_invocation_keeps_to_its_static_share(
    twenty_a_minute: ReplySimulator,
    aws_stack: LocalStack,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    with pytest.raises(SequenceArchiveIncomplete) as raised:
        archive_twenty(load_handler, lambda_context, twenty_a_minute)
    counts = cast("dict[str, int]", raised.value.detail["counts"])
    assert counts["archived"] == 10  # its share; the other 10 wait for the next minute
    assert counts["failed"] == 10
    assert not [request for request in twenty_a_minute.requests if request.status == 429]


class SimulatedTime:
    """One clock for every simulated instance: monotonic and wall time advance together, only when told."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.mark.parametrize("instances", [1, 3])
def test_in_simulated_time_instances_together_use_most_of_every_window_and_never_more(
    instances: int, moto_server: MotoServer, aws_stack: LocalStack, budget_table: str
) -> None:
    # Given: Reply's 100 calls a minute; instances whose calls take 50 ms each, on one simulated clock
    clock = SimulatedTime()
    budget = RateBudget(100, 60.0)
    limiters = [
        RateLimiter(
            [budget.share(instances)],
            instances=instances,
            clock=clock.monotonic,
            wall_clock=clock.time,
            shared=SharedRateBudget(
                dynamodb_client=dynamodb_client(moto_server.endpoint_url, aws_stack.region),
                table_name=budget_table,
                budgets=[budget],
                wall_clock=clock.time,
                sleep=clock.sleep,
                spread=lambda most: most / 2,
            ),
        )
        for _ in range(instances)
    ]
    deadline = Deadline(expires_at=clock.now + 10_000, clock=clock.monotonic)
    next_turn = [clock.now] * instances
    sends: list[float] = []
    end = clock.now + 10 * budget.window_seconds

    # When: each takes its turn as soon as it may, for ten minutes
    while min(next_turn) < end:
        index = next_turn.index(min(next_turn))
        clock.now = max(clock.now, next_turn[index])
        wait, _ = limiters[index].next_wait(deadline, BUDGET_KEY)
        if wait <= 0 and limiters[index].take_call():
            sends.append(clock.now)
            next_turn[index] = clock.now + 0.05
        else:
            next_turn[index] = clock.now + max(wait, 0.001)

    # Then: no sliding minute holds more than 100 calls, and together they made at least 90% of the ideal
    busiest = max(sum(1 for moment in sends[i:] if moment < start + 60.0) for i, start in enumerate(sends))
    assert busiest <= 100
    assert len(sends) >= 0.9 * 100 * 10


def test_with_the_table_hanging_an_invocation_keeps_to_its_static_share_and_its_deadline(
    twenty_a_minute: ReplySimulator,
    budget_table: str,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given: the budget table's endpoint never answers
    monkeypatch.setenv("RATE_BUDGET_TABLE_NAME", budget_table)
    for name, value in proxy.endpoint_variables(["dynamodb"]).items():
        monkeypatch.setenv(name, value)
    proxy.hang("dynamodb")

    # When: a 10 s invocation archives 20 IDs under a budget of 20 a minute shared by 2 instances
    started = time.monotonic()
    with pytest.raises(SequenceArchiveIncomplete) as raised:
        archive_twenty(load_handler, lambda_context, twenty_a_minute, timeout_seconds=10)
    used = time.monotonic() - started

    # Then: it ended in time, kept to its static share (10), and Reply refused nothing
    assert used <= 10 + ALLOWED_OVERRUN_SECONDS
    counts = cast("dict[str, int]", raised.value.detail["counts"])
    assert counts["archived"] == 10
    assert not [request for request in twenty_a_minute.requests if request.status == 429]
