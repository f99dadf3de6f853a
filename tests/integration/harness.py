"""Helpers for driving the real handler the way Lambda does, and for reading what it emitted."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from local.stand_ins.aws_stack import delete_messages, receive_batch, send_messages, sqs_event_from_messages

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext

ROOT = Path(__file__).resolve().parents[2]
PLAN_SCHEMA = json.loads((ROOT / "schemas" / "sequence-archive-plan.json").read_text())
PLAN_DETAIL_TYPE = "Sequence Archive Plan"
RESULTS_SCHEMA = json.loads((ROOT / "schemas" / "sequence-archive-results.json").read_text())


@dataclass
class SqsInvocation:
    """One SQS batch run through the handler: the event, the response and the message IDs per body."""

    event: dict[str, Any]
    response: dict[str, Any]
    message_ids: list[str]

    @property
    def failed_message_ids(self) -> set[str]:
        """The records the handler asked SQS to retry."""
        return {item["itemIdentifier"] for item in self.response["batchItemFailures"]}


def invoke_with_sqs(
    handler: LambdaInstance,
    stack: LocalStack,
    bodies: list[str],
    context: LocalLambdaContext | Callable[[], LocalLambdaContext],
) -> SqsInvocation:
    """Send bodies to the real queue, receive them as Lambda's poller would, invoke, delete the successes.

    Pass a short-timeout context as a factory (`lambda: lambda_context(timeout_seconds=1.5)`): its countdown
    then starts when the handler is invoked, as Lambda's does, not before the sends and receives above it.
    """
    message_ids = send_messages(stack, bodies)
    messages = receive_batch(stack, max_messages=len(bodies))
    assert sorted(m["MessageId"] for m in messages) == sorted(message_ids), "the queue lost or added messages"
    by_id = {m["MessageId"]: m for m in messages}
    ordered = [by_id[message_id] for message_id in message_ids]
    event = sqs_event_from_messages(ordered, stack.queue_arn, stack.region)
    response = handler.lambda_handler(event, context() if callable(context) else context)
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    delete_messages(stack, [m for m in ordered if m["MessageId"] not in failed])
    return SqsInvocation(event, response, message_ids)


def received_sqs_event(stack: LocalStack, body: str) -> dict[str, Any]:
    """One message sent to the stack's queue and received back, as the SQS record Lambda would deliver; delivering
    the same dict twice is a redelivery."""
    sqs = stack.sqs()
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    messages = sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    return sqs_event_from_messages(messages, stack.queue_arn, stack.region)


def unsealed(body: str) -> dict[str, Any]:
    """A continuation message's body without its MAC, after checking it has one (continuations.py)."""
    document: dict[str, Any] = json.loads(body)
    mac = document["continuation"].pop("mac")
    assert isinstance(mac, str)
    assert mac.startswith("v1:")
    return document


def validate_results_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """Assert a results-event detail matches the published JSON Schema; return it."""
    jsonschema.validate(detail, RESULTS_SCHEMA)
    return detail


def details_by_request(envelopes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Results-event details keyed by requestId, each validated against the schema."""
    details: dict[str, dict[str, Any]] = {}
    for envelope in envelopes:
        assert envelope["source"] == "reply.sequence-archiver"
        assert envelope["detail-type"] == "Sequence Archive Results"
        detail = validate_results_detail(envelope["detail"])
        assert detail["requestId"] not in details, "one results event per request"
        details[detail["requestId"]] = detail
    return details


def outcomes(detail: dict[str, Any]) -> dict[int | None, str]:
    """sequenceId → outcome of a results detail (invalid values under None, last one wins)."""
    return {result["sequenceId"]: result["outcome"] for result in detail["results"]}


def emf_metrics(stdout: str) -> dict[str, list[float]]:
    """Every metric value in the CloudWatch EMF blobs printed to stdout, by metric name."""
    values: dict[str, list[float]] = defaultdict(list)
    for raw_line in stdout.splitlines():
        line = raw_line.strip()
        if not line.startswith("{"):
            continue
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                values[metric["Name"]].extend(value if isinstance(value, list) else [value])
    return dict(values)


def metric_total(stdout: str, name: str) -> float:
    """The sum of one metric's values in stdout."""
    return sum(emf_metrics(stdout).get(name, []))


def validate_plan(detail: dict[str, Any]) -> dict[str, Any]:
    """Assert a plan detail matches the published JSON Schema; return it."""
    jsonschema.validate(detail, PLAN_SCHEMA)
    return detail
