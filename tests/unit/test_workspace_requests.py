"""A request's `workspace`: read strictly, served or rejected, carried on by continuations and enqueued requests
(inside what the seal covers), and reported in results and plans."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import SecretStr

from sequence_archiver.archiving.cleanup import CleanupPlan, SelectionRun
from sequence_archiver.archiving.selection import parse_cleanup_request
from sequence_archiver.core.archive_request import (
    ContinuationOf,
    archive_request_body,
    parse_archive_request,
    parse_message_body,
)
from sequence_archiver.core.continuations import ContinuationSeal, archive_continuation
from sequence_archiver.core.exceptions import InvalidRequestError
from sequence_archiver.core.outcomes import Outcome, SequenceResult
from sequence_archiver.core.request_report import EventShape, RequestReport, Trigger
from sequence_archiver.core.results_contract import PlanOutcome
from sequence_archiver.pipeline.deliveries import Delivery
from sequence_archiver.pipeline.verdicts import Rules, decide

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
RESULTS_SCHEMA = json.loads((SCHEMAS / "sequence-archive-results.json").read_text())
PLAN_SCHEMA = json.loads((SCHEMAS / "sequence-archive-plan.json").read_text())
SERVED = frozenset({"sales-eu", "sales-us"})
KEY = "the-default-key"


class DefaultKey:
    """The default secret's value: the one key that seals every continuation."""

    def api_key(self, *, refresh: bool = False, deadline: object = None) -> SecretStr:
        return SecretStr(KEY)

    def earlier_api_keys(self, *, deadline: object = None) -> tuple[SecretStr, ...]:
        return ()


# ---------------------------------------------------------------- reading the field


@pytest.mark.parametrize("workspace", ["sales-eu", "a", "0", "9-to-5", "a" * 63])
def test_a_workspace_name_is_read_from_an_archive_request(workspace: str) -> None:
    request = parse_archive_request({"sequenceIds": [101], "workspace": workspace})

    assert (request.workspace, request.sequence_ids) == (workspace, (101,))


def test_without_the_field_the_request_is_the_default_keys() -> None:
    assert parse_archive_request({"sequenceIds": [101]}).workspace is None
    assert parse_archive_request(101).workspace is None


@pytest.mark.parametrize(
    "value",
    [None, "", "Sales-EU", "-sales", "sales_eu", "sales eu", " sales", "sales\n", "a" * 64, 7, True, ["sales"], {}],
    ids=repr,
)
def test_anything_but_a_workspace_name_rejects_the_whole_request(value: object) -> None:
    with pytest.raises(InvalidRequestError, match='"workspace" must be a workspace name'):
        parse_archive_request({"sequenceIds": [101], "workspace": value})


def test_a_workspace_inside_an_eventbridge_or_sns_envelope_is_read_too() -> None:
    inner = json.dumps({"sequenceIds": [101], "workspace": "sales-us"})
    envelope = {"detail-type": "Archive Sequences", "source": "x", "detail": inner}

    assert parse_message_body(json.dumps(envelope)).workspace == "sales-us"


def test_the_request_body_the_cli_and_clean_ups_write_carries_the_workspace() -> None:
    body = archive_request_body([1, 2], pause_first=True, workspace="sales-eu")

    assert json.loads(body) == {"sequenceIds": [1, 2], "pauseFirst": True, "workspace": "sales-eu"}
    assert parse_archive_request(json.loads(body)).workspace == "sales-eu"
    assert "workspace" not in json.loads(archive_request_body([1]))


# ---------------------------------------------------------------- served or rejected


def parsed(payload: object, workspaces: frozenset[str] = SERVED, seal: ContinuationSeal | None = None) -> Delivery:
    delivery = Delivery("message-1", Trigger.DIRECT, payload)
    delivery.parse(EventShape.DIRECT, seal, workspaces=workspaces)
    return delivery


def test_a_served_workspace_is_noted_on_the_delivery() -> None:
    delivery = parsed({"sequenceIds": [101], "workspace": "sales-us"})

    assert (delivery.rejection, delivery.workspace) == (None, "sales-us")
    assert delivery.request is not None
    assert delivery.request.workspace == "sales-us"


def test_an_unknown_workspace_is_a_final_rejection_that_names_it_and_what_is_served() -> None:
    delivery = parsed({"sequenceIds": [101], "workspace": "sales-asia"})

    assert delivery.request is None
    assert delivery.rejection == (
        'unknown workspace "sales-asia": this function serves sales-eu, sales-us (REPLY_WORKSPACES); '
        'leave "workspace" out for the default workspace'
    )
    verdict = decide(delivery, Rules(can_continue=True, max_receive_count=5))
    assert verdict.fate.value == "rejected"
    assert verdict.report is not None
    detail = verdict.report.detail()
    jsonschema.validate(detail, RESULTS_SCHEMA)
    assert (detail["workspace"], detail["complete"], detail["results"][0]["outcome"]) == ("sales-asia", True, "invalid")


