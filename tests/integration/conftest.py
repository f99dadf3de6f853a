"""Integration fixtures: a moto server, fresh AWS resources and a Reply simulator per test, all on loopback."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import uuid
from typing import TYPE_CHECKING, Any

import pytest

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

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.reply_simulator import ReplySimulator

ALL_SCOPES = frozenset({"sequences:read", "sequences:operate", "sequences:write"})


# Process-wide flags Powertools flips after the first invocation; a new Lambda process starts with them set.
_COLD_START_FLAGS = (
    "aws_lambda_powertools.metrics.provider.cold_start",
    "aws_lambda_powertools.metrics.base",
    "aws_lambda_powertools.logging.logger",
    "aws_lambda_powertools.tracing.tracer",
)


def _is_handler_module(name: str) -> bool:
    """True for the handler module and every module of the sequence_archiver package."""
    return name == "app" or name.split(".", 1)[0] == "sequence_archiver"


def _handler_logger_names(service_name: str) -> list[str]:
    """Names of the stdlib loggers the handler configures: its service logger and its modules' loggers."""
    return [
        name
        for name in logging.Logger.manager.loggerDict
        if name == service_name or name.split(".", 1)[0] == "sequence_archiver"
    ]


def _forget_warm_state(service_name: str) -> None:
    """Undo what a previous import or invocation left in this process, as a fresh Lambda process would."""
    for name in [name for name in sys.modules if _is_handler_module(name)]:
        del sys.modules[name]
    # Powertools reuses a configured logger (and its handler, bound to an older sys.stdout) by name.
    for name in _handler_logger_names(service_name):
        del logging.Logger.manager.loggerDict[name]
    for module_name in _COLD_START_FLAGS:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "is_cold_start"):
            module.is_cold_start = True
    from aws_lambda_powertools import Metrics

    for attribute in ("_metrics", "_dimensions", "_metadata", "_default_dimensions"):
        shared = getattr(Metrics, attribute, None)  # class-level dicts shared by every Metrics instance
        if isinstance(shared, dict):
            shared.clear()


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
def load_handler(function_env: dict[str, str]) -> Iterator[Callable[[], ModuleType]]:
    """Factory: import `app` afresh (a cold start reading the current environment) and return the module.

    Every sequence_archiver module is re-imported too, so exception classes must be taken from the fresh
    modules (import them after calling the factory), not from imports made when the test module loaded.
    Powertools' cold-start flags, shared metric sets and configured loggers are reset on each call; the
    modules and loggers that existed before the test are put back afterwards, so other tests are unaffected.
    """
    service_name = function_env["POWERTOOLS_SERVICE_NAME"]
    saved_modules = {name: module for name, module in sys.modules.items() if _is_handler_module(name)}
    registry = logging.Logger.manager.loggerDict
    saved_loggers = {name: registry[name] for name in _handler_logger_names(service_name)}

    def load() -> ModuleType:
        _forget_warm_state(os.environ.get("POWERTOOLS_SERVICE_NAME", service_name))
        return importlib.import_module("app")

    yield load
    _forget_warm_state(service_name)
    sys.modules.update(saved_modules)
    registry.update(saved_loggers)


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
