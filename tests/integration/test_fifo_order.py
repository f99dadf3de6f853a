"""FIFO sources keep their order: at the first record of a message group that must be retried, that record and
every later one of its group go back unprocessed (AWS's rule for FIFO event sources); other groups go on, and a
record still failing at its last receive is dead-lettered by the function so its group is not moved with it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import (
    QueueSettings,
    delete_messages,
    drain_queue,
    function_environment,
    provision,
    read_results_events,
    receive_batch,
    send_messages,
    sqs_event_from_messages,
    unique_name_prefix,
)
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

FIFO_ARN = "arn:aws:sqs:us-east-1:123456789012:archive-requests.fifo"


def fifo_record(message_id: str, sequence_ids: list[int], group: str = "campaign-1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "receipt-" + message_id,
        "body": json.dumps({"sequenceIds": sequence_ids}),
        "attributes": {"MessageGroupId": group, "MessageDeduplicationId": message_id, "SequenceNumber": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": FIFO_ARN,
        "awsRegion": "us-east-1",
    }


def test_the_first_record_to_retry_stops_its_group_and_later_records_of_the_group_stay_unprocessed(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=102))
    event = {"Records": [fifo_record("m1", [101]), fifo_record("m2", [102]), fifo_record("m3", [103])]}

    response = load_handler().lambda_handler(event, lambda_context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}
    archived = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
    assert {101, 102, 103} & archived == {101}  # 103 did not overtake 102
    details = details_by_request(read_results_events(aws_stack, expected=2))
    assert outcomes(details["m1"]) == {101: "archived"}
    assert outcomes(details["m2"]) == {102: "failed"}
    assert "m3" not in details  # unprocessed: it is reported when it is processed


def test_a_fifo_record_waiting_for_the_budget_is_retried_in_place_not_continued(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_HOUR", "1")
    event = {"Records": [fifo_record("m1", [104, 105]), fifo_record("m2", [106])]}

    # Reply's hour is a real one here: any timeout is shorter, so the record waits; 30 s keeps a loaded machine's
    # cold start (its clients built within the invocation) from using up the time before the first call.
    response = load_handler().lambda_handler(event, lambda_context(timeout_seconds=30.0))

    # A continuation would join the back of the group: the record is retried in place, and m2 waits behind it.
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert reply_simulator.api_calls == 1


def test_another_message_group_is_not_held_back_by_a_record_that_must_be_retried(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=102))
    event = {
        "Records": [
            fifo_record("a1", [102], group="a"),
            fifo_record("b1", [103], group="b"),
            fifo_record("a2", [104], group="a"),
            fifo_record("b2", [105], group="b"),
        ]
    }

    response = load_handler().lambda_handler(event, lambda_context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "a1"}, {"itemIdentifier": "a2"}]}
    archived = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
    assert {102, 103, 104, 105} & archived == {103, 105}  # group b went on, in order; 104 did not overtake 102


MAX_RECEIVES = 4  # the redrive policy


@pytest.fixture
def fifo_stack(
    moto_server: MotoServer,
    api_key: str,
    reply_simulator: ReplySimulator,
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> LocalStack:
    """A FIFO request queue and DLQ with maxReceiveCount 4, the function's environment pointing at them."""
    stack = provision(
        moto_server.endpoint_url,
        api_key=api_key,
        name_prefix=unique_name_prefix("fifo"),
        fifo=True,
        queue_settings=QueueSettings(visibility_timeout_seconds=30, max_receive_count=MAX_RECEIVES, source="test"),
    )
    for name, value in function_environment(stack, reply_base_url=reply_simulator.base_url).items():
        monkeypatch.setenv(name, value)
    return stack


def test_a_poison_head_is_dead_lettered_alone_and_the_records_behind_it_are_archived_in_order(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    fifo_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given a message group whose head always fails (500), four healthy records behind it, and another group
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=102))
    handler = load_handler()
    [poison] = send_messages(fifo_stack, [json.dumps({"sequenceIds": [102]})], message_group_id="campaign-a")
    healthy = [103, 104, 105, 106]
    send_messages(fifo_stack, [json.dumps({"sequenceIds": [id_]}) for id_ in healthy], message_group_id="campaign-a")
    send_messages(fifo_stack, [json.dumps({"sequenceIds": [id_]}) for id_ in (107, 108)], message_group_id="b")

    # When Lambda's poller delivers batches until the queue is empty (a failed record is visible again at once,
    # instead of after the visibility timeout)
    archive_order: list[int] = []
    for _ in range(3 * MAX_RECEIVES):
        messages = receive_batch(fifo_stack, max_messages=10, timeout_seconds=2)
        if not messages:
            break
        event = sqs_event_from_messages(messages, fifo_stack.queue_arn, fifo_stack.region)
        before = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
        response = handler.lambda_handler(event, lambda_context())
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        after = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
        archive_order.extend(sorted(after - before))
        delete_messages(fifo_stack, [message for message in messages if message["MessageId"] not in failed])
        retried = [message for message in messages if message["MessageId"] in failed]
        if retried:
            fifo_stack.sqs().change_message_visibility_batch(
                QueueUrl=fifo_stack.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                    for index, message in enumerate(retried)
                ],
            )
    else:
        pytest.fail("the queue was not empty after 12 batches")

    # Then only the poison record is in the dead-letter queue, parked by the function with its reason
    parked = drain_queue(fifo_stack.dead_letter_queue_url, endpoint_url=fifo_stack.endpoint_url, delete=True)
    assert [json.loads(message["Body"]) for message in parked] == [{"sequenceIds": [102]}]
    reason = parked[0]["MessageAttributes"]["RejectionReason"]["StringValue"]
    assert "SQS_MAX_RECEIVE_COUNT" in reason
    assert parked[0]["MessageAttributes"]["OriginalMessageId"]["StringValue"] == poison
    # ... every healthy ID is archived, the group's in its order, and the results say what happened to the poison
    archived = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
    assert archived >= {*healthy, 107, 108}
    assert 102 not in archived
    assert [id_ for id_ in archive_order if id_ in healthy] == healthy
    poison_results = [
        detail for detail in read_results_events(fifo_stack, expected=1) if detail["detail"]["requestId"] == poison
    ]
    assert [outcomes(envelope["detail"]) for envelope in poison_results][-1] == {102: "failed"}
