"""CLI fixtures: the integration fixtures (moto server, stack, Reply simulator) plus an in-process runner."""

from __future__ import annotations

import io
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from pytest_socket import disable_socket, enable_socket

from sequence_archiver_cli.main import main
from tests.integration.conftest import *  # noqa: F403 - moto_server, aws_stack, reply_simulator, load_handler...

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from local.stand_ins.aws_stack import LocalStack, MotoServer


@dataclass(frozen=True)
class Run:
    """What one in-process run of the CLI left behind."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """stdout's lines."""
        return self.out.splitlines()


# What `make stack` exports for the CLI's defaults: a developer's shell may hold them; a test sets those it means.
STACK_DEFAULT_VARIABLES = ("REPLY_BASE_URL", "QUEUE_URL", "RESULTS_LOG_GROUP", "RESULTS_SINK_QUEUE_URL")


@pytest.fixture(autouse=True)
def _no_stack_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CLI default comes from the developer's shell."""
    for name in STACK_DEFAULT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _loggers_as_they_were() -> Iterator[None]:
    """A run of the CLI configures the package loggers (its handler, its level, no propagation): put them back, so a
    later test in the same worker (pytest-xdist) still sees their records with caplog."""
    loggers = [logging.getLogger(name) for name in ("sequence_archiver", "sequence_archiver_cli")]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    yield
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def no_network() -> Iterator[None]:
    """Unit tests of the CLI refuse every socket, like tests/unit."""
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, api_key: str) -> Callable[..., Run]:
    """Run `sequence-archiver ARGS` in-process (stdin text optional); the API key must appear nowhere."""
    # Tables fit $COLUMNS when it is set; pytest-xdist's workers set it (80), so a test sets it when it means to.
    monkeypatch.delenv("COLUMNS", raising=False)

    def run(*args: str, stdin: str = "") -> Run:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        # In-process runs never ask the developer's own terminal: they behave as with no terminal (cron, CI).
        monkeypatch.setattr("sequence_archiver_cli.confirmation.open_controlling_terminal", lambda: None)
        code = main(list(args))
        captured = capsys.readouterr()
        assert api_key not in captured.out + captured.err, "the API key leaked into the CLI's output"
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer, api_key: str) -> dict[str, str]:
    """The environment an operator would have: AWS_ENDPOINT_URL on the local stack and REPLY_API_KEY."""
    environment = {"AWS_ENDPOINT_URL": moto_server.endpoint_url, "REPLY_API_KEY": api_key}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def queue_bodies(aws_stack: LocalStack) -> Callable[[], list[str]]:
    """Factory: read (and delete) every message body on the stack's request queue."""
    from local.stand_ins.aws_stack import drain_queue

    def read() -> list[str]:
        return [m["Body"] for m in drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url)]

    return read
