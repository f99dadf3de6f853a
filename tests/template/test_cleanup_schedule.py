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
    """The JSON the schedule hands the function, with the stack's parameter values put in as CloudFormation
    does: Fn::ToJsonString of a structure whose every leaf is a Ref to a parameter (a string value)."""
    structure = template["Resources"][SCHEDULE]["Properties"]["Target"]["Input"]["Fn::ToJsonString"]
    declared = template["Parameters"]
    values = {name: str(spec.get("Default", "")) for name, spec in declared.items()} | parameters

    def resolve(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return values[node["Ref"]]
        assert isinstance(node, dict), f"only Refs to parameters may fill the schedule's input, not {node!r}"
        return {key: resolve(value) for key, value in node.items()}

    return json.loads(json.dumps(resolve(structure)))


def the_function_reads(document: Any) -> Any:
    """What the function makes of a direct invoke with this payload (the real parsing, no AWS)."""
    from sequence_archiver.core.request_report import EventShape
    from sequence_archiver.pipeline.deliveries import read_event

    [delivery] = read_event(document, invocation_id="scheduled-run").deliveries
    delivery.parse(EventShape.DIRECT, None)  # a schedule is never a continuation: no seal is needed to read it
    return delivery


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


def test_the_schedule_input_is_built_by_structure_each_parameter_filling_the_field_it_names(sam_template):
    structure = sam_template["Resources"][SCHEDULE]["Properties"]["Target"]["Input"]

    assert "AWS::LanguageExtensions" in sam_template["Transform"]
    assert structure == {
        "Fn::ToJsonString": {
            "schedule": {
                "select": {"Ref": "CleanupSelection"},
                "exclude": {"Ref": "CleanupExclude"},
                "dryRun": {"Ref": "CleanupDryRun"},
                "maxSequences": {"Ref": "CleanupMaxSequences"},
            }
        }
    }


def test_the_scheduled_request_is_the_policy_with_a_dry_run_by_default(sam_template):
    default = the_function_reads(scheduled_input(sam_template, {})).cleanup
    live = the_function_reads(
        scheduled_input(
            sam_template,
            {"CleanupSelection": '{"status": "paused", "createdBefore": "2025-01-01"}', "CleanupDryRun": "false"},
        )
    ).cleanup

    assert default.select.to_json() == {"status": "paused", "olderThanDays": 180}
    assert (default.dry_run, default.pause_first, default.max_sequences) == (True, False, 10000)
    assert live.select.to_json() == {"status": "paused", "createdBefore": "2025-01-01T00:00:00Z"}
    assert live.dry_run is False


def test_the_scheduled_request_is_one_the_function_accepts_within_its_bounds(sam_template):
    from sequence_archiver.archiving.selection import DEFAULT_MAX_SEQUENCES, MAX_SEQUENCES_CAP

    bound = sam_template["Parameters"]["CleanupMaxSequences"]
    request = the_function_reads(scheduled_input(sam_template, {"CleanupMaxSequences": str(bound["MaxValue"])})).cleanup

    assert request.dry_run is True
    assert request.select.status == "paused"
    assert request.max_sequences == bound["MaxValue"] == MAX_SEQUENCES_CAP
    assert bound["Default"] == DEFAULT_MAX_SEQUENCES


SMUGGLING_SELECTIONS = [
    '{"status": "paused"}, "pauseFirst": true',
    '{"status": "paused", "pauseFirst": true}',
    '{"status": "paused"}, "dryRun": false, "continuation": {"requestId": "x", "part": 2}',
    '{"status": "paused", "continuation": {"requestId": "x", "part": 2}}',
    '{"status": "paused"}}, "continuation": {"requestId": "x", "part": 2, "a": {"b": "c"}',
]


@pytest.mark.parametrize("selection", SMUGGLING_SELECTIONS)
def test_a_selection_that_sets_other_fields_is_refused_at_deploy_time(sam_template, selection):
    pattern = sam_template["Parameters"]["CleanupSelection"]["AllowedPattern"]

    assert re.fullmatch(pattern, selection) is None


@pytest.mark.parametrize("selection", SMUGGLING_SELECTIONS)
def test_and_if_one_got_through_the_function_rejects_it_instead_of_obeying_it(sam_template, selection):
    delivery = the_function_reads(scheduled_input(sam_template, {"CleanupSelection": selection}))

    assert delivery.cleanup is None
    assert delivery.rejection.startswith("not a valid scheduled clean-up: schedule.select")


@pytest.mark.parametrize(
    "selection",
    [
        '{"status": "paused", "olderThanDays": 180}',
        '{"status":"PAUSED","ownerUserId":42}',
        ' { "folderId": "6f1c3f5e-3a55-4ad3-9f77-0a4c1d2b9e10", "name": "Q3 {draft}, old" } ',
        '{"createdAfter": "2024-01-01", "createdBefore": "2025-01-01T00:00:00Z"}',
    ],
)
def test_every_selection_the_pattern_admits_with_valid_values_is_a_selection_the_function_takes(
    sam_template, selection
):
    pattern = sam_template["Parameters"]["CleanupSelection"]["AllowedPattern"]
    delivery = the_function_reads(scheduled_input(sam_template, {"CleanupSelection": selection}))

    assert re.fullmatch(pattern, selection) is not None
    assert delivery.rejection is None
    assert delivery.cleanup.pause_first is False
    assert delivery.cleanup.continuation is None


def test_the_keep_list_is_empty_by_default_and_goes_into_the_scheduled_selection(sam_template):
    parameter = sam_template["Parameters"]["CleanupExclude"]
    keep = '{"sequenceIds": [101, 102], "nameContains": ["Keep"], "ownerUserIds": [7]}'

    default = the_function_reads(scheduled_input(sam_template, {})).cleanup
    kept = the_function_reads(scheduled_input(sam_template, {"CleanupExclude": keep})).cleanup

    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], keep) is not None
    assert default.select.exclude is None
    assert kept.select.to_json() == {
        "status": "paused",
        "olderThanDays": 180,
        "exclude": {"sequenceIds": [101, 102], "nameContains": ["Keep"], "ownerUserIds": [7]},
    }


