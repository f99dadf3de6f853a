"""`archive` against the Reply simulator: the function's core end to end, without AWS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.cli.test_enqueue import closed_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]
BULK_PATH = "/v3/sequences/archive"


def rows(run: Run) -> dict[str, list[str]]:
    """sequenceId → the other cells of the outcome table (split on runs of spaces)."""
    table = {}
    for line in run.lines[2:-1]:
        cells = [cell for cell in line.split("  ") if cell.strip()]
        table[cells[0].strip()] = [cell.strip() for cell in cells[1:]]
    return table


def test_archive_end_to_end_flips_the_simulators_state(
    cli: Callable[..., Run], reply_simulator: ReplySimulator
) -> None:
    run = cli("archive", "--base-url", reply_simulator.base_url, "101", "102", "301", "401", "501", "999", "x")

    assert run.code == 1, run.err  # the conflict, the forbidden and the invalid value need attention
    table = rows(run)
    # Items of a 200 bulk answer have no HTTP status of their own ("-"); a refusal reads as the single
    # endpoint's code would, never as "forbidden 200".
    assert table["101"] == ["archived", "bulk", "-"]
    assert table["301"][:3] == ["conflict", "bulk", "-"]
    assert table["301"][3].startswith("sequenceAction.invalidState: ")
    assert table["401"] == ["already_archived", "bulk", "-", "sequenceAction.archived: Sequence is already archived."]
    assert table["501"][:3] == ["forbidden", "bulk", "-"]
    assert table["501"][3].startswith("sequenceAction.forbidden: ")
    assert table["999"] == ["not_found", "bulk", "-", "sequenceAction.notFound: Sequence with ID 999 not found."]
    assert table['("x")'][:2] == ["invalid", "-"]
    assert run.lines[-1] == ("totals: archived 2, already_archived 1, not_found 1, forbidden 1, conflict 1, invalid 1")
    for sequence_id in (101, 102):
        sequence = reply_simulator.sequence(sequence_id)
        assert sequence is not None
        assert sequence.is_archived
    assert [r.path for r in reply_simulator.requests] == [BULK_PATH]  # auto mode: one bulk call


def test_single_mode_and_json_output_and_a_clean_run_exits_0(
    cli: Callable[..., Run], reply_simulator: ReplySimulator
) -> None:
    run = cli("archive", "--base-url", reply_simulator.base_url, "--mode", "single", "--format", "json", "103", "201")

    assert run.code == 0
    document = json.loads(run.out)
    assert document["counts"]["archived"] == 2
    assert document["results"][0]["sequence"] == {"name": "Seed 103 (paused)", "status": "paused", "isArchived": True}
    assert [r.path for r in reply_simulator.requests] == ["/v3/sequences/103/archive", "/v3/sequences/201/archive"]


def test_pause_first_archives_a_running_sequence(cli: Callable[..., Run], reply_simulator: ReplySimulator) -> None:
    run = cli("archive", "--base-url", reply_simulator.base_url, "--pause-first", "--mode", "single", "302")

    assert run.code == 0, run.out
    assert rows(run)["302"] == ["archived", "single", "200", "paused first"]
    sequence = reply_simulator.sequence(302)
    assert sequence is not None
    assert (sequence.status, sequence.is_archived) == ("paused", True)


def test_ids_from_stdin_and_the_key_from_secrets_manager(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, aws_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPLY_API_KEY")

    run = cli(
        "archive", "--base-url", reply_simulator.base_url, "--secret-id", aws_stack.secret_arn, "-",
        stdin="# from select\n104\n105\n104\n",
    )  # fmt: skip

    assert run.code == 0, run.err
    assert sorted(rows(run)) == ["104", "105"]


def test_a_rejected_key_and_an_unreachable_reply_are_exit_3(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLY_API_KEY", "rk_not_this_one")

    rejected = cli("archive", "--base-url", reply_simulator.base_url, "101", "102")
    unreachable = cli("archive", "--base-url", f"http://127.0.0.1:{closed_port()}", "--max-attempts", "1", "101")

    assert rejected.code == unreachable.code == 3
    assert rejected.err.strip() == "sequence-archiver archive: error: Reply rejected the API key (401)"
    assert rows(rejected)["101"][0] == "failed"
    assert unreachable.err.startswith("sequence-archiver archive: error: Reply unreachable: no answer from Reply")
    assert not reply_simulator.sequence(101).is_archived  # type: ignore[union-attr]
