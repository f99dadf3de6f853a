"""A local SQS event source mapping: what Lambda's poller does for ArchiveRequestsQueue, against the moto server.

It long-polls the request queue, gathers a batch (batch size and batching window from template.yaml),
invokes the handler with the exact SQS event shape and a fresh LocalLambdaContext (the template's function
timeout), deletes the records the handler acknowledged (everything not in ``batchItemFailures``) and leaves
the others to reappear after their visibility timeout. The queue's redrive policy (``maxReceiveCount``)
moves records that keep failing to the dead-letter queue, exactly as on AWS. A handler exception, an
invalid response or an invocation that outlives its timeout fails the whole batch, as on Lambda. The timeout
counts the time the invocation had a CPU for (``cpu_clock.invocation_clock``): on a loaded machine, the time
other processes held the CPU is not the function's, as it would not be on Lambda.

The real queue's visibility timeout (2100 s) is far too long for a local run. Provision the stack with a
short one instead (``provision(..., queue_settings=QueueSettings(...))``) together with a matching short
``function_timeout_seconds``: like CreateEventSourceMapping, the driver refuses a queue whose visibility
timeout is shorter than the function timeout, since records would reappear while still being processed.

``drain()`` polls until the queue stays empty (scenarios and tests); ``run_until(event)`` and
``EventSourcePoller`` poll until told to stop, as an enabled mapping does (``make stack``).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from local.stand_ins.aws_stack import (
    TEMPLATE_PATH,
    LocalStackError,
    load_cloudformation_yaml,
    resolve_branches,
    resolve_int,
    sqs_event_from_messages,
)
from local.stand_ins.background import BackgroundService
from local.stand_ins.cpu_clock import invocation_clock
from local.stand_ins.lambda_context import LocalLambdaContext

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from local.stand_ins.aws_stack import LocalStack

    Handler = Callable[[dict[str, Any], LocalLambdaContext], Any]

logger = logging.getLogger(__name__)

FUNCTION_LOGICAL_ID = "ArchiveSequencesFunction"
MAX_MESSAGES_PER_RECEIVE = 10  # SQS's limit for one ReceiveMessage call
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
_LONG_POLL_SECONDS = 1.0  # Lambda long-polls for 20 s; 1 s keeps a local drain responsive
_POLL_INTERVAL_SECONDS = 0.02
_PAUSE_AFTER_SQS_ERROR_SECONDS = 1.0


@dataclass(frozen=True)
class EventSourceSettings:
    """The SQS event source of ArchiveSequencesFunction as template.yaml declares it (parameter defaults)."""

    batch_size: int
    batching_window_seconds: int
    function_timeout_seconds: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None
    source: str


def _sqs_event_properties(function: Mapping[str, Any]) -> dict[str, Any]:
    """Properties of the function's (only) event of Type SQS."""
    events = (function.get("Properties") or {}).get("Events") or {}
    sqs_events = [event for event in events.values() if isinstance(event, dict) and event.get("Type") == "SQS"]
    if len(sqs_events) != 1:
        raise LocalStackError(f"{FUNCTION_LOGICAL_ID} must have exactly one SQS event; found {len(sqs_events)}")
    properties = sqs_events[0].get("Properties")
    return properties if isinstance(properties, dict) else {}


