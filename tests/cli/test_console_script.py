"""The installed `sequence-archiver` console script, in real processes: a whole campaign through a pipe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sequence_archiver.core.archive_request import parse_message_body

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration
SCRIPT = shutil.which("sequence-archiver", path=str(Path(sys.executable).parent))


@pytest.fixture
def script() -> str:
    if SCRIPT is None:
        pytest.fail("the sequence-archiver console script is not installed in this venv (run `make venv`)")
    return SCRIPT


def test_select_piped_into_enqueue(
    script: str,
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    queue_bodies: Callable[[], list[str]],
    api_key: str,
) -> None:
    environment = {
        **os.environ,
        "AWS_ENDPOINT_URL": aws_stack.endpoint_url,
        "REPLY_API_KEY": api_key,
    }
    select = subprocess.Popen(
        [script, "select", "--base-url", reply_simulator.base_url, "--status", "paused", "--page-size", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    enqueue = subprocess.run(
        [script, "enqueue", "--queue-url", aws_stack.queue_url, "--ids-per-message", "10", "-"],
        stdin=select.stdout,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert select.stdout is not None
    select.stdout.close()
    select_err = select.stderr.read().decode() if select.stderr else ""
    assert select.wait(timeout=60) == 0, select_err

    assert enqueue.returncode == 0, enqueue.stderr
    assert enqueue.stdout.startswith("sent 3 messages (23 IDs) to ")
    ids = sorted(i for body in queue_bodies() for i in parse_message_body(body).sequence_ids)
    assert ids == [*range(101, 121), 601, 701, 702]
    assert api_key not in enqueue.stdout + enqueue.stderr + select_err


def test_exit_codes_of_the_real_process(script: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")

    help_run = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    bad = subprocess.run(
        [script, "enqueue", "--queue-url", "http://127.0.0.1:9/1/q", "--file", str(empty)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert help_run.returncode == 0
    assert "exit codes:" in help_run.stdout
    assert bad.returncode == 2
    assert bad.stderr.startswith("sequence-archiver enqueue: error: no sequence IDs in the input")
    assert "Traceback" not in bad.stderr
