"""Integration fixtures: a moto server, fresh AWS resources and a Reply simulator per test, all on loopback."""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import urllib3

from local.scenarios.lambda_instance import forget_warm_state, fresh_handler
from local.stand_ins.aws_stack import (
    create_idempotency_table,
    function_environment,
    provision,
    read_results_events,
    start_moto_server,
    unique_name_prefix,
    variables_to_unset,
)
from local.stand_ins.lambda_context import LocalLambdaContext
from tests.integration.harness import PLAN_DETAIL_TYPE, validate_plan
from tests.integration.simulator_http import KEY, Api

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.reply_simulator import ReplySimulator

ALL_SCOPES = frozenset({"sequences:read", "sequences:operate", "sequences:write"})


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the whole session; tests isolate themselves by resource names, not servers."""
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_key() -> str:
    """A per-test API key that is easy to grep for, to prove it never leaks into logs or results."""
    return f"rk_live_TESTKEY_{uuid.uuid4().hex}"


@pytest.fixture
def aws_stack(request: pytest.FixtureRequest, moto_server: MotoServer, api_key: str) -> LocalStack:
    """Fresh resources with a unique name prefix; parametrize indirectly with "bare" for a bare-string secret."""
    secret_format = getattr(request, "param", "json")
    return provision(
        moto_server.endpoint_url,
        api_key=api_key,
        name_prefix=unique_name_prefix("it"),
        secret_format=secret_format,
    )


@pytest.fixture
def start_reply_simulator(api_key: str) -> Iterator[Callable[..., ReplySimulator]]:
    """Factory: start a ReplySimulator (keyword arguments pass through), stopped after the test."""
    from local.stand_ins.reply_simulator import ReplySimulator

    started: list[ReplySimulator] = []

    def start(**kwargs: Any) -> ReplySimulator:
        kwargs.setdefault("api_keys", {api_key: ALL_SCOPES})
        simulator = ReplySimulator(**kwargs)
        simulator.start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in reversed(started):
        simulator.stop()


@pytest.fixture
def reply_simulator(start_reply_simulator: Callable[..., ReplySimulator]) -> ReplySimulator:
    """A seeded Reply simulator that accepts this test's api_key with every scope."""
    return start_reply_simulator()


@pytest.fixture
def function_env(
    aws_stack: LocalStack, reply_simulator: ReplySimulator, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the function at this test's stack and simulator through the process environment."""
    environment = function_environment(aws_stack, reply_base_url=reply_simulator.base_url)
    assert api_key not in environment.values(), "the key belongs in Secrets Manager, not the environment"
    for name in variables_to_unset(os.environ):
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def load_handler(function_env: dict[str, str]) -> Iterator[Callable[[], LambdaInstance]]:
    """Factory: a new Lambda instance (a cold start reading the current environment) through `create_handler`.

    The function's modules stay imported, so exception classes imported when the test module loaded are the
    function's own. Powertools' per-process state (the service logger, cold-start flags, shared metric sets) is
    reset on each call, as a new process would have it, and once more after the test.
    """
    service_name = function_env["POWERTOOLS_SERVICE_NAME"]
    registry = logging.Logger.manager.loggerDict
    saved_logger = registry.get(service_name)

    def load() -> LambdaInstance:
        return fresh_handler()

    yield load
    forget_warm_state(os.environ.get("POWERTOOLS_SERVICE_NAME", service_name))
    if saved_logger is not None:
        registry[service_name] = saved_logger


@pytest.fixture
def lambda_context() -> Callable[..., LocalLambdaContext]:
    """Factory for LocalLambdaContext; keyword arguments pass through (timeout_seconds, clock...)."""

    def make(**kwargs: Any) -> LocalLambdaContext:
        return LocalLambdaContext(**kwargs)

    return make


@pytest.fixture
def idempotency_table(aws_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> str:
    """A table shaped like the template's IdempotencyTable, named in the function's environment."""
    name = aws_stack.queue_url.rsplit("/", 1)[-1] + "-idempotency"
    create_idempotency_table(aws_stack, name)
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", name)
    return name


@pytest.fixture
def plan_events(aws_stack: LocalStack) -> Callable[..., list[dict[str, Any]]]:
    """Route plan events to the results sink too; the factory reads `expected` of them back, validated."""
    events = aws_stack.events()
    rule = aws_stack.results_rule_name + "-plans"
    events.put_rule(
        Name=rule,
        EventBusName=aws_stack.results_bus_name,
        EventPattern=json.dumps({"detail-type": [PLAN_DETAIL_TYPE]}),
        State="ENABLED",
    )
    events.put_targets(
        Rule=rule,
        EventBusName=aws_stack.results_bus_name,
        Targets=[{"Id": "plans", "Arn": aws_stack.results_sink_queue_arn}],
    )

    def read(expected: int) -> list[dict[str, Any]]:
        envelopes = read_results_events(aws_stack, expected=expected)
        plans = [envelope["detail"] for envelope in envelopes if envelope["detail-type"] == PLAN_DETAIL_TYPE]
        for plan in plans:
            validate_plan(plan)
        return plans

    return read


# The simulator's own tests (test_reply_simulator*.py): an HTTP pool and simulators started on demand.


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    """A urllib3 pool that never retries, so every fault is seen as sent."""
    manager = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=5.0), maxsize=8)
    yield manager
    manager.clear()


@pytest.fixture
def make_api(http: urllib3.PoolManager) -> Iterator[Callable[..., Api]]:
    """Start simulators (rate limit off and key `test-key` unless told) and stop them afterwards."""
    from local.stand_ins.reply_simulator import ReplySimulator

    started: list[ReplySimulator] = []

    def factory(**options: Any) -> Api:
        options.setdefault("api_keys", {KEY: ALL_SCOPES})
        options.setdefault("rate_limit", None)
        simulator = ReplySimulator(**options)
        simulator.start()
        started.append(simulator)
        return Api(simulator, http)

    yield factory
    for simulator in started:
        simulator.stop()
