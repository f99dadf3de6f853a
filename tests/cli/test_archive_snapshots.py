"""`archive --snapshot-dir` / `--snapshot-bucket`: each sequence's contacts stored before its archive call, the
same objects the function writes, and `restore` reading them back into another sequence (Reply simulator, moto)."""

from __future__ import annotations

import gzip
import json
import stat
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import boto3_session

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from local.stand_ins.aws_stack import MotoServer
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]


def results_by_id(run: Run) -> dict[int, dict[str, Any]]:
    return {int(result["sequenceId"]): result for result in json.loads(run.out)["results"]}


def test_archive_stores_each_sequence_s_contacts_in_the_folder_before_archiving_and_restore_reads_them_back(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, tmp_path: Path
) -> None:
    # Given sequence 101 with 1,200 active and 300 finished contacts, 102 with none, and an empty sequence 950
    reply_simulator.add_contacts(101, 1200, status="active")
    reply_simulator.add_contacts(101, 300, status="finished", start_id=1201)
    reply_simulator.add_sequence(950, name="Restored", status="paused")
    folder = tmp_path / "snapshots"

    # When both are archived with --snapshot-dir
    run = cli(
        "archive", "--base-url", reply_simulator.base_url, "--snapshot-dir", str(folder), "--format", "json",
        "101", "102",
    )  # fmt: skip

    # Then each is archived, its result names its snapshot file, and the file lists every contact it had
    assert run.code == 0, run.err
    results = results_by_id(run)
    assert {sequence_id: result["outcome"] for sequence_id, result in results.items()} == {
        101: "archived", 102: "archived",
    }  # fmt: skip
    path = Path(results[101]["snapshot"])
    assert path.is_relative_to(folder)
    assert path.parts[-3:-1] == ("_default", "101")
    document = json.loads(gzip.decompress(path.read_bytes()))
    assert document["sequenceId"] == 101
    assert document["contactCount"] == 1500
    assert len({contact["contactId"] for contact in document["contacts"]}) == 1500
    assert document["requestIds"][0].startswith("cli-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # personal data: owner only
    assert json.loads(gzip.decompress(Path(results[102]["snapshot"]).read_bytes()))["contacts"] == []
    operations = [call.operation for call in reply_simulator.sequence_calls(101)]
    assert operations.index("archive" if "archive" in operations else "bulk") > operations.index("contacts")
    assert operations.count("contacts") == 2  # 1,000 a page
    assert reply_simulator.contacts(101) == []  # archiving removed them, as Reply says

    # When restore puts the unfinished ones into sequence 950
    restored = cli(
        "restore", "--snapshot", str(path), "--to-sequence", "950", "--base-url", reply_simulator.base_url,
        "--yes", "--output", "json",
    )  # fmt: skip

    # Then Reply added the 1,200 active contacts (the finished ones are not asked for by default)
    assert restored.code == 0, restored.err
    assert json.loads(restored.out)["counts"]["added"] == 1200
    assert len(reply_simulator.contacts(950)) == 1200


def test_a_snapshot_folder_that_cannot_be_written_archives_nothing_and_says_why(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, tmp_path: Path
) -> None:
    # Given a file where the snapshot folder should be
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    reply_simulator.add_contacts(101, 3)

    # When archiving with it
    run = cli(
        "archive", "--base-url", reply_simulator.base_url, "--snapshot-dir", str(blocker), "--format", "json", "101",
    )  # fmt: skip

    # Then nothing is archived, and the outcome says the snapshot could not be stored
    assert run.code != 0
    sequence = reply_simulator.sequence(101)
    assert sequence is not None
    assert not sequence.is_archived
    assert len(reply_simulator.contacts(101)) == 3
    assert "snapshot folder" in run.out + run.err
    assert all(call.operation != "archive" for call in reply_simulator.requests)


def test_archive_with_a_snapshot_bucket_writes_the_object_the_function_would(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, moto_server: MotoServer
) -> None:
    # Given a bucket on the local S3
    s3: Any = boto3_session("us-east-1").client("s3", endpoint_url=moto_server.endpoint_url)
    bucket = f"snapshots-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    reply_simulator.add_contacts(103, 7)

    # When archiving with --snapshot-bucket
    run = cli(
        "archive", "--base-url", reply_simulator.base_url, "--snapshot-bucket", bucket, "--region", "us-east-1",
        "--format", "json", "103",
    )  # fmt: skip

    # Then the result names the S3 object, which holds the seven contacts
    assert run.code == 0, run.err
    uri = results_by_id(run)[103]["snapshot"]
    assert uri.startswith(f"s3://{bucket}/snapshots/_default/103/")
    body = s3.get_object(Bucket=bucket, Key=uri.removeprefix(f"s3://{bucket}/"))["Body"].read()
    assert json.loads(gzip.decompress(body))["contactCount"] == 7
