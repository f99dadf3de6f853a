"""`restore` on the local stack: a snapshot read from S3 (moto server) as the function stores it, the console script
asking before it adds many contacts, and snapshots' contacts added again in the Reply simulator (no archive needed:
the snapshot files are made from the simulator's own contact items)."""

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
    from local.stand_ins.reply_simulator import ReplySimulator
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


# ---------------------------------------------------------------- end to end against the Reply simulator


def snapshot_of(simulator: ReplySimulator, sequence_id: int, tmp_path: Path, *extra: dict[str, Any]) -> str:
    """A snapshot file of the sequence's contacts now, as the function would write it (Reply's items as listed)."""
    contacts = [*simulator.contacts(sequence_id), *extra]
    document = {
        **snapshot_document(0, sequence_id=sequence_id),
        "contactCount": len(contacts),
        "contacts": contacts,
    }
    path = tmp_path / f"{sequence_id}.json.gz"
    path.write_bytes(gzip.compress(json.dumps(document).encode()))
    return str(path)


def contact_ids(simulator: ReplySimulator, sequence_id: int) -> list[int]:
    return sorted(int(contact["contactId"]) for contact in simulator.contacts(sequence_id))  # type: ignore[call-overload]


def operations(simulator: ReplySimulator, sequence_id: int) -> list[str | None]:
    return [call.operation for call in simulator.sequence_calls(sequence_id)]


def test_a_snapshot_s_contacts_go_into_another_sequence_and_the_report_counts_added_and_refused(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, tmp_path: Path
) -> None:
    # Given sequence 101's contacts recorded in a snapshot (one finished, one Reply does not know), and contact 2
    # already in sequence 102
    reply_simulator.add_contacts(101, 5, start_id=1)
    reply_simulator.add_contacts(101, 1, start_id=6, status="finished")
    reply_simulator.add_contacts(102, 1, start_id=2)
    unknown = {"contactId": 999_999, "statusInSequence": "paused", "email": "gone@example.com"}
    path = snapshot_of(reply_simulator, 101, tmp_path, unknown)
    base = ["restore", "--snapshot", path, "--to-sequence", "102", "--base-url", reply_simulator.base_url]

    # When a dry run, then the restore (two contacts a call), run
    dry_run = cli(*base, "--dry-run")
    calls_after_dry_run = operations(reply_simulator, 102)
    run = cli(*base, "--contacts-per-call", "2", "--output", "json")

    # Then the dry run sent nothing, and the restore added what Reply could, naming what it refused and why
    assert dry_run.code == 0, dry_run.err
    assert "  POST /v3/sequences/102/contact-links/bulk (6 contacts)" in dry_run.lines
    assert calls_after_dry_run == []
    assert run.code == 1, run.err
    document = json.loads(run.out)
    assert document["counts"] == {
        "added": 4, "already_in_sequence": 1, "refused": 1, "unconfirmed": 0, "not_attempted": 0,
    }  # fmt: skip
    assert document["refusedByReason"] == {"contactNotFound": 1}
    assert [call["httpStatus"] for call in document["calls"]] == [200, 200, 200]
    assert {c["contactId"]: c["outcome"] for c in document["contacts"]} == {
        1: "added", 2: "already_in_sequence", 3: "added", 4: "added", 5: "added", 999_999: "refused",
    }  # fmt: skip
    assert contact_ids(reply_simulator, 102) == [1, 2, 3, 4, 5]  # the finished contact 6 was not asked for
    assert operations(reply_simulator, 102) == ["contact_links"] * 3
    assert "@example.com" not in run.out + run.err


def test_a_restore_run_twice_finds_every_contact_in_the_sequence_and_exits_0(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, tmp_path: Path
) -> None:
    reply_simulator.add_contacts(103, 3, start_id=10, status="paused")
    path = snapshot_of(reply_simulator, 103, tmp_path)
    base = ["restore", "--snapshot", path, "--to-sequence", "104", "--base-url", reply_simulator.base_url]

    first, again = cli(*base), cli(*base)

    assert (first.code, again.code) == (0, 0), first.err + again.err
    assert "added 3 of 3 contacts" in first.lines
    assert "already_in_sequence 3 of 3 contacts" in again.lines
    assert contact_ids(reply_simulator, 104) == [10, 11, 12]
    # enrolled afresh: paused in the snapshot, on the first step and active in the simulator (the spec is silent)
    assert {c["statusInSequence"] for c in reply_simulator.contacts(104)} == {"active"}


def test_more_than_100_contacts_are_added_only_with_yes(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, tmp_path: Path
) -> None:
    reply_simulator.add_contacts(105, 150, start_id=1000)
    path = snapshot_of(reply_simulator, 105, tmp_path)
    base = ["restore", "--snapshot", path, "--to-sequence", "106", "--base-url", reply_simulator.base_url]

    refused = cli(*base)
    calls_after_refusal = operations(reply_simulator, 106)
    confirmed = cli(*base, "--yes")

    assert refused.code == 2
    assert "150 IDs and no terminal to confirm on: re-run with --yes to add them" in refused.err
    assert calls_after_refusal == []
    assert confirmed.code == 0, confirmed.err
    assert contact_ids(reply_simulator, 106) == list(range(1000, 1150))


