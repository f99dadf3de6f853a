"""Every event shape AWS sends, from the committed corpus (tests/events/aws/), through the real handler: each gets
its documented answer, the same input gets the same answer on every trigger, sources the function does not serve
fail loudly, and a FIFO batch keeps its order."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import (
    drain_queue,
    function_environment,
    provision,
    read_results_events,
    receive_batch,
    sqs_event_from_messages,
    unique_name_prefix,
)
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, invoke_with_sqs, outcomes, validate_results_detail

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

AWS_EVENTS = Path(__file__).resolve().parents[1] / "events" / "aws"
REJECTED = "request rejected: "


def aws_event(name: str) -> Any:
    """A committed AWS event (see tests/events/aws/README.md for where it came from)."""
    return json.loads((AWS_EVENTS / name).read_text())


def archived(simulator: ReplySimulator, sequence_id: int) -> bool:
    """True when Reply holds the sequence as archived."""
    sequence = simulator.sequence(sequence_id)
    assert sequence is not None, f"sequence {sequence_id} is not a simulator seed"
    return sequence.is_archived


def invoke(handler: LambdaInstance, event: Any, context: LocalLambdaContext, stack: LocalStack) -> dict[str, Any]:
    """Invoke with one event and return the results detail of its one request: the SQS record's published results
    event (after checking nothing is retried), or what a direct, SNS or EventBridge invocation returns (which is
    also the published one)."""
    response = handler.lambda_handler(event, context)
    [published] = details_by_request(read_results_events(stack, expected=1)).values()
    if "batchItemFailures" in response:
        assert response == {"batchItemFailures": []}
        return published
    assert validate_results_detail(response) == published
    return published


def test_the_corpus_index_names_every_fixture() -> None:
    index = (AWS_EVENTS / "README.md").read_text()
    fixtures = sorted(path.name for path in AWS_EVENTS.glob("*.json"))

    assert len(fixtures) == 14
    assert [name for name in fixtures if f"`{name}`" not in index] == []


# ------------------------------------------------------------------ shapes that carry a request


@pytest.mark.parametrize(
    ("fixture", "trigger", "sequence_id"),
    [
        ("sam-sqs-receive-message-request.json", "sqs", 101),
        ("sam-sns-notification-request.json", "direct", 102),  # SNS → function
        ("sqs-eventbridge-body.json", "sqs", 103),  # rule → SQS target: the whole event is the body
        ("sqs-sns-raw-body.json", "sqs", 104),  # SNS → SQS, raw message delivery
        ("sqs-sns-body.json", "sqs", 105),  # SNS → SQS, the notification JSON
        ("sqs-fifo-record.json", "sqs", 106),
        ("eventbridge-detail-string.json", "eventbridge", 115),  # `detail` given as a JSON string
    ],
)
def test_a_shape_carrying_a_request_archives_it(
    fixture: str,
    trigger: str,
    sequence_id: int,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    event = aws_event(fixture)

    detail = invoke(load_handler(), event, lambda_context(), aws_stack)

    assert (detail["trigger"], detail["complete"]) == (trigger, True)
    assert outcomes(detail) == {sequence_id: "archived"}
    assert archived(reply_simulator, sequence_id)
    records = event.get("Records", [{}])
    expected_id = records[0].get("messageId") or records[0].get("Sns", {}).get("MessageId") or event.get("id")
    assert detail["requestId"] == expected_id


# ------------------------------------------------------------------ shapes that are not a request


@pytest.mark.parametrize(
    ("fixture", "trigger", "reason"),
    [
        ("sam-sqs-receive-message.json", "sqs", "not JSON"),  # body "Hello from SQS!"
        ("sam-sns-notification.json", "direct", "not JSON"),  # Message "example message"
        ("sam-cloudwatch-scheduled-event.json", "eventbridge", '"sequenceIds"'),  # detail {}
        ("sam-stepfunctions-error.json", "direct", '"sequenceIds"'),  # {"Error": ..., "Cause": ...}
    ],
)
def test_a_shape_without_a_request_is_a_rejected_request_saying_why(
    fixture: str,
    trigger: str,
    reason: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    detail = invoke(load_handler(), aws_event(fixture), lambda_context(), aws_stack)

    assert (detail["trigger"], detail["complete"]) == (trigger, True)
    [result] = detail["results"]
    assert (result["sequenceId"], result["outcome"], result["httpStatus"]) == (None, "invalid", None)
    assert "input" not in result  # the whole request is rejected: no input value is an ID
    assert result["error"].startswith(REJECTED)
    assert reason in result["error"]
    assert reply_simulator.api_calls == 0


def test_a_rejected_sqs_record_is_parked_in_the_dead_letter_queue(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    invoke(load_handler(), aws_event("sam-sqs-receive-message.json"), lambda_context(), aws_stack)

    parked = drain_queue(aws_stack.dead_letter_queue_url, endpoint_url=aws_stack.endpoint_url)
    assert [message["Body"] for message in parked] == ["Hello from SQS!"]


def test_a_detail_string_that_is_not_json_rejects_the_request_saying_why(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    event = aws_event("eventbridge-detail-string.json")
    event["detail"] = "sequenceIds: 115"

    detail = invoke(load_handler(), event, lambda_context(), aws_stack)

    [result] = detail["results"]
    assert (result["sequenceId"], result["outcome"]) == (None, "invalid")
    assert result["error"].startswith(REJECTED)
    assert "detail" in result["error"]
    assert "not JSON" in result["error"]
    assert not archived(reply_simulator, 115)


def test_plain_text_gets_the_same_answer_on_every_trigger(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given the SNS notification's plain-text Message, and the same text as SNS delivers it to an SQS queue:
    # the body itself (raw delivery), or the Message of the notification JSON (not raw)
    over_lambda = aws_event("sam-sns-notification.json")
    text = over_lambda["Records"][0]["Sns"]["Message"]
    raw = aws_event("sqs-sns-raw-body.json")
    raw["Records"][0]["body"] = text
    not_raw = aws_event("sqs-sns-body.json")
    notification = json.loads(not_raw["Records"][0]["body"])
    not_raw["Records"][0]["body"] = json.dumps({**notification, "Message": text}, indent=2)
    handler = load_handler()

    # When each goes through its trigger
    answers = {name: invoke(handler, event, lambda_context(), aws_stack) for name, event in
               [("SNS -> Lambda", over_lambda), ("SQS (raw)", raw), ("SNS -> SQS (not raw)", not_raw)]}  # fmt: skip

    # Then every one is the same rejected request, for the same reason
    errors = {name: [result["error"] for result in answer["results"]] for name, answer in answers.items()}
    assert all(error[0].startswith(REJECTED) for error in errors.values()), errors
    assert len({json.dumps(answer["results"]) for answer in answers.values()}) == 1, (
        f"issue 11: the same input gets the same answer on every trigger; the same plain text was rejected with "
        f"different errors: {errors}"
    )
    assert reply_simulator.api_calls == 0


# ------------------------------------------------------------------ sources the function does not serve


@pytest.mark.parametrize(
    ("fixture", "source"),
    [
        ("sam-s3-put.json", "aws:s3"),
        ("sam-dynamodb-update.json", "aws:dynamodb"),
        ("sam-kinesis-get-records.json", "aws:kinesis"),
    ],
)
def test_records_of_a_source_the_function_does_not_serve_fail_loudly(
    fixture: str,
    source: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    handler = load_handler()
    exceptions = importlib.import_module("sequence_archiver.core.exceptions")  # the module the handler just imported

    with pytest.raises(Exception) as excinfo:  # noqa: PT011 - the type is checked by name: the module is fresh
        handler.lambda_handler(aws_event(fixture), lambda_context())

    assert type(excinfo.value).__name__ == "UnsupportedEventError"
    assert isinstance(excinfo.value, exceptions.UnsupportedEventError)
    assert source in str(excinfo.value)
    assert reply_simulator.api_calls == 0
    assert read_results_events(aws_stack, expected=0) == []


# ------------------------------------------------------------------ FIFO queues keep their order


@pytest.fixture
def fifo_stack(
    moto_server: MotoServer,
    api_key: str,
    reply_simulator: ReplySimulator,
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> LocalStack:
    """A stack whose request queue and DLQ are FIFO (QueueType=fifo), the function's environment pointing at it."""
    stack = provision(moto_server.endpoint_url, api_key=api_key, name_prefix=unique_name_prefix("fifo"), fifo=True)
    for name, value in function_environment(stack, reply_base_url=reply_simulator.base_url).items():
        monkeypatch.setenv(name, value)
    return stack


