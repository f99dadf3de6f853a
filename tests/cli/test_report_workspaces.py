"""`report` over a deployment serving named workspaces: every format shows each request's workspace, the same ID
in two workspaces is two sequences, and `--output ids` lists only what `enqueue -` can send again."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

import pytest

from sequence_archiver_cli.results_report import build_report, results_event_from
from tests.cli.test_results_report import detail

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.cli.conftest import Run

pytestmark = pytest.mark.usefixtures("no_network")


def events(*details: dict[str, Any]) -> list[Any]:
    return [event for event in map(results_event_from, details) if event]


def test_the_same_id_in_two_workspaces_is_two_sequences_each_with_its_own_latest_outcome() -> None:
    report = build_report(
        events(
            detail("r1", (301, "conflict"), workspace="sales-eu"),
            detail("r2", (301, "archived")),  # the default workspace's 301: it settles nothing in sales-eu
            detail("r3", (302, "failed"), workspace="sales-us"),
            detail("r4", (302, "archived"), workspace="sales-us"),  # settles sales-us's 302
        )
    )

    assert report.latest_outcomes == {
        ("sales-eu", 301): "conflict",
        (None, 301): "archived",
        ("sales-us", 302): "archived",
    }
    assert [(item.workspace, item.sequence_id, item.outcome) for item in report.attention] == [
        ("sales-eu", 301, "conflict")
    ]
    assert report.distinct_ids == 3
    assert [item.to_json()["workspace"] for item in report.items] == ["sales-eu", None, "sales-us", "sales-us"]


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Results of three requests needing attention: one per named workspace, one for the default key."""
    path = tmp_path / "results.jsonl"
    lines = [
        detail("request-eu-1", (101, "failed"), workspace="sales-eu"),
        detail("request-us-1", (102, "conflict"), (103, "archived"), workspace="sales-us"),
        detail("request-default", (104, "forbidden")),
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_every_format_shows_each_requests_workspace(cli: Callable[..., Run], mixed: Path) -> None:
    table = cli("report", "--file", str(mixed))
    attention = cli("report", "--file", str(mixed), "--needs-attention")
    rows = list(csv.DictReader(io.StringIO(cli("report", "--file", str(mixed), "--output", "csv").out)))
    items = [json.loads(line) for line in cli("report", "--file", str(mixed), "--output", "jsonl").lines]

    assert "requests by workspace: (default) 1, sales-eu 1, sales-us 1" in table.lines
    header = attention.lines[0].split()
    assert header[:3] == ["request", "workspace", "sequenceId"]
    assert {tuple(line.split()[1:3]) for line in attention.lines[2:]} == {
        ("sales-eu", "101"),
        ("sales-us", "102"),
        ("-", "104"),
    }
    assert [(row["sequenceId"], row["workspace"]) for row in rows] == [
        ("101", "sales-eu"),
        ("102", "sales-us"),
        ("103", "sales-us"),
        ("104", ""),
    ]
    assert [(item["sequenceId"], item["workspace"]) for item in items] == [
        (101, "sales-eu"),
        (102, "sales-us"),
        (103, "sales-us"),
        (104, None),
    ]


def test_ids_lists_the_default_workspaces_ids_and_says_how_many_others_need_a_try(
    cli: Callable[..., Run], mixed: Path
) -> None:
    run = cli("report", "--file", str(mixed), "--output", "ids")

    assert run.lines == ["104"]  # `enqueue -` sends no workspace: the others would go to the default key
    assert run.code == 1
    assert "1 sequence ID of workspace sales-eu needs another try and is not listed" in run.err
    assert "1 sequence ID of workspace sales-us needs another try and is not listed" in run.err


def test_a_report_without_named_workspaces_looks_as_it_always_did(cli: Callable[..., Run], tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps([detail("request-1", (104, "forbidden"))]), encoding="utf-8")

    table = cli("report", "--file", str(path))
    attention = cli("report", "--file", str(path), "--needs-attention")
    ids = cli("report", "--file", str(path), "--output", "ids")

    assert not [line for line in table.lines if "workspace" in line]
    assert "workspace" not in attention.lines[0]
    assert (ids.lines, ids.err) == (["104"], "")


def test_a_plan_shows_the_workspace_that_listed_it(cli: Callable[..., Run], tmp_path: Path) -> None:
    plan = {
        "requestId": "plan-1",
        "workspace": "sales-eu",
        "trigger": "direct",
        "dryRun": True,
        "pauseFirst": False,
        "maxSequences": 10,
        "selection": {"status": "paused"},
        "runAt": "2026-12-01T00:00:00Z",
        "createdBeforeApplied": None,
        "outcome": "planned",
        "complete": True,
        "reason": None,
        "selected": 2,
        "pages": 1,
        "invocations": 1,
        "enqueued": {"messages": 0, "ids": 0, "messageIds": []},
        "sequenceIds": [101, 102],
    }
    path = tmp_path / "plans.json"
    path.write_text(json.dumps([plan]), encoding="utf-8")

    table = cli("report", "--file", str(path))
    document = json.loads(cli("report", "--file", str(path), "--output", "json").out)

    assert "plan plan-1 (dry run, direct, workspace sales-eu): planned" in table.lines
    assert document["plans"][0]["workspace"] == "sales-eu"
