"""The pure decision: what a delivery comes to, from its facts alone (no network, no clock, no AWS)."""

from __future__ import annotations

import pytest

from sequence_archiver.aws.idempotency import Claim
from sequence_archiver.core.archive_request import ArchiveRequest, ContinuationOf
from sequence_archiver.core.outcomes import Outcome, SequenceResult
from sequence_archiver.core.request_report import Trigger
from sequence_archiver.pipeline.deliveries import Delivery, SqsReceipt
from sequence_archiver.pipeline.effects.settlement import Settlement
from sequence_archiver.pipeline.verdicts import Fate, Rules, decide

STANDARD = Rules(can_continue=True, max_receive_count=4)
FIFO = Rules(can_continue=True, max_receive_count=4, fifo=True)
QUEUE = "arn:aws:sqs:us-east-1:123456789012:requests"


def record(*ids: int, receive_count: int = 1, continuation: ContinuationOf | None = None) -> Delivery:
    """An SQS record of a parsed archive request."""
    delivery = Delivery("m-1", Trigger.SQS, "{}", receipt=SqsReceipt(QUEUE, "rh-1", None, receive_count))
    delivery.request = ArchiveRequest(items=ids, continuation=continuation)
    return delivery


def archived(sequence_id: int) -> SequenceResult:
    return SequenceResult(sequence_id, Outcome.ARCHIVED, http_status=200)


def failed(sequence_id: int, *, deferred: bool = False, retry_after: float | None = None) -> SequenceResult:
    return SequenceResult(
        sequence_id, Outcome.FAILED, http_status=503, deferred=deferred, retry_after_seconds=retry_after
    )


def test_every_id_archived_is_done_with_its_report() -> None:
    delivery = record(1, 2)
    delivery.results = (archived(1), archived(2))

    verdict = decide(delivery, STANDARD)

    assert verdict.fate is Fate.DONE
    assert verdict.report is not None
    assert verdict.report.complete
    assert not verdict.retried
    assert verdict.deferral is None


def test_ids_that_only_waited_are_deferred_to_a_continuation_and_not_counted() -> None:
    delivery = record(1, 2)
    delivery.results = (archived(1), failed(2, deferred=True, retry_after=30.0))

    verdict = decide(delivery, STANDARD)

    assert verdict.fate is Fate.DEFERRED
    assert verdict.deferral is not None
    assert verdict.deferral.sequence_ids == (2,)
    assert verdict.deferral.continuation == ContinuationOf("m-1", 2, 0)  # waiting is no failure
    assert verdict.deferral.wait_seconds == 30.0
    assert [result.sequence_id for result in verdict.measured] == [1]  # the ID that only waited is not measured


def test_a_real_failure_beside_finished_ids_is_continued_with_the_one_backoff() -> None:
    delivery = record(1, 2, continuation=ContinuationOf("original", 3, failures=1))
    delivery.results = (archived(1), failed(2))

    verdict = decide(delivery, STANDARD)

    assert verdict.fate is Fate.DEFERRED
    assert verdict.deferral is not None
    assert verdict.deferral.continuation == ContinuationOf("original", 4, 2)
    assert verdict.deferral.wait_seconds == 4.0  # 2 ** failures
    assert verdict.report is not None
    assert verdict.report.request_id == "original"


def test_failures_up_to_the_receive_count_are_retried_whole_so_a_poison_id_reaches_the_dlq() -> None:
    delivery = record(1, 2, continuation=ContinuationOf("original", 4, failures=3))
    delivery.results = (archived(1), failed(2))

    verdict = decide(delivery, STANDARD)

    assert (verdict.fate, verdict.reason) == (Fate.RETRY, "1 sequence ID(s) failed")


def test_nothing_finished_is_retried_whole_at_the_time_reply_gave() -> None:
    delivery = record(1)
    delivery.results = (failed(1, retry_after=12.0),)

    verdict = decide(delivery, STANDARD)

    assert (verdict.fate, verdict.retry_after_seconds) == (Fate.RETRY, 12.0)
    assert verdict.report is not None
    assert not verdict.report.complete


