"""`archive --budget-table`: an operator's run books its calls in the function's shared rate budget table."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import create_rate_budget_table
from sequence_archiver.aws.rate_budget import SharedRateBudget
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.rate_budgets import key_fingerprint
from tests.integration.test_rate_budget import dynamodb_client

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.reply_simulator import ReplySimulator
    from sequence_archiver.core.rate_budgets import BudgetAnswer
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]


@pytest.fixture
def budget_table(aws_stack: LocalStack) -> str:
    name = aws_stack.queue_url.rsplit("/", 1)[-1] + "-rate-budget"
    create_rate_budget_table(aws_stack, name)
    return name


def book_as_the_function(
    moto_server: MotoServer, stack: LocalStack, table: str, api_key: str, *, per_minute: int, calls: int
) -> BudgetAnswer | None:
    """Book `calls` calls in the key's budget as a function instance would."""
    function = SharedRateBudget.for_limits(
        dynamodb_client=dynamodb_client(moto_server.endpoint_url, stack.region),
        table_name=table,
        per_minute=per_minute,
        per_hour=None,
    )
    return function.reserve(key_fingerprint(api_key), calls, Deadline(expires_at=time.monotonic() + 10))


def test_a_run_beside_the_function_waits_for_what_the_function_booked(
    cli: Callable[..., Run],
    reply_simulator: ReplySimulator,
    moto_server: MotoServer,
    aws_stack: LocalStack,
    budget_table: str,
    api_key: str,
) -> None:
    # Given: the function's instances booked all 10 calls of this minute for the key
    booked = book_as_the_function(moto_server, aws_stack, budget_table, api_key, per_minute=10, calls=10)
    assert booked is not None
    assert booked.granted == 10

    # When: an operator archives two IDs with the same key, on the same table, with 5 s to spare
    common = ["--base-url", reply_simulator.base_url, "--rate-limit-per-minute", "10", "--rate-limit-per-hour", "0"]
    run = cli("archive", *common, "--budget-table", budget_table, "--mode", "single", "--time-limit", "5", "103", "201")

    # Then: it made no call (the minute is spent), so no 429, and says the IDs are still to do
    assert run.code != 0
    assert not [request for request in reply_simulator.requests if request.path.startswith("/v3/")]
    assert "not attempted" in run.err

    # And: without the table it would have gone ahead (and been the 11th and 12th call of the minute)
    alone = cli("archive", *common, "--mode", "single", "--time-limit", "5", "103", "201")
    assert alone.code == 0, alone.out


def test_a_run_books_its_calls_for_the_function_to_see(
    cli: Callable[..., Run],
    reply_simulator: ReplySimulator,
    moto_server: MotoServer,
    aws_stack: LocalStack,
    budget_table: str,
    api_key: str,
) -> None:
    common = ["--base-url", reply_simulator.base_url, "--rate-limit-per-minute", "3", "--rate-limit-per-hour", "0"]
    run = cli("archive", *common, "--budget-table", budget_table, "--mode", "single", "103", "201")
    assert run.code == 0, run.out
    answer = book_as_the_function(moto_server, aws_stack, budget_table, api_key, per_minute=3, calls=3)
    assert answer is not None
    assert answer.granted == 1  # the run's two calls are counted in the key's budget
