"""Least privilege in the deployed (transformed) template: every grant on a data service names its resources."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.helpers import (
    IDENTITY_POLICY_TYPES,
    as_list,
    key_policy_statements,
    of_type,
    policy_statements,
    resource_policy_statements,
    statements_allowing,
    strings_in,
)

pytestmark = pytest.mark.template

ROLE = "ArchiveSequencesFunctionRole"
REQUESTS_QUEUE = "ArchiveRequestsQueue"
REQUESTS_DLQ = "ArchiveRequestsDeadLetterQueue"
FAILED_INVOCATIONS_QUEUE = "FailedInvocationsQueue"

# Services whose resources hold data or deliver it: a grant on them must name the resource.
SCOPED_SERVICES = {"secretsmanager", "sqs", "events", "dynamodb", "sns", "kms", "logs"}


def services_of(statement: dict[str, Any]) -> set[str]:
    """The service prefixes of a statement's actions (`sqs:SendMessage` -> `sqs`)."""
    return {action.split(":")[0].lower() for action in as_list(statement.get("Action", []))}


def is_wildcard_grant(statement: dict[str, Any]) -> bool:
    """True when a statement reaches beyond named resources or actions: `*` in Resource or Action, or NotResource."""
    return (
        "NotResource" in statement
        or "NotAction" in statement
        or any("*" in s for s in strings_in(statement.get("Resource")))
        or any("*" in action for action in as_list(statement.get("Action", [])))
    )


def test_every_role_and_policy_of_the_deployed_template_is_inspected(resources):
    owners = {owner for owner, _ in policy_statements(resources)}

    assert owners == {name for name, res in resources.items() if res["Type"] in IDENTITY_POLICY_TYPES}
    assert ROLE in owners


def test_no_identity_policy_grants_a_data_service_on_a_wildcard(resources):
    offending = [
        (owner, statement)
        for owner, statement in policy_statements(resources)
        if services_of(statement) & SCOPED_SERVICES and is_wildcard_grant(statement)
    ]

    assert offending == []


def test_the_only_wildcard_resource_is_x_ray_which_has_no_resource_level_permissions(resources):
    wildcard_actions = {
        action
        for _, statement in policy_statements(resources)
        if "*" in strings_in(statement.get("Resource"))
        for action in as_list(statement["Action"])
    }

    assert wildcard_actions == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_queue_topic_and_log_policies_name_their_resource_and_a_service_principal(resources):
    # KMS key policies are left out on purpose: there "Resource": "*" means the key itself.
    statements = resource_policy_statements(resources)

    assert statements
    for owner, statement in statements:
        assert not is_wildcard_grant(statement), owner
        if statement["Effect"] == "Allow":
            assert set(statement["Principal"]) == {"Service"}, owner
            assert statement.get("Condition"), owner


SOURCE_CONDITION_KEYS = {"aws:SourceAccount", "aws:SourceArn", "aws:SourceOrgID"}


def condition_keys(statement: dict[str, Any]) -> set[str]:
    """The condition keys a statement tests, whatever the operator (`StringEquals`, `ArnLike`...)."""
    return {key for operator in statement.get("Condition", {}).values() for key in operator}


def test_every_kms_grant_to_a_service_names_its_source(resources):
    # Confused-deputy protection: a service principal may use the key only on behalf of our own resources.
    statements = key_policy_statements(resources)
    service_grants = [
        (key, statement)
        for key, statement in statements
        if statement["Effect"] == "Allow" and "Service" in statement.get("Principal", {})
    ]

    assert service_grants, "the alarm topic key grants CloudWatch"
    for key, statement in service_grants:
        assert condition_keys(statement) & SOURCE_CONDITION_KEYS, (key, statement.get("Sid"))
        assert condition_keys(statement) >= {"aws:SourceAccount"}, (key, statement.get("Sid"))


def test_the_alarm_key_admits_only_this_stacks_alarms(resources):
    [statement] = [
        statement
        for _, statement in key_policy_statements(resources)
        if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]

    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source_arn.endswith(":alarm:${AWS::StackName}-*")


def test_execution_role_attaches_no_managed_policies(resources):
    # AWS managed policies such as AWSLambdaSQSQueueExecutionRole grant sqs:* actions on "*".
    for name in of_type(resources, "AWS::IAM::Role"):
        assert resources[name]["Properties"].get("ManagedPolicyArns", []) == [], name


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        (
            "secretsmanager:GetSecretValue",
            {"Fn::If": ["CreateApiKeySecret", {"Ref": "ReplyApiKeySecret"}, {"Ref": "ReplyApiKeySecretArn"}]},
        ),
        ("sqs:ReceiveMessage", {"Fn::GetAtt": [REQUESTS_QUEUE, "Arn"]}),
        ("sqs:DeleteMessage", {"Fn::GetAtt": [REQUESTS_QUEUE, "Arn"]}),
        ("sqs:SendMessage", {"Fn::GetAtt": [REQUESTS_DLQ, "Arn"]}),
        ("sqs:SendMessage", {"Fn::GetAtt": [REQUESTS_QUEUE, "Arn"]}),
        ("sqs:SendMessage", {"Fn::GetAtt": [FAILED_INVOCATIONS_QUEUE, "Arn"]}),
        ("dynamodb:PutItem", {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}),
    ],
)
def test_role_allows_action_on_exactly_one_resource(resources, action, resource):
    assert resource in [statement["Resource"] for statement in statements_allowing(resources, ROLE, action)]


def test_role_allows_put_events_on_the_results_bus_only(resources):
    [statement] = statements_allowing(resources, ROLE, "events:PutEvents")

    condition, created, existing = statement["Resource"]["Fn::If"]
    assert condition == "CreateResultsEventBus"
    assert created == {"Fn::GetAtt": ["ResultsEventBus", "Arn"]}
    assert existing["Fn::Sub"].endswith(":event-bus/${ExistingResultsEventBusName}")