def event_source_settings_from_template(path: Path = TEMPLATE_PATH) -> EventSourceSettings:
    """Read BatchSize, MaximumBatchingWindowInSeconds, the function timeout and response types from template.yaml."""
    if not path.is_file():
        raise LocalStackError(f"{path} not found: the event source reads its settings from the template")
    document = load_cloudformation_yaml(path.read_text(encoding="utf-8"))
    document = document if isinstance(document, dict) else {}
    parameters = document.get("Parameters") or {}
    function = (document.get("Resources") or {}).get(FUNCTION_LOGICAL_ID)
    if not isinstance(function, dict):
        raise LocalStackError(f"{path.name} has no {FUNCTION_LOGICAL_ID}")
    event = _sqs_event_properties(function)
    global_function = (document.get("Globals") or {}).get("Function") or {}
    timeout_value = (function.get("Properties") or {}).get("Timeout", global_function.get("Timeout"))
    values = {
        # The standard queue the template deploys by default (its FIFO branches resolved away).
        "BatchSize": resolve_int(resolve_branches(event.get("BatchSize"), document), parameters),
        "MaximumBatchingWindowInSeconds": resolve_int(
            resolve_branches(event.get("MaximumBatchingWindowInSeconds"), document), parameters
        ),
        "Timeout": resolve_int(timeout_value, parameters),
    }
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise LocalStackError(f"{path.name} does not state a plain value for {', '.join(missing)}")
    scaling = event.get("ScalingConfig") or {}
    response_types = event.get("FunctionResponseTypes") or []
    return EventSourceSettings(
        batch_size=int(values["BatchSize"] or 0),
        batching_window_seconds=int(values["MaximumBatchingWindowInSeconds"] or 0),
        function_timeout_seconds=int(values["Timeout"] or 0),
        report_batch_item_failures="ReportBatchItemFailures" in response_types,
        maximum_concurrency=resolve_int(scaling.get("MaximumConcurrency"), parameters)
        if isinstance(scaling, dict)
        else None,
        source=path.name,
    )


@dataclass
class BatchOutcome:
    """One poll: the records received, what the handler answered and what the driver did with them."""

    message_ids: list[str] = field(default_factory=list)
    failed_message_ids: set[str] = field(default_factory=set)
    deleted: int = 0
    lost_deletes: int = 0
    handler_error: str | None = None
    timed_out: bool = False
    invalid_response: str | None = None
    seconds: float = 0.0  # the time the invocation used, counted as Lambda would (cpu_clock)
    time_had_seconds: float = 0.0  # what the context said was left when the handler was called
    response: Any = None

    @property
    def records(self) -> int:
        """How many records the batch held (0: the poll found nothing and the handler was not invoked)."""
        return len(self.message_ids)

    @property
    def whole_batch_failed(self) -> bool:
        """True when nothing was acknowledged because the invocation itself failed."""
        return self.handler_error is not None or self.timed_out or self.invalid_response is not None


@dataclass
class DrainOutcome:
    """Totals of a drain() run and why it stopped."""

    batches: int = 0
    records: int = 0
    deleted: int = 0
    failed_records: int = 0
    lost_deletes: int = 0
    handler_errors: int = 0
    timed_out: int = 0
    invalid_responses: int = 0
    seconds: float = 0.0  # the time the invocation used, counted as Lambda would (cpu_clock)
    stopped: str = ""


