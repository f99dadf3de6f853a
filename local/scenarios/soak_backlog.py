"""The backlog soak: a campaign several times larger than Reply's hourly budget, with time compressed.

`make soak-backlog` runs it in single and in bulk mode and prints the ledger. Proportions are the real
ones, only time is compressed: Reply's hour lasts `hour_seconds`; an invocation lasts 1.5 s with a 0.2 s
safety margin (the same 1/12 of the window that 300 s is of an hour); the request queue redrives after
`maxReceiveCount` 5 receives. Everything runs on 127.0.0.1: a moto server, the Reply simulator with the
same hourly limit, and `local/stand_ins/event_source.py` driving the real handler as Lambda's SQS poller would.

What must hold: no healthy message is dead-lettered, every healthy ID is archived, results events report
every ID final exactly once, calls that name an ID already archived are at most 5% of all calls, and the
poison ID (always answering 500) still ends in the dead-letter queue, alone.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from local.scenarios.lambda_instance import fresh_handler, replace_environment
from local.stand_ins.aws_stack import (
    QueueSettings,
    drain_queue,
    function_environment,
    provision,
    read_results_events,
    send_messages,
    sqs_client,
    start_moto_server,
    unique_name_prefix,
)
from local.stand_ins.event_source import EventSourceMapping
from local.stand_ins.reply_simulator import ALL_SCOPES, Fault, RateLimit, ReplySimulator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.reply_simulator.models import RecordedRequest

FIRST_ID = 700_001
MAX_REPEATED_CALL_SHARE = 0.05
_BULK_PATH = "/v3/sequences/archive"


@dataclass(frozen=True)
class BacklogConfig:
    """One compressed campaign: the budget, the backlog and the function's (compressed) timing."""

    label: str
    mode: str  # REPLY_ARCHIVE_MODE: "single" or "bulk"
    hourly_calls: int  # Reply's (and the function's) budget per compressed hour
    hour_seconds: float
    messages: int
    ids_per_message: int
    bulk_max_ids: int = 100
    poison_ids: int = 1  # IDs that always answer 500, each inside an otherwise healthy message
    invocation_seconds: float = 1.5
    safety_margin_seconds: float = 0.2
    max_receive_count: int = 5
    visibility_timeout_seconds: int = 2
    batch_size: int = 10
    max_seconds: float = 900.0
    connect_timeout_seconds: float = 0.3
    read_timeout_seconds: float = 0.5

    @property
    def ids(self) -> int:
        """Sequence IDs in the campaign."""
        return self.messages * self.ids_per_message

    @property
    def ids_per_hour(self) -> int:
        """What the budget archives in one (compressed) hour."""
        return self.hourly_calls * (self.bulk_max_ids if self.mode == "bulk" else 1)

    def function_overrides(self) -> dict[str, str]:
        """The function's settings for this campaign."""
        return {
            "REPLY_ARCHIVE_MODE": self.mode,
            "REPLY_BULK_MAX_IDS": str(self.bulk_max_ids),
            "REPLY_RATE_LIMIT_PER_MINUTE": "0",
            "REPLY_RATE_LIMIT_PER_HOUR": str(self.hourly_calls),
            "REPLY_RATE_LIMIT_TIME_SCALE": repr(self.hour_seconds / 3600.0),
            "DEADLINE_SAFETY_MARGIN_SECONDS": repr(self.safety_margin_seconds),
            "REPLY_CONNECT_TIMEOUT_SECONDS": repr(self.connect_timeout_seconds),
            "REPLY_READ_TIMEOUT_SECONDS": repr(self.read_timeout_seconds),
            "REPLY_MAX_ATTEMPTS": "2",
            "REPLY_BACKOFF_BASE_SECONDS": "0.01",
            "REPLY_BACKOFF_MAX_SECONDS": "0.05",
            "SQS_MAX_RECEIVE_COUNT": str(self.max_receive_count),
        }

    def paced_for(self, aws_call_seconds: float) -> BacklogConfig:
        """This campaign with its compressed time stretched, in proportion, to what an AWS call costs here now.

        After the work deadline an invocation sends its continuations and publishes its results within the
        safety margin; with 0.2 s and an AWS call that takes a few hundred milliseconds on a loaded machine,
        publishing runs out of time and the records are retried whole although their continuations were sent.
        The margin is made to hold SAFETY_MARGIN_IN_AWS_CALLS calls of `aws_call_seconds` (measured just before:
        `aws_call_seconds()`), and the invocation, Reply's hour, the visibility timeout and the Reply timeouts
        grow by the same factor, so the proportions (and so what is measured) stay those of the campaign.
        """
        factor = max(1.0, SAFETY_MARGIN_IN_AWS_CALLS * aws_call_seconds / self.safety_margin_seconds)
        return replace(
            self,
            hour_seconds=self.hour_seconds * factor,
            invocation_seconds=self.invocation_seconds * factor,
            safety_margin_seconds=self.safety_margin_seconds * factor,
            visibility_timeout_seconds=math.ceil(self.visibility_timeout_seconds * factor),
            connect_timeout_seconds=self.connect_timeout_seconds * factor,
            read_timeout_seconds=self.read_timeout_seconds * factor,
        )


