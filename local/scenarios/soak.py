"""`make soak`: thousands of sequence IDs through the local event source under injected faults, then a ledger.

Everything runs on 127.0.0.1: a moto server, a fault proxy in front of it (the function reaches EventBridge,
Secrets Manager, SQS and DynamoDB through it), the Reply simulator (429, 5xx, slow and dropped responses,
malformed bodies, a key rotation) and the real handler, driven by local.stand_ins.event_source exactly as Lambda's SQS
poller would drive it. The queue is provisioned with a short visibility timeout (and the function with a
matching short timeout) so retries and the redrive to the dead-letter queue happen in seconds;
maxReceiveCount is the template's.

Two containment phases (local/scenarios/soak_phases.py) ride along: poison IDs (500 on every call) hidden inside
healthy multi-ID requests of the traffic, and, once the traffic has drained, one hanging or dripping endpoint
at a time (Reply's headers or body, EventBridge, Secrets Manager, SQS, DynamoDB) for a batch or two of fresh
requests. Every invocation's time used is measured against the time it had.

The ledger proves that nothing is lost: every distinct valid ID sent is archived in the simulator, or has a
final outcome in a results event, or sits in the dead-letter queue inside a message that carries it (a poison
ID must be there, and the healthy IDs of its record reported final by that record). The run is bounded (time
and batches) and stops by itself; the exit status is non-zero if an ID is lost, an outcome is wrong, a fault
kind never fired, an invocation ran past its time, the API key leaked or the queue was not drained.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import json
import logging
import os
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from local.scenarios.soak_phases import (
    HANG_STEPS,
    POISON_STATUS,
    TIMING_HEADERS,
    HangPhase,
    PoisonLedger,
    Stage,
    TimingLog,
    account_poison,
    add_batch,
    add_drain,
    count_statuses,
    plant_poison,
    poison_faults,
    poison_rows,
    steps_for_run,
    timing_rows,
)
from local.stand_ins.aws_stack import (
    DEFAULT_REGION,
    QueueSettings,
    create_idempotency_table,
    drain_queue,
    function_environment,
    provision,
    queue_settings_from_template,
    read_results_events,
    start_moto_server,
    unique_name_prefix,
    variables_to_unset,
)
from local.stand_ins.event_source import DrainOutcome, EventSourceMapping, event_source_settings_from_template
from local.stand_ins.fault_proxy import FaultProxy, ProxyCounters
from local.stand_ins.reply_simulator import ALL_SCOPES, DEFAULT_RATE_LIMIT, Fault, ReplySimulator
from sequence_archiver.archive_request import ArchiveRequest, InvalidSequenceId, parse_message_body
from sequence_archiver.exceptions import InvalidRequestError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import ModuleType

    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.event_source import BatchOutcome
    from local.stand_ins.reply_simulator import RecordedRequest

logger = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[2]
FUNCTION_DIR = PROJECT_DIR / "functions" / "archive_sequences"
IDEMPOTENCY_VARIABLE = "IDEMPOTENCY_TABLE_NAME"
FINAL_OUTCOMES = ("archived", "already_archived", "not_found", "forbidden", "conflict", "invalid")
TIME_SCALE = 1 / 60  # Reply's minute becomes one second, its hour one minute (function and simulator alike)
MAX_ATTEMPTS = 4
READ_TIMEOUT_SECONDS = 0.4
ROTATED_KEY_MARKER = "-rotated-"

# Seeded states: what Reply answers for each, and which final outcomes are right for it.
CATEGORY_WEIGHTS = {
    "paused": 70,
    "new": 4,
    "already_archived": 7,
    "active": 6,
    "sales_agent": 2,
    "other_owner": 4,
    "team_member_removed": 1,
    "absent": 6,
}
EXPECTED_OUTCOMES = {
    "paused": {"archived", "already_archived"},
    "new": {"archived", "already_archived"},
    "already_archived": {"already_archived"},
    "active": {"conflict"},
    "sales_agent": {"conflict"},
    "other_owner": {"forbidden"},
    "team_member_removed": {"forbidden"},
    "absent": {"not_found"},
    "poison": set(),  # Reply answers 500 on every call naming it: never final, it must end in the DLQ
}
SHAPE_WEIGHTS = {"single": 22, "bare": 8, "many": 40, "eventbridge": 15, "sns": 15}
INVALID_VALUES: tuple[object, ...] = (True, 1.5, 0, -7, 2147483648, "1/../../users", "1?x=2", "١٢", None, 1e3)
FIRST_ID = 1_000_000
HANG_ID_OFFSET = 5_000_000  # the hanging-endpoint phase's fresh IDs start this far above the traffic's
PAUSE_FIRST_FRACTION = 0.15
# Fault steps in the order they are armed (see FaultPlan); the two outages fail whole batches more than once.
FAULT_STEPS = ("429", "5xx", "slow", "drop", "malformed", "put_events", "rotation", "503_outage", "429_outage")


@dataclass(frozen=True)
class SoakConfig:
    """Size, timing and fault settings of one soak run."""

    ids: int = 2000
    seed: int = 20261129
    batch_size: int | None = 10
    batching_window_seconds: float = 0.2
    function_timeout_seconds: float = 8.0
    visibility_timeout_seconds: int = 8
    lose_delete_probability: float = 0.03
    duplicate_fraction: float = 0.05
    doomed_requests: int = 2
    fault_steps: tuple[str, ...] = FAULT_STEPS
    throttle_burst: int = 3
    secret_read_failures: int = 5
    fault_every: int = 2
    fault_cycles: int = 3
    max_seconds: float = 420.0
    max_batches: int = 5000
    until_empty_for: float = 1.0
    idempotency: bool = False
    # Poison phase: IDs on which Reply answers 500 on every call, planted inside healthy multi-ID requests.
    poison_ids: int = 3
    # Hanging-endpoint phase (after the main traffic drained): each step holds one endpoint for this many
    # batches of fresh requests; Reply drips one byte per `hang_drip_seconds` (under the read timeout).
    hang_steps: tuple[str, ...] = HANG_STEPS
    hang_batches: int = 2
    hang_drip_seconds: float = 0.1


# ---------------------------------------------------------------- the traffic


@dataclass(frozen=True)
class PlannedMessage:
    """One SQS message body to send, its request shape and whether its results event is made to fail."""

    body: str
    shape: str
    doomed: bool = False
    poison_ids: tuple[int, ...] = ()


@dataclass
class Traffic:
    """The messages of a run and the seeded state of every valid ID they carry."""

    messages: list[PlannedMessage]
    categories: dict[int, str]
    poison_ids: list[int] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _id_value(rng: random.Random, sequence_id: int) -> object:
    """The ID as an integer, or now and then as a digit string (both are valid)."""
    return str(sequence_id) if rng.random() < 0.15 else sequence_id


def _wrap(rng: random.Random, shape: str, request: object) -> str:
    """The SQS body for a request in the given shape (EventBridge and SNS envelopes as SQS targets deliver them)."""
    if shape == "eventbridge":
        return json.dumps(
            {
                "version": "0",
                "id": _uuid(rng),
                "detail-type": "Archive Sequences",
                "source": "reply.sequence-archiver.requests",
                "account": "123456789012",
                "time": "2026-11-29T10:00:00Z",
                "region": DEFAULT_REGION,
                "resources": [],
                "detail": request,
            }
        )
    if shape == "sns":
        return json.dumps(
            {
                "Type": "Notification",
                "MessageId": _uuid(rng),
                "TopicArn": f"arn:aws:sns:{DEFAULT_REGION}:123456789012:archive-requests",
                "Message": json.dumps(request),
                "Timestamp": "2026-11-29T10:00:00.000Z",
                "SignatureVersion": "1",
                "Signature": "EXAMPLE",
                "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem",
                "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            }
        )
    return json.dumps(request)


def _request(rng: random.Random, ids: Sequence[int], *, invalid: bool) -> dict[str, object]:
    """A request for these IDs: {"sequenceId": n} or {"sequenceIds": [...]}, maybe with invalid values or pauseFirst."""
    request: dict[str, object]
    if len(ids) == 1 and not invalid and rng.random() < 0.6:
        request = {"sequenceId": _id_value(rng, ids[0])}
    else:
        values = [_id_value(rng, sequence_id) for sequence_id in ids]
        if rng.random() < 0.2:
            values.append(values[0])  # a duplicate inside the request: archived and reported once
        if invalid:
            for _ in range(rng.randint(1, 2)):
                values.insert(rng.randrange(len(values) + 1), rng.choice(INVALID_VALUES))
        request = {"sequenceIds": values}
    if rng.random() < PAUSE_FIRST_FRACTION:
        request["pauseFirst"] = True  # a running sequence is paused and archived instead of ending `conflict`
    return request


def _poison_bodies(rng: random.Random) -> list[str]:
    """Messages that are not requests at all: the function parks them in the dead-letter queue itself."""
    return [
        "this is not JSON {",
        json.dumps({"ids": [1, 2, 3]}),
        json.dumps({"sequenceIds": []}),
        json.dumps({"sequenceId": 5, "sequenceIds": [6]}),
        _wrap(rng, "eventbridge", {"ids": [7]}),
        json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "{oops"}),
        json.dumps({"sequenceIds": list(range(9_000_000, 9_001_001))}),  # 1,001 IDs: over the limit
    ]


def plan_traffic(config: SoakConfig) -> Traffic:
    """The messages of a run, from the seed alone: every shape, duplicates, invalid values and poison."""
    rng = random.Random(config.seed)
    names = list(CATEGORY_WEIGHTS)
    weights = list(CATEGORY_WEIGHTS.values())
    categories = {FIRST_ID + offset: rng.choices(names, weights)[0] for offset in range(config.ids)}
    ids = list(categories)
    rng.shuffle(ids)
    messages: list[PlannedMessage] = []
    shapes, shape_weights = list(SHAPE_WEIGHTS), list(SHAPE_WEIGHTS.values())
    position = 0
    multi_id: list[tuple[int, str, dict[str, object]]] = []  # where a poison ID can hide among healthy ones
    while position < len(ids):
        shape = rng.choices(shapes, shape_weights)[0]
        count = 1 if shape in {"single", "bare"} else rng.choice((1, 2, 2, 3, 3, 4, 6, 10, 16, 40))
        chunk = ids[position : position + count]
        position += len(chunk)
        if shape == "bare":
            body = json.dumps(chunk[0]) if rng.random() < 0.8 else json.dumps(str(chunk[0]))
        else:
            request = _request(rng, chunk, invalid=shape != "single" and rng.random() < 0.15)
            wrapping = "plain" if shape in {"single", "many"} else shape
            body = _wrap(rng, wrapping, request)
            if len(chunk) >= 3 and "sequenceIds" in request:
                multi_id.append((len(messages), wrapping, request))
        messages.append(PlannedMessage(body, shape))
    poison_ids = _plant_poison(config, messages, multi_id, categories)
    for _ in range(max(1, int(len(messages) * config.duplicate_fraction))):
        # The same IDs again in another message: each message is archived and reported on its own.
        chunk = rng.sample(ids, rng.choice((1, 1, 2, 4)))
        shape = rng.choice(("many", "eventbridge", "sns"))
        body = _wrap(rng, "plain" if shape == "many" else shape, _request(rng, chunk, invalid=False))
        messages.append(PlannedMessage(body, "duplicate"))
    rng.shuffle(messages)
    messages += [PlannedMessage(body, "poison") for body in _poison_bodies(rng)]
    rng.shuffle(messages)
    # The requests holding a poison ID go early (among the first tenth), as the doomed ones below: their
    # continuations need maxReceiveCount more deliveries to reach the DLQ, which should not make the run longer.
    early = random.Random(config.seed + 2)
    for message in [message for message in messages if message.poison_ids]:
        messages.remove(message)
        messages.insert(early.randrange(max(1, len(messages) // 10)), message)
    # Doomed requests: IDs of their own whose results event can never be published (the proxy fails it on
    # every call), so their records fail until the redrive policy moves them to the dead-letter queue.
    doomed_categories = ("absent", "other_owner")
    for number in range(config.doomed_requests):
        sequence_id = FIRST_ID + config.ids + number
        categories[sequence_id] = doomed_categories[number % len(doomed_categories)]
        messages.insert(number, PlannedMessage(json.dumps({"sequenceId": sequence_id}), "doomed", doomed=True))
    return Traffic(messages, categories, poison_ids)


def _plant_poison(
    config: SoakConfig,
    messages: list[PlannedMessage],
    multi_id: Sequence[tuple[int, str, dict[str, object]]],
    categories: dict[int, str],
) -> list[int]:
    """Put each poison ID inside a different healthy request of three or more IDs (its own seeded choice, so
    the rest of the traffic is the same as without poison); return the poison IDs."""
    rng = random.Random(config.seed + 1)
    chosen = rng.sample(list(multi_id), min(config.poison_ids, len(multi_id)))
    poison_ids = []
    for number, (index, wrapping, request) in enumerate(sorted(chosen, key=lambda item: item[0])):
        poison_id = FIRST_ID + config.ids + config.doomed_requests + number
        categories[poison_id] = "poison"
        poisoned = plant_poison(request, poison_id, rng)
        messages[index] = PlannedMessage(_wrap(rng, wrapping, poisoned), messages[index].shape, poison_ids=(poison_id,))
        poison_ids.append(poison_id)
    return poison_ids


def seed_simulator(simulator: ReplySimulator, categories: dict[int, str]) -> None:
    """Give the simulator each ID's seeded state ("absent" IDs are simply not there: 404)."""
    by_category: dict[str, list[int]] = {}
    for sequence_id, category in categories.items():
        by_category.setdefault(category, []).append(sequence_id)
    states: dict[str, dict[str, Any]] = {
        "paused": {"status": "paused"},
        "new": {"status": "new"},
        "already_archived": {"status": "paused", "is_archived": True},
        "active": {"status": "active"},
        "sales_agent": {"status": "paused", "sales_agent": True},
        "other_owner": {"status": "paused", "owner_user_id": 2},
        "team_member_removed": {"status": "paused", "team_member_removed": True},
        "poison": {"status": "paused"},  # archivable, but every call naming it fails (see soak_phases)
    }
    for category, state in states.items():
        simulator.add_sequences(by_category.get(category, []), **state)


