"""The plan event's detail: what each outcome reports, and parts when it is too large for one entry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from sequence_archiver.archiving.cleanup import CleanupPlan, SelectionRun
from sequence_archiver.archiving.selection import parse_cleanup_request
from sequence_archiver.aws.results_publisher import split_detail
from sequence_archiver.core.request_report import Trigger
from sequence_archiver.core.results_contract import PlanOutcome

PLAN_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "sequence-archive-plan.json").read_text())
RUN_AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def run_of(request: dict[str, object], selected_ids: list[int]) -> SelectionRun:
    run = SelectionRun.start(parse_cleanup_request(request), delivery_id="req-1", trigger=Trigger.DIRECT, now=RUN_AT)
    run.selected_ids, run.pages = selected_ids, 1
    return run


@pytest.mark.parametrize(
    ("outcome", "dry_run", "complete", "listed"),
    [
        (PlanOutcome.PLANNED, True, True, [1, 2, 3]),
        (PlanOutcome.OVER_LIMIT, True, False, []),
        (PlanOutcome.REFUSED, False, False, []),
        (PlanOutcome.FAILED, False, False, []),
        (PlanOutcome.CONTINUED, False, False, []),
    ],
)
def test_only_a_complete_plan_lists_its_ids_and_every_plan_matches_the_schema(
    outcome: PlanOutcome, dry_run: bool, complete: bool, listed: list[int]
) -> None:
    run = run_of({"select": {"olderThanDays": 7}, "dryRun": dry_run}, [1, 2, 3])
    plan = CleanupPlan(run, outcome, None if complete else "why")

    detail = plan.detail()

    jsonschema.validate(detail, PLAN_SCHEMA)
    assert (detail["complete"], detail["sequenceIds"], detail["selected"]) == (complete, listed, 3)
    assert (detail["runAt"], detail["createdBeforeApplied"]) == ("2026-12-01T03:00:00Z", "2026-11-24T03:00:00Z")


def test_a_large_plan_is_split_into_parts_that_together_hold_every_id() -> None:
    ids = list(range(1_000_000_000, 1_000_020_000))  # 20,000 IDs of 10 digits
    run = run_of({"select": {"status": "paused"}, "dryRun": False, "maxSequences": 20_000}, ids)
    plan = CleanupPlan(run, PlanOutcome.ENQUEUED, enqueued_ids=len(ids), message_ids=("m",) * 200)

    parts = split_detail(plan.detail(), max_bytes=64 * 1024, items_key="sequenceIds")

    assert len(parts) > 1
    for number, part in enumerate(parts, start=1):
        jsonschema.validate(part, PLAN_SCHEMA)
        assert (part["part"], part["parts"], part["selected"]) == (number, len(parts), len(ids))
        assert len(json.dumps(part, separators=(",", ":"))) <= 64 * 1024
    assert [id_ for part in parts for id_ in part["sequenceIds"]] == ids
