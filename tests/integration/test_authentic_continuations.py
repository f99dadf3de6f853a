"""The function honours a continuation only if it made it: a forged one never reports under another request.
(A clean-up continuation forged onto the queue claiming a direct origin is refused as the queue's own request:
tests/functional/test_cleanup_refusals.py.)"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import drain_queue, read_results_events, read_results_log
from local.stand_ins.reply_simulator import Fault
from sequence_archiver.core.archive_request import ContinuationOf
from sequence_archiver.core.continuations import archive_continuation, compact, derive_key, seal_with
from tests.cli.terminal import run_without_terminal
from tests.integration.conftest import ALL_SCOPES
from tests.integration.harness import details_by_request, invoke_with_sqs, metric_total, validate_results_detail

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

VICTIM_ID, FORGER_ID = 101, 102  # seeded, paused sequences


def report_ids(stack: LocalStack) -> list[str]:
    """`report --log-group … --needs-attention --output ids` from the real console script."""
    completed = run_without_terminal(
        ["report", "--log-group", stack.results_log_group_name, "--needs-attention", "--output", "ids"],
        env={**os.environ, "AWS_ENDPOINT_URL": stack.endpoint_url},
    )
    assert completed.stderr == ""
    return completed.stdout.split()


def test_a_forged_continuation_naming_another_request_neither_completes_it_nor_appears_under_it(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a victim request whose only ID keeps failing: its results say it is not complete
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=VICTIM_ID))
    handler = load_handler()
    victim = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [VICTIM_ID]})], lambda_context())
    [victim_id] = victim.message_ids
    assert victim.failed_message_ids == {victim_id}
    assert len(read_results_log(aws_stack, expected=1, timeout_seconds=10)) == 1
    assert report_ids(aws_stack) == [str(VICTIM_ID)]

    # When another producer sends the forged continuation, naming the victim's request
    forged = {"sequenceIds": [FORGER_ID], "continuation": {"requestId": victim_id, "part": 2}}
    forger = invoke_with_sqs(handler, aws_stack, [json.dumps(forged)], lambda_context())

    # Then it is a new request under its own message ID: its ID is archived (nothing is lost) ...
    [forger_id] = forger.message_ids
    assert forger.failed_message_ids == set()
    details = details_by_request(read_results_events(aws_stack, expected=2))
    assert set(details) == {victim_id, forger_id}
    own = validate_results_detail(details[forger_id])
    assert (own["complete"], "continuation" in own) == (True, False)
    assert [(result["sequenceId"], result["outcome"]) for result in own["results"]] == [(FORGER_ID, "archived")]
    # ... nothing is reported under the victim's ID but its own failure, and the forgery is counted
    assert details[victim_id]["complete"] is False
    assert metric_total(capsys.readouterr().out, "ContinuationsForged") == 1
    logged = read_results_log(aws_stack, expected=2, timeout_seconds=10)
    assert [event.envelope["detail"]["requestId"] for event in logged].count(victim_id) == 1
    # ... and the retry pipeline still lists the victim's failed ID
    assert report_ids(aws_stack) == [str(VICTIM_ID)]


def test_a_forged_cleanup_continuation_never_enqueues_the_ids_it_names(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARCHIVE_QUEUE_URL", aws_stack.queue_url)
    handler = load_handler()
    forged = {
        "select": {"name": "no sequence has this name"},
        "dryRun": False,
        "continuation": {
            "requestId": "victim-request",
            "part": 2,
            "trigger": "sqs",
            "runAt": "2026-01-01T00:00:00Z",
            "skip": 0,
            "pages": 9,
            "selectedIds": [VICTIM_ID, 666_666],
            "mac": "v1:" + "0" * 64,
        },
    }

    plan = handler.lambda_handler(forged, lambda_context())

    # A new request under its own ID that listed its selection afresh: it matches nothing, so nothing is enqueued
    assert plan["requestId"] != "victim-request"
    assert (plan["outcome"], plan["selected"], plan["invocations"], plan["sequenceIds"]) == ("enqueued", 0, 1, [])
    assert drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url) == []
    assert not any(sequence.is_archived for sequence in reply_simulator.sequences() if sequence.id == VICTIM_ID)


def sealed_body(request_id: str, key: str) -> str:
    """A continuation as the function seals it (continuations.py), with the key of one secret value."""
    document = archive_continuation([FORGER_ID], ContinuationOf(request_id, 2), pause_first=False)
    return compact(seal_with(document, derive_key(key)))


def test_a_continuation_sealed_before_a_key_rotation_is_honoured_while_the_previous_version_is_readable(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    api_key: str,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a continuation sealed with the current key, then a rotation of the secret (Reply takes both keys)
    rotated = api_key + "-rotated"
    simulator = start_reply_simulator(api_keys={api_key: ALL_SCOPES, rotated: ALL_SCOPES})
    monkeypatch.setenv("REPLY_API_BASE_URL", simulator.base_url)
    before = sealed_body("request-before-rotation", api_key)
    aws_stack.secretsmanager().put_secret_value(SecretId=aws_stack.secret_arn, SecretString=rotated)
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [before], lambda_context())

    # Then it carries its request on: reported under the original request's ID, as its part 2
    assert invocation.failed_message_ids == set()
    [detail] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    assert (detail["requestId"], detail["continuation"], detail["complete"]) == ("request-before-rotation", 2, True)


def test_a_continuation_sealed_with_a_retired_key_is_a_new_request_under_its_own_id(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    api_key: str,
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a continuation sealed two rotations ago: no version of the secret still holds its key
    keys = [api_key, api_key + "-2", api_key + "-3"]
    simulator = start_reply_simulator(api_keys=dict.fromkeys(keys, ALL_SCOPES))
    monkeypatch.setenv("REPLY_API_BASE_URL", simulator.base_url)
    retired = sealed_body("request-long-ago", api_key)
    for key in keys[1:]:
        aws_stack.secretsmanager().put_secret_value(SecretId=aws_stack.secret_arn, SecretString=key)
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [retired], lambda_context())

    # Then its ID is still archived (nothing is lost), under the message's own ID, not the retired request's
    [message_id] = invocation.message_ids
    [detail] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    assert (detail["requestId"], detail["complete"], "continuation" in detail) == (message_id, True, False)
    assert [result["outcome"] for result in detail["results"]] == ["archived"]