# ---------------------------------------------------------------- faults


@dataclass
class FaultLog:
    """What the plan armed, so the report can tell which faults actually fired."""

    reply_faults: list[tuple[str, Fault]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    rotations: int = 0
    api_keys: list[str] = field(default_factory=list)


class FaultPlan:
    """Injects a fault step before every `every`-th batch, going through the steps `cycles` times."""

    def __init__(
        self,
        *,
        simulator: ReplySimulator,
        proxy: FaultProxy,
        stack: LocalStack,
        api_key: str,
        steps: Sequence[str] = FAULT_STEPS,
        every: int = 2,
        cycles: int = 1,
        throttle_burst: int = 3,
        secret_read_failures: int = 5,
    ) -> None:
        self._simulator = simulator
        self._secret_read_failures = secret_read_failures
        self._proxy = proxy
        self._stack = stack
        self._every = every
        self._cycles = cycles
        self.log = FaultLog(api_keys=[api_key])
        every_step: dict[str, tuple[str, Callable[[], None]]] = {
            "429": (
                "Reply 429 burst with Retry-After",
                lambda: self._reply("429", Fault("status", throttle_burst, 429, retry_after=1)),
            ),
            "5xx": (
                "Reply 500, 502 and 503",
                lambda: self._reply(
                    "5xx", Fault("status", 1, 500), Fault("status", 1, 502), Fault("status", 1, 503, retry_after=0)
                ),
            ),
            "slow": (
                "Reply slower than the read timeout",
                lambda: self._reply("slow", Fault("delay", 2, seconds=READ_TIMEOUT_SECONDS * 3)),
            ),
            "drop": ("Reply drops the connection", lambda: self._reply("drop", Fault("drop", 2))),
            "malformed": ("Reply 200 with a malformed body", lambda: self._reply("malformed", Fault("malformed", 2))),
            "put_events": ("PutEvents entries fail", lambda: self._proxy.fail_put_events(fraction=0.3, calls=4)),
            "rotation": ("API key rotated; Secrets Manager fails reads", self._rotate_key),
            "503_outage": (
                "Reply 503 outlasting the retries",
                lambda: self._reply("503 outage", Fault("status", MAX_ATTEMPTS + 1, 503)),
            ),
            "429_outage": (
                "Reply 429 outlasting the retries",
                lambda: self._reply("429 outage", Fault("status", MAX_ATTEMPTS + 1, 429, retry_after=1)),
            ),
        }
        unknown = set(steps) - set(every_step)
        if unknown or not steps:
            raise ValueError(f"fault steps must be some of {', '.join(every_step)}")
        self._steps = [every_step[key] for key in steps]

    def before_poll(self, batch_number: int) -> None:
        """The event source's hook: arm the step of this batch, if any."""
        step, offset = divmod(batch_number, self._every)
        if offset or step >= len(self._steps) * self._cycles:
            return
        name, action = self._steps[step % len(self._steps)]
        action()
        self.log.steps.append(name)
        logger.info("fault step armed", extra={"batch": batch_number, "step": name})

    def _reply(self, label: str, *faults: Fault) -> None:
        for fault in faults:
            self._simulator.inject(fault)
            self.log.reply_faults.append((label, fault))

    def _rotate_key(self) -> None:
        """A new key in Secrets Manager and at Reply: the old one gets 401; the re-read first fails, then works."""
        self.log.rotations += 1
        new_key = self.log.api_keys[0] + ROTATED_KEY_MARKER + str(self.log.rotations)
        self.log.api_keys.append(new_key)
        # Three failures exhaust the SDK's three attempts (the re-read fails); more are absorbed by its retries.
        self._proxy.fail_secret_reads(times=self._secret_read_failures)
        self._stack.secretsmanager().put_secret_value(
            SecretId=self._stack.secret_arn, SecretString=json.dumps({"apiKey": new_key})
        )
        self._simulator.set_api_keys({new_key: ALL_SCOPES})


# ---------------------------------------------------------------- the ledger


@dataclass
class Ledger:
    """Where every ID of a run ended, and the checks derived from it."""

    messages_sent: int = 0
    shapes: Counter[str] = field(default_factory=Counter)
    ids_in: int = 0
    invalid_values_sent: int = 0
    archived: int = 0
    already_archived_before: int = 0
    archived_after_pause: int = 0
    final_not_archived: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    lost: list[int] = field(default_factory=list)
    ids_in_dead_letter_queue: int = 0
    dead_letter_messages: int = 0
    dead_letter_parked_by_function: int = 0
    dead_letter_redriven: int = 0
    dead_letter_continuations: int = 0  # redriven messages that were continuations the function had sent
    unplanned_redrives: list[str] = field(default_factory=list)
    wrong_outcomes: list[str] = field(default_factory=list)
    results_events: int = 0
    complete_requests: int = 0
    duplicate_complete_events: int = 0
    messages_unsettled: int = 0
    api_calls: int = 0
    reply_statuses: Counter[int] = field(default_factory=Counter)
    poison: PoisonLedger = field(default_factory=PoisonLedger)

    @property
    def api_calls_per_id(self) -> float:
        """Reply HTTP requests (retries included) per distinct valid ID."""
        return self.api_calls / self.ids_in if self.ids_in else 0.0


def _parse(body: str) -> ArchiveRequest | None:
    """A body as the function parses it; None if the function rejects it as a whole."""
    try:
        return parse_message_body(body)
    except InvalidRequestError:
        return None


def _final_outcomes(
    details: Sequence[dict[str, Any]], ledger: Ledger
) -> tuple[dict[int, set[str]], set[str], dict[str, dict[int, set[str]]]]:
    """Final outcomes per ID over every results event, the requests reported complete (duplicates counted),
    and the final outcomes each request reported for its own IDs."""
    final: dict[int, set[str]] = {}
    by_request: dict[str, dict[int, set[str]]] = {}
    complete_events: Counter[tuple[str, int]] = Counter()
    for detail in details:
        for result in detail.get("results", []):
            if result.get("sequenceId") is not None and result.get("outcome") in FINAL_OUTCOMES:
                final.setdefault(int(result["sequenceId"]), set()).add(str(result["outcome"]))
                reported = by_request.setdefault(str(detail.get("requestId")), {})
                reported.setdefault(int(result["sequenceId"]), set()).add(str(result["outcome"]))
        if detail.get("complete"):
            complete_events[(str(detail.get("requestId")), int(detail.get("part", 1)))] += 1
    ledger.results_events = len(details)
    complete = {request_id for request_id, _ in complete_events}
    ledger.complete_requests = len(complete)
    ledger.duplicate_complete_events = sum(count - 1 for count in complete_events.values())
    return final, complete, by_request


def _original_message_id(message: MessageTypeDef) -> str:
    """The request a dead-letter message stands for: the record the function parked (an attribute), the
    request a continuation carried on (its `continuation.requestId`), or the redriven record itself."""
    attributes = message.get("MessageAttributes", {})
    if "RejectionReason" in attributes:
        original = attributes.get("OriginalMessageId")
        return str(original.get("StringValue")) if original is not None else ""
    parsed = _parse(message["Body"])
    continuation = parsed.continuation if parsed is not None else None
    return continuation.request_id if continuation is not None else message["MessageId"]


def _dead_letter_contents(
    dead_letters: Sequence[MessageTypeDef], ledger: Ledger
) -> tuple[set[int], set[str], set[str]]:
    """IDs carried by dead-letter messages (parsed as the function parses them), the original message IDs
    (a continuation the function sent to carry a request's unfinished IDs on stands for that request), and
    the requests that are there through a continuation."""
    ids: set[int] = set()
    message_ids: set[str] = set()
    continued: set[str] = set()
    for message in dead_letters:
        original = _original_message_id(message)
        if "RejectionReason" in message.get("MessageAttributes", {}):  # parked by the function itself
            ledger.dead_letter_parked_by_function += 1
        else:  # moved by the redrive policy: SQS keeps the message ID
            ledger.dead_letter_redriven += 1
            if original != message["MessageId"]:
                ledger.dead_letter_continuations += 1
                continued.add(original)
        message_ids.add(original)
        parsed = _parse(message["Body"])
        if parsed is not None:
            ids.update(parsed.sequence_ids)
    ledger.dead_letter_messages = len(dead_letters)
    return ids, message_ids, continued


def _unplanned_redrives(
    sent: Sequence[tuple[str, PlannedMessage]],
    dead_letters: Sequence[MessageTypeDef],
    details: Sequence[dict[str, Any]],
) -> list[str]:
    """Why each message the redrive policy moved (other than the doomed and poison ones) kept failing."""
    doomed = {message_id for message_id, message in sent if message.doomed or message.poison_ids}
    explanations = []
    for message in dead_letters:
        message_id = _original_message_id(message)
        if "RejectionReason" in message.get("MessageAttributes", {}) or message_id in doomed:
            continue
        reasons = [
            next((str(r.get("error")) for r in detail.get("results", []) if r.get("outcome") == "failed"), "?")
            for detail in details
            if detail.get("requestId") == message_id and not detail.get("complete")
        ]
        explanations.append(f"{message_id[:8]}: " + (" | ".join(reason[:60] for reason in reasons) or "no event"))
    return explanations


def _check_outcomes(
    sequence_id: int, category: str, outcomes: set[str], archived: bool, pause_first: bool
) -> list[str]:
    """Contradictions between an ID's seeded state, its reported outcomes and Reply's final state."""
    expected = EXPECTED_OUTCOMES.get(category, set())
    archivable = {"paused", "new", "already_archived"}
    if pause_first and category == "active":
        # A pauseFirst request pauses and archives it; other requests holding it may still see the 409 first.
        expected, archivable = expected | {"archived", "already_archived"}, archivable | {"active"}
    problems = []
    if outcomes - expected:
        problems.append(f"{sequence_id}: reported {sorted(outcomes)}, expected one of {sorted(expected)}")
    if archived and category not in archivable:
        problems.append(f"{sequence_id}: archived at Reply but seeded {category}")
    return problems


def reconcile(
    *,
    sent: Sequence[tuple[str, PlannedMessage]],
    categories: dict[int, str],
    details: Sequence[dict[str, Any]],
    dead_letters: Sequence[MessageTypeDef],
    archived_in_reply: set[int],
    reply_statuses: Counter[int],
    reply_requests: Sequence[RecordedRequest] = (),
) -> Ledger:
    """Account for every valid ID sent: archived, final outcome reported, dead-lettered, or lost.

    A poison ID (Reply fails every call naming it) is accounted for only in the dead-letter queue, inside the
    record that carried it; the healthy IDs of that record must have been reported final by the record itself.
    """
    ledger = Ledger(messages_sent=len(sent), api_calls=sum(reply_statuses.values()), reply_statuses=reply_statuses)
    ids_in: set[int] = set()
    paused_first: set[int] = set()
    record_ids: dict[str, set[int]] = {}
    for message_id, message in sent:
        ledger.shapes[message.shape] += 1
        parsed = _parse(message.body)
        if parsed is not None:
            record_ids[message_id] = set(parsed.sequence_ids)
            ids_in.update(parsed.sequence_ids)
            ledger.invalid_values_sent += sum(isinstance(item, InvalidSequenceId) for item in parsed.items)
            if parsed.pause_first:
                paused_first.update(parsed.sequence_ids)
    ledger.ids_in = len(ids_in)
    final, complete, by_request = _final_outcomes(details, ledger)
    in_dead_letters, dead_lettered_messages, continued = _dead_letter_contents(dead_letters, ledger)
    ledger.poison = account_poison(
        poison_records={message_id: message.poison_ids for message_id, message in sent if message.poison_ids},
        record_ids=record_ids,
        reported=by_request,
        dead_letter_message_ids=dead_lettered_messages,
        dead_lettered_continuations=continued,
        in_dead_letters=in_dead_letters,
        reply_requests=reply_requests,
    )
    ledger.unplanned_redrives = _unplanned_redrives(sent, dead_letters, details)
    ledger.ids_in_dead_letter_queue = len(in_dead_letters & ids_in)
    ledger.messages_unsettled = sum(
        1 for message_id, _ in sent if message_id not in dead_lettered_messages and message_id not in complete
    )
    for sequence_id in sorted(ids_in):
        category = categories.get(sequence_id, "absent")
        outcomes = final.get(sequence_id, set())
        archived = sequence_id in archived_in_reply
        ledger.wrong_outcomes += _check_outcomes(
            sequence_id, category, outcomes, archived, pause_first=sequence_id in paused_first
        )
        if archived:
            ledger.archived += category != "already_archived"
            ledger.archived_after_pause += category == "active"
            ledger.already_archived_before += category == "already_archived"
        elif outcomes:
            ledger.final_not_archived[min(outcomes)] += 1
        elif sequence_id in in_dead_letters:
            ledger.dead_lettered += 1
        else:
            ledger.lost.append(sequence_id)
        if category in {"paused", "new"} and not archived and sequence_id not in in_dead_letters:
            ledger.wrong_outcomes.append(f"{sequence_id}: archivable but neither archived nor dead-lettered")
    return ledger


# ---------------------------------------------------------------- one run


@dataclass
class SoakReport:
    """Everything one run measured."""

    label: str
    config: SoakConfig
    ledger: Ledger = field(default_factory=Ledger)
    drain: DrainOutcome = field(default_factory=DrainOutcome)
    faults_fired: dict[str, int] = field(default_factory=dict)
    proxy: ProxyCounters | None = None
    idempotency_records: int | None = None
    wall_seconds: float = 0.0
    leaks: list[str] = field(default_factory=list)
    skipped: str | None = None
    api_keys: list[str] = field(default_factory=list)
    hang_steps: list[str] = field(default_factory=list)  # the hanging-endpoint steps this run ran
    hang_batches: DrainOutcome = field(default_factory=DrainOutcome)  # the invocations under those steps
    recoveries: list[DrainOutcome] = field(default_factory=list)  # the drain after each step
    timings: TimingLog = field(default_factory=TimingLog)

    @property
    def totals(self) -> DrainOutcome:
        """Every invocation of the run: the main drain, the hanging-endpoint steps and the recoveries."""
        totals = dataclasses.replace(self.drain)
        for more in (self.hang_batches, *self.recoveries):
            add_drain(totals, more)
        return totals

    @property
    def problems(self) -> list[str]:
        """Everything that makes this run a failure."""
        if self.skipped:
            return []
        problems = []
        if self.ledger.lost:
            problems.append(f"{len(self.ledger.lost)} ID(s) lost, e.g. {self.ledger.lost[:5]}")
        problems += [f"wrong outcome: {text}" for text in self.ledger.wrong_outcomes[:10]]
        if self.drain.stopped != "empty":
            problems.append(f"the queue was not drained (stopped: {self.drain.stopped})")
        problems += [
            f"the queue was not drained after {step} (stopped: {recovery.stopped})"
            for step, recovery in zip(self.hang_steps, self.recoveries, strict=False)
            if recovery.stopped != "empty"
        ]
        problems += self.ledger.poison.problems[:10]
        problems += self.timings.problems(self.hang_steps)
        if self.ledger.messages_unsettled:
            problems.append(f"{self.ledger.messages_unsettled} message(s) neither reported complete nor dead-lettered")
        problems += [f"fault never fired: {kind}" for kind, count in self.faults_fired.items() if count == 0]
        problems += self.leaks
        if self.config.idempotency and not self.idempotency_records:
            problems.append(f"{IDEMPOTENCY_VARIABLE} was set but the function wrote no idempotency record")
        return problems


def idempotency_supported(function_dir: Path = FUNCTION_DIR) -> bool:
    """True when the function's code reads IDEMPOTENCY_TABLE_NAME (the lead's idempotency change is in)."""
    return any(IDEMPOTENCY_VARIABLE in path.read_text(encoding="utf-8") for path in function_dir.rglob("*.py"))


def _scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table (the idempotency records), to search them for the API key."""
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"TableName": table}
    while True:
        page = dynamodb.scan(**arguments)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _send(stack: LocalStack, messages: Sequence[PlannedMessage]) -> list[tuple[str, PlannedMessage]]:
    """Send every message (ten per call); return (MessageId, message) in order."""
    sqs = stack.sqs()
    sent: list[tuple[str, PlannedMessage]] = []
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=stack.queue_url,
            Entries=[{"Id": str(i), "MessageBody": message.body} for i, message in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise RuntimeError(f"could not send soak messages: {response['Failed']}")
        by_entry = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
        sent += [(by_entry[str(i)], message) for i, message in enumerate(chunk)]
    return sent


def function_overrides(config: SoakConfig, proxy_endpoints: Mapping[str, str], table: str | None) -> dict[str, str]:
    """Fast settings for the function, and the AWS_ENDPOINT_URL_<SERVICE> variables pointing every service it
    calls (EventBridge, Secrets Manager, SQS, DynamoDB) at the fault proxy (`FaultProxy.endpoint_variables()`)."""
    overrides = {
        **proxy_endpoints,
        "REPLY_CONNECT_TIMEOUT_SECONDS": "0.5",
        "REPLY_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS),
        "REPLY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "REPLY_BACKOFF_BASE_SECONDS": "0.02",
        "REPLY_BACKOFF_MAX_SECONDS": "0.2",
        "REPLY_RATE_LIMIT_TIME_SCALE": repr(TIME_SCALE),
        "DEADLINE_SAFETY_MARGIN_SECONDS": "0.5",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if table:
        overrides[IDEMPOTENCY_VARIABLE] = table
    return overrides


def _faults_fired(
    log: FaultLog, simulator: ReplySimulator, proxy: FaultProxy, poison_ids: Sequence[int]
) -> dict[str, int]:
    """How often each fault kind fired, from what the simulator recorded and the proxy counted (the poison
    IDs' own 500s are the poison phase's, counted in its table)."""
    statuses = count_statuses(simulator.requests, excluding=set(poison_ids))
    pending = simulator.pending_faults()

    def consumed(label: str) -> int:
        return sum(
            fault.times or 0
            for name, fault in log.reply_faults
            if name == label and not any(fault is other for other in pending)
        )

    counters = proxy.counters
    return {
        "Reply 429 (Retry-After)": statuses[429],
        "Reply 500": statuses[500],
        "Reply 502": statuses[502],
        "Reply 503": statuses[503],
        "Reply slower than the read timeout": consumed("slow"),
        "Reply dropped connection": statuses[0],
        "Reply malformed 200 body": consumed("malformed"),
        "Reply 401 after key rotation": sum(1 for request in simulator.requests if not request.key_accepted),
        "PutEvents entries failed": counters.put_events_entries_failed,
        "Secrets Manager reads failed": counters.secret_reads_failed,
    }


def _arm_throughout(
    simulator: ReplySimulator, proxy: FaultProxy, poison: Sequence[Fault], doomed: Sequence[str]
) -> None:
    """Arm what stays armed for the whole run: the poison IDs' 500s (before any other fault, so a call naming
    a poison ID always gets its 500) and the doomed requests' failing results events."""
    for fault in poison:
        simulator.inject(fault)
    proxy.fail_results_of(doomed)


