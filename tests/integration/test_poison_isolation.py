"""A poison ID harms only its own record: the real handler, the local event source mapping and its redrive."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import (
    QueueSettings,
    drain_queue,
    function_environment,
    provision,
    read_results_events,
    send_messages,
    unique_name_prefix,
    variables_to_unset,
)
from local.stand_ins.event_source import EventSourceMapping
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import outcomes, unsealed, validate_results_detail

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import MotoServer
    from local.stand_ins.event_source import BatchOutcome
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

BULK_PATH = "/v3/sequences/archive"
RECORDS, IDS_PER_RECORD = 5, 10
FIRST_ID = 30_001
POISON_ID = FIRST_ID + 2 * IDS_PER_RECORD + 3  # the 4th ID of the 3rd record
MAX_RECEIVE_COUNT = 3
# Seconds, not the template's minutes, so three deliveries and the redrive fit in about ten seconds.
VISIBILITY_TIMEOUT_SECONDS = 3
FUNCTION_TIMEOUT_SECONDS = 3.0
FAST_FUNCTION = {
    "REPLY_ARCHIVE_MODE": "bulk",
    "REPLY_MAX_ATTEMPTS": "2",
    "REPLY_BACKOFF_BASE_SECONDS": "0.01",
    "REPLY_BACKOFF_MAX_SECONDS": "0.05",
    "REPLY_CONNECT_TIMEOUT_SECONDS": "0.5",
    "REPLY_READ_TIMEOUT_SECONDS": "1",
    "DEADLINE_SAFETY_MARGIN_SECONDS": "0.5",
}


def test_a_poison_id_dead_letters_only_its_record_and_every_other_id_is_archived(
    moto_server: MotoServer,
    api_key: str,
    reply_simulator: ReplySimulator,
    load_handler: Callable[[], LambdaInstance],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 5 records of 10 paused sequences, where any call naming one of them answers 500, forever
    stack = provision(
        moto_server.endpoint_url,
        api_key=api_key,
        name_prefix=unique_name_prefix("poison"),
        queue_settings=QueueSettings(VISIBILITY_TIMEOUT_SECONDS, MAX_RECEIVE_COUNT, "poison isolation test"),
    )
    ids = list(range(FIRST_ID, FIRST_ID + RECORDS * IDS_PER_RECORD))
    reply_simulator.add_sequences(ids, status="paused")
    reply_simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=POISON_ID))
    for name in variables_to_unset(os.environ):
        monkeypatch.delenv(name)
    for name, value in function_environment(stack, reply_base_url=reply_simulator.base_url, **FAST_FUNCTION).items():
        monkeypatch.setenv(name, value)
    handler = load_handler()
    bodies = [json.dumps({"sequenceIds": ids[i : i + IDS_PER_RECORD]}) for i in range(0, len(ids), IDS_PER_RECORD)]
    message_ids = send_messages(stack, bodies)
    poison_message = message_ids[2]
    batches: list[BatchOutcome] = []

    # When the event source mapping drains the queue, with its redrive policy, as Lambda would
    mapping = EventSourceMapping(
        stack,
        handler.lambda_handler,
        batch_size=10,
        batching_window_seconds=0,
        function_timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
    )
    calls_in_first_batch: list[int] = []

    def after_batch(number: int, outcome: BatchOutcome) -> None:
        batches.append(outcome)
        if number == 0:
            calls_in_first_batch.append(len(reply_simulator.requests))

    drain = mapping.drain(until_empty_for=0.5, max_seconds=30, after_batch=after_batch)

    # Then the five records shared one bulk call; the poison's record was acknowledged too, its 9 healthy IDs
    # archived, and a continuation holding only the poison ID took its place
    assert drain.stopped == "empty"
    assert (drain.handler_errors, drain.timed_out, drain.invalid_responses) == (0, 0, 0)
    assert sorted(batches[0].message_ids) == sorted(message_ids)
    first_bulk = next(request for request in reply_simulator.requests if request.path == BULK_PATH)
    assert sorted(first_bulk.sequence_ids) == ids
    assert batches[0].failed_message_ids == set()
    assert batches[0].deleted == RECORDS
    # ... the continuation was asked back on every delivery, until the redrive policy moved it to the DLQ
    [continuation_id] = {message_id for outcome in batches[1:] for message_id in outcome.message_ids}
    assert [outcome.failed_message_ids for outcome in batches[1:]] == [{continuation_id}] * MAX_RECEIVE_COUNT
    assert mapping.queue_depth() == (0, 0)
    # ... only the poison ID is in the dead-letter queue, in the continuation of its record
    [dead_letter] = drain_queue(stack.dead_letter_queue_url, endpoint_url=stack.endpoint_url)
    assert dead_letter["MessageId"] == continuation_id
    assert unsealed(dead_letter["Body"]) == {
        "sequenceIds": [POISON_ID],
        "continuation": {"requestId": poison_message, "part": 2, "failures": 1},
    }
    # ... all 49 other IDs are archived in Reply, each exactly once, the poison ID is not
    archived = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
    assert archived & set(ids) == set(ids) - {POISON_ID}
    later_calls = reply_simulator.requests[calls_in_first_batch[0] :]
    assert {request.sequence_id or request.sequence_ids for request in later_calls} <= {POISON_ID, (POISON_ID,)}
    # ... the healthy records reported every ID archived; the poison's request reported its 9 other IDs archived
    # in part 1, carried the poison on, and reported it failed on every delivery of part 2
    reports: dict[str, list[dict[str, Any]]] = {}
    for envelope in read_results_events(stack, expected=RECORDS + MAX_RECEIVE_COUNT):
        detail = validate_results_detail(envelope["detail"])
        reports.setdefault(detail["requestId"], []).append(detail)
    assert set(reports) == set(message_ids)
    for message_id, body in zip(message_ids, bodies, strict=True):
        if message_id == poison_message:
            continue
        [detail] = reports[message_id]
        assert outcomes(detail) == dict.fromkeys(json.loads(body)["sequenceIds"], "archived")
    first_part, *later_parts = sorted(reports[poison_message], key=lambda detail: detail["continuation"])
    assert first_part["continuation"] == 1
    assert first_part["deferredIds"] == [POISON_ID]
    assert outcomes(first_part) == dict.fromkeys(set(ids[20:30]) - {POISON_ID}, "archived")
    assert len(later_parts) == MAX_RECEIVE_COUNT
    for detail in later_parts:
        assert (detail["continuation"], outcomes(detail)) == (2, {POISON_ID: "failed"})
