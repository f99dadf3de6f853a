"""Configuration is read once and bad values fail the cold start with the variable's name."""

from __future__ import annotations

import pytest

from sequence_archiver.core.exceptions import ConfigurationError
from sequence_archiver.settings import load_settings

REQUIRED = {"REPLY_API_KEY_SECRET_ID": "reply/api-key"}


def test_defaults_follow_the_contract() -> None:
    settings = load_settings(REQUIRED)

    assert settings.reply_api_base_url == "https://api.reply.io"
    assert settings.results_event_bus_name == "default"
    assert settings.results_event_source == "reply.sequence-archiver"
    assert settings.service_name == "sequence-archiver"
    assert settings.metrics_namespace == "ReplySequenceArchiver"
    assert settings.dead_letter_queue_url is None


def test_the_secret_id_is_required_and_named_in_the_error() -> None:
    with pytest.raises(ConfigurationError, match="REPLY_API_KEY_SECRET_ID"):
        load_settings({})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://localhost:9000/",
        "http://[::1]:8080",
        "https://api.reply.io/",
        "https://eu.example",
    ],
)
def test_https_anywhere_and_plain_http_only_to_loopback(url: str) -> None:
    assert not load_settings({**REQUIRED, "REPLY_API_BASE_URL": url}).reply_api_base_url.endswith("/")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.reply.io", "plain http"),
        ("http://10.0.0.5:8080", "plain http"),
        ("http://127.0.0.1.nip.io", "plain http"),
        ("ftp://api.reply.io", "https://"),
        ("api.reply.io", "https://"),
        ("https://user:secret@api.reply.io", "credentials"),
        ("https://api.reply.io?x=1", "query"),
        ("https://api.reply.io/v3?", "query"),
        ("https://api.reply.io#", "fragment"),
        ("https://api.reply.io/v3#top", "fragment"),
        ("http://127.0.0.1:99999", "port"),
        ("http://127.0.0.1:0", "port"),
        ("https://api.reply.io:443x", "port"),
        ("https://api.reply.io:", "port"),
        ("http://[::1]:70000", "port"),
    ],
)
def test_unsafe_base_urls_are_rejected(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match="REPLY_API_BASE_URL") as excinfo:
        load_settings({**REQUIRED, "REPLY_API_BASE_URL": url})
    assert reason in str(excinfo.value)
    assert "secret@" not in str(excinfo.value)
    assert url not in str(excinfo.value).replace("such as https://api.reply.io", "")  # the example is no quote
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None  # pydantic's error quotes the value


@pytest.mark.parametrize("url", ["https://api.reply.io:443", "http://127.0.0.1:1", "http://localhost:65535/"])
def test_explicit_ports_in_range_are_accepted(url: str) -> None:
    assert load_settings({**REQUIRED, "REPLY_API_BASE_URL": url}).reply_api_base_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("REPLY_MAX_ATTEMPTS", "0"), ("REPLY_READ_TIMEOUT_SECONDS", "-1"), ("SECRET_MAX_AGE_SECONDS", "soon")],
)
def test_bad_tunables_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({**REQUIRED, variable: value})


def test_an_empty_dead_letter_queue_url_means_none() -> None:
    assert load_settings({**REQUIRED, "DEAD_LETTER_QUEUE_URL": ""}).dead_letter_queue_url is None


@pytest.mark.parametrize(
    ("environment", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),
    ],
)
def test_tracing_runs_only_in_lambda_and_unless_disabled(environment: dict[str, str], enabled: bool) -> None:
    assert load_settings({**REQUIRED, **environment}).tracing_enabled is enabled


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("false", False), ("true", True)])
def test_sdk_debug_logging_is_off_unless_opted_in(value: str | None, expected: bool) -> None:
    environment = {**REQUIRED, **({"SDK_DEBUG_LOGGING": value} if value is not None else {})}

    assert load_settings(environment).sdk_debug_logging is expected


def test_clean_ups_are_allowed_only_from_direct_invokes_unless_the_setting_says_otherwise() -> None:
    from sequence_archiver.core.request_report import EventShape

    assert load_settings(REQUIRED).cleanup_allowed_triggers == {EventShape.DIRECT}
    widened = load_settings({**REQUIRED, "CLEANUP_ALLOWED_TRIGGERS": " Direct, sqs,SNS "})
    assert widened.cleanup_allowed_triggers == {EventShape.DIRECT, EventShape.SQS, EventShape.SNS}


@pytest.mark.parametrize(
    ("value", "says"),
    [("direct,kinesis", "unknown trigger name(s) kinesis"), ("", "at least one trigger"), (" , ", "at least one")],
)
def test_an_unknown_or_empty_trigger_list_fails_the_cold_start_naming_the_variable(value: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match="CLEANUP_ALLOWED_TRIGGERS") as raised:
        load_settings({**REQUIRED, "CLEANUP_ALLOWED_TRIGGERS": value})

    assert says in str(raised.value)
    assert "direct, eventbridge" in str(raised.value) or "sqs, eventbridge" in str(raised.value)