def _run_hang_phase(
    report: SoakReport,
    traffic: Traffic,
    sent: list[tuple[str, PlannedMessage]],
    *,
    simulator: ReplySimulator,
    proxy: FaultProxy,
    stack: LocalStack,
    mapping: EventSourceMapping,
    kept_faults: Sequence[Fault],
    doomed: Sequence[str],
    api_keys: list[str],
    after_batch: Callable[[int, BatchOutcome], None],
    progress: Callable[[str], None] | None,
) -> None:
    """Run the report's hanging-endpoint steps, wired to this run's traffic, ledger and timings."""
    config = report.config
    if progress is not None:
        progress(f"  [{report.label}] hanging endpoints: {', '.join(report.hang_steps)}")

    def new_ids(count: int, category: str) -> list[int]:
        first = FIRST_ID + HANG_ID_OFFSET + len(traffic.categories)
        ids = list(range(first, first + count))
        traffic.categories.update(dict.fromkeys(ids, category))
        seed_simulator(simulator, dict.fromkeys(ids, category))
        return ids

    def send(bodies: Sequence[str], shape: str) -> None:
        sent.extend(_send(stack, [PlannedMessage(body, shape) for body in bodies]))

    def recover() -> DrainOutcome:
        return mapping.drain(
            until_empty_for=config.until_empty_for, max_seconds=config.max_seconds, after_batch=after_batch
        )

    stage = Stage(
        simulator=simulator,
        proxy=proxy,
        stack=stack,
        mapping=mapping,
        send=send,
        new_ids=new_ids,
        recover=recover,
        rearm=lambda: _arm_throughout(simulator, proxy, kept_faults, doomed),
        timings=report.timings,
        api_keys=api_keys,
        on_batch=lambda outcome: add_batch(report.hang_batches, outcome),
    )
    phase = HangPhase(stage, batches=config.hang_batches, drip_seconds=config.hang_drip_seconds)
    phase.run(report.hang_steps)
    report.recoveries = phase.recoveries


