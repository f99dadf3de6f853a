"""EventBridge, direct and SNS invocations: the return value, the results event and the retry signal."""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, load_event, outcomes, validate_results_detail

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration


def test_an_eventbridge_event_returns_and_publishes_its_results_under_the_event_id(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    event = load_event("eventbridge-event.json")

    detail = load_handler().lambda_handler(event, lambda_context())

    validate_results_detail(detail)
    assert (detail["requestId"], detail["trigger"], detail["complete"]) == (event["id"], "eventbridge", True)
    assert outcomes(detail) == {106: "archived", 107: "archived", 402: "already_archived", 502: "forbidden"}
    assert details_by_request(read_results_events(aws_stack, expected=1)) == {event["id"]: detail}


def test_a_direct_invocation_is_keyed_by_the_lambda_request_id(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    context = lambda_context(aws_request_id="c6af9ac6-7b61-11e6-9a41-93e812345678")

    detail = load_handler().lambda_handler(load_event("direct-invocation.json"), context)

    assert (detail["requestId"], detail["trigger"]) == ("c6af9ac6-7b61-11e6-9a41-93e812345678", "direct")
    assert outcomes(detail) == {108: "archived", 109: "archived", 303: "conflict", 404: "already_archived"}
    conflict = next(r for r in detail["results"] if r["sequenceId"] == 303)
    assert conflict["httpStatus"] == 409
    assert conflict["error"].startswith("sequenceAction.")
    assert details_by_request(read_results_events(aws_stack, expected=1)) == {context.aws_request_id: detail}


@pytest.mark.parametrize(
    ("event_file", "expected"),
    [("direct-single.json", {110: "archived"}), ("sns-to-lambda.json", {111: "archived", 112: "archived"})],
)
def test_single_id_and_sns_payloads(
    event_file: str,
    expected: dict[int, str],
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    detail = load_handler().lambda_handler(load_event(event_file), lambda_context())

    assert outcomes(validate_results_detail(detail)) == expected
    assert detail["trigger"] == "direct"
    read_results_events(aws_stack, expected=1)


def test_failed_ids_raise_sequence_archive_incomplete_after_publishing(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    reply_simulator.inject(Fault(kind="status", status=503, sequence_id=114))
    handler = load_handler()
    exceptions = importlib.import_module("sequence_archiver.core.exceptions")

    with pytest.raises(exceptions.SequenceArchiveIncomplete) as excinfo:
        handler.lambda_handler({"sequenceIds": [113, 114]}, lambda_context())

    assert type(excinfo.value).__name__ == "SequenceArchiveIncomplete"
    [published] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert published == excinfo.value.detail
    assert published["complete"] is False
    assert outcomes(published) == {113: "archived", 114: "failed"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"ids": [1, 2]}, 'no "sequenceIds"'),
        ({"sequenceIds": list(range(1, 1002))}, "at most 1000"),
        ([101, 102], "expected an object"),
    ],
)
def test_a_payload_that_is_not_a_request_gets_a_final_invalid_outcome(
    payload: object,
    reason: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    detail = load_handler().lambda_handler(payload, lambda_context())

    validate_results_detail(detail)
    assert detail["complete"] is True
    [result] = detail["results"]
    assert (result["sequenceId"], result["outcome"]) == (None, "invalid")
    assert reason in result["error"]
    assert reply_simulator.api_calls == 0
    read_results_events(aws_stack, expected=1)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REPLY_API_BASE_URL", "http://api.reply.io"),
        ("REPLY_API_BASE_URL", "https://user:pass@api.reply.io"),
        ("REPLY_API_KEY_SECRET_ID", ""),
        ("REPLY_MAX_ATTEMPTS", "many"),
        ("REPLY_API_BASE_URL", "https://api.reply.io/v3?"),
        ("REPLY_API_BASE_URL", "https://api.reply.io#"),
        ("REPLY_API_BASE_URL", "http://127.0.0.1:99999"),
        ("REPLY_API_BASE_URL", "http://127.0.0.1:0"),
        ("REPLY_API_BASE_URL", "https://api.reply.io:https"),
    ],
)
def test_bad_configuration_fails_the_cold_start_naming_the_variable(
    variable: str, value: str, load_handler: Callable[[], LambdaInstance], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(Exception, match=variable) as excinfo:
        load_handler()
    assert type(excinfo.value).__name__ == "ConfigurationError"
    assert "pass@" not in str(excinfo.value)


def test_the_direct_return_value_is_json_serialisable(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    detail = load_handler().lambda_handler({"sequenceId": "115"}, lambda_context())
    assert json.loads(json.dumps(detail)) == detail


@pytest.mark.parametrize("mode", ["single", "auto"])
def test_pause_first_pauses_running_sequences_then_archives_them(
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", mode)
    handler = load_handler()

    detail = handler.lambda_handler({"sequenceIds": [301, 302, 116], "pauseFirst": True}, lambda_context())

    validate_results_detail(detail)
    assert [(r["sequenceId"], r["outcome"], r.get("paused", False)) for r in detail["results"]] == [
        (301, "archived", True),
        (302, "archived", True),
        (116, "archived", False),
    ]
    for sequence_id in (301, 302):
        sequence = reply_simulator.sequence(sequence_id)
        assert sequence is not None
        assert (sequence.status, sequence.is_archived) == ("paused", True)
    pauses = [r.path for r in reply_simulator.requests if r.path.endswith("/pause")]
    assert pauses == ["/v3/sequences/301/pause", "/v3/sequences/302/pause"]
    read_results_events(aws_stack, expected=1)


def test_without_pause_first_a_running_sequence_stays_a_conflict(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    detail = load_handler().lambda_handler({"sequenceIds": [303, 117]}, lambda_context())

    assert outcomes(detail) == {303: "conflict", 117: "archived"}
    assert not any(r.path.endswith("/pause") for r in reply_simulator.requests)
    sequence = reply_simulator.sequence(303)
    assert sequence is not None
    assert (sequence.status, sequence.is_archived) == ("active", False)
    read_results_events(aws_stack, expected=1)