def test_without_continuations_a_record_is_never_deferred() -> None:
    delivery = record(1, 2)
    delivery.results = (archived(1), failed(2, deferred=True))

    assert decide(delivery, Rules(can_continue=False, max_receive_count=4)).fate is Fate.RETRY
    assert decide(delivery, FIFO).fate is Fate.RETRY  # one would join the back of its message group


def test_a_fifo_record_to_retry_at_its_last_receive_is_given_up_with_its_results() -> None:
    delivery = record(1, receive_count=4)
    delivery.results = (failed(1),)

    verdict = decide(delivery, FIFO)

    assert (verdict.fate, verdict.park) == (Fate.REJECTED, True)
    assert verdict.reason is not None
    assert "receive 4 of 4" in verdict.reason
    assert verdict.report is not None
    assert [r.outcome for r in verdict.report.results] == [Outcome.FAILED]


def test_a_fifo_record_behind_its_group_head_is_retried_unprocessed_whatever_its_receive_count() -> None:
    delivery = record(1, receive_count=4)
    delivery.behind = "m-0"

    verdict = decide(delivery, FIFO)

    assert verdict.fate is Fate.RETRY
    assert verdict.reason == "unprocessed: record m-0 of its message group must be retried first"
    assert verdict.report is None
    assert not verdict.park


def test_a_rejected_record_is_parked_a_malformed_one_and_a_refused_one_are_not() -> None:
    rejected = record(1)
    rejected.reject("not JSON")
    malformed = Delivery("record-0", Trigger.SQS, None, claimable=False)
    malformed.reject("SQS record 0 has no messageId")
    refused = record(1)
    refused.refuse("clean-up requests are not allowed from the sqs trigger")

    assert (decide(rejected, STANDARD).fate, decide(rejected, STANDARD).park) == (Fate.REJECTED, True)
    assert (decide(malformed, STANDARD).fate, decide(malformed, STANDARD).park) == (Fate.REJECTED, False)
    assert (decide(refused, STANDARD).fate, decide(refused, STANDARD).park) == (Fate.REFUSED, False)
    [result] = decide(rejected, STANDARD).report.results  # type: ignore[union-attr]
    assert (result.outcome, result.error) == (Outcome.INVALID, "request rejected: not JSON")


@pytest.mark.parametrize(("claim", "fate"), [(Claim.COMPLETED, Fate.DUPLICATE), (Claim.IN_PROGRESS, Fate.IN_PROGRESS)])
def test_a_claim_held_elsewhere_decides_before_anything_else(claim: Claim, fate: Fate) -> None:
    delivery = record(1)
    delivery.claim = claim
    delivery.results = (archived(1),)

    assert decide(delivery, STANDARD).fate is fate


def test_the_same_facts_give_the_same_frozen_verdict() -> None:
    delivery = record(1, 2)
    delivery.results = (archived(1), failed(2, deferred=True))

    first, second = decide(delivery, STANDARD), decide(delivery, STANDARD)

    assert first == second
    with pytest.raises(AttributeError):
        first.fate = Fate.DONE  # type: ignore[misc]


def test_a_failed_effect_retries_once_keeping_the_first_reason_and_dropping_the_continuation() -> None:
    delivery = record(1, 2)
    delivery.results = (archived(1), failed(2, deferred=True))
    settlement = Settlement(delivery, decide(delivery, STANDARD))

    settlement.failed.append("results event not published")
    settlement.failed.append("continuation not sent")

    assert (settlement.verdict.fate, settlement.verdict.reason) == (Fate.RETRY, "results event not published")
    assert settlement.verdict.deferral is None  # its redelivery sends the one continuation of its part
    assert settlement.report is not None  # and publishes the same part again


def test_a_record_that_could_not_be_parked_withdraws_its_report_until_it_is() -> None:
    delivery = record(1)
    delivery.reject("not JSON")
    settlement = Settlement(delivery, decide(delivery, STANDARD))

    settlement.failed.append("request rejected and not dead-lettered: not JSON")
    settlement.withdrawn = True

    assert settlement.verdict.retried
    assert not settlement.verdict.park
    assert settlement.report is None