def run_soak(
    config: SoakConfig,
    *,
    api_key: str,
    moto_endpoint: str,
    load_handler: Callable[[], ModuleType],
    apply_environment: Callable[[dict[str, str]], None],
    progress: Callable[[str], None] | None = None,
    label: str = "",
) -> SoakReport:
    """Provision, send the traffic, drain it under faults, and reconcile the ledger; nothing is left running."""
    report = SoakReport(label=label or ("idempotent" if config.idempotency else "plain"), config=config)
    if config.idempotency and not idempotency_supported():
        report.skipped = (
            f"the function does not read {IDEMPOTENCY_VARIABLE} yet (Powertools idempotency not in place); "
            "the idempotent run is skipped"
        )
        return report
    started = time.monotonic()
    traffic = plan_traffic(config)
    template = queue_settings_from_template()
    # Reply's own limits (the simulator's defaults), on the same compressed clock as the function's pacing.
    rate_limit = dataclasses.replace(
        DEFAULT_RATE_LIMIT,
        minute_seconds=DEFAULT_RATE_LIMIT.minute_seconds * TIME_SCALE,
        hour_seconds=DEFAULT_RATE_LIMIT.hour_seconds * TIME_SCALE,
    )
    with (
        ReplySimulator(api_keys={api_key: ALL_SCOPES}, rate_limit=rate_limit, seed=False) as simulator,
        FaultProxy(moto_endpoint, seed=config.seed) as proxy,
    ):
        name_prefix = unique_name_prefix("soak")
        stack = provision(
            moto_endpoint,
            api_key=api_key,
            name_prefix=name_prefix,
            # Short visibility so retries and the redrive happen in seconds; maxReceiveCount stays the template's.
            queue_settings=QueueSettings(
                config.visibility_timeout_seconds,
                template.max_receive_count,
                f"soak: visibility {config.visibility_timeout_seconds} s; maxReceiveCount from {template.source}",
            ),
        )
        seed_simulator(simulator, traffic.categories)
        table = f"{name_prefix}-idempotency" if config.idempotency else None
        dynamodb = create_idempotency_table(stack, table) if table else None
        overrides = function_overrides(config, proxy.endpoint_variables(), table)
        apply_environment(function_environment(stack, reply_base_url=simulator.base_url, **overrides))
        app = load_handler()
        sent = _send(stack, traffic.messages)
        doomed = [message_id for message_id, message in sent if message.doomed]
        kept_faults = poison_faults(traffic.poison_ids)
        _arm_throughout(simulator, proxy, kept_faults, doomed)
        plan = FaultPlan(
            simulator=simulator,
            proxy=proxy,
            stack=stack,
            api_key=api_key,
            steps=config.fault_steps,
            every=config.fault_every,
            cycles=config.fault_cycles,
            throttle_burst=config.throttle_burst,
            secret_read_failures=config.secret_read_failures,
        )
        mapping = EventSourceMapping(
            stack,
            app.lambda_handler,
            batch_size=config.batch_size,
            batching_window_seconds=config.batching_window_seconds,
            function_timeout_seconds=config.function_timeout_seconds,
            lose_delete_probability=config.lose_delete_probability,
            rng=random.Random(config.seed),
        )
        last_progress = [time.monotonic()]

        def after_batch(number: int, outcome: BatchOutcome) -> None:
            report.timings.record(outcome)
            if progress is not None and time.monotonic() - last_progress[0] >= 5:
                last_progress[0] = time.monotonic()
                visible, in_flight = mapping.queue_depth()
                progress(
                    f"  [{report.label}] batch {number + 1}: {visible} visible, {in_flight} in flight, "
                    f"{len(simulator.requests)} Reply calls, {time.monotonic() - started:.0f} s"
                )

        report.drain = mapping.drain(
            until_empty_for=config.until_empty_for,
            max_seconds=config.max_seconds,
            max_batches=config.max_batches,
            before_poll=plan.before_poll,
            after_batch=after_batch,
        )
        # Counted before the hanging-endpoint phase, which clears the faults the main phase left armed.
        report.faults_fired = _faults_fired(plan.log, simulator, proxy, traffic.poison_ids)
        report.hang_steps = steps_for_run(config.hang_steps, idempotency=config.idempotency)
        if report.hang_steps:
            _run_hang_phase(
                report,
                traffic,
                sent,
                simulator=simulator,
                proxy=proxy,
                stack=stack,
                mapping=mapping,
                kept_faults=kept_faults,
                doomed=doomed,
                api_keys=plan.log.api_keys,
                after_batch=after_batch,
                progress=progress,
            )
        envelopes = read_results_events(stack, expected=0, timeout_seconds=10)
        dead_letters = drain_queue(stack.dead_letter_queue_url, endpoint_url=stack.endpoint_url)
        archived = {sequence.id for sequence in simulator.sequences() if sequence.is_archived}
        reply_requests = simulator.requests
        statuses = Counter(request.status for request in reply_requests)
        report.proxy = proxy.counters
        records = _scan_all(dynamodb, table) if dynamodb is not None and table else []
        report.idempotency_records = len(records) if table else None
        report.api_keys = list(plan.log.api_keys)

    details = [envelope.get("detail", {}) for envelope in envelopes]
    report.ledger = reconcile(
        sent=sent,
        categories=traffic.categories,
        details=details,
        dead_letters=dead_letters,
        archived_in_reply=archived,
        reply_statuses=statuses,
        reply_requests=reply_requests,
    )
    places = {
        "results events": json.dumps(envelopes),
        "dead-letter messages": json.dumps(dead_letters, default=str),
        "idempotency records": json.dumps(records, default=str),
    }
    report.leaks = find_leaks(report.api_keys, places)
    report.wall_seconds = time.monotonic() - started
    return report