class EventSourceMapping:
    """Drives the handler from the request queue the way Lambda's SQS event source mapping does.

    batch_size / batching_window_seconds / function_timeout_seconds default to template.yaml's values.
    visibility_timeout_override, when given, is sent as ReceiveMessage's VisibilityTimeout (Lambda never
    does this; prefer provisioning the queue with a short visibility timeout). lose_delete_probability
    makes the driver "forget" to delete an acknowledged record now and then (seeded by ``rng``), so the
    record comes back after its visibility timeout: the at-least-once redelivery SQS is allowed to make.
    """

    def __init__(
        self,
        stack: LocalStack,
        handler: Handler,
        *,
        batch_size: int | None = None,
        batching_window_seconds: float | None = None,
        visibility_timeout_override: int | None = None,
        function_timeout_seconds: float | None = None,
        lose_delete_probability: float = 0.0,
        rng: random.Random | None = None,
        settings: EventSourceSettings | None = None,
        long_poll_seconds: float = _LONG_POLL_SECONDS,
        clock: Callable[[], Callable[[], float]] = invocation_clock,
    ) -> None:
        template = settings or event_source_settings_from_template()
        self._clock = clock
        self._stack = stack
        self._handler = handler
        self._sqs: SQSClient = stack.sqs()
        self.batch_size = batch_size if batch_size is not None else template.batch_size
        self.batching_window_seconds = (
            batching_window_seconds if batching_window_seconds is not None else template.batching_window_seconds
        )
        self.function_timeout_seconds = (
            function_timeout_seconds if function_timeout_seconds is not None else template.function_timeout_seconds
        )
        self.report_batch_item_failures = template.report_batch_item_failures
        self._visibility_override = visibility_timeout_override
        self._lose_delete_probability = lose_delete_probability
        self._rng = rng or random.Random(0)
        self._long_poll_seconds = long_poll_seconds
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("batch_size must be between 1 and 10000")
        if self.batching_window_seconds < 0 or self.function_timeout_seconds <= 0:
            raise ValueError("the batching window must not be negative and the function timeout must be positive")
        if not 0.0 <= lose_delete_probability < 1.0:
            raise ValueError("lose_delete_probability must be in [0, 1)")
        self.visibility_timeout_seconds = (
            visibility_timeout_override if visibility_timeout_override is not None else self._queue_visibility_timeout()
        )
        if self.visibility_timeout_seconds < self.function_timeout_seconds:
            # CreateEventSourceMapping refuses this too: records would reappear while still being processed.
            raise ValueError(
                f"the queue's visibility timeout ({self.visibility_timeout_seconds} s) is shorter than the "
                f"function timeout ({self.function_timeout_seconds} s)"
            )

    def _queue_visibility_timeout(self) -> int:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._stack.queue_url, AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        return int(attributes["VisibilityTimeout"])

    def queue_depth(self) -> tuple[int, int]:
        """(visible, in flight or delayed) messages of the request queue, as SQS approximates them.

        Delayed messages (continuations the function sent with DelaySeconds) count as in flight: they will
        come back, so the queue is not drained while any waits.
        """
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._stack.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        waiting = int(attributes["ApproximateNumberOfMessagesNotVisible"]) + int(
            attributes.get("ApproximateNumberOfMessagesDelayed", "0")
        )
        return int(attributes["ApproximateNumberOfMessages"]), waiting

    def poll_once(self) -> BatchOutcome:
        """Gather one batch, invoke the handler with it and settle it; an empty poll invokes nothing."""
        messages = self._gather_batch()
        outcome = BatchOutcome(message_ids=[message["MessageId"] for message in messages])
        if not messages:
            return outcome
        event = sqs_event_from_messages(messages, self._stack.queue_arn, self._stack.region)
        clock = self._clock()  # the invocation's time: a CPU of its own, as on Lambda (cpu_clock)
        context = LocalLambdaContext(
            timeout_seconds=self.function_timeout_seconds, region=self._stack.region, clock=clock
        )
        started = clock()
        outcome.time_had_seconds = context.get_remaining_time_in_millis() / 1000.0
        try:
            outcome.response = self._handler(event, context)
        except Exception as exc:  # Lambda reports any error as a failed invocation: the whole batch comes back
            outcome.handler_error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = clock() - started
        if outcome.seconds > self.function_timeout_seconds:
            # Lambda would have stopped the invocation at its timeout; nothing of the batch is deleted.
            outcome.timed_out = True
        if not (outcome.handler_error or outcome.timed_out):
            outcome.failed_message_ids, outcome.invalid_response = self._failed_ids(outcome.response, messages)
        if outcome.whole_batch_failed:
            outcome.failed_message_ids = set(outcome.message_ids)
            logger.warning(
                "invocation failed: the whole batch will be retried",
                extra={
                    "records": len(messages),
                    "error": outcome.handler_error,
                    "timed_out": outcome.timed_out,
                    "invalid_response": outcome.invalid_response,
                    "seconds": round(outcome.seconds, 3),
                },
            )
        self._settle(messages, outcome)
        return outcome

    def drain(
        self,
        *,
        until_empty_for: float = 2.0,
        max_seconds: float = 60.0,
        max_batches: int | None = None,
        before_poll: Callable[[int], None] | None = None,
        after_batch: Callable[[int, BatchOutcome], None] | None = None,
    ) -> DrainOutcome:
        """Poll until the queue has held nothing (visible or in flight) for until_empty_for seconds, or a limit.

        before_poll(n) runs once before the n-th batch is gathered (n counts batches that held records, from 0;
        empty polls in between do not call it again), after_batch(n, outcome) after that batch is settled:
        hooks for injecting faults between invocations. max_seconds counts, like the function timeout, only
        the time this thread had a CPU for (cpu_clock): a loaded machine slows the drain, it does not cut it.
        """
        totals = DrainOutcome()
        started = time.monotonic()
        own_time = self._clock()
        own_started = own_time()
        empty_since: float | None = None
        prepared_batch = -1
        while True:
            if own_time() - own_started >= max_seconds:
                totals.stopped = "max_seconds"
                break
            if max_batches is not None and totals.batches >= max_batches:
                totals.stopped = "max_batches"
                break
            if before_poll is not None and prepared_batch != totals.batches:
                prepared_batch = totals.batches
                before_poll(totals.batches)
            outcome = self.poll_once()
            if outcome.records:
                empty_since = None
                self._add(totals, outcome)
                if after_batch is not None:
                    after_batch(totals.batches - 1, outcome)
                continue
            if self.queue_depth() != (0, 0):
                empty_since = None  # records are in flight: they come back after their visibility timeout
                continue
            empty_since = empty_since if empty_since is not None else time.monotonic()
            if time.monotonic() - empty_since >= until_empty_for:
                totals.stopped = "empty"
                break
        totals.seconds = time.monotonic() - started
        return totals

    def run_until(
        self,
        stop: threading.Event,
        *,
        after_batch: Callable[[int, BatchOutcome], None] | None = None,
        totals: DrainOutcome | None = None,
    ) -> DrainOutcome:
        """Poll until `stop` is set, as Lambda polls while the mapping is enabled; return the totals.

        after_batch(n, outcome) runs after each batch that held records is settled; `totals`, when given, is
        kept up to date as batches are settled, for a reader on another thread. An SQS call that fails (the
        endpoint restarting, say) is logged and retried after a pause, as Lambda's poller keeps going.
        """
        totals = totals if totals is not None else DrainOutcome()
        started = time.monotonic()
        while not stop.is_set():
            try:
                outcome = self.poll_once()
            except (BotoCoreError, ClientError) as exc:
                logger.warning("polling the queue failed; trying again", extra={"error": type(exc).__name__})
                stop.wait(_PAUSE_AFTER_SQS_ERROR_SECONDS)
                continue
            if outcome.records:
                self._add(totals, outcome)
                if after_batch is not None:
                    after_batch(totals.batches - 1, outcome)
        totals.stopped = "stopped"
        totals.seconds = time.monotonic() - started
        return totals

    @staticmethod
    def _add(totals: DrainOutcome, outcome: BatchOutcome) -> None:
        totals.batches += 1
        totals.records += outcome.records
        totals.deleted += outcome.deleted
        totals.failed_records += len(outcome.failed_message_ids)
        totals.lost_deletes += outcome.lost_deletes
        totals.handler_errors += outcome.handler_error is not None
        totals.timed_out += outcome.timed_out
        totals.invalid_responses += outcome.invalid_response is not None

    def _receive(self, *, wait_seconds: int, max_messages: int) -> list[MessageTypeDef]:
        """One ReceiveMessage call with every attribute Lambda's poller asks for."""
        arguments: dict[str, Any] = {
            "QueueUrl": self._stack.queue_url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self._visibility_override is not None:
            arguments["VisibilityTimeout"] = self._visibility_override
        return list(self._sqs.receive_message(**arguments).get("Messages", []))

    def _long_poll(self) -> list[MessageTypeDef]:
        """The first records of a batch, as soon as any is visible, or nothing after long_poll_seconds.

        moto's WaitTimeSeconds only wakes up for newly sent messages, not for in-flight ones whose visibility
        timeout ends, so the wait is done here with short receives, as SQS's long polling would answer.
        """
        gives_up = time.monotonic() + self._long_poll_seconds
        while True:
            messages = self._receive(wait_seconds=0, max_messages=min(MAX_MESSAGES_PER_RECEIVE, self.batch_size))
            if messages or time.monotonic() >= gives_up:
                return messages
            time.sleep(_POLL_INTERVAL_SECONDS * 5)

    def _gather_batch(self) -> list[MessageTypeDef]:
        """Long-poll for the first records, then keep receiving until the batch is full or the window closes."""
        messages = self._long_poll()
        if not messages:
            return []
        window_closes = time.monotonic() + self.batching_window_seconds
        payload = sum(len(message["Body"].encode("utf-8")) for message in messages)
        while len(messages) < self.batch_size and payload < MAX_PAYLOAD_BYTES:
            more = self._receive(
                wait_seconds=0, max_messages=min(MAX_MESSAGES_PER_RECEIVE, self.batch_size - len(messages))
            )
            if more:
                messages.extend(more)
                payload += sum(len(message["Body"].encode("utf-8")) for message in more)
                continue
            remaining = window_closes - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(_POLL_INTERVAL_SECONDS, remaining))
        return messages

    def _failed_ids(self, response: Any, messages: Sequence[MessageTypeDef]) -> tuple[set[str], str | None]:
        """The records to retry from a ReportBatchItemFailures response, or (all, reason) if it is invalid."""
        every_id = {message["MessageId"] for message in messages}
        if not self.report_batch_item_failures or response is None:
            return set(), None  # without ReportBatchItemFailures any successful return acknowledges everything
        if not isinstance(response, dict):
            return every_id, f"the response is a {type(response).__name__}, not an object"
        items = response.get("batchItemFailures")
        if items is None:
            return set(), None
        if not isinstance(items, list):
            return every_id, "batchItemFailures is not a list"
        failed: set[str] = set()
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in every_id:
                # Lambda treats an empty, null or unknown itemIdentifier as a failure of the whole batch.
                return every_id, f"invalid itemIdentifier {json.dumps(identifier, default=str)[:80]}"
            failed.add(identifier)
        return failed, None

    def _settle(self, messages: Sequence[MessageTypeDef], outcome: BatchOutcome) -> None:
        """Delete the acknowledged records (minus any deliberately lost deletes); leave the failed ones."""
        acknowledged = [message for message in messages if message["MessageId"] not in outcome.failed_message_ids]
        to_delete = []
        for message in acknowledged:
            if self._lose_delete_probability and self._rng.random() < self._lose_delete_probability:
                outcome.lost_deletes += 1
                continue
            to_delete.append(message)
        for start in range(0, len(to_delete), MAX_MESSAGES_PER_RECEIVE):
            chunk = to_delete[start : start + MAX_MESSAGES_PER_RECEIVE]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._stack.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            outcome.deleted += len(response.get("Successful", []))
            failed = response.get("Failed", [])
            if failed:  # e.g. an expired receipt handle: SQS will deliver those records again
                logger.warning(
                    "some deletes failed; those records will be delivered again",
                    extra={"failed": len(failed), "codes": sorted({str(item.get("Code")) for item in failed})},
                )


class EventSourcePoller(BackgroundService):
    """An EventSourceMapping polling on a daemon thread from start() until stop(): the mapping, enabled."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        *,
        after_batch: Callable[[int, BatchOutcome], None] | None = None,
        stop_timeout_seconds: float = 10.0,
    ) -> None:
        self._mapping = mapping
        self._after_batch = after_batch
        self._stop_timeout_seconds = stop_timeout_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.totals = DrainOutcome()  # updated after every batch

    def start(self) -> EventSourcePoller:
        """Start polling in the background; return self."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="event-source-poller", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        self._mapping.run_until(self._stop, after_batch=self._after_batch, totals=self.totals)

    def stop(self) -> None:
        """Stop after the batch in hand (waiting at most stop_timeout_seconds for it); safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=self._stop_timeout_seconds)

    @property
    def running(self) -> bool:
        """True while the polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()
