"""template.yaml is lint-clean, builds, and wires the function, queues, rule, bus and secret as contracted."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file

from tests.security.lockfile import LOCK_PATH, canonical_name, read_pins
from tests.template.helpers import of_type, only, policy_statements, strings_in

pytestmark = pytest.mark.template

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
EVENTS_DIR = PROJECT_ROOT / "events"
SAMPLE_FILES = sorted(EVENTS_DIR.glob("*.json"))

FUNCTION = "ArchiveSequencesFunction"
ROLE = "ArchiveSequencesFunctionRole"
REQUESTS_QUEUE = "ArchiveRequestsQueue"
REQUESTS_DLQ = "ArchiveRequestsDeadLetterQueue"
FAILED_INVOCATIONS_QUEUE = "FailedInvocationsQueue"
RULE_DLQ = "TriggerRuleDeadLetterQueue"
REQUEST_RULE = "ArchiveSequencesFunctionEventBridgeRequests"  # SAM names it after the function and event
CLEANUP_DLQ = "CleanupScheduleDeadLetterQueue"  # only when CleanupSchedule is set

SQS_RECORD_FIELDS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


def load_sample(path: Path) -> Any:
    """A sample event as parsed JSON."""
    return json.loads(path.read_text())


def is_sqs_sample(path: Path) -> bool:
    """True for samples shaped as an SQS event."""
    sample = load_sample(path)
    records = sample.get("Records") if isinstance(sample, dict) else None
    return bool(records) and records[0].get("eventSource") == "aws:sqs"


# ------------------------------------------------------------------ linters


def test_sam_validate_with_lint_reports_a_valid_template(sam_cli):
    result = sam_cli("validate", "--lint", "--template-file", str(TEMPLATE_PATH), "--region", "us-east-1")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_reports_no_findings():
    findings = [str(match) for match in lint_file(TEMPLATE_PATH)]

    assert findings == []


# ------------------------------------------------------------------ sam build

# Run under the SAM CLI's interpreter with the environment its `sam build` gets: pip as aws-lambda-builders runs it.
_PIP_DOWNLOAD_SCRIPT = """
import json, os, subprocess, sys, tempfile

def download(requirement):
    with tempfile.TemporaryDirectory() as dest:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", dest, requirement]
        returncode = subprocess.run(command, capture_output=True, check=False).returncode
        return {"returncode": returncode, "files": sorted(os.listdir(dest))}

