"""The soak's containment phases: poison IDs inside healthy requests, and endpoints that hang or drip.

Poison: a few sequence IDs on which Reply answers 500 on every call (single calls and any bulk call that
names them) are planted inside otherwise healthy multi-ID requests of the soak's traffic. The function
must isolate them: the healthy IDs of the same records are archived and reported, and only the poison IDs
end in the dead-letter queue, through the queue's redrive policy: inside their record, or inside the
continuation that carried the record's unfinished IDs on.

Hanging endpoints: after the main traffic has drained, one fault at a time is armed for a few batches of
fresh requests (Reply dripping its headers or its body, EventBridge, Secrets Manager, SQS or DynamoDB
never answering), then disarmed, and the queue drains again. Every invocation of the run is measured:
the time it used against the time its context said it had. No invocation may be cut by its timeout, and
none may use more than its time plus ALLOWED_OVERRUN_SECONDS.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from local.stand_ins.reply_simulator import ALL_SCOPES, Fault

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.event_source import BatchOutcome, DrainOutcome, EventSourceMapping
    from local.stand_ins.fault_proxy import FaultProxy
    from local.stand_ins.reply_simulator import RecordedRequest, ReplySimulator

logger = logging.getLogger(__name__)

ALLOWED_OVERRUN_SECONDS = 0.3  # the bound: time used <= time had + 0.3 s
POISON_STATUS = 500
BULK_ARCHIVE_PATH = "/v3/sequences/archive"
MAIN_PHASE = "main phase"
RECOVERY = "recovery"
# The hanging-endpoint steps, in the order they run, and what each holds.
HANG_STEP_NAMES = {
    "reply_drip_headers": "Reply drips its headers",
    "reply_drip_body": "Reply drips its body",
    "events_hang": "EventBridge hangs (PutEvents)",
    "secrets_hang": "Secrets Manager hangs (re-read after a key rotation)",
    "sqs_hang": "SQS hangs (DLQ parking, continuations, visibility)",
    "dynamodb_hang": "DynamoDB hangs (idempotency claims)",
}
HANG_STEPS = tuple(HANG_STEP_NAMES)
IDEMPOTENT_ONLY_STEPS = frozenset({"dynamodb_hang"})
_STALLED_SERVICES = {
    "events_hang": "events",
    "secrets_hang": "secretsmanager",
    "sqs_hang": "sqs",
    "dynamodb_hang": "dynamodb",
}
_REJECTED_BODY = "hanging-endpoint phase: this is not JSON {"  # parked in the DLQ by the function itself


# ---------------------------------------------------------------- time used against time had


@dataclass
class InvocationTimes:
    """Time used against time had, over the invocations of one fault step (or of the rest of a run)."""

    invocations: int = 0
    least_had: float = math.inf
    most_used: float = 0.0
    worst_overrun: float = -math.inf  # max(time used - time had)
    cut: int = 0  # invocations that ran past their timeout: Lambda would have failed the whole batch
    held_calls: int = 0  # calls the fault held (proxy) or dripped (Reply)

    def add(self, outcome: BatchOutcome) -> None:
        """Count one invocation."""
        self.invocations += 1
        self.least_had = min(self.least_had, outcome.time_had_seconds)
        self.most_used = max(self.most_used, outcome.seconds)
        self.worst_overrun = max(self.worst_overrun, outcome.seconds - outcome.time_had_seconds)
        self.cut += outcome.timed_out


@dataclass
class TimingLog:
    """Every invocation of a run, filed under the phase or fault step that was running."""

    label: str = MAIN_PHASE
    by_label: dict[str, InvocationTimes] = field(default_factory=dict)

    def record(self, outcome: BatchOutcome) -> None:
        """File an invocation under the current label (empty polls invoke nothing and are not counted)."""
        if outcome.records:
            self.by_label.setdefault(self.label, InvocationTimes()).add(outcome)

    def overall(self) -> InvocationTimes:
        """All invocations of the run together."""
        total = InvocationTimes()
        for times in self.by_label.values():
            total.invocations += times.invocations
            total.least_had = min(total.least_had, times.least_had)
            total.most_used = max(total.most_used, times.most_used)
            total.worst_overrun = max(total.worst_overrun, times.worst_overrun)
            total.cut += times.cut
        return total

    def problems(self, steps: Iterable[str]) -> list[str]:
        """A step that never ran or never held a call, and any invocation past its time."""
        problems = []
        for step in steps:
            times = self.by_label.get(step)
            if times is None or not times.invocations:
                problems.append(f"hanging-endpoint step {step}: no invocation ran under it")
            elif not times.held_calls:
                problems.append(f"hanging-endpoint step {step}: the fault never held a call")
        for label, times in self.by_label.items():
            if times.cut:
                problems.append(f"{label}: {times.cut} invocation(s) ran past their timeout")
            if times.invocations and times.worst_overrun > ALLOWED_OVERRUN_SECONDS:
                problems.append(
                    f"{label}: an invocation used {times.worst_overrun:.3f} s more than it had "
                    f"(allowed {ALLOWED_OVERRUN_SECONDS} s)"
                )
        return problems


def timing_rows(log: TimingLog, steps: Sequence[str]) -> list[list[object]]:
    """One row per fault step, then the rest of the run and the whole run: the figures of the timing table."""

    def row(name: str, times: InvocationTimes | None, held: bool = True) -> list[object]:
        if times is None or not times.invocations:
            return [name, 0, "-", "-", "-", "-", "-"]
        return [
            name,
            times.invocations,
            f"{times.least_had:.2f} s",
            f"{times.most_used:.2f} s",
            f"{times.worst_overrun:+.3f} s",
            times.cut,
            times.held_calls if held else "-",
        ]

    rest = TimingLog(by_label={label: log.by_label[label] for label in (MAIN_PHASE, RECOVERY) if label in log.by_label})
    return [
        *(row(HANG_STEP_NAMES[step], log.by_label.get(step)) for step in steps),
        row("every other invocation (main phase, recovery)", rest.overall(), held=False),
        row("the whole run", log.overall(), held=False),
    ]


TIMING_HEADERS = ("fault", "invocations", "time had", "most used", "max(used - had)", "cut by timeout", "calls held")


# ---------------------------------------------------------------- poison IDs


@dataclass
class PoisonLedger:
    """Where the poison IDs and the records holding them ended."""

    poison_ids: int = 0
    poison_ids_dead_lettered: int = 0
    records: int = 0
    records_dead_lettered: int = 0
    records_dead_lettered_as_continuation: int = 0  # only the unfinished IDs went there, in a continuation
    healthy_ids: int = 0
    healthy_ids_archived: int = 0  # reported archived (or already archived) by the poison record itself
    healthy_ids_final_otherwise: int = 0  # reported not_found, forbidden or conflict by it
    bulk_calls: int = 0  # Reply calls naming a poison ID: bulk
    single_calls: int = 0  # ... and single
    problems: list[str] = field(default_factory=list)


def plant_poison(request: dict[str, object], poison_id: int, rng: random.Random) -> dict[str, object]:
    """A copy of a {"sequenceIds": [...]} request with the poison ID inserted at a random place."""
    given = request.get("sequenceIds")
    values = list(given) if isinstance(given, list) else []
    values.insert(rng.randrange(len(values) + 1), poison_id)
    return {**request, "sequenceIds": values}


def poison_faults(poison_ids: Iterable[int]) -> list[Fault]:
    """A 500 on every call naming the ID, until cleared: a single call on it, or a bulk call holding it."""
    return [Fault(kind="status", status=POISON_STATUS, times=None, sequence_id=poison_id) for poison_id in poison_ids]


def names_any(request: RecordedRequest, ids: set[int]) -> bool:
    """True when a recorded Reply request is about one of these IDs (its path ID or a bulk call's IDs)."""
    return request.sequence_id in ids or not ids.isdisjoint(request.sequence_ids)


def account_poison(
    *,
    poison_records: Mapping[str, tuple[int, ...]],
    record_ids: Mapping[str, set[int]],
    reported: Mapping[str, Mapping[int, set[str]]],
    dead_letter_message_ids: set[str],
    dead_lettered_continuations: set[str],
    in_dead_letters: set[int],
    reply_requests: Sequence[RecordedRequest],
) -> PoisonLedger:
    """Each poison ID must sit in the DLQ inside its record, or inside the continuation that carried the
    record's unfinished IDs on; each healthy ID of that record must have been reported with a final outcome
    by the record's own results events (its earlier deliveries or parts)."""
    poison = {poison_id for ids in poison_records.values() for poison_id in ids}
    ledger = PoisonLedger(poison_ids=len(poison), records=len(poison_records))
    ledger.poison_ids_dead_lettered = len(poison & in_dead_letters)
    ledger.problems += [
        f"poison ID {missing} is not in the dead-letter queue" for missing in sorted(poison - in_dead_letters)
    ]
    healthy_seen: set[int] = set()
    for message_id, ids in poison_records.items():
        if message_id in dead_letter_message_ids:
            ledger.records_dead_lettered += 1
            ledger.records_dead_lettered_as_continuation += message_id in dead_lettered_continuations
        else:
            ledger.problems.append(f"the record {message_id[:8]} holding poison ID(s) {list(ids)} is not dead-lettered")
        outcomes = reported.get(message_id, {})
        for sequence_id in sorted(record_ids.get(message_id, set()) - poison):
            if sequence_id in healthy_seen:
                continue
            healthy_seen.add(sequence_id)
            final = outcomes.get(sequence_id, set())
            if final & {"archived", "already_archived"}:
                ledger.healthy_ids_archived += 1
            elif final:
                ledger.healthy_ids_final_otherwise += 1
            else:
                ledger.problems.append(
                    f"healthy ID {sequence_id} of the poison record {message_id[:8]} was never reported final by it"
                )
    ledger.healthy_ids = len(healthy_seen)
    for request in reply_requests:
        if names_any(request, poison):
            if request.path == BULK_ARCHIVE_PATH:
                ledger.bulk_calls += 1
            else:
                ledger.single_calls += 1
    return ledger


def poison_rows(ledgers: Sequence[PoisonLedger]) -> list[list[object]]:
    """The poison table, one column per run."""

    def row(name: str, value: Callable[[PoisonLedger], object]) -> list[object]:
        return [name, *(value(ledger) for ledger in ledgers)]

    return [
        row("poison IDs (500 on every call)", lambda p: p.poison_ids),
        row("  in the dead-letter queue", lambda p: p.poison_ids_dead_lettered),
        row("records holding one", lambda p: p.records),
        row("  dead-lettered because of them (redrive)", lambda p: p.records_dead_lettered),
        row("    of which only a continuation of poison IDs", lambda p: p.records_dead_lettered_as_continuation),
        row("healthy IDs in those records", lambda p: p.healthy_ids),
        row("  archived anyway (reported by the record)", lambda p: p.healthy_ids_archived),
        row("  other final outcome (reported by the record)", lambda p: p.healthy_ids_final_otherwise),
        row("Reply calls naming a poison ID: bulk / single", lambda p: f"{p.bulk_calls} / {p.single_calls}"),
    ]


# ---------------------------------------------------------------- hanging endpoints


@dataclass
class Stage:
    """What the hanging-endpoint phase works with: the local services, the event source, the run's books."""

    simulator: ReplySimulator
    proxy: FaultProxy
    stack: LocalStack
    mapping: EventSourceMapping
    send: Callable[[Sequence[str], str], None]  # send bodies (with a ledger shape); the run accounts for them
    new_ids: Callable[[int, str], list[int]]  # fresh IDs of a seeded category ("paused", "absent"), ledger-known
    recover: Callable[[], DrainOutcome]  # drain the queue until empty, every invocation filed in `timings`
    rearm: Callable[[], None]  # arm again what the run keeps armed throughout (poison IDs, doomed results)
    timings: TimingLog
    api_keys: list[str]  # every key the run used, for the leak checks
    on_batch: Callable[[BatchOutcome], None]


class HangPhase:
    """Arms one hanging or dripping endpoint at a time for `batches` batches of fresh requests, then recovers."""

    def __init__(self, stage: Stage, *, batches: int, drip_seconds: float, retry_after_seconds: int = 1) -> None:
        if batches < 1 or drip_seconds <= 0:
            raise ValueError("batches must be at least 1 and drip_seconds positive")
        self._stage = stage
        self._batches = batches
        self._drip_seconds = drip_seconds
        self._retry_after = retry_after_seconds
        self.recoveries: list[DrainOutcome] = []

    def run(self, steps: Sequence[str]) -> None:
        """Run each step; afterwards nothing is armed but what the run keeps armed throughout."""
        unknown = set(steps) - set(HANG_STEPS)
        if unknown:
            raise ValueError(f"hanging-endpoint steps must be some of {', '.join(HANG_STEPS)}")
        stage = self._stage
        self._disarm()  # faults the main phase left armed would fire first and hide the step's own
        for step in steps:
            held_before = self._held(step)
            stage.timings.label = step
            logger.info("hanging-endpoint step armed", extra={"step": step})
            self._arm(step)
            try:
                for _ in range(self._batches):
                    self._send_requests(step)
                    outcome = self._poll()
                    stage.timings.record(outcome)
                    stage.on_batch(outcome)
            finally:
                held = self._held(step) - held_before
                self._disarm()
            stage.timings.by_label.setdefault(step, InvocationTimes()).held_calls += held
            stage.timings.label = RECOVERY
            self.recoveries.append(stage.recover())
        stage.timings.label = MAIN_PHASE

    def _arm(self, step: str) -> None:
        stage = self._stage
        if step in {"reply_drip_headers", "reply_drip_body"}:
            part = "headers" if step == "reply_drip_headers" else "body"
            # Every Reply call drips, one byte per interval: shorter than the read timeout, so no single read
            # ever times out; only a bound on the whole call (and the invocation's deadline) ends it.
            stage.simulator.inject(Fault(kind="drip", times=None, seconds=self._drip_seconds, part=part))
            return
        if step == "secrets_hang":
            self._rotate_key()  # the cached key now gets 401: the function must read the secret again
        stage.proxy.hang(_STALLED_SERVICES[step])

    def _disarm(self) -> None:
        """Release every held call and disarm every fault, then arm again what the run keeps armed."""
        stage = self._stage
        stage.proxy.clear()
        stage.simulator.clear_faults()
        stage.rearm()

    def _held(self, step: str) -> int:
        """Calls held so far by the step's kind of fault: Reply requests while Reply drips, else stalled AWS calls."""
        if step.startswith("reply_"):
            return self._stage.simulator.api_calls
        return self._stage.proxy.counters.stalled_calls

    def _rotate_key(self) -> None:
        """A new key in Secrets Manager (written to moto directly) and at Reply; the cached one gets 401."""
        stage = self._stage
        new_key = f"{stage.api_keys[0]}-hang-rotated-{len(stage.api_keys)}"
        stage.api_keys.append(new_key)
        stage.stack.secretsmanager().put_secret_value(
            SecretId=stage.stack.secret_arn, SecretString=json.dumps({"apiKey": new_key})
        )
        stage.simulator.set_api_keys({new_key: ALL_SCOPES})

    def _send_requests(self, step: str) -> None:
        """Fresh requests for one batch (and, for SQS, a record to park and throttled ones to carry on).

        Two of the IDs do not exist at Reply: a bulk answer that only says "all archived" is two bytes (`{}`),
        which a dripping body delivers at once; their 404 details make it long enough to drip.
        """
        stage = self._stage
        ids = stage.new_ids(5, "paused")
        absent = stage.new_ids(2, "absent")
        bodies = [
            json.dumps({"sequenceIds": [ids[0], ids[1], absent[0]]}),
            json.dumps({"sequenceIds": [ids[2], absent[1], ids[3]]}),
            json.dumps({"sequenceId": ids[4]}),
        ]
        stage.send(bodies, "hang")
        if step == "sqs_hang":
            # 429 on every call naming the first ID while the step lasts: the records of that call wait for
            # Retry-After, so the function sends continuations or changes their visibility (SQS calls) ...
            stage.simulator.inject(
                Fault(kind="status", status=429, times=None, retry_after=self._retry_after, sequence_id=ids[0])
            )
            # ... and parks an unparseable record in the dead-letter queue itself (SendMessage).
            stage.send([_REJECTED_BODY], "hang_rejected")

    def _poll(self) -> BatchOutcome:
        """The next batch that held records (the requests were just sent, so the first poll finds them)."""
        outcome = self._stage.mapping.poll_once()
        for _ in range(5):
            if outcome.records:
                break
            outcome = self._stage.mapping.poll_once()
        return outcome


def add_batch(totals: DrainOutcome, outcome: BatchOutcome) -> None:
    """Add one invocation to drain totals, as the event source's own drain() does."""
    totals.batches += 1 if outcome.records else 0
    totals.records += outcome.records
    totals.deleted += outcome.deleted
    totals.failed_records += len(outcome.failed_message_ids)
    totals.lost_deletes += outcome.lost_deletes
    totals.handler_errors += outcome.handler_error is not None
    totals.timed_out += outcome.timed_out
    totals.invalid_responses += outcome.invalid_response is not None
    totals.seconds += outcome.seconds


def add_drain(totals: DrainOutcome, more: DrainOutcome) -> None:
    """Add one drain's totals to another's (the stop reason is kept)."""
    for name in (
        "batches",
        "records",
        "deleted",
        "failed_records",
        "lost_deletes",
        "handler_errors",
        "timed_out",
        "invalid_responses",
    ):
        setattr(totals, name, getattr(totals, name) + getattr(more, name))
    totals.seconds += more.seconds


def steps_for_run(steps: Sequence[str], *, idempotency: bool) -> list[str]:
    """The steps that apply to a run (DynamoDB is only called with idempotency on)."""
    return [step for step in steps if idempotency or step not in IDEMPOTENT_ONLY_STEPS]


def count_statuses(requests: Iterable[RecordedRequest], *, excluding: set[int]) -> Counter[int]:
    """Reply statuses of the requests that name none of `excluding` (the poison IDs' 500s are not faults fired)."""
    return Counter(request.status for request in requests if not names_any(request, excluding))