# What the safety margin must hold, in AWS calls of this machine: the continuations' SendMessageBatch and the
# results' PutEvents (each perhaps retried), with room for the machine to slow down after the measurement.
SAFETY_MARGIN_IN_AWS_CALLS = 10


def aws_call_seconds(endpoint_url: str, samples: int = 5) -> float:
    """What a call to the moto server (ListQueues on a connected client) takes on this machine now: the median
    of a few, after one that sets the connection up; a single slow sample says little about the next second."""
    sqs = sqs_client(endpoint_url)
    sqs.list_queues(MaxResults=1)
    costs = []
    for _ in range(samples):
        started = time.monotonic()
        sqs.list_queues(MaxResults=1)
        costs.append(time.monotonic() - started)
    return statistics.median(costs)


# The scenarios: single mode 7x its hourly budget; bulk mode several times its (scaled-down) budget.
SINGLE_CAMPAIGN = BacklogConfig("single", "single", hourly_calls=60, hour_seconds=18.0, messages=42, ids_per_message=10)
BULK_CAMPAIGN = BacklogConfig(
    "bulk", "bulk", hourly_calls=10, hour_seconds=18.0, messages=50, ids_per_message=10, bulk_max_ids=10
)


@dataclass
class BacklogLedger:
    """What happened to the campaign, and whether it holds."""

    config: BacklogConfig
    healthy_ids: int = 0
    archived: int = 0
    poison_dead_lettered: int = 0
    healthy_messages_dead_lettered: int = 0
    final_reports: Counter[int] = field(default_factory=Counter)
    deferrals: int = 0
    ids_deferred: int = 0
    archive_calls: int = 0
    repeated_calls: int = 0
    throttled_calls: int = 0
    invocations: int = 0
    invocations_past_timeout: int = 0
    wall_seconds: float = 0.0

    @property
    def repeated_share(self) -> float:
        """Calls naming an ID that was already archived, as a share of every archive call."""
        return self.repeated_calls / self.archive_calls if self.archive_calls else 0.0

    @property
    def not_reported_once(self) -> int:
        """Healthy IDs not reported final in exactly one results event."""
        return self.healthy_ids - sum(1 for count in self.final_reports.values() if count == 1)

    def problems(self) -> list[str]:
        """Every way the campaign failed its promises (empty: it held)."""
        found = []
        if self.healthy_messages_dead_lettered:
            found.append(f"{self.healthy_messages_dead_lettered} healthy message(s) dead-lettered")
        if self.archived != self.healthy_ids:
            found.append(f"{self.healthy_ids - self.archived} healthy ID(s) not archived")
        if self.not_reported_once:
            found.append(f"{self.not_reported_once} healthy ID(s) not reported final exactly once")
        if self.repeated_share > MAX_REPEATED_CALL_SHARE:
            found.append(f"repeated calls {self.repeated_share:.1%} > {MAX_REPEATED_CALL_SHARE:.0%}")
        if self.poison_dead_lettered != self.config.poison_ids:
            found.append(f"{self.poison_dead_lettered} of {self.config.poison_ids} poison ID(s) dead-lettered")
        if self.invocations_past_timeout:
            found.append(f"{self.invocations_past_timeout} invocation(s) ran past their timeout")
        return found