def find_leaks(api_keys: Sequence[str], places: dict[str, str]) -> list[str]:
    """A problem for every place that holds one of the keys (the original or a rotated one)."""
    return [
        f"an API key appears in the {where}"
        for where, text in places.items()
        if any(key and key in text for key in api_keys)
    ]


# ---------------------------------------------------------------- the command


def fresh_handler(service_name: str = "sequence-archiver") -> ModuleType:
    """Import `app` afresh, as a new Lambda instance would (a cold start reading the current environment)."""
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))
    for name in [name for name in sys.modules if name == "app" or name.split(".", 1)[0] == "sequence_archiver"]:
        del sys.modules[name]  # this module keeps its own references to the parser it imported
    registry = logging.Logger.manager.loggerDict
    for name in [name for name in registry if name == service_name or name.split(".", 1)[0] == "sequence_archiver"]:
        del registry[name]  # Powertools would reuse a logger bound to the previous run's stdout
    for module_name in (
        "aws_lambda_powertools.metrics.provider.cold_start",
        "aws_lambda_powertools.logging.logger",
    ):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "is_cold_start"):
            setattr(module, "is_cold_start", True)  # noqa: B010 - the attribute is not declared to mypy
    from aws_lambda_powertools import Metrics

    for attribute in ("_metrics", "_dimensions", "_metadata", "_default_dimensions"):
        shared = getattr(Metrics, attribute, None)  # class-level dicts every Metrics instance shares
        if isinstance(shared, dict):
            shared.clear()
    return importlib.import_module("app")


