"""Alarms watch what can go wrong, and every one of them reaches people through the encrypted alarm topic."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.helpers import as_list, of_type, only, strings_in

pytestmark = pytest.mark.template

FUNCTION = "ArchiveSequencesFunction"
REQUESTS_QUEUE = "ArchiveRequestsQueue"
REQUESTS_DLQ = "ArchiveRequestsDeadLetterQueue"
FAILED_INVOCATIONS_QUEUE = "FailedInvocationsQueue"
RULE_DLQ = "TriggerRuleDeadLetterQueue"
TOPIC = "AlarmTopic"
TOPIC_KEY = "AlarmTopicKey"
TOPIC_REF = {"Ref": TOPIC}


def alarms(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every alarm's Properties, by logical ID."""
    return {name: alarm["Properties"] for name, alarm in of_type(resources, "AWS::CloudWatch::Alarm").items()}


def watched(alarm: dict[str, Any]) -> tuple[str, str, str]:
    """(namespace, metric, what it watches): the logical ID of a queue or function, or the metric's service."""
    [dimension] = alarm["Dimensions"]
    return alarm["Namespace"], alarm["MetricName"], strings_in(dimension["Value"])[0]


def function_variables(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The function's environment variables."""
    variables: dict[str, Any] = resources[FUNCTION]["Properties"]["Environment"]["Variables"]
    return variables


def test_failures_backlog_and_throttling_each_have_an_alarm(resources):
    assert {watched(alarm) for alarm in alarms(resources).values()} == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", REQUESTS_DLQ),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", FAILED_INVOCATIONS_QUEUE),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", RULE_DLQ),
        ("AWS/Lambda", "Errors", FUNCTION),
        ("AWS/Lambda", "Throttles", FUNCTION),  # reserved concurrency equals the SQS maximum concurrency
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", REQUESTS_QUEUE),
        ("ReplySequenceArchiver", "ReplyApiThrottled", "sequence-archiver"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "CleanupScheduleDeadLetterQueue"),  # with a schedule
    }


def test_every_alarm_watches_a_resource_of_this_stack_or_the_function_s_own_metrics(resources):
    variables = function_variables(resources)
    expected_type = {"QueueName": "AWS::SQS::Queue", "FunctionName": "AWS::Lambda::Function"}

    for name, alarm in alarms(resources).items():
        [dimension] = alarm["Dimensions"]
        if dimension["Name"] == "service":
            assert alarm["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"], name
            assert dimension["Value"] == variables["POWERTOOLS_SERVICE_NAME"], name
        else:
            target = dimension["Value"].get("Ref") or dimension["Value"]["Fn::GetAtt"][0]
            assert resources[target]["Type"] == expected_type[dimension["Name"]], name
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", name
        assert alarm["TreatMissingData"] == "notBreaching", name


@pytest.mark.parametrize("actions", ["AlarmActions", "OKActions"])
def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_when_it_recovers(resources, actions):
    not_notifying = [name for name, alarm in alarms(resources).items() if alarm.get(actions) != [TOPIC_REF]]

    assert alarms(resources)
    assert not_notifying == []


def test_every_alarm_is_named_after_the_stack_so_the_topic_policy_admits_it(resources):
    for name, alarm in alarms(resources).items():
        assert alarm["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), name


def test_any_dead_letter_or_unhandled_error_fires_at_once(resources):
    immediate = [
        alarm
        for alarm in alarms(resources).values()
        if watched(alarm)[1] in {"Errors", "ApproximateNumberOfMessagesVisible"}
    ]

    assert len(immediate) == 5  # three dead-letter queues, failed async invocations, function errors
    for alarm in immediate:
        assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["Period"]) == (0, 1, 300)


def test_sustained_429s_fire_after_three_five_minute_periods_in_a_row(resources):
    [alarm] = [a for a in alarms(resources).values() if a["MetricName"] == "ReplyApiThrottled"]

    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (300, 3, 3)


def test_the_oldest_request_alarm_threshold_is_a_parameter_defaulting_to_an_hour(transformed_template, resources):
    [alarm] = [a for a in alarms(resources).values() if a["MetricName"] == "ApproximateAgeOfOldestMessage"]
    parameter = transformed_template["Parameters"]["OldestRequestAgeAlarmSeconds"]
    retention = resources[REQUESTS_QUEUE]["Properties"]["MessageRetentionPeriod"]

    assert alarm["Threshold"] == {"Ref": "OldestRequestAgeAlarmSeconds"}
    assert alarm["Statistic"] == "Maximum"
    assert parameter["Default"] == 3600
    assert parameter["MaxValue"] <= retention


def test_the_alarm_topic_is_always_created_and_encrypted_with_a_rotating_key_cloudwatch_may_use(resources):
    topic = resources[TOPIC]
    key = resources[TOPIC_KEY]["Properties"]
    cloudwatch_grants = [
        statement
        for statement in key["KeyPolicy"]["Statement"]
        if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]

    assert "Condition" not in topic
    # Not alias/aws/sns: that key's policy cannot let CloudWatch alarms publish, so alarms would go nowhere.
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [TOPIC_KEY, "Arn"]}
    assert key["EnableKeyRotation"] is True
    [grant] = cloudwatch_grants
    assert (grant["Effect"], set(as_list(grant["Action"]))) == ("Allow", {"kms:Decrypt", "kms:GenerateDataKey*"})


def test_only_this_stack_s_alarms_may_publish_to_the_topic_and_only_over_tls(resources):
    policy = only(resources, "AWS::SNS::TopicPolicy")
    statements = {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}

    assert policy["Topics"] == [TOPIC_REF]
    publish = statements["ThisStacksAlarmsPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Resource"] == TOPIC_REF
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert publish["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(":alarm:${AWS::StackName}-*")
    tls = statements["TlsOnly"]
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_email_subscription_exists_only_when_an_address_is_given(transformed_template, resources):
    subscription = resources["AlarmEmailSubscription"]

    assert subscription["Condition"] == "AlarmEmailGiven"
    assert transformed_template["Conditions"]["AlarmEmailGiven"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert subscription["Properties"] == {"TopicArn": TOPIC_REF, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}
    assert transformed_template["Parameters"]["AlarmEmail"]["Default"] == ""


def test_the_outputs_name_the_alarm_topic(sam_template):
    assert sam_template["Outputs"]["AlarmTopicArn"]["Value"] == TOPIC_REF


def test_a_throttled_invocation_raises_the_throttles_alarm_within_five_minutes(resources):
    alarm = alarms(resources)["ArchiveSequencesFunctionThrottlesAlarm"]

    assert watched(alarm) == ("AWS/Lambda", "Throttles", FUNCTION)
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == ("Sum", 300, 1, 0)
    assert resources[FUNCTION]["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "SqsMaximumConcurrency"}
