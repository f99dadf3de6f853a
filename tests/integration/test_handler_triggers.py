"""EventBridge and direct invocations through the real handler: the return value and the results event on the
real bus, and a bad configuration failing the cold start. Single-ID and SNS payloads, payloads that are not
requests, failed IDs raising SequenceArchiveIncomplete, and pauseFirst are functional cases
(tests/functional/test_triggers.py, test_fifo_and_direct.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events
from tests.integration.harness import details_by_request, outcomes, validate_results_detail
from tests.sample_events import load_event

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