def test_an_archived_sequence_refuses_the_call_and_the_report_says_why(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, tmp_path: Path
) -> None:
    reply_simulator.add_contacts(107, 3, start_id=20)
    path = snapshot_of(reply_simulator, 107, tmp_path)

    run = cli("restore", "--snapshot", path, "--to-sequence", "401", "--base-url", reply_simulator.base_url,
              "--contacts-per-call", "1", "--output", "json")  # fmt: skip

    assert run.code == 1, run.err
    document = json.loads(run.out)
    assert document["counts"]["refused"] == 1
    assert document["counts"]["not_attempted"] == 2
    assert document["refusedByReason"] == {"sequenceContact.sequenceArchived": 1}
    assert document["stopped"] == "Reply refused a call"
    assert "sequence-archiver restore: stopped: Reply refused a call: Reply refused the call (400): " in run.err
    assert operations(reply_simulator, 401) == ["contact_links"]


@pytest.mark.parametrize(("as_404", "status"), [(True, 404), (False, 501)], ids=["404", "501"])
def test_unarchive_while_reply_does_not_offer_it_stops_with_exit_3_and_adds_nothing(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, tmp_path: Path, as_404: bool, status: int
) -> None:
    reply_simulator.configure(assumptions={"unarchive_coming_soon_as_404": as_404})
    reply_simulator.add_workspace_contacts(3, start_id=30)
    path = write_snapshot(tmp_path, 402, [30, 31, 32])

    run = cli("restore", "--snapshot", path, "--to-sequence", "402", "--unarchive",
              "--base-url", reply_simulator.base_url)  # fmt: skip

    assert run.code == 3
    assert run.err.startswith(f"sequence-archiver restore: error: Reply answered {status} to POST "
                              "/v3/sequences/402/unarchive (")  # fmt: skip
    assert "Reply's unarchive endpoint is not available yet (\"coming soon\" in Reply's API reference)" in run.err
    assert "nothing was added" in run.err
    # a 501 is retried as every 5xx is (--max-attempts), a 404 is final; no contact is sent either way
    assert operations(reply_simulator, 402) == ["unarchive"] * (1 if as_404 else 4)
    assert contact_ids(reply_simulator, 402) == []
    assert reply_simulator.sequence(402).is_archived  # type: ignore[union-attr]


def test_unarchive_once_reply_offers_it_brings_the_sequence_back_then_adds_its_contacts(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, tmp_path: Path
) -> None:
    reply_simulator.configure(assumptions={"unarchive_coming_soon": False})
    reply_simulator.add_workspace_contacts(3, start_id=40)
    path = write_snapshot(tmp_path, 403, [40, 41, 42])

    run = cli("restore", "--snapshot", path, "--to-sequence", "403", "--unarchive",
              "--base-url", reply_simulator.base_url)  # fmt: skip
    again = cli("restore", "--snapshot", path, "--to-sequence", "403", "--unarchive",
                "--base-url", reply_simulator.base_url)  # fmt: skip

    assert run.code == 0, run.err
    assert "sequence 403 unarchived" in run.lines
    assert "added 3 of 3 contacts" in run.lines
    assert not reply_simulator.sequence(403).is_archived  # type: ignore[union-attr]
    assert contact_ids(reply_simulator, 403) == [40, 41, 42]
    assert again.code == 0, again.err  # 409 notArchived: nothing to undo, and the contacts are there already
    assert "sequence 403 was not archived (409)" in again.lines
    assert "already_in_sequence 3 of 3 contacts" in again.lines
    assert operations(reply_simulator, 403) == ["unarchive", "contact_links", "unarchive", "contact_links"]


def write_snapshot(tmp_path: Path, sequence_id: int, ids: list[int]) -> str:
    """A snapshot of an (archived) sequence holding these contacts, all active."""
    document = snapshot_document(0, sequence_id=sequence_id)
    document["contacts"] = [{"contactId": i, "statusInSequence": "active"} for i in ids]
    document["contactCount"] = len(ids)
    path = tmp_path / f"{sequence_id}.json.gz"
    path.write_bytes(gzip.compress(json.dumps(document).encode()))
    return str(path)


def test_ctrl_c_while_waiting_for_the_rate_budget_stops_before_the_next_call_and_reports_what_was_added(
    start_reply_simulator: Callable[..., ReplySimulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    monkeypatch.setenv("REPLY_API_KEY", api_key)
    simulator = start_reply_simulator(rate_limit=None)
    simulator.add_contacts(108, 6, start_id=50)
    path = snapshot_of(simulator, 108, tmp_path)
    # One call a "minute" shrunk to 12 s: the first call at once, then a long wait for the budget.
    args = ["restore", "--snapshot", path, "--to-sequence", "109", "--base-url", simulator.base_url,
            "--contacts-per-call", "2", "--rate-limit-per-minute", "1", "--rate-limit-time-scale", "0.2"]  # fmt: skip

    with TerminalSession(args, env=os.environ) as tty:
        tty.wait_for_terminal("waiting")  # the wait is said on stderr, after the first call
        tty.interrupt()
        finished = tty.finish()

    assert finished.code == 130, finished.terminal
    assert "added 2, not_attempted 4 of 6 contacts" in finished.stdout
    assert "restore: stopped: interrupted (Ctrl-C)" in finished.terminal
    assert "restore: 4 contacts not known to be added: run the same restore again" in finished.terminal
    assert contact_ids(simulator, 109) == [50, 51]
    assert operations(simulator, 109) == ["contact_links"]
