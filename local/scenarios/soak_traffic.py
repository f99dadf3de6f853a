"""The soak's traffic: the messages of a run and the seeded state of every ID they carry, all from the seed."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local.scenarios.soak_phases import plant_poison
from local.stand_ins.aws_stack import DEFAULT_REGION

if TYPE_CHECKING:
    from collections.abc import Sequence

    from local.scenarios.soak_config import SoakConfig
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.reply_simulator import ReplySimulator

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


def send_planned(stack: LocalStack, messages: Sequence[PlannedMessage]) -> list[tuple[str, PlannedMessage]]:
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
