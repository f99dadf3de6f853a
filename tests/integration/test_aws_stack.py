"""The local AWS stack behaves like the AWS pieces the function relies on."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from local.stand_ins.aws_stack import (
    DEFAULT_MAX_RECEIVE_COUNT,
    DEFAULT_REGION,
    DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
    RESULTS_DETAIL_TYPE,
    RESULTS_EVENT_SOURCE,
    LocalStack,
    LocalStackError,
    MotoServer,
    boto3_session,
    drain_queue,
    function_environment,
    queue_settings_from_template,
    read_results_events,
    receive_batch,
    send_messages,
    sqs_event_from_messages,
    start_moto_server,
    unique_name_prefix,
)
from local.stand_ins.lambda_context import LocalLambdaContext

pytestmark = pytest.mark.integration

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


def _put_result(stack: LocalStack, detail: dict[str, object], *, source: str = RESULTS_EVENT_SOURCE) -> None:
    response = stack.events().put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": RESULTS_DETAIL_TYPE,
                "Detail": json.dumps(detail),
                "EventBusName": stack.results_bus_name,
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def test_provision_stores_the_key_as_json_by_default(aws_stack: LocalStack, api_key: str) -> None:
    secret = aws_stack.secretsmanager().get_secret_value(SecretId=aws_stack.secret_arn)

    assert json.loads(secret["SecretString"]) == {"apiKey": api_key}
    assert secret["Name"] == aws_stack.secret_name


@pytest.mark.parametrize("aws_stack", ["bare"], indirect=True)
def test_provision_can_store_the_bare_key(aws_stack: LocalStack, api_key: str) -> None:
    secret = aws_stack.secretsmanager().get_secret_value(SecretId=aws_stack.secret_arn)

    assert secret["SecretString"] == api_key


def test_provision_wires_the_request_queue_to_its_dead_letter_queue(aws_stack: LocalStack) -> None:
    attributes = aws_stack.sqs().get_queue_attributes(QueueUrl=aws_stack.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]

    assert attributes["QueueArn"] == aws_stack.queue_arn
    assert int(attributes["VisibilityTimeout"]) == aws_stack.queue_settings.visibility_timeout_seconds
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": aws_stack.dead_letter_queue_arn,
        "maxReceiveCount": aws_stack.queue_settings.max_receive_count,
    }


def test_provision_routes_results_events_to_the_sink(aws_stack: LocalStack) -> None:
    events = aws_stack.events()
    bus = events.describe_event_bus(Name=aws_stack.results_bus_name)
    rule = events.describe_rule(Name=aws_stack.results_rule_name, EventBusName=aws_stack.results_bus_name)
    targets = events.list_targets_by_rule(Rule=aws_stack.results_rule_name, EventBusName=aws_stack.results_bus_name)[
        "Targets"
    ]

    assert bus["Arn"] == aws_stack.results_bus_arn
    assert json.loads(rule["EventPattern"]) == {
        "source": [RESULTS_EVENT_SOURCE],
        "detail-type": [RESULTS_DETAIL_TYPE],
    }
    assert [target["Arn"] for target in targets] == [aws_stack.results_sink_queue_arn]


def test_queue_settings_follow_the_template_when_it_exists() -> None:
    template = Path(__file__).resolve().parents[2] / "template.yaml"
    if not template.is_file():
        pytest.skip("template.yaml not written yet")

    settings = queue_settings_from_template(template)

    assert settings.source == "template.yaml"
    assert settings.visibility_timeout_seconds > 0
    assert settings.max_receive_count >= 1


def test_queue_settings_resolve_short_form_tags(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Parameters:\n"
        "  MaxReceiveCount: {Type: Number, Default: 7}\n"
        "Resources:\n"
        "  ArchiveRequestsQueue:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Properties:\n"
        "      QueueName: !Sub ${AWS::StackName}-requests\n"
        "      VisibilityTimeout: 1020\n"
        "      RedrivePolicy:\n"
        "        deadLetterTargetArn: !GetAtt ArchiveRequestsDeadLetterQueue.Arn\n"
        "        maxReceiveCount: !Ref MaxReceiveCount\n",
        encoding="utf-8",
    )

    settings = queue_settings_from_template(template)

    assert (settings.visibility_timeout_seconds, settings.max_receive_count) == (1020, 7)
    assert settings.source == "template.yaml"


def test_queue_settings_fall_back_to_documented_defaults(tmp_path: Path) -> None:
    settings = queue_settings_from_template(tmp_path / "missing.yaml")

    assert settings.visibility_timeout_seconds == DEFAULT_VISIBILITY_TIMEOUT_SECONDS
    assert settings.max_receive_count == DEFAULT_MAX_RECEIVE_COUNT
    assert settings.source.startswith("defaults")


def test_a_results_event_put_on_the_bus_arrives_in_the_sink(aws_stack: LocalStack) -> None:
    # Given one matching event and one from another source
    _put_result(aws_stack, {"requestId": "r-1", "complete": True})
    _put_result(aws_stack, {"requestId": "r-2"}, source="someone.else")

    # When the sink is read
    envelopes = read_results_events(aws_stack, expected=1, timeout_seconds=5)

    # Then only the matching event arrived, as an EventBridge envelope
    assert [envelope["detail"] for envelope in envelopes] == [{"requestId": "r-1", "complete": True}]
    assert envelopes[0]["source"] == RESULTS_EVENT_SOURCE
    assert envelopes[0]["detail-type"] == RESULTS_DETAIL_TYPE
    assert read_results_events(aws_stack, expected=0, timeout_seconds=0) == []


def test_stacks_do_not_see_each_other_s_messages(moto_server: MotoServer, aws_stack: LocalStack) -> None:
    from local.stand_ins.aws_stack import provision, unique_name_prefix

    other = provision(moto_server.endpoint_url, api_key="other", name_prefix=unique_name_prefix("it"))
    _put_result(other, {"requestId": "elsewhere"})

    assert read_results_events(aws_stack, expected=0, timeout_seconds=0) == []
    assert len(read_results_events(other, expected=1, timeout_seconds=5)) == 1


def test_a_message_moves_to_the_dead_letter_queue_after_max_receives(aws_stack: LocalStack) -> None:
    # Given a message that is received and never deleted
    [message_id] = send_messages(aws_stack, ['{"sequenceIds": [1]}'])
    sqs = aws_stack.sqs()
    max_receives = aws_stack.queue_settings.max_receive_count
    for _ in range(max_receives):
        received = sqs.receive_message(QueueUrl=aws_stack.queue_url, VisibilityTimeout=0)["Messages"]
        assert [m["MessageId"] for m in received] == [message_id]

    # When it is received once more
    assert "Messages" not in sqs.receive_message(QueueUrl=aws_stack.queue_url, VisibilityTimeout=0)

    # Then SQS moved it to the dead-letter queue
    dead = drain_queue(aws_stack.dead_letter_queue_url, endpoint_url=aws_stack.endpoint_url)
    assert [m["MessageId"] for m in dead] == [message_id]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) > max_receives


def test_drain_queue_can_peek_without_deleting(aws_stack: LocalStack) -> None:
    send_messages(aws_stack, ["a", "b"])

    peeked = drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url, delete=False)
    drained = drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url)

    assert sorted(m["Body"] for m in peeked) == sorted(m["Body"] for m in drained) == ["a", "b"]
    assert drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url) == []


def test_sqs_event_from_messages_has_the_lambda_shape(aws_stack: LocalStack) -> None:
    # Given messages with a string and a binary message attribute
    sqs = aws_stack.sqs()
    sqs.send_message(
        QueueUrl=aws_stack.queue_url,
        MessageBody='{"sequenceIds": [101]}',
        MessageAttributes={
            "origin": {"DataType": "String", "StringValue": "test"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    messages = receive_batch(aws_stack, max_messages=10, timeout_seconds=2)

    # When they are turned into a Lambda event
    event = sqs_event_from_messages(messages, aws_stack.queue_arn, aws_stack.region)

    # Then each record has exactly Lambda's keys and Powertools can parse it
    [record] = event["Records"]
    assert set(record) == {
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
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"] == {
        "origin": {"stringValue": "test", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        aws_stack.queue_arn,
        "us-east-1",
    )
    assert record["receiptHandle"] == messages[0]["ReceiptHandle"]
    SqsModel.model_validate(event)


def test_sqs_event_keys_match_the_sample_event(aws_stack: LocalStack) -> None:
    sample_path = EVENTS_DIR / "sqs-batch.json"
    if not sample_path.is_file():
        pytest.skip("events/sqs-batch.json not written yet")
    sample = json.loads(sample_path.read_text(encoding="utf-8"))
    send_messages(aws_stack, [record["body"] for record in sample["Records"]])

    event = sqs_event_from_messages(receive_batch(aws_stack), aws_stack.queue_arn, aws_stack.region)

    assert len(event["Records"]) == len(sample["Records"])
    for built, expected in zip(event["Records"], sample["Records"], strict=True):
        assert set(built) - {"md5OfMessageAttributes"} == set(expected) - {"md5OfMessageAttributes"}
        assert set(expected["attributes"]) <= set(built["attributes"]) | {
            "AWSTraceHeader",
            "SequenceNumber",
            "MessageGroupId",
            "MessageDeduplicationId",
        }
    assert sorted(r["body"] for r in event["Records"]) == sorted(r["body"] for r in sample["Records"])


def test_function_environment_points_at_the_stack(aws_stack: LocalStack, api_key: str) -> None:
    environment = function_environment(aws_stack, reply_base_url="http://127.0.0.1:9", REPLY_MAX_ATTEMPTS="1")

    assert environment["AWS_ENDPOINT_URL"] == aws_stack.endpoint_url
    assert environment["REPLY_API_KEY_SECRET_ID"] == aws_stack.secret_arn
    assert environment["RESULTS_EVENT_BUS_NAME"] == aws_stack.results_bus_name
    assert environment["DEAD_LETTER_QUEUE_URL"] == aws_stack.dead_letter_queue_url
    assert environment["REPLY_MAX_ATTEMPTS"] == "1"
    assert "POWERTOOLS_DEV" not in environment
    assert api_key not in json.dumps(environment)


def test_moto_server_stops_cleanly() -> None:
    with start_moto_server() as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
    server.stop()

    with pytest.raises(LocalStackError):
        _ = server.endpoint_url


def test_lambda_context_counts_down_from_creation() -> None:
    now = [1000.0]
    context = LocalLambdaContext(timeout_seconds=30, clock=lambda: now[0])

    assert context.get_remaining_time_in_millis() == 30_000
    now[0] += 12.5
    assert context.get_remaining_time_in_millis() == 17_500
    now[0] += 60
    assert context.get_remaining_time_in_millis() == 0


def test_lambda_context_has_the_attributes_powertools_reads() -> None:
    context = LocalLambdaContext(aws_request_id="req-1")

    assert context.function_name == "reply-sequence-archiver"
    assert context.function_version == "$LATEST"
    assert context.invoked_function_arn == ("arn:aws:lambda:us-east-1:123456789012:function:reply-sequence-archiver")
    assert context.memory_limit_in_mb == 512
    assert context.aws_request_id == "req-1"
    assert context.log_group_name == "/aws/lambda/reply-sequence-archiver"
    assert "[$LATEST]" in context.log_stream_name
    assert context.client_context is None
    assert 0 < context.get_remaining_time_in_millis() <= 120_000
    assert LocalLambdaContext().aws_request_id != LocalLambdaContext().aws_request_id


def test_concurrent_conditional_writes_to_one_item_are_atomic_as_in_dynamodb(moto_server: MotoServer) -> None:
    # Given: one item and eight writers, each reading its version and writing version + 1 only if it is unchanged
    # (the optimistic locking the shared rate budget uses)
    dynamodb = boto3_session(DEFAULT_REGION).client("dynamodb", endpoint_url=moto_server.endpoint_url)
    table = "atomicity-" + unique_name_prefix("t")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "x"}, "v": {"N": "0"}})
    won: list[int] = []

    def write_forty_times() -> None:
        client = boto3_session(DEFAULT_REGION).client("dynamodb", endpoint_url=moto_server.endpoint_url)
        for _ in range(40):
            item = client.get_item(TableName=table, Key={"pk": {"S": "x"}}, ConsistentRead=True)["Item"]
            version = int(item["v"]["N"])
            try:
                client.update_item(
                    TableName=table,
                    Key={"pk": {"S": "x"}},
                    UpdateExpression="SET #v = :next",
                    ConditionExpression="#v = :read",
                    ExpressionAttributeNames={"#v": "v"},
                    ExpressionAttributeValues={":next": {"N": str(version + 1)}, ":read": {"N": str(version)}},
                )
            except client.exceptions.ConditionalCheckFailedException:
                continue
            won.append(version)

    # When: they write at once
    writers = [threading.Thread(target=write_forty_times) for _ in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)

    # Then: every write that succeeded was the only one to succeed from its version: none was lost
    final = int(dynamodb.get_item(TableName=table, Key={"pk": {"S": "x"}})["Item"]["v"]["N"])
    assert sorted(won) == list(range(final))
