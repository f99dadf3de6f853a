"""Correlation ids reach every log record; trace spans open named, annotated subsegments."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sequence_archiver.observability import CorrelationIdFilter, NoTracing, PowertoolsTracing, correlation

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest


def test_records_inside_a_correlation_block_carry_its_id(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("sequence_archiver.test")
    caplog.handler.addFilter(CorrelationIdFilter())
    with caplog.at_level(logging.INFO, logger="sequence_archiver.test"):
        with correlation("msg-1"):
            logger.info("inside")
            with correlation(["msg-1", "msg-2"]):
                logger.info("batch")
        logger.info("outside")

    assert [getattr(r, "correlation_id", None) for r in caplog.records] == ["msg-1", ["msg-1", "msg-2"], None]


class FakeSubsegment:
    def __init__(self) -> None:
        self.annotations: dict[str, Any] = {}

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value


class FakeProvider:
    def __init__(self) -> None:
        self.opened: list[tuple[str, FakeSubsegment]] = []

    @contextmanager
    def in_subsegment(self, name: str) -> Iterator[FakeSubsegment]:
        subsegment = FakeSubsegment()
        self.opened.append((name, subsegment))
        yield subsegment


class FakeTracer:
    def __init__(self) -> None:
        self.provider = FakeProvider()


def test_powertools_tracing_opens_an_annotated_subsegment() -> None:
    tracer = FakeTracer()
    with PowertoolsTracing(tracer).span("## reply.ArchiveSequence", operation="ArchiveSequence"):  # type: ignore[arg-type]
        pass
    [(name, subsegment)] = tracer.provider.opened
    assert name == "## reply.ArchiveSequence"
    assert subsegment.annotations == {"operation": "ArchiveSequence"}


def test_no_tracing_is_a_no_op() -> None:
    with NoTracing().span("anything", key="value"):
        pass
