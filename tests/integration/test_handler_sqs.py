"""The SQS trigger end to end: real queue on moto, real handler, Reply simulator over HTTP: a mixed batch in single
mode (real answers, EMF metrics, the DLQ's message attributes) and a full batch's metric dimensions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import drain_queue, read_results_events
from tests.integration.harness import (
    details_by_request,
    emf_metrics,
    invoke_with_sqs,
    metric_total,
    outcomes,
)
from tests.sample_events import eventbridge_envelope, sns_envelope

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration


# The same batch in bulk mode (auto: one call) is a functional case, tests/functional/test_bulk_batches.py.
@pytest.mark.parametrize(("mode", "api_calls"), [("single", 11)])
def test_a_mixed_batch_archives_reports_every_id_and_dead_letters_the_poison_message(
    mode: str,
    api_calls: int,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
    api_key: str,
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", mode)
    handler = load_handler()
    bodies = [
        json.dumps({"sequenceIds": [101, 102, "103", 103, 401, 301, 999999]}),
        "104",
        eventbridge_envelope({"sequenceIds": [105, 501]}),
        sns_envelope({"sequenceId": 201}),
        json.dumps({"sequenceIds": [106, 0, True, "abc", 1.5]}),
        "not json at all",
    ]

    invocation = invoke_with_sqs(handler, aws_stack, bodies, lambda_context())

    # Every record ended with final outcomes, so none is retried.
    assert invocation.failed_message_ids == set()
    for sequence_id in (101, 102, 103, 104, 105, 106, 201):
        sequence = reply_simulator.sequence(sequence_id)
        assert sequence is not None
        assert sequence.is_archived, sequence_id
    details = details_by_request(read_results_events(aws_stack, expected=len(bodies)))
    ids = invocation.message_ids
    assert set(details) == set(ids)
    assert outcomes(details[ids[0]]) == {
        101: "archived",
        102: "archived",
        103: "archived",
        401: "already_archived",
        301: "conflict",
        999999: "not_found",
    }
    assert outcomes(details[ids[1]]) == {104: "archived"}
    assert outcomes(details[ids[2]]) == {105: "archived", 501: "forbidden"}
    assert outcomes(details[ids[3]]) == {201: "archived"}
    assert details[ids[4]]["counts"]["invalid"] == 4
    assert details[ids[4]]["counts"]["archived"] == 1
    assert [r["input"] for r in details[ids[4]]["results"] if r["outcome"] == "invalid"] == [
        "0",
        "true",
        '"abc"',
        "1.5",
    ]
    assert all(detail["trigger"] == "sqs" and detail["complete"] for detail in details.values())
    archived_result = details[ids[0]]["results"][0]
    conflict_result = details[ids[0]]["results"][-2]
    if mode == "single":  # the single endpoint answers with the sequence; the bulk one only lists failures
        assert (archived_result["httpStatus"], archived_result["via"]) == (200, "single")
        assert archived_result["sequence"] == {"name": "Seed 101 (paused)", "status": "paused", "isArchived": True}
        assert (conflict_result["httpStatus"], conflict_result["via"]) == (409, "single")
    else:  # an item of a 200 bulk answer has no HTTP status of its own
        assert (archived_result["httpStatus"], archived_result["via"]) == (None, "bulk")
        assert archived_result["sequence"] is None
        assert (conflict_result["httpStatus"], conflict_result["via"]) == (None, "bulk")
    # Either way a refusal reads as the single endpoint's code would: `sequenceAction.<variant>: <detail>`.
    assert conflict_result["sequenceId"] == 301
    assert conflict_result["error"] == (
        "sequenceAction.invalidState: Sequence is active. Pause it first: "
        "archiving removes every contact currently in it."
    )
    assert all(r["via"] is None for r in details[ids[4]]["results"] if r["outcome"] == "invalid")
    # The poison record was parked in the DLQ with its reason, and reported as rejected.
    [parked] = drain_queue(aws_stack.dead_letter_queue_url, endpoint_url=aws_stack.endpoint_url)
    assert parked["Body"] == "not json at all"
    assert "not JSON" in parked["MessageAttributes"]["RejectionReason"]["StringValue"]
    assert parked["MessageAttributes"]["OriginalMessageId"]["StringValue"] == ids[5]
    assert outcomes(details[ids[5]]) == {None: "invalid"}
    # Nothing is left on the request queue.
    assert drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url) == []
    # Metrics were emitted as EMF with the right totals; the key never reached stdout or stderr.
    captured = capsys.readouterr()
    assert metric_total(captured.out, "SequencesArchived") == 7
    assert metric_total(captured.out, "SequencesAlreadyArchived") == 1
    assert metric_total(captured.out, "SequencesConflict") == 1
    assert metric_total(captured.out, "SequencesNotFound") == 1
    assert metric_total(captured.out, "SequencesForbidden") == 1
    assert metric_total(captured.out, "SequencesInvalid") == 5
    assert metric_total(captured.out, "SequencesFailed") == 0
    assert metric_total(captured.out, "ReplyApiCalls") == api_calls
    assert metric_total(captured.out, "ColdStart") == 1
    latencies = emf_metrics(captured.out)["ReplyApiLatency"]
    assert len(latencies) == api_calls
    assert all(value >= 0 for value in latencies)
    assert api_key not in captured.out + captured.err


def test_a_full_batch_publishes_one_valid_event_per_record_with_service_only_dimensions(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = load_handler()
    bodies = [json.dumps({"sequenceIds": [sequence_id, 999_000 + sequence_id]}) for sequence_id in range(101, 113)]

    invocation = invoke_with_sqs(handler, aws_stack, bodies, lambda_context())

    assert invocation.failed_message_ids == set()
    details = details_by_request(read_results_events(aws_stack, expected=12))
    assert set(details) == set(invocation.message_ids)
    assert all(detail["counts"]["archived"] == 1 and detail["counts"]["not_found"] == 1 for detail in details.values())
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    dimension_sets = {
        tuple(d) for blob in blobs for directive in blob["_aws"]["CloudWatchMetrics"] for d in directive["Dimensions"]
    }
    assert dimension_sets <= {("service",), ("function_name", "service")}  # the latter: Powertools' ColdStart blob