def run_backlog(
    config: BacklogConfig,
    *,
    moto_endpoint: str,
    load_handler: Callable[[], LambdaInstance],
    apply_environment: Callable[[dict[str, str]], None],
) -> BacklogLedger:
    """Provision, send the campaign, drain it with the local event source mapping, and reconcile."""
    ledger = BacklogLedger(config)
    started = time.monotonic()
    api_key = "rk_backlog_KEY_" + uuid.uuid4().hex
    ids = list(range(FIRST_ID, FIRST_ID + config.ids))
    messages = [ids[start : start + config.ids_per_message] for start in range(0, len(ids), config.ids_per_message)]
    # Each poison ID sits in the middle of its own otherwise healthy message.
    poison = {
        messages[index * len(messages) // max(1, config.poison_ids)][config.ids_per_message // 2]
        for index in range(config.poison_ids)
    }
    healthy = set(ids) - poison
    ledger.healthy_ids = len(healthy)
    limit = RateLimit(per_minute=None, per_hour=config.hourly_calls, hour_seconds=config.hour_seconds)
    with ReplySimulator(api_keys={api_key: ALL_SCOPES}, rate_limit=limit, seed=False) as simulator:
        simulator.add_sequences(ids, status="paused")
        for poison_id in poison:
            simulator.inject(Fault(kind="status", status=500, times=None, sequence_id=poison_id))
        stack = provision(
            moto_endpoint,
            api_key=api_key,
            name_prefix=unique_name_prefix("backlog"),
            queue_settings=QueueSettings(
                config.visibility_timeout_seconds, config.max_receive_count, f"backlog soak ({config.label})"
            ),
        )
        environment = function_environment(stack, reply_base_url=simulator.base_url, **config.function_overrides())
        apply_environment(environment)
        handler = load_handler()
        send_messages(stack, [json.dumps({"sequenceIds": message}) for message in messages])
        mapping = EventSourceMapping(
            stack,
            handler.lambda_handler,
            batch_size=config.batch_size,
            batching_window_seconds=0,
            function_timeout_seconds=config.invocation_seconds,
        )
        drain = mapping.drain(until_empty_for=1.0, max_seconds=config.max_seconds)
        ledger.invocations = drain.batches
        ledger.invocations_past_timeout = drain.timed_out
        envelopes = read_results_events(stack, expected=0, timeout_seconds=5)
        dead_letters = drain_queue(stack.dead_letter_queue_url, endpoint_url=stack.endpoint_url)
        ledger.archived = sum(
            1 for sequence in simulator.sequences() if sequence.is_archived and sequence.id in healthy
        )
        _count_calls(simulator.requests, ledger)
    for envelope in envelopes:
        detail = envelope.get("detail", {})
        if detail.get("deferredIds"):
            ledger.deferrals += 1
            ledger.ids_deferred += len(detail["deferredIds"])
        for result in detail.get("results", []):
            if result.get("outcome") != "failed" and result.get("sequenceId") in healthy:
                ledger.final_reports[result["sequenceId"]] += 1
    for message in dead_letters:
        held = set(json.loads(message["Body"]).get("sequenceIds", []))
        ledger.poison_dead_lettered += len(held & poison)
        ledger.healthy_messages_dead_lettered += not held & poison
    ledger.wall_seconds = time.monotonic() - started
    return ledger


def _count_calls(requests: Sequence[RecordedRequest], ledger: BacklogLedger) -> None:
    """Archive calls in the order Reply saw them, and those naming an ID that was already archived."""
    archived: set[int] = set()
    for request in requests:
        if request.method != "POST" or not request.path.endswith("/archive"):
            continue
        named = set(request.sequence_ids) if request.path == _BULK_PATH else {request.sequence_id or 0}
        ledger.archive_calls += 1
        ledger.throttled_calls += request.status == 429
        if named & archived:
            ledger.repeated_calls += 1
        if request.status == 200 or (request.status == 409 and request.path != _BULK_PATH):
            archived |= named


def ledger_table(ledgers: Sequence[BacklogLedger]) -> str:
    """The ledgers side by side, as a Markdown table."""
    rows: list[tuple[str, Callable[[BacklogLedger], object]]] = [
        (
            "IDs (poison) / hourly budget in IDs",
            lambda x: f"{x.config.ids} ({x.config.poison_ids}) / {x.config.ids_per_hour}",
        ),
        ("backlog / hourly budget", lambda x: f"{x.config.ids / x.config.ids_per_hour:.1f}x"),
        ("healthy IDs archived", lambda x: f"{x.archived} / {x.healthy_ids}"),
        ("healthy messages dead-lettered", lambda x: x.healthy_messages_dead_lettered),
        ("poison IDs dead-lettered", lambda x: f"{x.poison_dead_lettered} / {x.config.poison_ids}"),
        ("IDs not reported final exactly once", lambda x: x.not_reported_once),
        ("deferrals (continuations) / IDs carried on", lambda x: f"{x.deferrals} / {x.ids_deferred}"),
        (
            "archive calls / repeated on archived IDs",
            lambda x: f"{x.archive_calls} / {x.repeated_calls} ({x.repeated_share:.1%})",
        ),
        ("429 answers", lambda x: x.throttled_calls),
        ("invocations / past their timeout", lambda x: f"{x.invocations} / {x.invocations_past_timeout}"),
        ("wall time", lambda x: f"{x.wall_seconds:.0f} s"),
    ]
    header = "| | " + " | ".join(ledger.config.label for ledger in ledgers) + " |"
    lines = [header, "| --- |" + " --- |" * len(ledgers)]
    lines += ["| " + name + " | " + " | ".join(str(value(ledger)) for ledger in ledgers) + " |" for name, value in rows]
    return "\n".join(lines)


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.scenarios.soak_backlog", description=__doc__.splitlines()[0])
    parser.add_argument("--modes", choices=["both", "single", "bulk"], default="both")
    parser.add_argument("--hour-seconds", type=float, default=18.0, help="how long Reply's hour lasts (default 18)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the campaigns, print the ledgers; 1 if any promise failed."""
    arguments = _parse_arguments(argv)
    chosen = {"both": (SINGLE_CAMPAIGN, BULK_CAMPAIGN), "single": (SINGLE_CAMPAIGN,), "bulk": (BULK_CAMPAIGN,)}
    configs = [replace(config, hour_seconds=arguments.hour_seconds) for config in chosen[arguments.modes]]
    out = sys.stdout
    print(
        "reply-sequence-archiver backlog soak (time compressed: Reply's hour lasts "
        f"{arguments.hour_seconds:g} s, invocations 1.5 s, maxReceiveCount 5)",
        file=out,
        flush=True,
    )
    saved_environment = dict(os.environ)
    ledgers: list[BacklogLedger] = []
    with start_moto_server() as moto:
        for config in configs:
            print(f"  [{config.label}] {config.ids} IDs, {config.hourly_calls} calls an hour ...", file=out, flush=True)
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    ledger = run_backlog(
                        config,
                        moto_endpoint=moto.endpoint_url,
                        load_handler=fresh_handler,
                        apply_environment=replace_environment,
                    )
            finally:
                os.environ.clear()
                os.environ.update(saved_environment)
            ledgers.append(ledger)
    print(ledger_table(ledgers), file=out)
    problems = [f"{ledger.config.label}: {problem}" for ledger in ledgers for problem in ledger.problems()]
    print("\n".join(problems) if problems else "Every promise held.", file=out)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
