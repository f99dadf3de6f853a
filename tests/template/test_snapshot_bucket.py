"""The snapshot bucket (issue 22): created unless EnableSnapshots is "false", private, encrypted, TLS only, expiring
its objects after SnapshotRetentionDays, kept when the stack goes; the function may only write under snapshots/."""

from __future__ import annotations

import pytest

from tests.template.helpers import branches, statements_allowing

pytestmark = pytest.mark.template

BUCKET = "SnapshotBucket"
FUNCTION = "ArchiveSequencesFunction"
ROLE = "ArchiveSequencesFunctionRole"
CONDITION = "SnapshotsEnabled"


def test_the_bucket_exists_only_while_enable_snapshots_is_true(transformed_template, resources):
    parameter = transformed_template["Parameters"]["EnableSnapshots"]

    assert parameter["AllowedValues"] == ["true", "false"]
    assert parameter["Default"] == "true"
    assert transformed_template["Conditions"][CONDITION] == {"Fn::Equals": [{"Ref": "EnableSnapshots"}, "true"]}
    assert resources[BUCKET]["Condition"] == CONDITION
    assert resources["SnapshotBucketPolicy"]["Condition"] == CONDITION


def test_the_bucket_is_private_encrypted_and_kept_with_its_snapshots(resources):
    bucket = resources[BUCKET]
    properties = bucket["Properties"]

    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    [rule] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"


def test_snapshots_expire_after_the_retention_parameter(transformed_template, resources):
    parameter = transformed_template["Parameters"]["SnapshotRetentionDays"]
    [rule] = resources[BUCKET]["Properties"]["LifecycleConfiguration"]["Rules"]

    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (90, 1, 3650)
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == {"Ref": "SnapshotRetentionDays"}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_the_bucket_refuses_every_request_without_tls(resources):
    [statement] = resources["SnapshotBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_function_is_told_the_bucket_and_the_policy(transformed_template, resources):
    variables = resources[FUNCTION]["Properties"]["Environment"]["Variables"]
    policy = transformed_template["Parameters"]["SnapshotPolicy"]

    assert variables["SNAPSHOT_BUCKET_NAME"] == {"Fn::If": [CONDITION, {"Ref": BUCKET}, ""]}
    assert variables["SNAPSHOT_POLICY"] == {"Ref": "SnapshotPolicy"}
    assert policy["AllowedValues"] == ["required", "best-effort", "off"]
    assert policy["Default"] == "required"


def test_the_function_may_only_write_under_snapshots(resources):
    writes = [
        statement
        for statement in statements_allowing(resources, ROLE, "s3:PutObject")
        if "SnapshotBucket" in str(statement["Resource"])
    ]

    [statement] = writes
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == {"Fn::Sub": "${SnapshotBucket.Arn}/snapshots/*"}
    for action in ("s3:GetObject", "s3:DeleteObject", "s3:ListBucket"):
        assert not [s for s in statements_allowing(resources, ROLE, action) if "SnapshotBucket" in str(s["Resource"])]


def test_the_write_grant_disappears_with_the_bucket(resources):
    conditional = [
        policy
        for policy in resources[ROLE]["Properties"]["Policies"]
        if "Fn::If" in policy and policy["Fn::If"][0] == CONDITION
    ]

    [policy] = conditional
    [granted] = branches(policy)
    assert granted["PolicyName"] == "write-snapshots"
    assert policy["Fn::If"][2] == {"Ref": "AWS::NoValue"}