def _replace_environment(environment: dict[str, str]) -> None:
    """Make the function's environment the process environment, as the Lambda runtime would."""
    for name in [*variables_to_unset(os.environ), IDEMPOTENCY_VARIABLE]:
        os.environ.pop(name, None)
    os.environ.update(environment)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return (
            "  "
            + "  ".join(
                value.ljust(width) if i == 0 else value.rjust(width)
                for i, (value, width) in enumerate(zip(values, widths, strict=True))
            ).rstrip()
        )

    return "\n".join([line(headers), "  " + "  ".join("-" * width for width in widths), *(line(row) for row in cells)])


def ledger_rows(reports: Sequence[SoakReport]) -> list[list[object]]:
    """The ledger of each run, one column per run."""
    runs = [report for report in reports if not report.skipped]

    def row(name: str, value: Callable[[SoakReport], object]) -> list[object]:
        return [name, *(value(report) for report in runs)]

    outcome_rows = [
        [f"  final, not archived: {outcome}", *(report.ledger.final_not_archived.get(outcome, 0) for report in runs)]
        for outcome in ("not_found", "forbidden", "conflict", "invalid")
    ]
    return [
        row("messages sent", lambda r: r.ledger.messages_sent),
        row(
            "  poison / doomed / duplicate",
            lambda r: "{} / {} / {}".format(
                r.ledger.shapes["poison"], r.ledger.shapes["doomed"], r.ledger.shapes["duplicate"]
            ),
        ),
        row("IDs in (distinct valid)", lambda r: r.ledger.ids_in),
        row("invalid values sent", lambda r: r.ledger.invalid_values_sent),
        row("archived by the run (Reply state)", lambda r: r.ledger.archived),
        row("  of which paused first (pauseFirst)", lambda r: r.ledger.archived_after_pause),
        row("archived before the run", lambda r: r.ledger.already_archived_before),
        *outcome_rows,
        row("dead-lettered (only there)", lambda r: r.ledger.dead_lettered),
        row("LOST", lambda r: len(r.ledger.lost)),
        row("wrong outcomes", lambda r: len(r.ledger.wrong_outcomes)),
        row(
            "DLQ messages: parked / redriven (continuations)",
            lambda r: (
                f"{r.ledger.dead_letter_parked_by_function} / {r.ledger.dead_letter_redriven} "
                f"({r.ledger.dead_letter_continuations})"
            ),
        ),
        row("IDs inside DLQ messages", lambda r: r.ledger.ids_in_dead_letter_queue),
        row("results events", lambda r: r.ledger.results_events),
        row("requests reported complete", lambda r: r.ledger.complete_requests),
        row("duplicate complete events", lambda r: r.ledger.duplicate_complete_events),
        row("deletes lost on purpose", lambda r: r.totals.lost_deletes),
        row("idempotency records", lambda r: "-" if r.idempotency_records is None else r.idempotency_records),
        row("batches / records", lambda r: f"{r.totals.batches} / {r.totals.records}"),
        row("failed invocations / timeouts", lambda r: f"{r.totals.handler_errors} / {r.totals.timed_out}"),
        row("Reply API calls", lambda r: r.ledger.api_calls),
        row("API calls per ID", lambda r: f"{r.ledger.api_calls_per_id:.3f}"),
        row("wall time", lambda r: f"{r.wall_seconds:.1f} s"),
    ]


