"""What each delivery comes to, decided in one place from what its work found: a pure function, no I/O.

`decide` reads a delivery's facts (its claim, its request or rejection, Reply's answers, its receipt) and
returns a frozen `Verdict`. The effects (publishing, parking, continuing, postponing, settling the claim) are
then planned from the verdicts and applied once each (effects/); a failed effect turns its verdict into a
retry there, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from sequence_archiver.aws.idempotency import Claim
from sequence_archiver.core.archive_request import ContinuationOf
from sequence_archiver.core.continuations import failure_backoff
from sequence_archiver.core.outcomes import Outcome, SequenceResult
from sequence_archiver.core.request_report import RequestReport

if TYPE_CHECKING:
    from sequence_archiver.pipeline.deliveries import Delivery


class Fate(StrEnum):
    """What a delivery comes to."""

    DONE = "done"  # its work is finished: its results (or its clean-up's plan) are published, it is acknowledged
    DEFERRED = "deferred"  # acknowledged; a continuation carries its unfinished IDs on
    REJECTED = "rejected"  # not a request (or given up): reported, parked when its source can park it
    REFUSED = "refused"  # a request its trigger may not make: reported and acknowledged, never parked
    RETRY = "retry"  # it must come again: its source redelivers it (SQS) or its caller is answered with an error
    DUPLICATE = "duplicate"  # done by an earlier delivery: acknowledged untouched
    IN_PROGRESS = "in_progress"  # another invocation holds it: it must come again, its claim is not ours


RETRIED = frozenset({Fate.RETRY, Fate.IN_PROGRESS})


@dataclass(frozen=True, slots=True)
class Deferral:
    """IDs carried on to a continuation message, which part it is, and how long to wait before it comes."""

    sequence_ids: tuple[int, ...]
    continuation: ContinuationOf
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class Rules:
    """What the deployment allows: continuations (a queue and a seal to send them with), the redrive policy."""

    can_continue: bool  # continuations can be sent and sealed
    max_receive_count: int  # SQS_MAX_RECEIVE_COUNT: the queue's maxReceiveCount
    fifo: bool = False  # records of a FIFO queue: never continued (one would join the back of its group)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A delivery's fate and what its effects need: the report to publish, the continuation, the wait, why."""

    fate: Fate
    reason: str | None = None  # why it is retried, rejected or refused
    report: RequestReport | None = None  # the results event to publish (none for a clean-up, a duplicate...)
    park: bool = False  # send it to the dead-letter queue (an SQS record that can be redelivered)
    deferral: Deferral | None = None  # DEFERRED: what the continuation carries
    retry_after_seconds: float | None = None  # RETRY: when Reply said to come back (a 429), if it did
    measured: tuple[SequenceResult, ...] = ()  # what metrics count: every result but the IDs that only waited
    selecting: bool = False  # a clean-up request whose listing is to be planned or enqueued (effects/enqueueing.py)

    @property
    def retried(self) -> bool:
        """It must come again."""
        return self.fate in RETRIED

    def retry(self, reason: str) -> Verdict:
        """The same delivery, retried because an effect failed: no continuation, no park, no wait of Reply's;
        the report stays (it is what the next delivery publishes again). An earlier retry's reason is kept."""
        if self.fate is Fate.RETRY:
            return self
        return replace(self, fate=Fate.RETRY, reason=reason, park=False, deferral=None, retry_after_seconds=None)


def decide(delivery: Delivery, rules: Rules) -> Verdict:
    """The fate of one delivery from its facts; the same facts always give the same verdict.

    A FIFO record still to be retried at its last receive is given up (parked by the function, its results
    reported): SQS's redrive would move it to the DLQ anyway, and with it every record behind it in its message
    group, whose receive counts rose with its own.
    """
    verdict = _verdict(delivery, rules)
    # A record behind its group's head was never archived: it waits for the head, whatever its receive count.
    last_receive = delivery.behind is None and delivery.at_last_receive(rules.max_receive_count)
    if rules.fifo and verdict.fate is Fate.RETRY and last_receive:
        given_up = (
            f"still to be retried at receive {rules.max_receive_count} of {rules.max_receive_count} "
            f"(SQS_MAX_RECEIVE_COUNT): {verdict.reason}; dead-lettered by the function so that "
            "the records behind it in its message group are not moved with it"
        )
        report = verdict.report or rejection_report(delivery, given_up)
        return Verdict(Fate.REJECTED, reason=given_up, report=report, park=True, measured=verdict.measured)
    return verdict


