"""The functional tier: the function's whole pipeline (ArchiveService.handle) run in-process against fakes.

No network (pytest-socket refuses every socket), no moto, no HTTP server, no sleeping: Reply, EventBridge, SQS,
DynamoDB and Secrets Manager are the fakes of tests/functional/fakes.py, and every deadline runs on a clock
that only moves when a test moves it. The fakes live in fakes.py, not here, so that test modules import the
one copy of them (a conftest.py is loaded by pytest as a top-level module of its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pytest_socket import disable_socket, enable_socket

from sequence_archiver.archiving.archiver import ArchiveMode
from tests.functional.fakes import (
    FIFO_QUEUE_ARN,
    MAX_RECEIVE_COUNT,
    STANDARD_QUEUE_ARN,
    FakeClock,
    Pipeline,
    PipelineBuilder,
    SqsQueue,
    build_pipeline,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """The functional tier never opens a socket."""
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()


@pytest.fixture
def clock() -> FakeClock:
    """The one clock of the invocation's deadlines, the seal and the Lambda context."""
    return FakeClock()


@pytest.fixture
def pipeline_builder(clock: FakeClock) -> PipelineBuilder:
    """Builds a pipeline on the test's clock: `mode`, `bulk_max_ids`, `idempotency`, `max_receive_count`,
    `dead_letter_queue`."""

    def build(
        *,
        mode: ArchiveMode = ArchiveMode.SINGLE,
        bulk_max_ids: int = 100,
        idempotency: bool = False,
        max_receive_count: int = MAX_RECEIVE_COUNT,
        dead_letter_queue: bool = True,
    ) -> Pipeline:
        return build_pipeline(
            clock,
            mode=mode,
            bulk_max_ids=bulk_max_ids,
            idempotency=idempotency,
            max_receive_count=max_receive_count,
            dead_letter_queue=dead_letter_queue,
        )

    return build


@pytest.fixture
def pipeline(pipeline_builder: PipelineBuilder) -> Pipeline:
    """The default pipeline: single archive calls, no idempotency table, maxReceiveCount 4."""
    return pipeline_builder()


@pytest.fixture
def queue() -> SqsQueue:
    """The standard request queue."""
    return SqsQueue(STANDARD_QUEUE_ARN)


@pytest.fixture
def fifo_queue() -> SqsQueue:
    """A FIFO request queue."""
    return SqsQueue(FIFO_QUEUE_ARN)