@pytest.mark.parametrize(
    "keep",
    [
        '{"sequenceIds": [101]}, "pauseFirst": true, "x": {}',  # the pattern admits it; the JSON text is not one object
        '{"sequenceIds": [101], "pauseFirst": true}',
        '{"sequenceIds": ["101"]}',
        '{"names": ["Keep"]}',
        "[101]",
    ],
)
def test_a_keep_list_that_is_not_one_exclude_object_is_rejected_not_obeyed(sam_template, keep):
    delivery = the_function_reads(scheduled_input(sam_template, {"CleanupExclude": keep}))

    assert delivery.cleanup is None
    assert delivery.rejection.startswith("not a valid scheduled clean-up: schedule.exclude")


def test_the_selection_parameter_takes_the_new_keys_as_flat_values(sam_template):
    selection = '{"status": "paused", "health": "blocked,STALLED", "contactsFinished": true, "inactiveForDays": 90}'
    pattern = sam_template["Parameters"]["CleanupSelection"]["AllowedPattern"]

    request = the_function_reads(scheduled_input(sam_template, {"CleanupSelection": selection})).cleanup

    assert re.fullmatch(pattern, selection) is not None
    assert request.select.to_json() == {
        "status": "paused",
        "health": ["stalled", "blocked"],
        "contactsFinished": True,
        "inactiveForDays": 90,
    }


@pytest.mark.parametrize(("value", "allowed"), [("direct", True), ("direct, sqs,sns", True), ("sqs,kinesis", False)])
def test_clean_ups_are_allowed_from_direct_invokes_only_unless_the_parameter_widens_it(
    sam_template, deployed_template, value, allowed
):
    parameter = sam_template["Parameters"]["CleanupAllowedTriggers"]
    variables = deployed_template()["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]

    assert parameter["Default"] == "direct"
    assert variables["CLEANUP_ALLOWED_TRIGGERS"] == {"Ref": "CleanupAllowedTriggers"}
    assert (re.fullmatch(parameter["AllowedPattern"], value) is not None) is allowed


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
