"""Correlation ids reach every log record; trace spans open named subsegments; SDK debug logs never hold the key."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sequence_archiver.observability import (
    SDK_LOGGERS,
    WITHHELD_SDK_LINE,
    CorrelationIdFilter,
    NoTracing,
    PowertoolsTracing,
    SdkSecretFilter,
    correlation,
    hold_sdk_loggers_at_warning,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


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


# ---------------------------------------------------------------- the SDK's debug logging never prints the secret

KEY = "rk_live_SDK_LOG_MARKER_0123456789"
WATCHED_LOGGERS = (*SDK_LOGGERS, "botocore.parsers", "botocore.endpoint", "")


@pytest.fixture
def sdk_logging_restored() -> Iterator[None]:
    """Put the SDK loggers' levels and filters, and the root handlers' filters, back after the test."""
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    saved = [(each, each.level, list(each.filters)) for each in loggers]
    handlers = list(logging.getLogger().handlers)
    yield
    for each, level, filters in saved:
        each.setLevel(level)
        each.filters[:] = filters
    for handler in {*handlers, *logging.getLogger().handlers}:
        handler.filters[:] = [f for f in handler.filters if not isinstance(f, SdkSecretFilter)]


def read_key_from_mocked_secrets_manager() -> str:
    """Create a secret in moto's in-process mock and read it the way the function does."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from moto import mock_aws

    from sequence_archiver.reply.api_key import SecretsManagerApiKey

    with mock_aws():
        client = boto3.client(
            "secretsmanager", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        arn = client.create_secret(Name="reply/api-key", SecretString=f'{{"apiKey": "{KEY}"}}')["ARN"]
        source = SecretsManagerApiKey(secret_id=arn, provider=SecretsProvider(boto3_client=client), max_age_seconds=0)
        return source.api_key().get_secret_value()


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


@pytest.mark.usefixtures("sdk_logging_restored")
def test_without_the_hold_botocore_debug_logging_prints_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    # The hazard this guards against, shown: the same read with the SDK loggers left to the root level.
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    with caplog.at_level(logging.DEBUG):
        assert read_key_from_mocked_secrets_manager() == KEY

    assert KEY in logged_text(caplog)


@pytest.mark.usefixtures("sdk_logging_restored")
def test_with_root_at_debug_reading_the_secret_logs_nothing_that_holds_it(caplog: pytest.LogCaptureFixture) -> None:
    hold_sdk_loggers_at_warning(opt_in=False)
    with caplog.at_level(logging.DEBUG):
        assert read_key_from_mocked_secrets_manager() == KEY

    assert KEY not in logged_text(caplog)
    assert not [record for record in caplog.records if record.name.split(".")[0] in SDK_LOGGERS]
    assert logging.getLogger("botocore").level == logging.WARNING


@pytest.mark.usefixtures("sdk_logging_restored")
def test_opted_in_sdk_debug_lines_pass_but_secret_bodies_are_withheld(caplog: pytest.LogCaptureFixture) -> None:
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    with caplog.at_level(logging.DEBUG):
        hold_sdk_loggers_at_warning(opt_in=True)
        assert read_key_from_mocked_secrets_manager() == KEY

    assert KEY not in logged_text(caplog)
    sdk_lines = [record.getMessage() for record in caplog.records if record.name.startswith("botocore")]
    assert WITHHELD_SDK_LINE in sdk_lines
    assert len(sdk_lines) > 10  # the rest of the debug output is there


def test_an_sdk_line_that_cannot_be_formatted_is_withheld_and_other_loggers_are_untouched() -> None:
    broken = logging.LogRecord("botocore.parsers", logging.DEBUG, __file__, 1, "%s %s", ("one",), None)
    ours = logging.LogRecord("sequence_archiver.x", logging.INFO, __file__, 1, "SecretString %s", ("a",), None)

    assert SdkSecretFilter().filter(broken)
    assert SdkSecretFilter().filter(ours)
    assert broken.getMessage() == WITHHELD_SDK_LINE
    assert ours.getMessage() == "SecretString a"
