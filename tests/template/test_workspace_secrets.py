"""Named Reply workspaces: two list parameters, passed to the function, each secret readable and nothing more."""

from __future__ import annotations

import re

import pytest

from tests.template.helpers import as_list, policy_statements, statements_allowing

pytestmark = pytest.mark.template

FUNCTION = "ArchiveSequencesFunction"
ROLE = "ArchiveSequencesFunctionRole"
NAMES = "ReplyWorkspaceNames"
ARNS = "ReplyWorkspaceSecretArns"
ARN_A = "arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/sales-eu-AbCdEf"
ARN_B = "arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/sales-us-GhIjKl"
DEFAULT_SECRET = {"Ref": "ReplyApiKeySecret"}  # the placeholder the stack creates when ReplyApiKeySecretArn is empty
TWO_WORKSPACES = {NAMES: "sales-eu, sales-us", ARNS: f"{ARN_A},{ARN_B}"}


def secret_grants(template: dict) -> list[dict]:
    """The role's statements that allow reading a secret."""
    return statements_allowing(template["Resources"], ROLE, "secretsmanager:GetSecretValue")


@pytest.mark.parametrize("parameter", [NAMES, ARNS])
def test_both_lists_are_empty_by_default_and_described(sam_template, parameter):
    declared = sam_template["Parameters"][parameter]

    assert declared["Type"] == "CommaDelimitedList"
    assert declared["Default"] == ""
    assert "Leave empty" in sam_template["Parameters"][NAMES]["Description"]
    assert declared["Description"]


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("", True),  # the empty default
        ("sales-eu", True),
        ("a", True),
        ("0" + "a" * 62, True),
        ("a" * 64, False),
        ("Sales", False),
        ("-sales", False),
        ("sales eu", False),
        ("sales_eu", False),
        ("*", False),
    ],
)
def test_each_workspace_name_is_checked_like_the_function_checks_it(sam_template, name, accepted):
    pattern = sam_template["Parameters"][NAMES]["AllowedPattern"]

    assert (re.fullmatch(pattern, name) is not None) is accepted


@pytest.mark.parametrize(
    ("arn", "accepted"),
    [
        ("", True),
        (ARN_A, True),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:team_a/reply+key=1.@x-Ab12Cd", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:*", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/*", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/sales-??????", False),
        ("arn:aws:secretsmanager:*:123456789012:secret:reply", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:", False),
        ("reply/sales-eu", False),  # a name: the grant needs the ARN
    ],
)
def test_each_secret_arn_refuses_wildcards(sam_template, arn, accepted):
    # Every ARN becomes a Resource of the GetSecretValue grant: a wildcard would grant every matching secret.
    pattern = sam_template["Parameters"][ARNS]["AllowedPattern"]

    assert (re.fullmatch(pattern, arn) is not None) is accepted
    assert pattern == sam_template["Parameters"]["ReplyApiKeySecretArn"]["AllowedPattern"]


def test_the_function_is_told_the_names_and_secrets_in_the_same_order(resources):
    variables = resources[FUNCTION]["Properties"]["Environment"]["Variables"]

    assert variables["REPLY_WORKSPACES"] == {"Fn::Join": [",", {"Ref": NAMES}]}
    assert variables["REPLY_WORKSPACE_SECRET_IDS"] == {"Fn::Join": [",", {"Ref": ARNS}]}


def test_by_default_the_function_serves_no_named_workspace_and_reads_only_the_default_secret(deployed_template):
    template = deployed_template()
    variables = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]

    assert variables["REPLY_WORKSPACES"] == ""
    assert variables["REPLY_WORKSPACE_SECRET_IDS"] == ""
    assert [statement["Resource"] for statement in secret_grants(template)] == [DEFAULT_SECRET]
    policies = [policy["PolicyName"] for policy in template["Resources"][ROLE]["Properties"]["Policies"]]
    assert "read-reply-workspace-api-keys" not in policies


def test_with_workspaces_the_role_reads_exactly_their_secrets_beside_the_default_one(deployed_template):
    template = deployed_template(**TWO_WORKSPACES)
    variables = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]

    assert variables["REPLY_WORKSPACES"] == "sales-eu,sales-us"
    assert variables["REPLY_WORKSPACE_SECRET_IDS"] == f"{ARN_A},{ARN_B}"
    default, workspaces = secret_grants(template)
    assert default["Resource"] == DEFAULT_SECRET
    assert workspaces == {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": [ARN_A, ARN_B]}


@pytest.mark.parametrize("parameters", [{}, TWO_WORKSPACES], ids=["none", "two"])
def test_no_kms_grant_comes_with_the_workspace_secrets(deployed_template, parameters):
    # As for the default secret: a customer managed key's kms:Decrypt is the operator's to grant (docs/security.md).
    template = deployed_template(**parameters)

    granted = [
        action
        for owner, statement in policy_statements(template["Resources"])
        if owner == ROLE
        for action in as_list(statement["Action"])
    ]
    assert not [action for action in granted if action.lower().startswith("kms:")]
    assert "kms:Decrypt" in template["Parameters"][ARNS]["Description"]
