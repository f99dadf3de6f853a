"""aws-cli habits: the region and profile decided as aws-cli v2 decides them, and the environment defaults that
`make stack` exports (REPLY_BASE_URL, QUEUE_URL, RESULTS_LOG_GROUP, RESULTS_SINK_QUEUE_URL), each beaten by its flag."""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING

import pytest

from sequence_archiver_cli.aws import logs_client, sqs_client
from sequence_archiver_cli.common import aws_from, resolve_environment_defaults
from sequence_archiver_cli.main import build_parser

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from local.stand_ins.aws_stack import LocalStack
    from tests.cli.conftest import Run

CONFIG = """\
[default]
region = us-west-1
[profile team]
region = ap-southeast-2
"""
LOCAL_QUEUE = "http://127.0.0.1:9/123456789012/requests"


def regions(argv: list[str]) -> tuple[str, str]:
    """The region of the Logs client and of the SQS client the command line's arguments make (no call is made)."""
    args = build_parser().parse_args(["report", "--log-group", "g", *argv])
    resolve_environment_defaults(args, os.environ)
    options = aws_from(args)
    return logs_client(options).meta.region_name, sqs_client(options, queue_url=LOCAL_QUEUE).meta.region_name


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("argv", "environment", "region"),
    [
        pytest.param([], {}, "us-west-1", id="the default profile's"),
        pytest.param([], {"AWS_PROFILE": "team"}, "ap-southeast-2", id="AWS_PROFILE's profile"),
        pytest.param(["--profile", "team"], {}, "ap-southeast-2", id="--profile's profile"),
        pytest.param(["--profile", "default"], {"AWS_PROFILE": "team"}, "us-west-1", id="--profile over AWS_PROFILE"),
        pytest.param(
            ["--profile", "team"], {"AWS_DEFAULT_REGION": "eu-central-1"}, "eu-central-1", id="AWS_DEFAULT_REGION"
        ),
        pytest.param(
            ["--profile", "team"],
            {"AWS_DEFAULT_REGION": "eu-central-1", "AWS_REGION": "eu-west-1"},
            "eu-west-1",
            id="AWS_REGION over AWS_DEFAULT_REGION",
        ),
        pytest.param(
            ["--region", "sa-east-1"],
            {"AWS_DEFAULT_REGION": "eu-central-1", "AWS_REGION": "eu-west-1"},
            "sa-east-1",
            id="--region over both",
        ),
    ],
)
def test_the_region_is_decided_as_aws_cli_v2_decides_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], environment: dict[str, str], region: str
) -> None:
    config = tmp_path / "config"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert regions(argv) == (region, region)


@pytest.mark.usefixtures("no_network")
def test_with_an_endpoint_aws_region_alone_is_the_region_not_us_east_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with_region = regions(["--endpoint-url", "http://127.0.0.1:9"])
    monkeypatch.delenv("AWS_REGION")
    without = regions(["--endpoint-url", "http://127.0.0.1:9"])

    assert with_region == ("eu-west-1", "eu-west-1")
    assert without == ("us-east-1", "us-east-1")  # a local endpoint with no region at all: moto's default


@pytest.mark.usefixtures("no_network")
def test_no_region_anywhere_says_to_set_aws_region(cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)

    run = cli("report", "--log-group", "g")

    assert run.code == 3
    assert run.err == (
        "sequence-archiver report: error: no AWS region configured: pass --region or set AWS_REGION "
        "(or a region in the profile)\n"
    )


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("command", "flag", "variable"),
    [
        ("select", "--base-url", "REPLY_BASE_URL"),
        ("archive", "--base-url", "REPLY_BASE_URL"),
        ("enqueue", "--queue-url", "QUEUE_URL"),
        ("report", "--log-group", "RESULTS_LOG_GROUP"),
        ("report", "--queue-url", "RESULTS_SINK_QUEUE_URL"),
        ("report", "--region", "AWS_REGION"),
        ("enqueue", "--profile", "AWS_PROFILE"),
    ],
)
def test_help_names_each_flags_variable(cli: Callable[..., Run], command: str, flag: str, variable: str) -> None:
    run = cli(command, "--help")

    # The option's entry: its line in the options list and the wrapped lines under it, whitespace folded.
    lines = run.out.splitlines()
    start = next(number for number, line in enumerate(lines) if re.match(rf"  {flag}\b", line))
    end = next(number for number in range(start + 1, len(lines)) if not lines[number].startswith(" " * 20))
    assert f"${variable}" in " ".join(" ".join(lines[start:end]).split())


@pytest.mark.usefixtures("no_network")
def test_reply_base_url_is_the_default_and_the_flag_wins(
    cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLY_BASE_URL", "http://api.reply.io")  # plain http to a remote host: refused

    from_variable = cli("archive", "--dry-run", "101")
    from_flag = cli("archive", "--dry-run", "--base-url", "https://api.reply.io", "101")
    monkeypatch.setenv("REPLY_BASE_URL", "")
    empty = cli("archive", "--dry-run", "101")

    assert from_variable.code == 2
    assert from_variable.err == (
        "sequence-archiver archive: error: REPLY_BASE_URL: plain http is only allowed to a loopback host "
        "(local testing); use https://\n"
    )
    assert from_flag.code == 0, from_flag.err
    assert empty.code == 0, empty.err  # an empty variable is no value, as ${REPLY_BASE_URL:-...} reads it


@pytest.mark.usefixtures("no_network")
def test_queue_url_is_the_default_of_enqueue_and_the_flag_wins(
    cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEUE_URL", "http://127.0.0.1:9/123456789012/from-the-variable")

    from_variable = cli("enqueue", "--dry-run", "--output", "json", "101")
    from_flag = cli("enqueue", "--dry-run", "--output", "json", "--queue-url", "http://127.0.0.1:9/1/flag", "101")

    assert from_variable.code == from_flag.code == 0
    assert json.loads(from_variable.out)["queueUrl"] == "http://127.0.0.1:9/123456789012/from-the-variable"
    assert json.loads(from_flag.out)["queueUrl"] == "http://127.0.0.1:9/1/flag"


def test_report_reads_results_log_group_when_no_source_is_given(
    cli: Callable[..., Run],
    cli_env: dict[str, str],
    aws_stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    del cli_env
    monkeypatch.setenv("RESULTS_LOG_GROUP", aws_stack.results_log_group_name)
    monkeypatch.setenv("RESULTS_SINK_QUEUE_URL", aws_stack.results_sink_queue_url)
    events = tmp_path / "results.jsonl"
    events.write_text('{"not": "a results event"}\n', encoding="utf-8")

    from_variable = cli("report")
    from_file = cli("report", "--file", str(events))  # another source given: the variable is not read

    assert from_variable.code == 1
    assert f"no results events in log group {aws_stack.results_log_group_name} since" in from_variable.err
    assert "log group" not in from_file.out + from_file.err
    assert "that are not results events" in from_file.out


def test_report_drains_results_sink_queue_url_only_when_asked_for(
    cli: Callable[..., Run], cli_env: dict[str, str], aws_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    del cli_env
    monkeypatch.setenv("RESULTS_SINK_QUEUE_URL", aws_stack.results_sink_queue_url)

    not_asked = cli("report")
    asked = cli("report", "--queue-url", "--wait-seconds", "0")

    assert not_asked.code == 2  # a sink queue is drained by reading it: never the silent default
    assert "choose a source" in not_asked.err
    assert asked.code == 1
    assert "no results events on the queue" in asked.err
