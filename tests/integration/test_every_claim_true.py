"""Every claim true, through the real handler: a contradicting 200 is never `archived`. (A pause that worked
before an archive that failed is reported `paused`: a functional case, tests/functional/test_standard_queue.py.)

The Reply simulator's `body` fault replaces a real answer's body (and status): the archive ran in the simulator,
but what Reply said about it contradicts itself, so the results event says `unconfirmed`, never `archived`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, invoke_with_sqs, metric_total, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

BULK_PATH = "/v3/sequences/archive"
HOSTILE_SINGLE = {
    "not-archived": '{"id": 104, "name": "Seed 104", "isArchived": false, "status": "active"}',
    "empty-object": "{}",
    "empty": "",
    "not-an-object": '["archived"]',
    "another-id": '{"id": 999, "isArchived": true, "status": "paused"}',
}
HOSTILE_BULK = {
    "space-in-key": '{" 104": {"error": "notFound"}}',
    "unknown-id": '{"9999": {"error": "notFound"}}',
    "empty": "",
    "not-an-object": "[]",
}


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLY_BACKOFF_BASE_SECONDS", "0.01")
    monkeypatch.setenv("REPLY_BACKOFF_MAX_SECONDS", "0.05")


@pytest.mark.parametrize("body", list(HOSTILE_SINGLE.values()), ids=list(HOSTILE_SINGLE))
@pytest.mark.usefixtures("fast_retries")
def test_a_contradicting_single_200_is_reported_unconfirmed_never_archived(
    body: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given: every archive answer for 104 is a 200 that does not confirm it; 105 is answered normally
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    reply_simulator.inject(Fault(kind="body", status=200, sequence_id=104, body=body, times=None))
    handler = load_handler()

    # When
    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [104, 105]})], lambda_context())

    # Then: 104 is unconfirmed (final: the record is not retried), 105 archived, and the counts say so
    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert outcomes(detail) == {104: "unconfirmed", 105: "archived"}
    unconfirmed = detail["results"][0]
    assert (unconfirmed["httpStatus"], unconfirmed["via"]) == (200, "single")
    assert unconfirmed["error"].startswith("Reply answered 200 to the archive ")
    assert (detail["counts"]["archived"], detail["counts"]["unconfirmed"]) == (1, 1)
    attempts = [r for r in reply_simulator.requests if r.path == "/v3/sequences/104/archive"]
    assert len(attempts) == 4  # REPLY_MAX_ATTEMPTS: retried like a transient failure, then final
    stdout = capsys.readouterr().out
    assert metric_total(stdout, "SequencesUnconfirmed") == 1
    assert metric_total(stdout, "ReplyAnswersUnconfirmed") == 4
    assert metric_total(stdout, "SequencesArchived") == 1


@pytest.mark.parametrize("body", list(HOSTILE_BULK.values()), ids=list(HOSTILE_BULK))
@pytest.mark.usefixtures("fast_retries")
def test_a_bulk_200_about_other_ids_reports_the_ids_sent_unconfirmed_never_archived(
    body: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "bulk")
    reply_simulator.inject(Fault(kind="body", status=200, path_prefix=BULK_PATH, body=body, times=None))
    handler = load_handler()

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [104, 105, 106]})], lambda_context())

    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert outcomes(detail) == {104: "unconfirmed", 105: "unconfirmed", 106: "unconfirmed"}
    assert {(r["httpStatus"], r["via"]) for r in detail["results"]} == {(200, "bulk")}
    assert detail["counts"]["archived"] == 0
    assert [r.path for r in reply_simulator.requests] == [BULK_PATH] * 4  # retried, never split into singles
    stdout = capsys.readouterr().out
    assert metric_total(stdout, "SequencesUnconfirmed") == 3
    assert metric_total(stdout, "BulkAnswerForeignKeys") == (4 if body.startswith("{") else 0)


@pytest.mark.usefixtures("fast_retries")
def test_a_bulk_200_naming_one_id_sent_and_one_not_keeps_the_one_and_confirms_no_other(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "bulk")
    body = json.dumps({"105": {"error": "forbidden", "errorDetails": "No."}, "7001": {"error": "notFound"}})
    reply_simulator.inject(Fault(kind="body", status=200, path_prefix=BULK_PATH, body=body, times=None))
    handler = load_handler()

    invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [104, 105]})], lambda_context())

    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert outcomes(detail) == {104: "unconfirmed", 105: "forbidden"}
    assert 7001 not in outcomes(detail)  # an ID not sent is logged and counted, never reported


@pytest.mark.usefixtures("fast_retries")
def test_a_contradicting_200_once_then_already_archived_reports_already_archived(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    reply_simulator.inject(Fault(kind="body", status=200, sequence_id=104, body="{}"))
    handler = load_handler()

    invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [104]})], lambda_context())

    # The simulator did archive it on the first call: the retry's 409 sequenceAction.archived is the truth.
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert outcomes(detail) == {104: "already_archived"}
