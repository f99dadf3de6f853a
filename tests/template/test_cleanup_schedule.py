"""The clean-up policy's schedule: present only when CleanupSchedule is set, invoking only this function with the
policy's request, retried, dead-lettered and alarmed; pausing or removing it is one parameter change."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.template.helpers import as_list, of_type, policy_statements

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.template

FUNCTION = "ArchiveSequencesFunction"
SCHEDULE = "CleanupPolicySchedule"
SCHEDULE_ROLE = "CleanupScheduleRole"
SCHEDULE_DLQ = "CleanupScheduleDeadLetterQueue"
WEEKLY = "cron(0 3 ? * MON *)"
SCHEDULE_RESOURCES = {SCHEDULE, SCHEDULE_ROLE, SCHEDULE_DLQ, "CleanupScheduleDeadLetterQueueAlarm"}


def deployed_with(deployed_template: Callable[..., dict[str, Any]], **parameters: str) -> dict[str, Any]:
    return deployed_template(**parameters)


def scheduled_input(template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """The JSON the schedule hands the function, with the stack's parameter values put in."""
    sub = template["Resources"][SCHEDULE]["Properties"]["Target"]["Input"]["Fn::Sub"]
    declared = template["Parameters"]
    values = {name: str(spec.get("Default", "")) for name, spec in declared.items()} | parameters
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda match: values[match.group(1)], sub))


def test_no_schedule_by_default(deployed_template):
    template = deployed_with(deployed_template)

    assert not SCHEDULE_RESOURCES & set(template["Resources"])
    assert not {"CleanupScheduleName", "CleanupScheduleDeadLetterQueueUrl"} & set(template["Outputs"])
    assert of_type(template["Resources"], "AWS::Scheduler::Schedule") == {}


def test_a_schedule_expression_creates_the_schedule_invoking_only_the_function(deployed_template):
    template = deployed_with(deployed_template, CleanupSchedule=WEEKLY)
    schedule = template["Resources"][SCHEDULE]["Properties"]

    assert set(template["Resources"]) >= SCHEDULE_RESOURCES
    assert schedule["ScheduleExpression"] == {"Ref": "CleanupSchedule"}
    assert schedule["State"] == {"Ref": "CleanupScheduleState"}
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [FUNCTION, "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": [SCHEDULE_ROLE, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [SCHEDULE_DLQ, "Arn"]}
    assert {"CleanupScheduleName", "CleanupScheduleDeadLetterQueueUrl"} <= set(template["Outputs"])


def test_the_schedule_role_may_invoke_only_this_function_and_dead_letter_its_runs(deployed_template):
    resources = deployed_with(deployed_template, CleanupSchedule=WEEKLY)["Resources"]
    trust = resources[SCHEDULE_ROLE]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]
    granted = sorted(
        (action, json.dumps(statement["Resource"], sort_keys=True))
        for owner, statement in policy_statements(resources)
        if owner == SCHEDULE_ROLE
        for action in as_list(statement["Action"])
    )
    assert granted == [
        ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": [FUNCTION, "Arn"]})),
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": [SCHEDULE_DLQ, "Arn"]})),
    ]


def test_undelivered_runs_raise_an_alarm_on_the_topic(deployed_template):
    alarm = deployed_with(deployed_template, CleanupSchedule=WEEKLY)["Resources"]["CleanupScheduleDeadLetterQueueAlarm"]

    assert alarm["Properties"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [SCHEDULE_DLQ, "QueueName"]}}
    ]
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_scheduled_request_is_the_policy_with_a_dry_run_by_default(sam_template):
    default = scheduled_input(sam_template, {})
    live = scheduled_input(
        sam_template,
        {"CleanupSelection": '{"status": "paused", "createdBefore": "2025-01-01"}', "CleanupDryRun": "false"},
    )

    assert default == {"select": {"status": "paused", "olderThanDays": 180}, "dryRun": True, "maxSequences": 10000}
    assert live["select"] == {"status": "paused", "createdBefore": "2025-01-01"}
    assert live["dryRun"] is False


def test_the_scheduled_request_is_one_the_function_accepts_within_its_bounds(sam_template):
    from sequence_archiver.selection import DEFAULT_MAX_SEQUENCES, MAX_SEQUENCES_CAP, parse_cleanup_request

    bound = sam_template["Parameters"]["CleanupMaxSequences"]
    request = parse_cleanup_request(scheduled_input(sam_template, {"CleanupMaxSequences": str(bound["MaxValue"])}))

    assert request.dry_run is True
    assert request.select.status == "paused"
    assert request.max_sequences == bound["MaxValue"] == MAX_SEQUENCES_CAP
    assert bound["Default"] == DEFAULT_MAX_SEQUENCES


@pytest.mark.parametrize(
    ("parameter", "value", "allowed"),
    [
        ("CleanupSchedule", "", True),
        ("CleanupSchedule", WEEKLY, True),
        ("CleanupSchedule", "rate(7 days)", True),
        ("CleanupSchedule", "every monday", False),
        ("CleanupSelection", '{"status": "paused"}', True),
        ("CleanupSelection", "status=paused", False),
    ],
)
def test_parameters_refuse_what_cannot_work(sam_template, parameter, value, allowed):
    pattern = sam_template["Parameters"][parameter]["AllowedPattern"]

    assert (re.fullmatch(pattern, value) is not None) is allowed


def test_pausing_is_one_parameter(sam_template):
    state = sam_template["Parameters"]["CleanupScheduleState"]

    assert state["AllowedValues"] == ["ENABLED", "DISABLED"]
    assert state["Default"] == "ENABLED"


@pytest.mark.parametrize(("queue_type", "queue_url_set"), [("standard", True), ("fifo", False)])
def test_live_runs_send_to_the_requests_queue_on_standard_queues(deployed_template, queue_type, queue_url_set):
    function = deployed_with(deployed_template, QueueType=queue_type)["Resources"][FUNCTION]["Properties"]

    url = function["Environment"]["Variables"]["ARCHIVE_QUEUE_URL"]

    assert (url == {"Ref": "ArchiveRequestsQueue"}) is queue_url_set
