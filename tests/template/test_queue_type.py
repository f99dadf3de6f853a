"""QueueType: standard (the default) or fifo queues for archive requests, with triggers, grants, alarms and
outputs that work for both, checked on the template as CloudFormation deploys it with each value."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.template.helpers import of_type, only, parse_sub_json, statements_allowing, strings_in

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.template

ROLE = "ArchiveSequencesFunctionRole"
REQUESTS_QUEUE = "ArchiveRequestsQueue"
REQUESTS_DLQ = "ArchiveRequestsDeadLetterQueue"
QUEUE_TYPES = ["standard", "fifo"]
SQS_QUEUE_NAME_LIMIT = 80
LONGEST_STACK_NAME = 55  # the README keeps stack names under 56 (rule names stop at 64)
FIFO_ONLY_PROPERTIES = {"QueueName", "FifoQueue", "ContentBasedDeduplication"}


def resources_for(deployed_template: Callable[..., dict[str, Any]], **parameters: str) -> dict[str, dict[str, Any]]:
    """The resources deployed with these parameter values."""
    resources: dict[str, dict[str, Any]] = deployed_template(**parameters)["Resources"]
    return resources


def mapping_for(deployed_template: Callable[..., dict[str, Any]], **parameters: str) -> dict[str, Any]:
    """The SQS event source mapping deployed with these parameter values."""
    return only(resources_for(deployed_template, **parameters), "AWS::Lambda::EventSourceMapping")


def test_queue_type_is_standard_by_default_or_fifo(sam_template):
    declared = sam_template["Parameters"]["QueueType"]

    assert declared["Default"] == "standard"
    assert declared["AllowedValues"] == QUEUE_TYPES
    assert "MessageGroupId" in declared["Description"]


def test_standard_queues_are_deployed_as_before(deployed_template):
    resources = resources_for(deployed_template)  # the default

    for queue in (REQUESTS_QUEUE, REQUESTS_DLQ):
        assert FIFO_ONLY_PROPERTIES.isdisjoint(resources[queue]["Properties"]), queue
    mapping = only(resources, "AWS::Lambda::EventSourceMapping")
    assert mapping["BatchSize"] == {"Ref": "SqsBatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "SqsMaximumBatchingWindowSeconds"}


@pytest.mark.parametrize(
    ("queue", "suffix"), [(REQUESTS_QUEUE, "-requests.fifo"), (REQUESTS_DLQ, "-requests-dlq.fifo")]
)
def test_fifo_makes_the_queue_and_its_dead_letter_queue_fifo_with_content_based_deduplication(
    deployed_template, queue, suffix
):
    properties = resources_for(deployed_template, QueueType="fifo")[queue]["Properties"]

    assert properties["FifoQueue"] is True
    assert properties["ContentBasedDeduplication"] is True
    name = properties["QueueName"]["Fn::Sub"]
    assert name == "${AWS::StackName}" + suffix  # SQS requires the .fifo suffix
    assert len(name.replace("${AWS::StackName}", "s" * LONGEST_STACK_NAME)) <= SQS_QUEUE_NAME_LIMIT


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_the_queue_dead_letters_to_a_queue_of_its_own_type(deployed_template, queue_type):
    resources = resources_for(deployed_template, QueueType=queue_type)
    queue, dead_letters = resources[REQUESTS_QUEUE]["Properties"], resources[REQUESTS_DLQ]["Properties"]

    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [REQUESTS_DLQ, "Arn"]}
    assert queue.get("FifoQueue", False) is dead_letters.get("FifoQueue", False) is (queue_type == "fifo")


@pytest.mark.parametrize(("batch_size", "effective"), [("100", 10), ("10000", 10), ("10", 10), ("3", 3)])
def test_a_fifo_source_reads_at_most_ten_messages_and_has_no_batching_window(deployed_template, batch_size, effective):
    # Lambda's limits for FIFO sources: BatchSize 1-10, and no MaximumBatchingWindowInSeconds at all.
    mapping = mapping_for(deployed_template, QueueType="fifo", SqsBatchSize=batch_size)

    size = mapping["BatchSize"]
    assert size in (10, {"Ref": "SqsBatchSize"})
    assert (size if size == 10 else int(batch_size)) == effective
    assert "MaximumBatchingWindowInSeconds" not in mapping
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [REQUESTS_QUEUE, "Arn"]}


def test_a_standard_source_keeps_large_batches_and_its_batching_window(deployed_template):
    mapping = mapping_for(deployed_template, QueueType="standard", SqsBatchSize="100")

    assert mapping["BatchSize"] == {"Ref": "SqsBatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "SqsMaximumBatchingWindowSeconds"}


@pytest.mark.parametrize(("queue_type", "continues"), [("standard", True), ("fifo", False)])
def test_only_a_standard_queue_lets_the_function_send_continuations_to_it(deployed_template, queue_type, continues):
    # A continuation joins the back of its message group, so the function sends none to a FIFO queue.
    resources = resources_for(deployed_template, QueueType=queue_type)
    send_to = [statement["Resource"] for statement in statements_allowing(resources, ROLE, "sqs:SendMessage")]
    receive_from = [statement["Resource"] for statement in statements_allowing(resources, ROLE, "sqs:ReceiveMessage")]

    assert ({"Fn::GetAtt": [REQUESTS_QUEUE, "Arn"]} in send_to) is continues
    assert {"Fn::GetAtt": [REQUESTS_DLQ, "Arn"]} in send_to  # rejected records are parked either way
    assert receive_from == [{"Fn::GetAtt": [REQUESTS_QUEUE, "Arn"]}]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_alarms_name_queues_by_their_queue_name_attribute(deployed_template, queue_type):
    # A Ref to a queue is its URL: only GetAtt QueueName is the CloudWatch dimension, generated or .fifo alike.
    resources = resources_for(deployed_template, QueueType=queue_type)
    queues = set(of_type(resources, "AWS::SQS::Queue"))

    dimensions = [
        dimension["Value"]
        for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()
        for dimension in alarm["Properties"]["Dimensions"]
        if dimension["Name"] == "QueueName"
    ]

    assert {"Fn::GetAtt": [REQUESTS_QUEUE, "QueueName"]} in dimensions
    assert {"Fn::GetAtt": [REQUESTS_DLQ, "QueueName"]} in dimensions
    assert all(value["Fn::GetAtt"][0] in queues and value["Fn::GetAtt"][1] == "QueueName" for value in dimensions)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_the_dashboard_names_queues_by_their_queue_name_attribute(deployed_template, queue_type):
    resources = resources_for(deployed_template, QueueType=queue_type)
    body = only(resources, "AWS::CloudWatch::Dashboard")["DashboardBody"]["Fn::Sub"]
    queue_values = [
        line[3]
        for widget in parse_sub_json(body)["widgets"]
        if widget["type"] == "metric"
        for line in widget["properties"]["metrics"]
        if len(line) > 3 and line[2] == "QueueName"
    ]

    assert f"${{{REQUESTS_QUEUE}.QueueName}}" in queue_values
    # By the QueueName attribute (a FIFO name ends .fifo), or by the name the template gives a queue that may not
    # exist (the clean-up schedule's dead-letter queue, always standard).
    by_name = [value for value in queue_values if not re.fullmatch(r"\$\{[A-Za-z]+\.QueueName\}", value)]
    assert by_name == ["${AWS::StackName}-cleanup-dead-letters"]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_outputs_give_producers_the_queue_and_its_type(deployed_template, queue_type):
    outputs = deployed_template(QueueType=queue_type)["Outputs"]

    assert outputs["ArchiveRequestsQueueUrl"]["Value"] == {"Ref": REQUESTS_QUEUE}
    assert outputs["ArchiveRequestsQueueArn"]["Value"] == {"Fn::GetAtt": [REQUESTS_QUEUE, "Arn"]}
    assert outputs["ArchiveRequestsDeadLetterQueueUrl"]["Value"] == {"Ref": REQUESTS_DLQ}
    assert outputs["ArchiveRequestsQueueType"]["Value"] == {"Ref": "QueueType"}
    assert "MessageGroupId" in outputs["ArchiveRequestsQueueUrl"]["Description"]


def test_the_function_reads_the_dead_letter_queue_url_whatever_the_queue_type(deployed_template):
    for queue_type in QUEUE_TYPES:
        function = deployed_template(QueueType=queue_type)["Resources"]["ArchiveSequencesFunction"]["Properties"]
        variables = function["Environment"]["Variables"]
        assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": REQUESTS_DLQ}, queue_type
        assert strings_in(variables["SQS_MAX_RECEIVE_COUNT"]) == ["MaxReceiveCount"], queue_type