def fault_rows(reports: Sequence[SoakReport]) -> list[list[object]]:
    """How often each fault kind fired, one column per run."""
    runs = [report for report in reports if not report.skipped]
    kinds = list(dict.fromkeys(kind for report in runs for kind in report.faults_fired))
    return [[kind, *(report.faults_fired.get(kind, 0) for report in runs)] for kind in kinds]


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.scenarios.soak", description=__doc__.splitlines()[0])
    defaults = SoakConfig()
    parser.add_argument(
        "--ids", type=int, default=defaults.ids, help="distinct valid IDs to send (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the traffic and faults")
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="records per invocation; 0 = the template's"
    )
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds, help="time limit of each drain")
    parser.add_argument(
        "--runs", choices=("both", "plain", "idempotent"), default="both", help="without and/or with idempotency"
    )
    parser.add_argument(
        "--hang-batches",
        type=int,
        default=defaults.hang_batches,
        help="batches each hanging-endpoint step holds its endpoint for; 0 skips the phase (default %(default)s)",
    )
    return parser.parse_args(argv)


def _describe(config: SoakConfig) -> list[str]:
    """How the run differs from production, with the template's values beside the local ones."""
    source = event_source_settings_from_template()
    queue = queue_settings_from_template()
    batch = config.batch_size or source.batch_size
    return [
        f"  event source: batch {batch} (template {source.batch_size}), window {config.batching_window_seconds:g} s "
        f"(template {source.batching_window_seconds} s), function timeout {config.function_timeout_seconds:g} s "
        f"(template {source.function_timeout_seconds} s)",
        f"  queue: visibility {config.visibility_timeout_seconds} s (template {queue.visibility_timeout_seconds} s), "
        f"maxReceiveCount {queue.max_receive_count} (template)",
        f"  faults: a step before every {config.fault_every} batch(es), {config.fault_cycles} cycle(s) of "
        f"{len(config.fault_steps)} steps; {config.lose_delete_probability:.0%} of deletes lost on purpose; "
        f"{config.doomed_requests} request(s) whose results event always fails",
        f"  poison phase: {config.poison_ids} ID(s) answering {POISON_STATUS} on every call, inside healthy "
        "multi-ID requests of the traffic",
        f"  hanging-endpoint phase: {len(config.hang_steps)} step(s) after the traffic drained (DynamoDB only with "
        f"idempotency), each holding its endpoint for {config.hang_batches} batch(es) of fresh requests; Reply "
        f"drips a byte every {config.hang_drip_seconds:g} s",
    ]