def _verdict(delivery: Delivery, rules: Rules) -> Verdict:
    unworked = _unworked(delivery)
    if unworked is not None:
        return unworked
    if delivery.rejection is not None:
        report = rejection_report(delivery)
        if delivery.refused:
            return Verdict(Fate.REFUSED, reason=delivery.rejection, report=report, measured=report.results)
        return Verdict(
            Fate.REJECTED, reason=delivery.rejection, report=report, park=_parkable(delivery), measured=report.results
        )
    if delivery.selection_run is not None:
        return Verdict(Fate.DONE, selecting=True)
    if delivery.results is not None and delivery.request is not None:
        return _archived(delivery, delivery.results, rules)
    return Verdict(Fate.RETRY, reason="the request was not processed")


def _unworked(delivery: Delivery) -> Verdict | None:
    """The verdict of a delivery this invocation did not work on, or None when it did."""
    reason = None
    if delivery.claim is Claim.COMPLETED:
        return Verdict(Fate.DUPLICATE)
    if delivery.claim is Claim.IN_PROGRESS:
        return Verdict(Fate.IN_PROGRESS, reason="being processed by another invocation")
    if delivery.behind is not None:
        reason = f"unprocessed: record {delivery.behind} of its message group must be retried first"
    return Verdict(Fate.RETRY, reason=reason or delivery.held) if reason or delivery.held else None


def rejection_report(delivery: Delivery, reason: str | None = None) -> RequestReport:
    """The rejection as the request's only result."""
    error = f"request rejected: {reason or delivery.rejection or 'request rejected'}"
    rejected = (SequenceResult(None, Outcome.INVALID, error=error),)
    return RequestReport(delivery.delivery_id, delivery.trigger, rejected, workspace=delivery.workspace)


def _parkable(delivery: Delivery) -> bool:
    """An SQS record that SQS would redeliver; a malformed record (no stable ID) has nothing to park."""
    return delivery.receipt is not None and delivery.claimable


def _archived(delivery: Delivery, results: tuple[SequenceResult, ...], rules: Rules) -> Verdict:
    """What Reply's answers come to.

    Finished work is never redone and waiting is no failure. A record that can be carried on by a continuation
    message (an SQS record of a standard queue) is acknowledged and continued when its unfinished IDs only
    waited for the rate budget or the time, or when some ID really failed but others finished here, so they are
    not archived again (up to `max_receive_count` such deliveries). Otherwise it is retried whole, and its receives
    count towards the redrive policy, so a poison ID still reaches the DLQ.
    """
    request = delivery.request
    assert request is not None  # decide() checked it
    marker = request.continuation
    measured = tuple(result for result in results if not result.deferred)
    failed = [result for result in results if result.outcome is Outcome.FAILED]
    really_failed = any(not result.deferred for result in failed)
    progress = any(result.sequence_id is not None and result.outcome is not Outcome.FAILED for result in results)
    base = marker or ContinuationOf(delivery.delivery_id, 1)
    continuable = rules.can_continue and not rules.fifo and _parkable(delivery)
    if failed and continuable and (not really_failed or (progress and base.failures + 1 < rules.max_receive_count)):
        carried = tuple(result.sequence_id for result in failed if result.sequence_id is not None)
        waits = [result.retry_after_seconds or 0.0 for result in failed]
        if really_failed:  # back off like a retry would, longer each time
            waits.append(failure_backoff(base.failures + 1))
        final = tuple(result for result in results if result.outcome is not Outcome.FAILED)
        report = RequestReport(
            delivery.request_id, delivery.trigger, final, base.part, carried, workspace=delivery.workspace
        )
        deferral = Deferral(carried, base.next(failed=really_failed), max(waits))
        return Verdict(Fate.DEFERRED, report=report, deferral=deferral, measured=measured)
    report = RequestReport(
        delivery.request_id, delivery.trigger, results, marker.part if marker else None, workspace=delivery.workspace
    )
    if not failed:
        return Verdict(Fate.DONE, report=report, measured=measured)
    waits = [result.retry_after_seconds for result in results if result.retry_after_seconds is not None]
    retry_after = max(waits) if waits and delivery.receipt is not None else None
    reason = f"{len(failed)} sequence ID(s) failed"
    return Verdict(Fate.RETRY, reason=reason, report=report, retry_after_seconds=retry_after, measured=measured)
