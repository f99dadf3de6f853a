"""Clean-up policies through the real handler: a selection listed from the simulator (paging, filters), its plan
event, the archive queue on moto, the bounds, continuations, and failures contained to their own request.
Requests refused or rejected before any listing (a trigger CLEANUP_ALLOWED_TRIGGERS does not name, a schedule
input smuggling more than its fields, a bad selection) are functional cases:
tests/functional/test_cleanup_refusals.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import drain_queue, read_results_events
from local.stand_ins.cpu_clock import invocation_clock
from local.stand_ins.event_source import EventSourceMapping
from local.stand_ins.reply_simulator import Fault
from sequence_archiver.core.continuations import compact, derive_key, seal_with
from tests.integration.harness import (
    PLAN_DETAIL_TYPE,
    invoke_with_sqs,
    metric_total,
    outcomes,
    validate_plan,
    validate_results_detail,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

LIST_PATH = "/v3/sequences"
# The seed's sequences of the key's user that are paused and not archived, oldest first (created = ID minutes).
SEEDED_PAUSED = [*range(101, 121), 601, 701, 702]
SEEDED_UNARCHIVED = [*range(101, 121), *range(201, 206), *range(301, 306), 601, 701, 702]


@pytest.fixture
def archive_queue(aws_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> str:
    """ARCHIVE_QUEUE_URL set to the request queue, as the template sets it."""
    monkeypatch.setenv("ARCHIVE_QUEUE_URL", aws_stack.queue_url)
    return aws_stack.queue_url


def queued_bodies(stack: LocalStack, *, delete: bool = False) -> list[dict[str, Any]]:
    """Every message waiting on the request queue (left there unless `delete`), with its ID."""
    messages = drain_queue(stack.queue_url, endpoint_url=stack.endpoint_url, delete=delete)
    return [{"MessageId": message["MessageId"], **json.loads(message["Body"])} for message in messages]


def archive_calls(simulator: ReplySimulator) -> list[str]:
    return [request.path for request in simulator.requests if request.method == "POST"]


def list_calls(simulator: ReplySimulator) -> int:
    return sum(1 for request in simulator.requests if request.path == LIST_PATH)


def test_a_dry_run_lists_exactly_the_matching_unarchived_sequences_and_archives_nothing(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    plan_events: Callable[..., list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given 30 more paused sequences (and archived and active ones that must not be selected), 7 a page
    reply_simulator.add_sequences(range(20_001, 20_031), status="paused")
    reply_simulator.add_sequences(range(20_031, 20_036), status="paused", is_archived=True)
    reply_simulator.add_sequences(range(20_036, 20_041), status="active")
    monkeypatch.setenv("SELECTION_PAGE_SIZE", "7")
    context = lambda_context()

    # When a policy's dry run is invoked directly
    detail = load_handler().lambda_handler({"select": {"status": "PAUSED"}}, context)

    # Then its plan holds exactly those sequences, oldest first, every page listed, and nothing was archived
    expected = [*SEEDED_PAUSED, *range(20_001, 20_031)]
    validate_plan(detail)
    assert detail["sequenceIds"] == expected
    assert detail["selected"] == len(expected)
    assert (detail["requestId"], detail["trigger"], detail["dryRun"]) == (context.aws_request_id, "direct", True)
    assert (detail["outcome"], detail["complete"], detail["reason"]) == ("planned", True, None)
    assert detail["selection"] == {"status": "paused"}
    assert detail["enqueued"] == {"messages": 0, "ids": 0, "messageIds": []}
    assert detail["pages"] == list_calls(reply_simulator) == 8  # 53 paused and unarchived, 7 a page
    assert archive_calls(reply_simulator) == []
    assert queued_bodies(aws_stack) == []
    # ... the plan was published once, as returned
    assert plan_events(expected=1) == [detail]
    # ... with the metrics
    stdout = capsys.readouterr().out
    assert (metric_total(stdout, "SequencesSelected"), metric_total(stdout, "SequencesEnqueued")) == (53, 0)


def _created(days_ago: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days_ago)


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ({"status": "new"}, list(range(201, 206))),
        ({"status": "Active", "name": "seed 30"}, list(range(301, 306))),
        ({"ownerUserId": 2}, []),  # the list shows only the key's user's sequences
        ({"folderId": "6f1c3f5e-3a55-4ad3-9f77-0a4c1d2b9e10"}, []),  # no simulated sequence is in a folder
        ({"status": "paused", "createdAfter": "2024-01-01T01:55:00Z"}, [*range(116, 121), 601, 701, 702]),
        ({"status": "paused", "createdBefore": "2024-01-01T01:45:00+00:00"}, [101, 102, 103, 104]),
        ({"createdAfter": "2024-01-01T03:20", "createdBefore": "2024-01-01T03:23"}, [201, 202]),
        ({"olderThanDays": 30}, [*SEEDED_UNARCHIVED, 9_001]),  # 9,002 was created 10 days ago
    ],
)
def test_the_selection_filters_are_the_cli_filters(
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
    select: dict[str, Any],
    expected: list[int],
) -> None:
    reply_simulator.add_sequence(9_001, status="active", created=_created(40))
    reply_simulator.add_sequence(9_002, status="active", created=_created(10))
    monkeypatch.setenv("SELECTION_PAGE_SIZE", "5")

    detail = validate_plan(load_handler().lambda_handler({"select": select}, lambda_context()))

    assert detail["outcome"] == "planned"
    assert detail["sequenceIds"] == expected


def test_a_live_run_enqueues_exactly_the_selection_at_most_100_a_message_and_the_queue_archives_them(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    plan_events: Callable[..., list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 250 more paused sequences, and a policy's live run arriving as an EventBridge event (a rule the
    # operator allowed to run clean-ups)
    monkeypatch.setenv("CLEANUP_ALLOWED_TRIGGERS", "direct,eventbridge")
    reply_simulator.add_sequences(range(30_001, 30_251), status="paused")
    event = {
        "id": "scheduled-" + uuid.uuid4().hex,
        "detail-type": "Archive Sequences",
        "source": "reply.sequence-archiver.requests",
        "detail": {"select": {"status": "paused"}, "dryRun": False, "pauseFirst": True},
    }
    handler = load_handler()

    # When it runs
    plan = validate_plan(handler.lambda_handler(event, lambda_context()))

    # Then exactly the selected IDs are on the archive queue, at most 100 a message, with pauseFirst passed on
    selected = [*SEEDED_PAUSED, *range(30_001, 30_251)]
    queued = queued_bodies(aws_stack)
    assert sorted(id_ for body in queued for id_ in body["sequenceIds"]) == sorted(selected)
    assert sorted(len(body["sequenceIds"]) for body in queued) == [73, 100, 100]
    assert all(body["pauseFirst"] is True for body in queued)
    assert archive_calls(reply_simulator) == []  # nothing archived by the policy itself
    # ... and the plan says so, naming the messages
    assert (plan["requestId"], plan["trigger"], plan["outcome"], plan["complete"]) == (
        event["id"],
        "eventbridge",
        "enqueued",
        True,
    )
    assert plan["sequenceIds"] == selected
    assert plan["enqueued"]["messages"] == 3
    assert plan["enqueued"]["ids"] == len(selected)
    assert sorted(plan["enqueued"]["messageIds"]) == sorted(body["MessageId"] for body in queued)

    # When the queue's event source mapping drains the queue
    mapping = EventSourceMapping(aws_stack, handler.lambda_handler, batch_size=10, batching_window_seconds=0)
    drain = mapping.drain(until_empty_for=0.5, max_seconds=30)

    # Then every selected sequence Reply lets us archive is archived, each message reported under its ID
    assert (drain.stopped, drain.handler_errors, drain.failed_records) == ("empty", 0, 0)
    archived = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
    assert archived >= {*range(101, 121), *range(30_001, 30_251)}
    envelopes = read_results_events(aws_stack, expected=4)
    assert [envelope["detail"] for envelope in envelopes if envelope["detail-type"] == PLAN_DETAIL_TYPE] == [plan]
    results = [validate_results_detail(e["detail"]) for e in envelopes if e["detail-type"] != PLAN_DETAIL_TYPE]
    assert sorted(detail["requestId"] for detail in results) == sorted(plan["enqueued"]["messageIds"])
    by_id = {id_: outcome for detail in results for id_, outcome in outcomes(detail).items()}
    assert by_id[601] == "forbidden"  # the owner's team member was removed
    assert (by_id[701], by_id[702]) == ("conflict", "conflict")  # sales-agent sequences


def test_a_selection_larger_than_max_sequences_stops_and_enqueues_nothing(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    plan_events: Callable[..., list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SELECTION_PAGE_SIZE", "4")

    detail = load_handler().lambda_handler(
        {"select": {"status": "paused"}, "dryRun": False, "maxSequences": 10}, lambda_context()
    )

    validate_plan(detail)
    assert (detail["outcome"], detail["complete"], detail["selected"]) == ("over_limit", False, 11)
    assert "maxSequences (10)" in detail["reason"]
    assert detail["sequenceIds"] == []
    assert detail["enqueued"] == {"messages": 0, "ids": 0, "messageIds": []}
    assert list_calls(reply_simulator) == 3  # it stopped at the page that passed the bound
    assert queued_bodies(aws_stack) == []
    assert archive_calls(reply_simulator) == []
    assert plan_events(expected=1) == [detail]


def test_a_listing_longer_than_an_invocation_continues_through_the_queue_and_accounts_for_every_page(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
    plan_events: Callable[..., list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a slow Reply (0.15 s a call), 5 sequences a page, 63 paused sequences: 13 pages, about 2 s of listing
    simulator = start_reply_simulator(latency_seconds=0.15)
    simulator.add_sequences(range(40_001, 40_041), status="paused")
    monkeypatch.setenv("REPLY_API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("SELECTION_PAGE_SIZE", "5")
    handler = load_handler()
    selected = [*SEEDED_PAUSED, *range(40_001, 40_041)]

    # When a live run is invoked with 1 s left (of CPU time, as the event source counts it, so a loaded machine
    # does not eat the second its continuation is sent in): it lists what it can and carries the rest on
    first = validate_plan(
        handler.lambda_handler(
            {"select": {"status": "paused"}, "dryRun": False},
            lambda_context(timeout_seconds=1.0, clock=invocation_clock()),
        )
    )

    assert (first["outcome"], first["complete"], first["invocations"]) == ("continued", False, 1)
    assert 0 < first["pages"] < 13
    [continuation] = queued_bodies(aws_stack)
    assert continuation["continuation"]["skip"] == first["pages"] * 5
    assert continuation["continuation"]["selectedIds"] == selected[: first["pages"] * 5]

    # When the queue drives the continuations, each invocation with 1 s, and then the archive messages
    mapping = EventSourceMapping(
        aws_stack, handler.lambda_handler, batch_size=10, batching_window_seconds=0, function_timeout_seconds=1.0
    )
    drain = mapping.drain(until_empty_for=0.5, max_seconds=60)

    # Then one plan covers every page, in several invocations, under the original request's ID and trigger
    assert (drain.stopped, drain.handler_errors, drain.timed_out, drain.failed_records) == ("empty", 0, 0, 0)
    [plan] = plan_events(expected=2)
    assert (plan["requestId"], plan["trigger"], plan["outcome"]) == (first["requestId"], "direct", "enqueued")
    assert plan["pages"] == 13
    assert plan["invocations"] >= 3
    assert plan["sequenceIds"] == selected
    assert plan["enqueued"]["ids"] == len(selected)
    assert {sequence.id for sequence in simulator.sequences() if sequence.is_archived} >= {
        *range(101, 121),
        *range(40_001, 40_041),
    }


SNS_TOPIC = "arn:aws:sns:us-east-1:123456789012:requests"
TRIGGER_SHAPES = ["eventbridge-detail-string", "sqs-body", "sqs-sns-notification", "sns-record"]


def deliver(
    handler: LambdaInstance, stack: LocalStack, shape: str, request: str, context: LocalLambdaContext
) -> tuple[str, str, dict[str, Any]]:
    """Send `request` to the handler as `shape` delivers it: its request ID, its reported trigger, the response."""
    if shape == "eventbridge-detail-string":
        event = {"id": "evt-1", "detail-type": "Archive Sequences", "source": "producer", "detail": request}
        return "evt-1", "eventbridge", handler.lambda_handler(event, context)
    if shape == "sns-record":
        notification = {"Type": "Notification", "MessageId": "sns-1", "TopicArn": SNS_TOPIC, "Message": request}
        event = {"Records": [{"EventSource": "aws:sns", "Sns": notification}]}
        return "sns-1", "direct", handler.lambda_handler(event, context)
    body = request
    if shape == "sqs-sns-notification":
        body = json.dumps({"Type": "Notification", "TopicArn": SNS_TOPIC, "Message": request})
    invocation = invoke_with_sqs(handler, stack, [body], context)
    return invocation.message_ids[0], "sqs", invocation.response


@pytest.mark.parametrize("shape", TRIGGER_SHAPES)
def test_every_trigger_named_in_the_setting_takes_a_clean_up_request(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    plan_events: Callable[..., list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    shape: str,
) -> None:
    monkeypatch.setenv("CLEANUP_ALLOWED_TRIGGERS", "direct, eventbridge, sqs, sns")

    request_id, trigger, response = deliver(
        load_handler(), aws_stack, shape, json.dumps({"select": {"status": "new"}}), lambda_context()
    )

    if shape.startswith("sqs"):
        assert response == {"batchItemFailures": []}
    [plan] = plan_events(expected=1)
    assert (plan["requestId"], plan["trigger"], plan["outcome"]) == (request_id, trigger, "planned")
    assert plan["sequenceIds"] == list(range(201, 206))


def test_the_schedules_direct_invoke_still_plans_and_enqueues_by_default(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # The Input template.yaml's schedule sends (Fn::ToJsonString of the parameters, each a string)
    schedule = {"schedule": {"select": '{"status": "new"}', "dryRun": "false", "maxSequences": "10000"}}

    plan = validate_plan(load_handler().lambda_handler(schedule, lambda_context()))

    assert (plan["trigger"], plan["outcome"], plan["dryRun"], plan["pauseFirst"]) == (
        "direct",
        "enqueued",
        False,
        False,
    )
    assert [body["sequenceIds"] for body in queued_bodies(aws_stack)] == [list(range(201, 206))]


def test_a_continuation_is_judged_by_the_trigger_of_the_request_it_carries_on(
    api_key: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    plan_events: Callable[..., list[dict[str, Any]]],  # routes plan events to the results sink
) -> None:
    # Given two continuations the function sealed on the request queue: one of a direct request, one of a request
    # that came by SQS
    progress = {"part": 2, "runAt": "2026-12-07T03:00:00Z", "skip": 0, "pages": 0, "selectedIds": []}
    direct = {"select": {"status": "new"}, "continuation": {"requestId": "r-direct", "trigger": "direct", **progress}}
    queued = {"select": {"status": "new"}, "continuation": {"requestId": "r-sqs", "trigger": "sqs", **progress}}
    bodies = [compact(seal_with(document, derive_key(api_key))) for document in (direct, queued)]

    invocation = invoke_with_sqs(load_handler(), aws_stack, bodies, lambda_context())

    # Then the direct request's listing goes on to its plan; the other is refused, and nothing retried
    assert invocation.response == {"batchItemFailures": []}
    assert list_calls(reply_simulator) == 1
    envelopes = read_results_events(aws_stack, expected=2)
    by_type = {envelope["detail-type"]: envelope["detail"] for envelope in envelopes}
    assert by_type[PLAN_DETAIL_TYPE]["requestId"] == "r-direct"
    refused = validate_results_detail(by_type["Sequence Archive Results"])
    assert "the trigger of the request this continuation carries on" in refused["results"][0]["error"]


def test_a_live_run_without_an_archive_queue_is_rejected_naming_the_variable(
    load_handler: Callable[[], LambdaInstance],
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    detail = load_handler().lambda_handler({"select": {"status": "paused"}, "dryRun": False}, lambda_context())

    [result] = validate_results_detail(detail)["results"]
    assert result["outcome"] == "invalid"
    assert "ARCHIVE_QUEUE_URL" in result["error"]
    assert reply_simulator.requests == []


def test_a_filter_reply_refuses_is_a_final_plan_and_nothing_continues(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    plan_events: Callable[..., list[dict[str, Any]]],
) -> None:
    reply_simulator.inject(Fault(kind="status", status=400, times=1, path_prefix=LIST_PATH))

    detail = validate_plan(load_handler().lambda_handler({"select": {"status": "paused"}}, lambda_context()))

    assert (detail["outcome"], detail["complete"], detail["pages"]) == ("refused", False, 0)
    assert detail["reason"].startswith("Reply refused the list call")
    assert list_calls(reply_simulator) == 1  # a 4xx is not retried
    assert queued_bodies(aws_stack) == []
    assert plan_events(expected=1) == [detail]


def test_a_failing_list_call_is_carried_on_with_a_backoff_not_retried_in_a_loop(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    archive_queue: str,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a Reply that answers every list call 503, and two attempts per call
    reply_simulator.inject(Fault(kind="status", status=503, times=None, path_prefix=LIST_PATH))
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("REPLY_BACKOFF_BASE_SECONDS", "0.01")

    detail = validate_plan(load_handler().lambda_handler({"select": {"status": "paused"}}, lambda_context()))

    # Then the invocation made its two attempts and handed the listing to a continuation that counts the failure
    assert (detail["outcome"], detail["pages"]) == ("continued", 0)
    assert list_calls(reply_simulator) == 2
    delayed = aws_stack.sqs().get_queue_attributes(
        QueueUrl=aws_stack.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert delayed["ApproximateNumberOfMessagesDelayed"] == "1"  # it waits its backoff (2 s) before it comes
    [message] = drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url, wait_seconds=5)
    continuation = json.loads(message["Body"])
    assert continuation["continuation"]["failures"] == 1
    assert continuation["continuation"]["requestId"] == detail["requestId"]
