"""The results log group: every event of the function's source is kept, on whichever bus it publishes to."""

from __future__ import annotations

import pytest

from local.stand_ins.aws_stack import results_log_group_name
from sequence_archiver.core.results_contract import RESULTS_EVENT_SOURCE
from tests.template.helpers import as_list, parse_sub_json, resource_policy_statements

pytestmark = pytest.mark.template

FUNCTION = "ArchiveSequencesFunction"
LOG_GROUP = "ResultsLogGroup"
RULE = "ResultsLogRule"
DELIVERY_POLICY = "ResultsLogGroupDeliveryPolicy"
ARCHIVE = "ResultsArchive"
# The values CloudWatch Logs accepts for RetentionInDays (PutRetentionPolicy).
CLOUDWATCH_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                             2922, 3288, 3653]  # fmt: skip
BUSES = {"created": {}, "existing": {"ExistingResultsEventBusName": "shared-bus"}}


def function_variables(template):
    """The function's environment variables in a deployed template."""
    return template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]


@pytest.mark.parametrize("bus", BUSES)
def test_a_rule_on_the_bus_the_function_publishes_to_sends_every_event_of_its_source_to_the_group(
    deployed_template, bus
):
    template = deployed_template(**BUSES[bus])
    rule = template["Resources"][RULE]["Properties"]
    variables = function_variables(template)

    assert rule["EventBusName"] == variables["RESULTS_EVENT_BUS_NAME"]
    assert rule["EventBusName"] == {"Ref": "ResultsEventBus" if bus == "created" else "ExistingResultsEventBusName"}
    # No detail-type in the pattern: results now, and any other event type the function publishes later.
    assert rule["EventPattern"] == {"source": [variables["RESULTS_EVENT_SOURCE"]]}
    assert variables["RESULTS_EVENT_SOURCE"] == RESULTS_EVENT_SOURCE
    assert rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${"
                             + LOG_GROUP + "}"}  # fmt: skip
    assert "RoleArn" not in target  # CloudWatch Logs targets are authorised by the resource policy, not a role
    assert {LOG_GROUP, RULE, DELIVERY_POLICY} <= set(template["Resources"])


def test_the_group_is_named_after_the_stack_as_the_local_stack_names_it(resources):
    name = resources[LOG_GROUP]["Properties"]["LogGroupName"]["Fn::Sub"]

    assert name == "/aws/events/${AWS::StackName}/sequence-archive-results"
    assert name.replace("${AWS::StackName}", "my-stack") == results_log_group_name("my-stack")


def test_the_group_keeps_events_as_long_as_the_retention_parameter_says(transformed_template, resources):
    parameter = transformed_template["Parameters"]["ResultsRetentionDays"]

    assert resources[LOG_GROUP]["Properties"]["RetentionInDays"] == {"Ref": "ResultsRetentionDays"}
    assert parameter["Type"] == "Number"
    assert parameter["Default"] == 90
    assert parameter["AllowedValues"] == CLOUDWATCH_RETENTION_DAYS
    assert parameter["Description"]


def test_only_the_results_rule_may_write_and_only_into_the_results_group(resources):
    policy = resources[DELIVERY_POLICY]["Properties"]
    [statement] = [statement for owner, statement in resource_policy_statements(resources) if owner == DELIVERY_POLICY]

    assert policy["PolicyName"] == {"Fn::Sub": "${AWS::StackName}-results-log-delivery"}
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Principal"]["Service"])) == ["delivery.logs.amazonaws.com", "events.amazonaws.com"]
    assert sorted(as_list(statement["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == "${" + LOG_GROUP + ".Arn}"  # the group's streams, nothing else
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "${" + RULE + ".Arn}"}}
    assert parse_sub_json(policy["PolicyDocument"]["Fn::Sub"])["Version"] == "2012-10-17"


def test_the_outputs_name_the_group(sam_template):
    output = sam_template["Outputs"]["ResultsLogGroupName"]

    assert output["Value"] == {"Ref": LOG_GROUP}
    assert "report --log-group" in output["Description"]


def test_the_results_parameters_are_in_the_results_console_group(sam_template):
    groups = sam_template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    [results] = [group for group in groups if group["Label"]["default"] == "Results"]

    assert {"ResultsRetentionDays", "ResultsArchiveRetentionDays"} <= set(results["Parameters"])


def test_no_archive_unless_a_retention_is_given(deployed_template):
    template = deployed_template()

    assert ARCHIVE not in template["Resources"]
    assert "ResultsArchiveName" not in template["Outputs"]


@pytest.mark.parametrize("bus", BUSES)
def test_an_archive_of_the_function_s_events_on_its_bus_keeps_them_for_replay(deployed_template, bus):
    template = deployed_template(ResultsArchiveRetentionDays="30", **BUSES[bus])
    archive = template["Resources"][ARCHIVE]["Properties"]

    assert archive["EventPattern"] == {"source": [RESULTS_EVENT_SOURCE]}
    assert archive["RetentionDays"] == {"Ref": "ResultsArchiveRetentionDays"}
    if bus == "created":
        assert archive["SourceArn"] == {"Fn::GetAtt": ["ResultsEventBus", "Arn"]}
    else:
        assert archive["SourceArn"]["Fn::Sub"].endswith(":event-bus/${ExistingResultsEventBusName}")
    assert template["Outputs"]["ResultsArchiveName"]["Value"] == {"Ref": ARCHIVE}
