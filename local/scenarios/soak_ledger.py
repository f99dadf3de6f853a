"""The soak's ledger: where every ID of a run ended (archived, final outcome, dead-lettered or lost), and leaks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local.scenarios.soak_phases import PoisonLedger, account_poison
from local.scenarios.soak_traffic import EXPECTED_OUTCOMES
from sequence_archiver.core.archive_request import ArchiveRequest, InvalidSequenceId, parse_message_body
from sequence_archiver.core.exceptions import InvalidRequestError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from local.scenarios.soak_traffic import PlannedMessage
    from local.stand_ins.reply_simulator import RecordedRequest

FINAL_OUTCOMES = ("archived", "already_archived", "not_found", "forbidden", "conflict", "invalid")


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
    ledger = Ledger(messages_sent=len(sent), api_calls=sum(reply_statuses.values()))
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


def find_leaks(api_keys: Sequence[str], places: dict[str, str]) -> list[str]:
    """A problem for every place that holds one of the keys (the original or a rotated one)."""
    return [
        f"an API key appears in the {where}"
        for where, text in places.items()
        if any(key and key in text for key in api_keys)
    ]
