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
    nowhere = f"http://127.0.0.1:{closed_port()}"
    unreachable = cli("archive", "--base-url", nowhere, "--max-attempts", "1", "101")

    assert rejected.code == unreachable.code == 3
    assert (
        rejected.err.strip() == "sequence-archiver archive: error: Reply rejected the API key from $REPLY_API_KEY (401)"
    )
    assert rows(rejected)["101"][0] == "failed"
    assert [r.status for r in reply_simulator.requests] == [401]  # a variable's key has nothing to re-read
    assert unreachable.err.startswith(f"sequence-archiver archive: error: cannot reach Reply at {nowhere}: no answer")
    assert not reply_simulator.sequence(101).is_archived  # type: ignore[union-attr]


def test_a_rejected_key_names_its_source_the_variable_or_the_secret(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, aws_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRONG_KEY", "rk_not_this_one")
    base = ["archive", "--base-url", reply_simulator.base_url, "--mode", "single", "--output", "jsonl"]

    from_variable = cli(*base, "--api-key-env", "WRONG_KEY", "101", "102")
    reply_simulator.set_api_keys({"rk_rotated": frozenset({"sequences:operate"})})  # the secret's key is revoked
    from_secret = cli(*base, "--secret-id", aws_stack.secret_arn, "101", "102")

    assert from_variable.code == from_secret.code == 3
    assert from_variable.err.splitlines()[-1] == (
        "sequence-archiver archive: error: Reply rejected the API key from $WRONG_KEY (401)"
    )
    assert from_secret.err.splitlines()[-1] == (
        f"sequence-archiver archive: error: Reply rejected the API key from the secret {aws_stack.secret_arn} (401), "
        "even after re-reading it"
    )
    for run in (from_variable, from_secret):
        [line] = [json.loads(line) for line in run.lines]  # 102 was not attempted: no outcome is made up for it
        assert (line["sequenceId"], line["outcome"], line["httpStatus"]) == (101, "failed", 401)
        assert "sequence-archiver archive: 1 ID not attempted: archive them again" in run.err
        assert "re-reading" not in from_variable.err


@pytest.mark.parametrize("output", ["ids", "json"])
def test_dry_run_prints_the_ids_that_would_be_archived_and_calls_nothing_not_even_for_a_key(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    monkeypatch.delenv("REPLY_API_KEY")
    many = [str(sequence_id) for sequence_id in range(1000, 1150)]  # more than 100: a dry run asks nothing

    run = cli("archive", "--base-url", reply_simulator.base_url, "--dry-run", "--output", output,
              "101", "102", "101", "x", *many)  # fmt: skip

    assert run.code == 1  # the rejected value needs attention
    expected = [101, 102, *range(1000, 1150)]
    if output == "ids":
        assert [int(line) for line in run.lines] == expected
    else:
        document = json.loads(run.out)
        assert document["sequenceIds"] == expected
        assert document["ids"] == {"read": 154, "valid": 152, "duplicates": 1, "rejected": 1}
    assert "dry run: would archive 152 sequence IDs (2 bulk calls of up to 100 IDs); nothing was sent to Reply" in (
        run.err
    )
    assert 'argument 4: "x": a sequence ID string must be 1 to 10 ASCII digits' in run.err
    assert reply_simulator.api_calls == 0
    assert reply_simulator.requests == []


def test_secret_id_with_an_explicit_api_key_env_is_a_usage_error(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, aws_stack: LocalStack
) -> None:
    run = cli("archive", "--base-url", reply_simulator.base_url, "--secret-id", aws_stack.secret_arn,
              "--api-key-env", "REPLY_API_KEY", "101")  # fmt: skip

    assert run.code == 2
    assert run.err.strip() == (
        "sequence-archiver archive: error: --secret-id and --api-key-env REPLY_API_KEY name two sources of the "
        "API key: give only one"
    )
    assert reply_simulator.api_calls == 0


def test_every_output_format_reports_the_same_outcomes(
    cli: Callable[..., Run], reply_simulator: ReplySimulator
) -> None:
    ids = ["101", "301", "999", "x"]
    base = ["archive", "--base-url", reply_simulator.base_url, "--mode", "single"]

    jsonl = cli(*base, "--output", "jsonl", *ids)
    as_csv = cli(*base, "--output", "csv", *ids)
    again = cli(*base, "--output", "ids", *ids)

    assert jsonl.code == as_csv.code == again.code == 1
    records = [json.loads(line) for line in jsonl.lines]
    assert [(r["sequenceId"], r["outcome"]) for r in records] == [
        (None, "invalid"),  # known before any call, so printed first
        (101, "archived"),
        (301, "conflict"),
        (999, "not_found"),
    ]
    assert records[0]["input"] == '"x"'
    assert as_csv.lines[0] == "sequenceId,outcome,via,httpStatus,error,paused,input"
    assert as_csv.lines[1].startswith("101,already_archived,single,409,")  # the second run: already archived
    assert again.lines == ["301"]  # the IDs that need attention or another try; 999 does not exist


def test_tables_fit_the_terminal_width_instead_of_cutting_details_at_60(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    wide = cli("archive", "--base-url", reply_simulator.base_url, "--mode", "single", "301")
    monkeypatch.setenv("COLUMNS", "70")
    narrow = cli("archive", "--base-url", reply_simulator.base_url, "--mode", "single", "302")

    assert rows(wide)["301"][3].startswith("sequenceAction.invalidState: ")
    assert len(rows(wide)["301"][3]) > 60  # the whole detail, since it fits
    assert not rows(wide)["301"][3].endswith("…")
    assert max(len(line) for line in narrow.lines) <= 70
    assert rows(narrow)["302"][3].endswith("…")


def test_bulk_steps_keep_what_the_archiver_learnt_about_replys_bulk_size(
    cli: Callable[..., Run], start_reply_simulator: Callable[..., ReplySimulator]
) -> None:
    simulator = start_reply_simulator(bulk_max_ids=40, rate_limit=None)
    simulator.add_sequences(range(10_000, 10_250))

    run = cli("archive", "--base-url", simulator.base_url, "--bulk-max-ids", "100", "--yes", "--output", "jsonl",
              *(str(i) for i in range(10_000, 10_250)))  # fmt: skip

    assert run.code == 0, run.err
    assert sorted(json.loads(line)["sequenceId"] for line in run.lines) == list(range(10_000, 10_250))
    statuses = [r.status for r in simulator.requests]
    assert statuses.count(400) == 2  # 100 and 50 were too many; every later step used 25 from the start
    assert len(statuses) == 2 + 10
    assert all(s.is_archived for s in simulator.sequences() if s.id >= 10_000)


def test_a_refused_bulk_endpoint_is_remembered_and_later_steps_go_one_by_one(
    cli: Callable[..., Run], start_reply_simulator: Callable[..., ReplySimulator], api_key: str
) -> None:
    simulator = start_reply_simulator(api_keys={api_key: {"sequences:operate"}})  # no sequences:write: no bulk

    run = cli("archive", "--base-url", simulator.base_url, "--bulk-max-ids", "2", "--output", "jsonl",
              "101", "102", "103", "104", "105")  # fmt: skip

    assert run.code == 0, run.err
    assert [json.loads(line)["via"] for line in run.lines] == ["single"] * 5
    assert [r.path for r in simulator.requests] == [BULK_PATH, *(f"/v3/sequences/{i}/archive" for i in range(101, 106))]