def test_a_deployment_without_named_workspaces_rejects_a_request_that_names_one() -> None:
    delivery = parsed({"sequenceIds": [101], "workspace": "sales-eu"}, workspaces=frozenset())

    assert delivery.rejection is not None
    assert 'unknown workspace "sales-eu": REPLY_WORKSPACES names none' in delivery.rejection


def test_a_clean_up_request_for_an_unknown_workspace_is_rejected_before_anything_is_listed() -> None:
    delivery = parsed({"select": {"status": "paused"}, "workspace": "nowhere"})

    assert (delivery.cleanup, delivery.workspace) == (None, "nowhere")
    assert delivery.rejection is not None
    assert delivery.rejection.startswith('unknown workspace "nowhere"')


# ---------------------------------------------------------------- carried on, inside the seal


def test_a_continuation_carries_the_workspace_and_opens_with_it() -> None:
    seal = ContinuationSeal(keys=DefaultKey())
    document = archive_continuation([104], ContinuationOf("request-b", 2), pause_first=False, workspace="sales-us")

    delivery = parsed(json.loads(seal.seal(document)), seal=seal)

    assert delivery.request is not None
    assert (delivery.request.workspace, delivery.request.continuation) == ("sales-us", ContinuationOf("request-b", 2))
    assert delivery.request_id == "request-b"


@pytest.mark.parametrize(
    ("name", "alter"),
    [
        ("changed", lambda body: body.update(workspace="sales-eu")),
        ("removed", lambda body: body.pop("workspace")),
        ("added", lambda body: body.update(workspace="sales-eu")),
    ],
)
def test_an_edited_workspace_breaks_the_seal_and_the_continuation_is_not_honoured(name: str, alter: Any) -> None:
    forged: list[None] = []
    seal = ContinuationSeal(keys=DefaultKey(), on_forged=lambda: forged.append(None))
    workspace = None if name == "added" else "sales-us"
    document = archive_continuation([104], ContinuationOf("request-b", 2), pause_first=False, workspace=workspace)
    body = json.loads(seal.seal(document))
    alter(body)

    delivery = parsed(body, seal=seal)

    assert delivery.request is not None
    assert delivery.request.continuation is None  # a new request under the delivery's own ID
    assert delivery.request_id == "message-1"
    assert forged == [None]


def test_a_clean_up_continuation_and_its_archive_requests_carry_the_workspace() -> None:
    request = parse_cleanup_request({"select": {"status": "paused"}, "dryRun": False, "workspace": "sales-eu"})
    run = SelectionRun.start(request, delivery_id="req-1", trigger=Trigger.DIRECT, now=datetime(2026, 1, 1, tzinfo=UTC))
    run.selected_ids = list(range(1, 151))

    continuation = run.continuation_document()
    bodies = [json.loads(body) for body in run.archive_bodies()]

    assert continuation["workspace"] == "sales-eu"
    assert parse_cleanup_request(continuation).workspace == "sales-eu"
    assert [(len(body["sequenceIds"]), body["workspace"]) for body in bodies] == [(100, "sales-eu"), (50, "sales-eu")]


def test_a_clean_up_request_names_its_workspace_strictly() -> None:
    for value in (None, "Sales", 5, ""):
        with pytest.raises(InvalidRequestError, match="workspace"):
            parse_cleanup_request({"select": {"status": "paused"}, "workspace": value})


# ---------------------------------------------------------------- reported


def test_results_and_plans_carry_the_workspace_only_when_the_request_named_one() -> None:
    result = SequenceResult(101, Outcome.ARCHIVED)
    named = RequestReport("req-1", Trigger.SQS, (result,), workspace="sales-eu").detail()
    default = RequestReport("req-2", Trigger.SQS, (result,)).detail()
    plan_request = parse_cleanup_request({"select": {"status": "paused"}, "workspace": "sales-us"})
    run = SelectionRun.start(plan_request, delivery_id="req-3", trigger=Trigger.DIRECT, now=datetime.now(UTC))
    plan = CleanupPlan(run, PlanOutcome.PLANNED).detail()

    for detail in (named, default):
        jsonschema.validate(detail, RESULTS_SCHEMA)
    jsonschema.validate(plan, PLAN_SCHEMA)
    assert (named["workspace"], "workspace" in default, plan["workspace"]) == ("sales-eu", False, "sales-us")
