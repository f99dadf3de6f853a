"""Clean-up plans in `report`: plan events read, their parts joined, linked to the results of what they enqueued."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from sequence_archiver_cli.plan_report import plan_event_from
from sequence_archiver_cli.results_report import build_report, results_event_from, sort_events

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.cli.conftest import Run

pytestmark = pytest.mark.usefixtures("no_network")
ZERO = {
    "archived": 0,
    "already_archived": 0,
    "not_found": 0,
    "forbidden": 0,
    "conflict": 0,
    "invalid": 0,
    "failed": 0,
    "unconfirmed": 0,
}
REASONS = {
    "over_limit": "the selection holds more than maxSequences (10) sequences: nothing was enqueued",
    "refused": "Reply refused the list call: unknown status",
    "failed": "gave up after 5 invocations in a row without an answer: the list call failed",
}


def plan(request_id: str, sequence_ids: list[int], *, dry_run: bool = False, **extra: Any) -> dict[str, Any]:
    """A plan detail as the function publishes it (schemas/sequence-archive-plan.json)."""
    outcome = extra.pop("outcome", "planned" if dry_run else "enqueued")
    message_ids = extra.pop("message_ids", [])
    carried_out = outcome in ("planned", "enqueued")
    return {
        "requestId": request_id,
        "trigger": "eventbridge",
        "dryRun": dry_run,
        "pauseFirst": False,
        "maxSequences": 10_000,
        "selection": {"status": "paused"},
        "runAt": "2026-11-30T03:00:00Z",
        "createdBeforeApplied": None,
        "outcome": outcome,
        "complete": carried_out,
        "reason": None if carried_out else REASONS[outcome],
        "selected": len(sequence_ids),
        "pages": 1,
        "invocations": 1,
        "enqueued": {
            "messages": len(message_ids),
            "ids": len(sequence_ids) if outcome == "enqueued" else 0,
            "messageIds": message_ids,
        },
        "sequenceIds": sequence_ids if carried_out else [],
        **extra,
    }


def results(request_id: str, *outcomes: tuple[int, str]) -> dict[str, Any]:
    """A complete results detail of one archive request."""
    counts = dict(ZERO)
    for _, outcome in outcomes:
        counts[outcome] += 1
    return {
        "requestId": request_id,
        "trigger": "sqs",
        "complete": True,
        "counts": counts,
        "results": [
            {"sequenceId": sid, "outcome": outcome, "httpStatus": None, "error": None} for sid, outcome in outcomes
        ],
    }


def envelope(detail: dict[str, Any], detail_type: str, time: str = "2026-11-30T03:00:00Z") -> dict[str, Any]:
    return {"detail-type": detail_type, "source": "reply.sequence-archiver", "time": time, "detail": detail}


def report_of(*items: object) -> Any:
    found = sort_events(items)
    return build_report(found.results, unrecognised=found.unrecognised, plans=found.plans)


# A live plan of 5 IDs in 3 messages; the results of two of its messages are in the read, the third not yet.
LIVE = plan("policy-1", [101, 102, 103, 104, 105], message_ids=["m1", "m2", "m3"])
M1 = results("m1", (101, "archived"), (102, "already_archived"))
M2 = results("m2", (103, "not_found"), (104, "conflict"))


def test_plan_envelopes_and_bare_plan_details_are_plans_and_nothing_else_is() -> None:
    from_envelope = plan_event_from(envelope(LIVE, "Sequence Archive Plan"))
    from_bare = plan_event_from(LIVE)

    assert from_envelope is not None
    assert from_bare is not None
    assert (from_envelope.request_id, from_envelope.sequence_ids, from_envelope.time) == (
        "policy-1",
        (101, 102, 103, 104, 105),
        "2026-11-30T03:00:00Z",
    )
    assert from_bare.header == from_envelope.header
    assert results_event_from(LIVE) is None  # a plan is not a results event ...
    assert plan_event_from(M1) is None  # ... nor a results event a plan
    assert plan_event_from({"sequenceIds": [101], "pauseFirst": False}) is None  # an archive request body
    assert plan_event_from(envelope(LIVE, "Sequence Archive Results")) is None


def test_a_live_plan_shows_how_many_of_its_ids_were_archived_from_the_results_of_its_messages() -> None:
    report = report_of(LIVE, M1, M2, results("unrelated", (999, "archived")))

    [summary] = report.plans
    assert (summary.request_id, summary.dry_run, summary.outcome) == ("policy-1", False, "enqueued")
    assert (summary.selected, summary.enqueued_messages, summary.enqueued_ids) == (5, 3, 5)
    progress = summary.progress
    assert progress.messages_reported == 2
    assert {outcome: n for outcome, n in progress.counts.items() if n} == {
        "archived": 1,
        "already_archived": 1,
        "not_found": 1,
        "conflict": 1,
    }
    assert (progress.needing_attention, progress.not_yet_reported) == (1, 1)  # 104 conflicts; 105 is still queued
    assert summary.needs_attention
    assert not summary.stopped
    assert report.events == 3  # the results summary is unchanged: it counts every results event


def test_an_id_of_the_plan_that_a_later_request_archived_no_longer_needs_attention() -> None:
    later = envelope(results("retry", (104, "archived")), "Sequence Archive Results", time="2026-11-30T09:00:00Z")
    report = report_of(
        envelope(LIVE, "Sequence Archive Plan"),
        envelope(M1, "Sequence Archive Results"),
        envelope(M2, "Sequence Archive Results"),
        later,
        envelope(results("m3", (105, "archived")), "Sequence Archive Results"),
    )

    [summary] = report.plans
    assert summary.progress.counts["archived"] == 3  # 101, 105, and 104 by the later request
    assert summary.progress.counts["conflict"] == 0
    assert (summary.progress.needing_attention, summary.progress.not_yet_reported) == (0, 0)
    assert not summary.needs_attention
    assert not report.needs_attention


def test_the_parts_of_a_split_plan_are_joined_once_each_and_a_missing_part_needs_attention() -> None:
    whole = plan("policy-2", list(range(1, 8)), message_ids=["a", "b", "c", "d"])
    part = {number: {**whole, "part": number, "parts": 3} for number in (1, 2, 3)}
    part[1]["sequenceIds"], part[2]["sequenceIds"], part[3]["sequenceIds"] = [1, 2, 3], [4, 5], [6, 7]

    joined = report_of(part[3], part[1], part[2], part[1])  # EventBridge may deliver a part twice
    gapped = report_of(part[3], part[1])

    [summary] = joined.plans
    assert summary.sequence_ids == (1, 2, 3, 4, 5, 6, 7)
    assert summary.parts_missing == 0
    assert summary.to_json()["sequenceIds"] == [1, 2, 3, 4, 5, 6, 7]
    assert joined.to_json()["planEvents"] == 4
    [missing] = gapped.plans
    assert missing.sequence_ids == (1, 2, 3, 6, 7)
    assert missing.parts_missing == 1
    assert gapped.stopped_plans == [missing]
    assert gapped.needs_attention


def test_a_request_planned_again_after_a_retry_is_reported_by_its_latest_plan() -> None:
    first = envelope(plan("policy-3", [101], message_ids=["old"]), "Sequence Archive Plan", "2026-11-30T03:00:00Z")
    again = plan("policy-3", [101, 102], message_ids=["new"], runAt="2026-11-30T03:01:00Z")

    report = report_of(envelope(again, "Sequence Archive Plan", "2026-11-30T03:01:00Z"), first)

    [summary] = report.plans
    assert summary.message_ids == ("new",)
    assert summary.selected == 2


@pytest.mark.parametrize(
    ("outcome", "dry_run", "needs_attention"),
    [
        ("planned", True, False),
        ("enqueued", False, False),
        ("over_limit", False, True),
        ("refused", True, True),
        ("failed", False, True),
    ],
)
def test_only_a_plan_that_stopped_needs_attention_and_its_reason_is_kept(
    outcome: str, dry_run: bool, needs_attention: bool
) -> None:
    ids = [101, 102] if outcome in ("planned", "enqueued") else []
    detail = plan("p", ids, dry_run=dry_run, outcome=outcome, message_ids=["m"] if outcome == "enqueued" else [])
    done = results("m", (101, "archived"), (102, "archived"))

    report = report_of(detail, done)

    [summary] = report.plans
    assert summary.needs_attention is needs_attention
    assert report.needs_attention is needs_attention
    assert summary.reason == REASONS.get(outcome)
    assert summary.to_json()["reason"] == REASONS.get(outcome)


def test_a_plan_event_that_cannot_be_read_is_unrecognised_not_skipped() -> None:
    found = sort_events([envelope({"runId": "x"}, "Sequence Archive Plan")], skip_other=True)

    assert (found.plans, found.unrecognised, found.other) == ([], 1, 0)


def test_the_json_document_has_a_plans_key_with_each_plan_and_its_archiving() -> None:
    document = report_of(LIVE, M1, M2).to_json()

    [entry] = document["plans"]
    assert (entry["requestId"], entry["dryRun"], entry["outcome"], entry["selected"]) == (
        "policy-1",
        False,
        "enqueued",
        5,
    )
    assert entry["enqueued"] == {"messages": 3, "ids": 5, "messageIds": ["m1", "m2", "m3"]}
    assert entry["archive"] == {
        "messagesReported": 2,
        "counts": {**ZERO, "archived": 1, "already_archived": 1, "not_found": 1, "conflict": 1},
        "idsNeedingAttention": 1,
        "idsNotYetReported": 1,
    }
    assert entry["needsAttention"] is True
    assert report_of(M1).to_json()["plans"] == []


# ---------------------------------------------------------------- the command, on a file


def write(tmp_path: Path, *items: object) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return str(path)


def test_the_table_shows_a_clean_up_plans_section_after_the_results_summary(
    cli: Callable[..., Run], tmp_path: Path
) -> None:
    dry = plan("dry-run-1", [201, 202], dry_run=True)
    refused = plan("refused-1", [], outcome="refused")

    run = cli("report", "--file", write(tmp_path, LIVE, M1, M2, dry, refused))

    assert run.code == 1  # 104 conflicts and a plan was refused
    assert run.lines[0] == "results events: 2; requests: 2 (2 complete, 0 incomplete)"
    section = run.out.split("clean-up plans: 3 (2 live, 1 dry run)\n", 1)[1].splitlines()
    assert section == [
        "plan policy-1 (live, eventbridge): enqueued",
        "  selected 5; enqueued 5 IDs in 3 messages",
        "  archived 1; already archived 1; not found 1",
        "  need attention 1; not yet reported 1 (results of 2 of 3 messages read)",
        "plan dry-run- (dry run, eventbridge): planned",
        "  selected 2; nothing enqueued (dry run)",
        "plan refused- (live, eventbridge): refused",
        "  selected 0; nothing enqueued",
        f"  needs attention: {REASONS['refused']}",
    ]
    assert run.out.index("needs attention: 1\n") < run.out.index("clean-up plans:")


def test_a_dry_run_alone_is_a_report_that_needs_nothing(cli: Callable[..., Run], tmp_path: Path) -> None:
    run = cli("report", "--file", write(tmp_path, plan("dry-run-1", [201, 202], dry_run=True)))

    assert run.code == 0, run.err
    assert run.lines == [
        "results events: 0; requests: 0 (0 complete, 0 incomplete)",
        "clean-up plans: 1 (0 live, 1 dry run)",
        "plan dry-run- (dry run, eventbridge): planned",
        "  selected 2; nothing enqueued (dry run)",
        "nothing needs attention",
    ]
    assert run.err == ""


def test_needs_attention_lists_the_plans_that_stopped(cli: Callable[..., Run], tmp_path: Path) -> None:
    over = plan("too-many", [], outcome="over_limit")

    run = cli("report", "--file", write(tmp_path, plan("dry", [1], dry_run=True), over), "--needs-attention")

    assert run.code == 1
    assert run.lines == [
        "clean-up plans that need attention: 1",
        "plan too-many (live, eventbridge): over_limit",
        "  selected 0; nothing enqueued",
        f"  needs attention: {REASONS['over_limit']}",
    ]


@pytest.mark.parametrize("output", ["jsonl", "csv", "ids"])
def test_formats_for_ids_list_the_ids_and_say_on_stderr_that_a_plan_needs_attention(
    cli: Callable[..., Run], tmp_path: Path, output: str
) -> None:
    file = write(tmp_path, M1, plan("refused-1", [], outcome="refused"))

    run = cli("report", "--file", file, "--output", output)

    assert run.code == 1
    assert "refused-1" not in run.out  # the same rows as without plans
    assert "1 clean-up plan needs attention" in run.err


def test_json_output_holds_the_plans(cli: Callable[..., Run], tmp_path: Path) -> None:
    run = cli("report", "--file", write(tmp_path, LIVE, M1, M2), "--output", "json")

    document = json.loads(run.out)
    assert [entry["requestId"] for entry in document["plans"]] == ["policy-1"]
    assert document["plans"][0]["archive"]["counts"]["archived"] == 1
    assert document["events"] == 2
    assert run.err == ""