def test_the_fifo_fixture_is_a_fifo_record() -> None:
    [record] = aws_event("sqs-fifo-record.json")["Records"]

    assert record["eventSourceARN"].endswith(".fifo")
    assert {"MessageGroupId", "MessageDeduplicationId", "SequenceNumber"} <= set(record["attributes"])


def test_in_a_fifo_group_the_first_record_to_retry_holds_back_every_later_one(
    fifo_stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given three records of one message group, read from a FIFO queue, and Reply failing the first one's ID
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=107))
    handler = load_handler()
    bodies = [json.dumps({"sequenceIds": [sequence_id]}) for sequence_id in (107, 108, 109)]

    # When the batch is handled
    batch = invoke_with_sqs(handler, fifo_stack, bodies, lambda_context())

    # Then all three go back, in order, and nothing after the first overtook it
    assert batch.event["Records"][0]["eventSourceARN"].endswith(".fifo")
    assert {record["attributes"]["MessageGroupId"] for record in batch.event["Records"]} == {"archive-requests"}
    assert [item["itemIdentifier"] for item in batch.response["batchItemFailures"]] == batch.message_ids, (
        "issue 11 (FIFO rule): the first record to retry and every later record of the batch go back unprocessed"
    )
    assert [archived(reply_simulator, sequence_id) for sequence_id in (107, 108, 109)] == [False, False, False], (
        "108 and 109 must not be archived while 107, before them in their group, waits for a retry"
    )
    details = details_by_request(read_results_events(fifo_stack, expected=1))
    assert outcomes(details[batch.message_ids[0]]) == {107: "failed"}

    # And when Reply recovers, the queue brings them back in their order and all three are archived
    reply_simulator.clear_faults()
    sqs = fifo_stack.sqs()
    held = [record["receiptHandle"] for record in batch.event["Records"]]
    sqs.change_message_visibility_batch(
        QueueUrl=fifo_stack.queue_url,
        Entries=[{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(held)],
    )
    again = receive_batch(fifo_stack, max_messages=3)
    assert [message["MessageId"] for message in again] == batch.message_ids
    event = sqs_event_from_messages(again, fifo_stack.queue_arn, fifo_stack.region)
    assert handler.lambda_handler(event, lambda_context()) == {"batchItemFailures": []}
    assert all(archived(reply_simulator, sequence_id) for sequence_id in (107, 108, 109))


def test_a_rejected_record_on_a_fifo_queue_is_parked_in_the_fifo_dead_letter_queue(
    fifo_stack: LocalStack,
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    batch = invoke_with_sqs(load_handler(), fifo_stack, ["Hello from SQS!", '{"sequenceIds": [110]}'], lambda_context())

    assert batch.response == {"batchItemFailures": []}
    parked = drain_queue(fifo_stack.dead_letter_queue_url, endpoint_url=fifo_stack.endpoint_url)
    assert [message["Body"] for message in parked] == ["Hello from SQS!"]
    assert archived(reply_simulator, 110)
