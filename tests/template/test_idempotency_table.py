"""The idempotency table: created unless EnableIdempotency is "false", named to the function, reachable by it alone."""

from __future__ import annotations

import pytest

from tests.template.helpers import branches, statements_allowing

pytestmark = pytest.mark.template

TABLE = "IdempotencyTable"
FUNCTION = "ArchiveSequencesFunction"
ROLE = "ArchiveSequencesFunctionRole"
CONDITION = "IdempotencyEnabled"
RECORD_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def test_the_table_exists_only_while_enable_idempotency_is_true(transformed_template, resources):
    parameter = transformed_template["Parameters"]["EnableIdempotency"]

    assert parameter["AllowedValues"] == ["true", "false"]
    assert parameter["Default"] == "true"
    assert transformed_template["Conditions"][CONDITION] == {"Fn::Equals": [{"Ref": "EnableIdempotency"}, "true"]}
    assert resources[TABLE]["Condition"] == CONDITION


def test_the_table_has_the_powertools_key_and_expires_records_through_ttl(resources):
    table = resources[TABLE]["Properties"]

    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_the_table_is_on_demand_recoverable_encrypted_and_deleted_with_the_stack(resources):
    table = resources[TABLE]

    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Delete"
    assert table["UpdateReplacePolicy"] == "Delete"


def test_the_function_is_told_the_table_name_or_an_empty_string_when_disabled(resources):
    variables = resources[FUNCTION]["Properties"]["Environment"]["Variables"]

    assert variables["IDEMPOTENCY_TABLE_NAME"] == {"Fn::If": [CONDITION, {"Ref": TABLE}, ""]}


@pytest.mark.parametrize("action", sorted(RECORD_ACTIONS))
def test_the_role_may_use_the_records_of_this_table_only(resources, action):
    # GetItem and UpdateItem are granted on the rate budget table too, by a statement of its own.
    [statement] = [
        statement
        for statement in statements_allowing(resources, ROLE, action)
        if statement["Resource"] != {"Fn::GetAtt": ["RateBudgetTable", "Arn"]}
    ]

    assert set(statement["Action"]) == RECORD_ACTIONS
    assert statement["Resource"] == {"Fn::GetAtt": [TABLE, "Arn"]}


def test_the_table_grant_disappears_with_the_table(resources):
    conditional = [
        policy
        for policy in resources[ROLE]["Properties"]["Policies"]
        if "Fn::If" in policy and policy["Fn::If"][0] == CONDITION
    ]

    [policy] = conditional
    [granted] = branches(policy)
    assert granted["PolicyName"] == "idempotency-records"
    assert policy["Fn::If"][2] == {"Ref": "AWS::NoValue"}
