"""Every documented exit code through the installed console script, in real processes, plus the aws-cli habits a
script relies on: a closed stdout is exit 141 with a summary on stderr, a bad profile or no credentials is one line
and exit 3, AWS_REGION alone is the region used, and `make stack`'s exports stand in for the flags.

0, 1 and 2 are here too; 130 (Ctrl-C) is in test_archive_stream.py, where a pseudo-terminal delivers it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import logs_client
from local.stand_ins.reply_simulator import ReplySimulator
from sequence_archiver_cli.errors import EXIT_CODES_EPILOG, ExitCode
from tests.cli.terminal import console_script, run_without_terminal, without_width
from tests.integration.conftest import ALL_SCOPES
from tests.integration.harness import invoke_with_sqs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator.messages import HttpRequest, HttpResponse

pytestmark = pytest.mark.integration
CAMPAIGN = list(range(30_000, 30_140))  # 140 IDs, as in the issue
TIMEOUT_SECONDS = 60


class GatedSimulator(ReplySimulator):
    """The Reply simulator, holding every API request after the first `free` until `release()`.

    A test decides when the command's next answer arrives, so "the reader closed the pipe before the command wrote
    again" is an order of events the test makes, not a race it hopes to win.
    """

    def __init__(self, *, free: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._free = free
        self._seen = 0
        self._lock = threading.Lock()
        self._gate = threading.Event()

    def release(self) -> None:
        """Let every held request (and every later one) through."""
        self._gate.set()

    def _dispatch(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/v3"):
            with self._lock:
                self._seen += 1
                held = self._seen > self._free
            if held:
                self._gate.wait(timeout=TIMEOUT_SECONDS)
        return super()._dispatch(request)


@pytest.fixture
def gated_simulator(api_key: str) -> Iterator[GatedSimulator]:
    """A simulator that answers the first API call and holds the next ones until the test releases them."""
    simulator = GatedSimulator(free=1, api_keys={api_key: ALL_SCOPES})
    simulator.start()
    yield simulator
    simulator.release()
    simulator.stop()


def environment(**extra: str) -> dict[str, str]:
    """The test's environment (dummy AWS credentials, us-east-1, empty AWS config files) with `extra` on top."""
    return without_width(os.environ) | extra


