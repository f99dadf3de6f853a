"""`restore` on the local stack: a snapshot read from S3 (moto server) as the function stores it, the console script
asking before it adds many contacts."""

from __future__ import annotations

import gzip
import json
import os
import uuid
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import boto3_session
from tests.cli.terminal import TerminalSession, run_without_terminal
from tests.cli.test_restore_offline import snapshot_document

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from local.stand_ins.aws_stack import MotoServer
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]


@pytest.fixture
def bucket(moto_server: MotoServer) -> tuple[Any, str]:
    """A fresh bucket on the moto server, and an S3 client for it."""
    s3: Any = boto3_session("us-east-1").client("s3", endpoint_url=moto_server.endpoint_url)
    name = f"snapshots-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return s3, name


def test_a_snapshot_in_s3_is_read_as_the_function_stores_it(cli: Callable[..., Run], bucket: tuple[Any, str]) -> None:
    # Given a snapshot object as the function's store writes it (gzip JSON, Content-Encoding gzip)
    s3, name = bucket
    key = "snapshots/default/101/20261207T101500.000000Z-req-1.json.gz"
    body = gzip.compress(json.dumps(snapshot_document(12)).encode(), mtime=0)
    s3.put_object(Bucket=name, Key=key, Body=body, ContentType="application/json", ContentEncoding="gzip")

    # When restore reads it for a dry run
    run = cli("restore", "--snapshot", f"s3://{name}/{key}", "--to-sequence", "202", "--dry-run", "--output", "json")

    # Then its contacts are counted and nothing is sent anywhere
    assert run.code == 0, run.err
    document = json.loads(run.out)
    assert document["snapshot"]["source"] == f"s3://{name}/{key}"
    assert document["selectedByStatus"] == {"active": 3, "paused": 3, "outOfOffice": 2}
    assert document["calls"] == ["POST /v3/sequences/202/contact-links/bulk (8 contacts)"]


def test_an_s3_object_that_cannot_be_read_is_exit_3_naming_it(cli: Callable[..., Run], bucket: tuple[Any, str]) -> None:
    _, name = bucket
    uri = f"s3://{name}/snapshots/default/101/missing.json.gz"

    run = cli("restore", "--snapshot", uri, "--to-sequence", "202", "--dry-run")

    assert run.code == 3
    assert run.err.strip() == (
        f"sequence-archiver restore: error: cannot read the snapshot {uri}: S3 refused the call: NoSuchKey: "
        "The specified key does not exist."
    )


# ---------------------------------------------------------------- the console script, in real processes


def test_the_console_script_asks_on_the_terminal_above_100_contacts_and_no_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    monkeypatch.setenv("REPLY_API_KEY", api_key)
    path = tmp_path / "s.json.gz"
    path.write_bytes(gzip.compress(json.dumps(snapshot_document(200)).encode()))
    args = ["restore", "--snapshot", str(path), "--to-sequence", "202", "--base-url", "http://127.0.0.1:9"]

    with TerminalSession(args, env=os.environ) as tty:
        tty.wait_for_terminal("add 120 contacts of sequence 101's snapshot to sequence 202 in Reply? Reply enrols "
                              "them afresh, from the first step. [y/N] ")  # fmt: skip
        tty.type("n")
        declined = tty.finish()
    unattended = run_without_terminal(args, env=os.environ)
    dry_run = run_without_terminal([*args, "--dry-run", "--output", "json"], env=os.environ)

    assert declined.code == 2
    assert "sequence-archiver restore: error: not confirmed: nothing was done" in declined.terminal
    assert unattended.returncode == 2
    assert "120 IDs and no terminal to confirm on: re-run with --yes to add them" in unattended.stderr
    assert dry_run.returncode == 0, dry_run.stderr
    assert json.loads(dry_run.stdout)["selected"] == 120