def _print_report(reports: Sequence[SoakReport], output_leaks: Sequence[str], log_lines: int, out: TextIO) -> None:
    runs = [report for report in reports if not report.skipped]
    headers = ["", *(report.label for report in runs)]
    print("\nLedger", file=out)
    print(_table(headers, ledger_rows(runs)), file=out)
    print("\nFaults fired (main phase)", file=out)
    print(_table(headers, fault_rows(runs)), file=out)
    print("\nPoison IDs (main phase)", file=out)
    print(_table(headers, poison_rows([report.ledger.poison for report in runs])), file=out)
    for report in runs:
        print(f"\nTime used against time had, per invocation [{report.label}]", file=out)
        print(_table(TIMING_HEADERS, timing_rows(report.timings, report.hang_steps)), file=out)
    found = "found in " + ", ".join(output_leaks) if output_leaks else "found nowhere"
    print(f"\n  function output: {log_lines} lines; API keys {found}", file=out)
    for report in reports:
        if report.skipped:
            print(f"  note: {report.skipped}", file=out)
        for explanation in [] if report.skipped else report.ledger.unplanned_redrives:
            print(f"  [{report.label}] redriven to the DLQ after repeated failures: {explanation}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak without and with idempotency, print the ledger; 1 if anything was lost or went wrong."""
    arguments = _parse_arguments(argv)
    out = sys.stdout
    modes = {"both": (False, True), "plain": (False,), "idempotent": (True,)}[arguments.runs]
    api_key = "rk_soak_KEY_" + uuid.uuid4().hex
    reports: list[SoakReport] = []
    captured_out, captured_err = io.StringIO(), io.StringIO()
    saved_environment = dict(os.environ)
    configs = [
        SoakConfig(
            ids=arguments.ids,
            seed=arguments.seed,
            batch_size=arguments.batch_size or None,
            max_seconds=arguments.max_seconds,
            idempotency=idempotent,
            hang_batches=max(1, arguments.hang_batches),
            hang_steps=HANG_STEPS if arguments.hang_batches > 0 else (),
        )
        for idempotent in modes
    ]
    print(f"reply-sequence-archiver soak: {arguments.ids} IDs, seed {arguments.seed}, runs: {arguments.runs}", file=out)
    print("\n".join(_describe(configs[0])), file=out)
    with start_moto_server() as moto:
        for config in configs:
            try:
                with contextlib.redirect_stdout(captured_out), contextlib.redirect_stderr(captured_err):
                    report = run_soak(
                        config,
                        api_key=api_key,
                        moto_endpoint=moto.endpoint_url,
                        load_handler=fresh_handler,
                        apply_environment=_replace_environment,
                        progress=lambda text: print(text, file=out, flush=True),
                    )
            finally:
                os.environ.clear()
                os.environ.update(saved_environment)
            reports.append(report)
            print(report.skipped or f"  [{report.label}] done in {report.wall_seconds:.1f} s", file=out)
    output_leaks = find_leaks(
        [key for report in reports for key in report.api_keys] or [api_key],
        {"function's stdout": captured_out.getvalue(), "function's stderr": captured_err.getvalue()},
    )
    log_lines = captured_out.getvalue().count("\n") + captured_err.getvalue().count("\n")
    _print_report(reports, output_leaks, log_lines, out)
    problems = [*output_leaks, *(f"[{r.label}] {problem}" for r in reports for problem in r.problems)]
    for problem in problems:
        print("PROBLEM: " + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