def reading_lines_then_closing(
    args: Sequence[str], *, env: Mapping[str, str], lines: int, stdin: bytes = b""
) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start the console script with stdout on a pipe; read `lines` lines from it and close it, as `| head` does."""
    process = subprocess.Popen(
        [console_script(), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(stdin)
    process.stdin.close()
    read = [process.stdout.readline().decode() for _ in range(lines)]
    process.stdout.close()
    return process, read


def finished(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """The exit code and stderr of a process started by reading_lines_then_closing."""
    code = process.wait(timeout=TIMEOUT_SECONDS)
    assert process.stderr is not None
    err = process.stderr.read().decode()
    process.stderr.close()
    return code, err


def with_stdout_closed(args: Sequence[str], *, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The console script with stdout a pipe whose reader is already gone (`| true`, a `head` that exited)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [console_script(), *args],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=dict(env),
            text=True,
            start_new_session=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        os.close(write_end)


# ---------------------------------------------------------------- the documented codes


def test_the_documented_exit_codes_are_the_exit_codes() -> None:
    documented = {int(code) for code in re.findall(r"^  (\d+)  ", EXIT_CODES_EPILOG, flags=re.MULTILINE)}

    assert documented == {int(code) for code in ExitCode} == {0, 1, 2, 3, 130, 141}


def test_0_1_and_2_through_the_console_script(aws_stack: LocalStack, tmp_path: Path) -> None:
    env = environment(AWS_ENDPOINT_URL=aws_stack.endpoint_url)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")

    dry_run = run_without_terminal(["enqueue", "--queue-url", aws_stack.queue_url, "--dry-run", "101"], env=env)
    nothing_read = run_without_terminal(["report", "--log-group", aws_stack.results_log_group_name], env=env)
    no_ids = run_without_terminal(["enqueue", "--queue-url", aws_stack.queue_url, "--file", str(empty)], env=env)

    assert dry_run.returncode == 0, dry_run.stderr
    assert nothing_read.returncode == 1
    assert "no results events in log group" in nothing_read.stderr
    assert no_ids.returncode == 2
    assert "Traceback" not in dry_run.stderr + nothing_read.stderr + no_ids.stderr


# ---------------------------------------------------------------- 141: stdout closed


def test_archive_into_head_2_stops_exits_141_and_says_what_was_done(
    gated_simulator: GatedSimulator, api_key: str
) -> None:
    gated_simulator.add_sequences(CAMPAIGN, status="paused")
    args = ["archive", "--base-url", gated_simulator.base_url, "--mode", "bulk", "--bulk-max-ids", "2", "--yes"]
    stdin = "".join(f"{sequence_id}\n" for sequence_id in CAMPAIGN).encode()

    # Given `archive ... --output jsonl | head -2`: the first call's two outcomes are read, then the reader goes.
    process, first = reading_lines_then_closing(
        [*args, "--output", "jsonl", "-"], env=environment(REPLY_API_KEY=api_key), lines=2, stdin=stdin
    )
    gated_simulator.release()  # the second call's answer arrives after the pipe closed
    code, err = finished(process)

    assert [json.loads(line)["sequenceId"] for line in first] == CAMPAIGN[:2]
    assert code == 141
    assert err == (
        "sequence-archiver archive: stopped: stdout was closed: 4 of 140 IDs have an outcome (archived 4), 2 of them "
        "not printed; 136 IDs not attempted: archive them again (an ID already archived is reported as such)\n"
    )
    archived = [i for i in CAMPAIGN if gated_simulator.sequence(i).is_archived]  # type: ignore[union-attr]
    assert archived == CAMPAIGN[:4]  # no call started after the pipe closed
    assert api_key not in err


def test_select_into_head_stops_listing_and_exits_141(gated_simulator: GatedSimulator, api_key: str) -> None:
    args = ["select", "--base-url", gated_simulator.base_url, "--status", "paused", "--page-size", "5"]

    process, first = reading_lines_then_closing(args, env=environment(REPLY_API_KEY=api_key), lines=1)
    gated_simulator.release()
    code, err = finished(process)

    assert first[0].strip().isdigit()
    assert code == 141
    assert err == (
        "sequence-archiver select: stopped: stdout was closed before every sequence was listed; select changes "
        "nothing in Reply: run it again\n"
    )


def test_report_from_a_sink_queue_whose_stdout_closed_deletes_nothing_and_exits_141(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given one results event on the sink queue (the real handler archived two IDs against the simulator):
    invoke_with_sqs(load_handler(), aws_stack, [json.dumps({"sequenceIds": [101, 102]})], lambda_context())
    env = environment(AWS_ENDPOINT_URL=aws_stack.endpoint_url)

    run = with_stdout_closed(
        ["report", "--queue-url", aws_stack.results_sink_queue_url, "--wait-seconds", "1"], env=env
    )

    assert run.returncode == 141
    assert run.stderr == (
        "sequence-archiver report: stopped: stdout was closed before the report was all written; no message was "
        "deleted from the queue (what was read is visible again)\n"
    )
    attributes = aws_stack.sqs().get_queue_attributes(
        QueueUrl=aws_stack.results_sink_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    # read, not deleted, and visible again at once for the next report
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "1",
        "0",
    )


def test_a_closed_stdout_with_stderr_closed_too_is_still_141_and_quiet(aws_stack: LocalStack) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        code = subprocess.run(
            [console_script(), "report", "--log-group", aws_stack.results_log_group_name],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=write_end,  # `|&` into a reader that is gone
            env=environment(AWS_ENDPOINT_URL=aws_stack.endpoint_url),
            start_new_session=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        ).returncode
    finally:
        os.close(write_end)

    assert code == 141  # not 120: Python's flush at exit found nothing to complain about


# ---------------------------------------------------------------- 3: AWS configuration


def aws_touching_commands(stack: LocalStack, simulator_url: str) -> dict[str, list[str]]:
    """One command line per way the CLI reaches AWS."""
    return {
        "report --log-group": ["report", "--log-group", stack.results_log_group_name],
        "report --queue-url": ["report", "--queue-url", stack.results_sink_queue_url, "--wait-seconds", "0"],
        "enqueue": ["enqueue", "--queue-url", stack.queue_url, "101"],
        "select --secret-id": ["select", "--base-url", simulator_url, "--secret-id", stack.secret_name],
        "archive --secret-id": ["archive", "--base-url", simulator_url, "--secret-id", stack.secret_name, "101"],
    }


def test_an_unknown_profile_is_one_line_and_exit_3_for_every_command_that_touches_aws(
    aws_stack: LocalStack, reply_simulator: ReplySimulator, tmp_path: Path
) -> None:
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("", encoding="utf-8")
    credentials.write_text("", encoding="utf-8")
    env = environment(
        AWS_PROFILE="unknown",
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_ENDPOINT_URL=aws_stack.endpoint_url,
    )

    for name, args in aws_touching_commands(aws_stack, reply_simulator.base_url).items():
        run = run_without_terminal(args, env=env)

        assert run.returncode == 3, (name, run.stderr)
        assert run.stderr.count("\n") == 1, (name, run.stderr)
        assert "AWS profile 'unknown' (from AWS_PROFILE) is not in the AWS config or credentials file" in run.stderr
        assert run.stdout == "", name
    assert reply_simulator.requests == []

    flag = run_without_terminal(["report", "--profile", "other", "--log-group", "g"], env=env)
    assert (flag.returncode, flag.stderr.count("\n")) == (3, 1)
    assert "AWS profile 'other' (from --profile)" in flag.stderr


def test_no_credentials_is_one_line_and_exit_3(aws_stack: LocalStack) -> None:
    env = {name: value for name, value in environment().items() if not name.startswith("AWS_ACCESS_KEY_ID")}
    env.pop("AWS_SECRET_ACCESS_KEY", None)

    run = run_without_terminal(
        ["report", "--log-group", aws_stack.results_log_group_name, "--endpoint-url", aws_stack.endpoint_url], env=env
    )

    assert run.returncode == 3
    assert run.stderr == (
        "sequence-archiver report: error: CloudWatch Logs: no usable AWS credentials: configure a profile "
        "(--profile, AWS_PROFILE) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY\n"
    )


# ---------------------------------------------------------------- the region, and the stack's exports


def test_aws_region_alone_is_the_region_the_cli_uses(moto_server: MotoServer, aws_stack: LocalStack) -> None:
    ireland = f"{aws_stack.results_log_group_name}-in-ireland"
    logs_client(moto_server.endpoint_url, "eu-west-1").create_log_group(logGroupName=ireland)
    env = {name: value for name, value in environment().items() if name != "AWS_DEFAULT_REGION"}
    env |= {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": moto_server.endpoint_url}

    in_ireland = run_without_terminal(["report", "--log-group", ireland], env=env)
    in_virginia = run_without_terminal(["report", "--log-group", aws_stack.results_log_group_name], env=env)

    assert in_ireland.returncode == 1  # found, and empty
    assert f"no results events in log group {ireland}" in in_ireland.stderr
    assert in_virginia.returncode == 3
    assert f"log group {aws_stack.results_log_group_name} does not exist in eu-west-1" in in_virginia.stderr


def test_the_stacks_exports_stand_in_for_the_flags(
    aws_stack: LocalStack, reply_simulator: ReplySimulator, api_key: str
) -> None:
    env = environment(
        AWS_ENDPOINT_URL=aws_stack.endpoint_url,
        REPLY_API_KEY=api_key,
        REPLY_BASE_URL=reply_simulator.base_url,
        QUEUE_URL=aws_stack.queue_url,
        RESULTS_LOG_GROUP=aws_stack.results_log_group_name,
    )

    selected = run_without_terminal(["select", "--status", "paused", "--limit", "3"], env=env)
    enqueued = run_without_terminal(["enqueue", "-"], env=env, stdin=selected.stdout.encode())
    reported = run_without_terminal(["report"], env=env)

    assert selected.returncode == 0, selected.stderr
    assert len(selected.stdout.splitlines()) == 3
    assert enqueued.returncode == 0, enqueued.stderr
    assert enqueued.stdout.startswith(f"sent 1 message (3 IDs) to {aws_stack.queue_url}")
    assert reported.returncode == 1  # nothing published yet: the warning names the group it read
    assert f"log group {aws_stack.results_log_group_name}" in reported.stderr