print(json.dumps({"locked": download("six==1.17.0"), "unlocked": download("requests")}))
"""


def test_the_builds_pip_reads_the_wheelhouse_and_no_registry_nor_this_machines_pip_config(wheelhouse, sam_python):
    # requests is on PyPI and in this machine's configured pip mirrors, but not in the layer's lock.
    downloads = sam_python(_PIP_DOWNLOAD_SCRIPT)

    assert downloads["locked"] == {"returncode": 0, "files": ["six-1.17.0-py2.py3-none-any.whl"]}
    assert downloads["unlocked"]["returncode"] != 0
    assert downloads["unlocked"]["files"] == []


def test_build_holds_the_handler_and_its_package_but_no_tests(built_artifact):
    function_dir = built_artifact.function_dir

    assert (function_dir / "app.py").is_file()
    assert (function_dir / "sequence_archiver" / "__init__.py").is_file()
    test_files = [
        path.relative_to(function_dir)
        for path in function_dir.rglob("*")
        if path.name in {"tests", "conftest.py"} or path.name.startswith("test_")
    ]
    assert test_files == []


@pytest.mark.parametrize("package", ["aws_lambda_powertools", "pydantic", "pydantic_core", "urllib3", "boto3"])
def test_layer_bundles_runtime_dependency(built_artifact, package):
    assert (built_artifact.layer_python_dir / package).is_dir()


def test_layer_pydantic_core_is_compiled_for_lambda_python311_x86_64(built_artifact):
    extensions = list((built_artifact.layer_python_dir / "pydantic_core").glob("*.cpython-311-x86_64-linux-gnu.so"))

    assert extensions, "pydantic_core has no CPython 3.11 x86_64 Linux extension"


def test_layer_holds_exactly_the_locked_distributions(built_artifact):
    installed = {
        canonical_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[str(built_artifact.layer_python_dir)])
    }

    assert installed == read_pins(LOCK_PATH)


def test_dependencies_live_in_the_layer_not_the_function(built_artifact):
    bundled = [
        name for name in ("pydantic", "boto3", "aws_lambda_powertools") if (built_artifact.function_dir / name).exists()
    ]

    assert bundled == []


# ------------------------------------------------------------------ function


def test_function_runs_the_handler_on_python311_x86_64_with_the_layer(resources):
    function = resources[FUNCTION]["Properties"]

    assert function["Handler"] == "app.lambda_handler"
    assert function["Runtime"] == "python3.11"
    assert function["Architectures"] == ["x86_64"]
    assert function["MemorySize"] == 512
    assert function["Timeout"] == 300
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Role"] == {"Fn::GetAtt": [ROLE, "Arn"]}
    [layer] = function["Layers"]
    assert resources[layer["Ref"]]["Type"] == "AWS::Lambda::LayerVersion"


def test_sources_are_the_function_directory_and_the_python311_layer(sam_template):
    function = sam_template["Resources"][FUNCTION]["Properties"]
    layer = sam_template["Resources"]["DependenciesLayer"]

    assert function["CodeUri"] == "functions/archive_sequences/"
    assert layer["Properties"]["ContentUri"] == "layers/dependencies/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.11"]
    assert layer["Properties"]["RetentionPolicy"] == "Delete"
    assert layer["Metadata"]["BuildMethod"] == "python3.11"


def test_function_environment_matches_the_settings_contract(resources):
    variables = resources[FUNCTION]["Properties"]["Environment"]["Variables"]

    assert set(variables) == {
        "REPLY_API_KEY_SECRET_ID",
        "REPLY_API_BASE_URL",
        "RESULTS_EVENT_BUS_NAME",
        "RESULTS_EVENT_SOURCE",
        "DEAD_LETTER_QUEUE_URL",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "PYDANTIC_DISABLE_PLUGINS",
        "REPLY_RATE_LIMIT_PER_MINUTE",
        "REPLY_RATE_LIMIT_PER_HOUR",
        "REPLY_RATE_LIMIT_INSTANCES",
        "REPLY_ARCHIVE_MODE",
        "REPLY_API_KEY_KIND",
        "REPLY_BULK_MAX_IDS",
        "SQS_MAX_RECEIVE_COUNT",
        "IDEMPOTENCY_TABLE_NAME",
        "RATE_BUDGET_TABLE_NAME",
        "SNAPSHOT_BUCKET_NAME",
        "SNAPSHOT_POLICY",
        "ARCHIVE_QUEUE_URL",
        "REPLY_WORKSPACES",
        "REPLY_WORKSPACE_SECRET_IDS",
        "CLEANUP_ALLOWED_TRIGGERS",
    }
    assert variables["REPLY_API_KEY_SECRET_ID"] == {
        "Fn::If": ["CreateApiKeySecret", {"Ref": "ReplyApiKeySecret"}, {"Ref": "ReplyApiKeySecretArn"}]
    }
    assert variables["REPLY_API_BASE_URL"] == {"Ref": "ReplyApiBaseUrl"}
    assert variables["REPLY_API_KEY_KIND"] == {"Ref": "ReplyApiKeyKind"}
    assert variables["RESULTS_EVENT_BUS_NAME"] == {
        "Fn::If": ["CreateResultsEventBus", {"Ref": "ResultsEventBus"}, {"Ref": "ExistingResultsEventBusName"}]
    }
    assert variables["RESULTS_EVENT_SOURCE"] == "reply.sequence-archiver"
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": REQUESTS_DLQ}
    assert variables["POWERTOOLS_SERVICE_NAME"] == "sequence-archiver"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "ReplySequenceArchiver"
    assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    assert variables["CLEANUP_ALLOWED_TRIGGERS"] == {"Ref": "CleanupAllowedTriggers"}


# ------------------------------------------------------------------ queues and triggers


def test_requests_queue_visibility_timeout_covers_six_timeouts_plus_the_longest_batching_window(
    transformed_template, resources
):
    timeout = resources[FUNCTION]["Properties"]["Timeout"]
    longest_window = transformed_template["Parameters"]["SqsMaximumBatchingWindowSeconds"]["MaxValue"]

    visibility_timeout = resources[REQUESTS_QUEUE]["Properties"]["VisibilityTimeout"]

    assert longest_window == 300
    assert visibility_timeout >= 6 * timeout + longest_window


def test_requests_queue_dead_letters_after_max_receive_count(resources):
    redrive = resources[REQUESTS_QUEUE]["Properties"]["RedrivePolicy"]

    assert redrive == {
        "deadLetterTargetArn": {"Fn::GetAtt": [REQUESTS_DLQ, "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }


def test_every_queue_is_encrypted_with_sse_sqs(resources):
    queues = of_type(resources, "AWS::SQS::Queue")

    assert set(queues) == {REQUESTS_QUEUE, REQUESTS_DLQ, FAILED_INVOCATIONS_QUEUE, RULE_DLQ, CLEANUP_DLQ}
    assert {name: q["Properties"].get("SqsManagedSseEnabled") for name, q in queues.items()} == dict.fromkeys(
        queues, True
    )


@pytest.mark.parametrize("queue", [REQUESTS_DLQ, FAILED_INVOCATIONS_QUEUE, RULE_DLQ, CLEANUP_DLQ])
def test_failure_queue_keeps_messages_for_14_days(resources, queue):
    assert resources[queue]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_sqs_event_source_reports_batch_item_failures_and_caps_concurrency(deployed_template):
    mapping = only(deployed_template()["Resources"], "AWS::Lambda::EventSourceMapping")  # a standard queue

    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [REQUESTS_QUEUE, "Arn"]}
    assert mapping["FunctionName"] == {"Ref": FUNCTION}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == {"Ref": "SqsBatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "SqsMaximumBatchingWindowSeconds"}
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "SqsMaximumConcurrency"}}


def test_eventbridge_rule_forwards_requests_with_retries_and_a_dead_letter_queue(resources):
    rule = resources[REQUEST_RULE]["Properties"]

    assert rule["EventBusName"] == {"Ref": "TriggerEventBusName"}
    assert rule["EventPattern"] == {
        "source": [{"Ref": "TriggerEventSource"}],
        "detail-type": [{"Ref": "TriggerDetailType"}],
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [FUNCTION, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [RULE_DLQ, "Arn"]}}


def test_rule_dead_letter_queue_admits_only_eventbridge_sending_for_the_request_rule(resources):
    rule_name = resources[REQUEST_RULE]["Properties"]["Name"]["Fn::Sub"]
    policy = only(resources, "AWS::SQS::QueuePolicy")

    [statement] = policy["PolicyDocument"]["Statement"]

    assert policy["Queues"] == [{"Ref": RULE_DLQ}]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": [RULE_DLQ, "Arn"]}
    source_arns = strings_in(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
    rule_arns = [arn for arn in source_arns if arn.startswith("arn:")]
    assert len(rule_arns) == 2  # the default bus and a custom bus (rule/<bus>/<name>)
    assert all(arn.endswith("/" + rule_name) and "*" not in arn for arn in rule_arns)


def test_async_invocations_retry_twice_then_land_in_the_failure_queue(resources):
    config = only(resources, "AWS::Lambda::EventInvokeConfig")

    assert config["FunctionName"] == {"Ref": FUNCTION}
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 3600
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [FAILED_INVOCATIONS_QUEUE, "Arn"]}


# ------------------------------------------------------------------ secret and bus


@pytest.mark.parametrize(
    ("resource", "condition", "parameter"),
    [
        ("ReplyApiKeySecret", "CreateApiKeySecret", "ReplyApiKeySecretArn"),
        ("ResultsEventBus", "CreateResultsEventBus", "ExistingResultsEventBusName"),
    ],
)
def test_resource_is_created_only_when_no_existing_one_is_given(
    transformed_template, resources, resource, condition, parameter
):
    assert resources[resource]["Condition"] == condition
    assert transformed_template["Conditions"][condition] == {"Fn::Equals": [{"Ref": parameter}, ""]}
    assert transformed_template["Parameters"][parameter]["Default"] == ""


def test_created_secret_is_a_documented_placeholder(resources):
    secret = resources["ReplyApiKeySecret"]["Properties"]

    assert "SecretString" not in secret
    assert secret["GenerateSecretString"]["GenerateStringKey"] == "apiKey"
    assert "PLACEHOLDER" in secret["Description"]
    assert '{"apiKey": "..."}' in secret["Description"]


@pytest.mark.parametrize(
    ("arn", "accepted"),
    [
        ("", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/api-key-AbCdEf", True),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:team_a/reply+key=1.@x-Ab12Cd", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:*", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/*", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/api-key-??????", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:*-AbCdEf", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:", False),
        ("arn:aws:secretsmanager:*:123456789012:secret:reply", False),
        ("arn:aws:secretsmanager:us-east-1:*:secret:reply", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:reply key", False),
    ],
)
def test_the_secret_arn_parameter_refuses_wildcards(sam_template, arn, accepted):
    # The ARN becomes the Resource of the GetSecretValue grant: a wildcard would grant every matching secret.
    pattern = sam_template["Parameters"]["ReplyApiKeySecretArn"]["AllowedPattern"]

    assert (re.fullmatch(pattern, arn) is not None) is accepted


# ------------------------------------------------------------------ parameters and outputs


@pytest.mark.parametrize(
    ("parameter", "default"),
    [
        ("ReplyApiKeySecretArn", ""),
        ("ReplyApiBaseUrl", "https://api.reply.io"),
        ("ExistingResultsEventBusName", ""),
        ("SqsBatchSize", 100),
        ("SqsMaximumBatchingWindowSeconds", 10),
        ("SqsMaximumConcurrency", 2),
        ("MaxReceiveCount", 5),
        ("TriggerEventSource", "reply.sequence-archiver.requests"),
        ("TriggerDetailType", "Archive Sequences"),
        ("TriggerEventBusName", "default"),
        ("LogLevel", "INFO"),
        ("ReplyRateLimitPerMinute", 100),
        ("ReplyRateLimitPerHour", 3000),
        ("ArchiveMode", "auto"),
        ("BulkMaxIds", 100),
        ("EnableIdempotency", "true"),
        ("AlarmEmail", ""),
        ("OldestRequestAgeAlarmSeconds", 3600),
    ],
)
def test_parameter_is_described_with_its_default(sam_template, parameter, default):
    declared = sam_template["Parameters"][parameter]

    assert declared["Default"] == default
    assert declared["Description"]


@pytest.mark.parametrize(
    ("parameter", "minimum", "maximum"),
    [("SqsBatchSize", 1, 10000), ("SqsMaximumBatchingWindowSeconds", 0, 300), ("SqsMaximumConcurrency", 2, 1000)],
)
def test_numeric_parameter_is_bounded_like_the_lambda_api(sam_template, parameter, minimum, maximum):
    declared = sam_template["Parameters"][parameter]

    assert (declared["MinValue"], declared["MaxValue"]) == (minimum, maximum)


def test_every_parameter_is_in_exactly_one_console_group(sam_template):
    groups = sam_template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]

    assert sorted(grouped) == sorted(sam_template["Parameters"])


def test_outputs_name_everything_an_operator_or_producer_needs(sam_template):
    assert set(sam_template["Outputs"]) >= {
        "ArchiveSequencesFunctionName",
        "ArchiveSequencesFunctionArn",
        "ArchiveRequestsQueueUrl",
        "ArchiveRequestsQueueArn",
        "ArchiveRequestsDeadLetterQueueUrl",
        "FailedInvocationsQueueUrl",
        "TriggerRuleDeadLetterQueueUrl",
        "ResultsEventBusName",
        "ResultsEventBusArn",
        "ApiKeySecretArn",
        "TriggerRuleEventSource",
        "TriggerRuleDetailType",
        "IdempotencyTableName",
        "AlarmTopicArn",
        "DashboardName",
        "DashboardUrl",
    }


# ------------------------------------------------------------------ sample events


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda path: path.name)
def test_sample_event_is_valid_json_listed_in_the_readme(path):
    load_sample(path)

    assert f"events/{path.name}" in (EVENTS_DIR / "README.md").read_text()


@pytest.mark.parametrize("path", [p for p in SAMPLE_FILES if is_sqs_sample(p)], ids=lambda path: path.name)
def test_sqs_sample_records_carry_every_field_lambda_delivers(path):
    records = load_sample(path)["Records"]

    for record in records:
        assert set(record) >= SQS_RECORD_FIELDS
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert record["eventSourceARN"].startswith("arn:aws:sqs:us-east-1:123456789012:")
        assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId"} <= set(record["attributes"])
    assert len({record["messageId"] for record in records}) == len(records)


def test_sqs_samples_exist():
    assert {p.name for p in SAMPLE_FILES if is_sqs_sample(p)} == {"sqs-batch.json", "sqs-single-record.json"}


def test_sqs_batch_sample_mixes_envelopes_with_a_poison_body():
    bodies = [record["body"] for record in load_sample(EVENTS_DIR / "sqs-batch.json")["Records"]]

    def parsed(body: str) -> Any:
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return None

    documents = [parsed(body) for body in bodies]
    assert any(isinstance(doc, dict) and doc.get("detail-type") == "Archive Sequences" for doc in documents)
    assert any(isinstance(doc, dict) and doc.get("Type") == "Notification" for doc in documents)
    assert any(isinstance(doc, int) for doc in documents)
    assert None in documents


def test_the_rate_budget_is_split_between_exactly_the_instances_that_can_run(resources):
    function = resources[FUNCTION]["Properties"]
    variables = function["Environment"]["Variables"]
    [mapping] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]

    assert variables["REPLY_RATE_LIMIT_INSTANCES"] == {"Ref": "SqsMaximumConcurrency"}
    assert function["ReservedConcurrentExecutions"] == {"Ref": "SqsMaximumConcurrency"}
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "SqsMaximumConcurrency"}
    assert variables["REPLY_RATE_LIMIT_PER_MINUTE"] == {"Ref": "ReplyRateLimitPerMinute"}
    assert variables["REPLY_RATE_LIMIT_PER_HOUR"] == {"Ref": "ReplyRateLimitPerHour"}


def test_defaults_fill_bulk_calls_within_reply_limits(sam_template):
    parameters = sam_template["Parameters"]

    assert parameters["SqsBatchSize"]["Default"] == 100
    assert parameters["SqsMaximumBatchingWindowSeconds"]["Default"] >= 1  # required above 10 records
    assert parameters["SqsMaximumConcurrency"]["Default"] == 2
    assert parameters["ReplyRateLimitPerMinute"]["Default"] == 100
    assert parameters["ReplyRateLimitPerHour"]["Default"] == 3000
    assert parameters["ArchiveMode"]["Default"] == "auto"
    assert parameters["BulkMaxIds"]["Default"] == 100


def test_the_function_may_shorten_the_visibility_of_throttled_records(resources):
    statements = [statement for owner, statement in policy_statements(resources) if owner == ROLE]
    [consume] = [s for s in statements if "sqs:ChangeMessageVisibility" in s["Action"]]
    assert "sqs:GetQueueUrl" in consume["Action"]
    assert consume["Resource"] == {"Fn::GetAtt": ["ArchiveRequestsQueue", "Arn"]}
