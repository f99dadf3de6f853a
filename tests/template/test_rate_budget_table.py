"""The shared rate budget table: created unless EnableRateBudgetTable is "false", named to the function, which
may only read and conditionally update its items."""

from __future__ import annotations

import pytest

from tests.template.helpers import branches, statements_allowing

pytestmark = pytest.mark.template

TABLE = "RateBudgetTable"
FUNCTION = "ArchiveSequencesFunction"
ROLE = "ArchiveSequencesFunctionRole"
CONDITION = "RateBudgetTableEnabled"
BUDGET_ACTIONS = {"dynamodb:GetItem", "dynamodb:UpdateItem"}


def test_the_table_exists_only_while_enable_rate_budget_table_is_true(transformed_template, resources):
    parameter = transformed_template["Parameters"]["EnableRateBudgetTable"]

    assert parameter["AllowedValues"] == ["true", "false"]
    assert parameter["Default"] == "true"
    assert transformed_template["Conditions"][CONDITION] == {"Fn::Equals": [{"Ref": "EnableRateBudgetTable"}, "true"]}
    assert resources[TABLE]["Condition"] == CONDITION


def test_the_table_has_the_budget_key_and_expires_idle_budgets_through_ttl(resources):
    table = resources[TABLE]["Properties"]

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_table_is_on_demand_encrypted_and_deleted_with_the_stack(resources):
    table = resources[TABLE]

    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Delete"
    assert table["UpdateReplacePolicy"] == "Delete"


def test_the_function_is_told_the_table_name_or_an_empty_string_when_disabled(resources):
    variables = resources[FUNCTION]["Properties"]["Environment"]["Variables"]

    assert variables["RATE_BUDGET_TABLE_NAME"] == {"Fn::If": [CONDITION, {"Ref": TABLE}, ""]}


@pytest.mark.parametrize("action", sorted(BUDGET_ACTIONS))
def test_the_role_may_read_and_update_this_table_only(resources, action):
    on_this_table = [
        statement
        for statement in statements_allowing(resources, ROLE, action)
        if statement["Resource"] == {"Fn::GetAtt": [TABLE, "Arn"]}
    ]

    [statement] = on_this_table
    assert set(statement["Action"]) == BUDGET_ACTIONS


def test_the_table_grant_disappears_with_the_table(resources):
    conditional = [
        policy
        for policy in resources[ROLE]["Properties"]["Policies"]
        if "Fn::If" in policy and policy["Fn::If"][0] == CONDITION
    ]

    [policy] = conditional
    [granted] = branches(policy)
    assert granted["PolicyName"] == "rate-budget"
    assert policy["Fn::If"][2] == {"Ref": "AWS::NoValue"}
