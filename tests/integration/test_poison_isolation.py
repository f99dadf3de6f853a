"""A poison ID harms only its own record: the real handler, the local event source mapping and its redrive."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from local.aws_stack import (
    QueueSettings,
    drain_queue,
    function_environment,
    provision,
    read_results_events,
    send_messages,
    unique_name_prefix,
    variables_to_unset,
)
from local.event_source import EventSourceMapping
from local.reply_simulator import Fault
from tests.integration.harness import outcomes, validate_results_detail

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from local.aws_stack import MotoServer
    from local.event_source import BatchOutcome
    from local.reply_simulator import ReplySimulator

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
    load_handler: Callable[[], ModuleType],
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
    drain = mapping.drain(
        until_empty_for=0.5, max_seconds=30, after_batch=lambda _number, outcome: batches.append(outcome)
    )

    # Then the five records shared one bulk call, and only the poison's record was asked back, every time
    assert drain.stopped == "empty"
    assert (drain.handler_errors, drain.timed_out, drain.invalid_responses) == (0, 0, 0)
    assert sorted(batches[0].message_ids) == sorted(message_ids)
    first_bulk = next(request for request in reply_simulator.requests if request.path == BULK_PATH)
    assert sorted(first_bulk.sequence_ids) == ids
    assert [outcome.failed_message_ids for outcome in batches] == [{poison_message}] * MAX_RECEIVE_COUNT
    assert [outcome.message_ids for outcome in batches[1:]] == [[poison_message]] * (MAX_RECEIVE_COUNT - 1)
    # ... the 4 healthy records were acknowledged (deleted) on their first delivery
    assert batches[0].deleted == RECORDS - 1
    assert mapping.queue_depth() == (0, 0)
    # ... only the poison's record is in the dead-letter queue, moved there by the redrive policy
    dead_letters = drain_queue(stack.dead_letter_queue_url, endpoint_url=stack.endpoint_url)
    assert [(message["MessageId"], message["Body"]) for message in dead_letters] == [(poison_message, bodies[2])]
    # ... all 49 other IDs are archived in Reply, the poison ID is not
    archived = {sequence.id for sequence in reply_simulator.sequences() if sequence.is_archived}
    assert archived & set(ids) == set(ids) - {POISON_ID}
    # ... the healthy records reported every ID archived, and each report of the poison's record its other
    # 9 IDs archived and the poison failed
    reports: dict[str, list[dict[str, Any]]] = {}
    for envelope in read_results_events(stack, expected=RECORDS):
        detail = validate_results_detail(envelope["detail"])
        reports.setdefault(detail["requestId"], []).append(detail)
    assert set(reports) == set(message_ids)
    for message_id, body in zip(message_ids, bodies, strict=True):
        if message_id == poison_message:
            continue
        [detail] = reports[message_id]
        assert outcomes(detail) == dict.fromkeys(json.loads(body)["sequenceIds"], "archived")
    for detail in reports[poison_message]:
        by_id = outcomes(detail)
        assert by_id.pop(POISON_ID) == "failed"
        assert set(by_id.values()) <= {"archived", "already_archived"}
        assert len(by_id) == IDS_PER_RECORD - 1
