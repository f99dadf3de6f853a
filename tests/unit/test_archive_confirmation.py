"""Every claim true: a 2xx to an archive call is `archived` only when its body confirms it, and a pause is reported.

A body that says the sequence is not archived, is empty or not an object, or is about another sequence, and a
bulk answer whose keys are not the IDs sent, are `unconfirmed`: retried like a transient failure, then final.
"""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
import urllib3
from aws_lambda_powertools import Metrics
from pydantic import SecretStr

from sequence_archiver.archiving.archiver import ArchiveMode, SequenceArchiver
from sequence_archiver.archiving.classification import classify_bulk_response, classify_response
from sequence_archiver.core.archive_request import parse_archive_request
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import (
    DeadlineExceededError,
    ReplyMalformedResponseError,
    ReplyServerError,
    ReplyUnconfirmedError,
)
from sequence_archiver.core.outcomes import Outcome, SequenceResult, Via, count_outcomes
from sequence_archiver.core.reply_answers import BulkArchiveResponse, BulkItemFailure, Problem, ReplyResponse
from sequence_archiver.core.request_report import RequestReport, Trigger
from sequence_archiver.observability import MetricsRecorder
from sequence_archiver.reply.client import ReplyClient, RetryPolicy, Timeouts
from sequence_archiver.reply.parsing import read_archive_answer, read_bulk_answer

if TYPE_CHECKING:
    from tests.unit.conftest import FakeClock

SEQUENCE_ID = 7001

# ------------------------------------------------------------------------------ what a single 2xx confirms

# What the simulator answers, and what Reply's docs say an archive answers: the Sequence, `isArchived` true,
# its status kept (an archived sequence keeps new, active or paused).
CONFIRMING = {
    "simulator": {"id": 7001, "name": "Q3", "status": "paused", "isArchived": True, "health": "healthy"},
    "new-kept": {"id": 7001, "status": "new", "isArchived": True},
    "status-archived-no-flag": {"id": 7001, "status": "Archived"},
}

HOSTILE = {
    "empty": b"",
    "whitespace": b" \r\n",
    "empty-object": b"{}",
    "array": b"[]",
    "string": b'"archived"',
    "null": b"null",
    "true": b"true",
    "not-archived-active": b'{"id": 7001, "isArchived": false, "status": "active"}',
    "not-archived-but-status-archived": b'{"id": 7001, "isArchived": false, "status": "archived"}',
    "no-flag-paused": b'{"id": 7001, "name": "Q3", "status": "paused"}',
    "flag-not-a-boolean": b'{"id": 7001, "isArchived": "true", "status": "paused"}',
    "no-id": b'{"isArchived": true, "status": "paused"}',
    "another-id": b'{"id": 7002, "isArchived": true, "status": "paused"}',
    "id-as-text": b'{"id": "7001", "isArchived": true}',
    "id-as-boolean": b'{"id": true, "isArchived": true}',
    # The spec's example of this answer is its shared Sequence example: it says isArchived false.
    "spec-example-ref_193": b'{"id": 7001, "ownerUserId": 42, "name": "Sales Outreach 2024", "status": "active",'
    b' "isArchived": false, "health": "degraded", "scheduleId": 1}',
}


@pytest.mark.parametrize("body", list(CONFIRMING.values()), ids=list(CONFIRMING))
def test_a_2xx_that_names_the_sequence_as_archived_confirms_it(body: dict[str, Any]) -> None:
    response = read_archive_answer(200, json.dumps(body).encode(), sequence_id=SEQUENCE_ID)

    assert response.unconfirmed is None
    assert classify_response(SEQUENCE_ID, response).outcome is Outcome.ARCHIVED


@pytest.mark.parametrize("body", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_2xx_that_contradicts_itself_is_unconfirmed_never_archived(body: bytes) -> None:
    response = read_archive_answer(200, body, sequence_id=SEQUENCE_ID)

    result = classify_response(SEQUENCE_ID, response)

    assert result.outcome is Outcome.UNCONFIRMED
    assert (result.http_status, result.via) == (200, Via.SINGLE)
    assert result.error is not None
    assert result.error.startswith("Reply answered 200 to the archive ")


def test_what_reply_said_about_the_sequence_is_kept_but_not_another_sequences_name() -> None:
    said_active = read_archive_answer(200, HOSTILE["not-archived-active"], sequence_id=SEQUENCE_ID)
    other = read_archive_answer(200, b'{"id": 7002, "name": "Not this one", "isArchived": true}', sequence_id=7001)

    assert classify_response(SEQUENCE_ID, said_active).to_json()["sequence"] == {
        "name": None,
        "status": "active",
        "isArchived": False,
    }
    assert other.sequence is None
    assert other.unconfirmed == "Reply answered 200 to the archive about another sequence"


@pytest.mark.parametrize("body", [b'{"id": 7001, "name": ', b"\xff\xfe", b'{"id": ' + b"9" * 5000 + b"}"])
def test_a_body_that_is_not_json_at_all_stays_malformed_and_failed(body: bytes) -> None:
    with pytest.raises(ReplyMalformedResponseError):
        read_archive_answer(200, body, sequence_id=SEQUENCE_ID)


def test_a_409_already_archived_stays_already_archived() -> None:
    answer = ReplyResponse(409, problem=Problem(code="sequenceAction.archived", detail="Sequence is already archived."))

    assert classify_response(SEQUENCE_ID, answer).outcome is Outcome.ALREADY_ARCHIVED


# -------------------------------------------------------------------------------- what a bulk 200 confirms

REQUESTED = (7001, 7002, 7003)


@pytest.mark.parametrize(
    ("body", "failures", "foreign"),
    [
        (b'{" 7001": {"error": "notFound"}}', {}, 1),
        (b'{"7001 ": {"error": "notFound"}}', {}, 1),
        (b'{"07001": {"error": "notFound"}}', {}, 1),
        (b'{"+7001": {"error": "notFound"}}', {}, 1),
        (b'{"9999": {"error": "notFound"}, "7002": {"error": "forbidden"}}', {7002: "forbidden"}, 1),
        (b'{"' + b"9" * 5000 + b'": {"error": "notFound"}}', {}, 1),
        (b'{"abc": {}, "-1": {}, "7001.0": {}}', {}, 3),
    ],
    ids=["leading-space", "trailing-space", "leading-zero", "plus-sign", "unknown-id", "5000-digits", "not-ids"],
)
def test_a_bulk_200_with_keys_that_are_not_ids_sent_archives_none_of_the_ids_it_leaves_out(
    body: bytes, failures: dict[int, str], foreign: int
) -> None:
    answer = read_bulk_answer(200, body, requested=REQUESTED)

    results = classify_bulk_response(REQUESTED, answer)

    assert answer.foreign_keys == foreign
    assert {failure.error for failure in answer.failures.values()} == set(failures.values())
    assert Outcome.ARCHIVED not in {result.outcome for result in results}
    listed = {result.sequence_id for result in results if result.outcome is not Outcome.UNCONFIRMED}
    assert listed == set(failures)
    unconfirmed = [result for result in results if result.outcome is Outcome.UNCONFIRMED]
    assert {(result.http_status, result.via) for result in unconfirmed} == {(200, Via.BULK)}
    assert all("not IDs sent" in (result.error or "") for result in unconfirmed)


@pytest.mark.parametrize("body", [b"", b"[]", b'"ok"', b"null"], ids=["empty", "array", "string", "null"])
def test_a_bulk_200_that_is_empty_or_not_an_object_confirms_nothing(body: bytes) -> None:
    results = classify_bulk_response(REQUESTED, read_bulk_answer(200, body, requested=REQUESTED))

    assert {result.outcome for result in results} == {Outcome.UNCONFIRMED}


def test_a_bulk_200_about_the_ids_sent_confirms_those_it_leaves_out() -> None:
    body = b'{"7002": {"error": "archived"}}'

    results = classify_bulk_response(REQUESTED, read_bulk_answer(200, body, requested=REQUESTED))

    assert [result.outcome for result in results] == [Outcome.ARCHIVED, Outcome.ALREADY_ARCHIVED, Outcome.ARCHIVED]
    assert classify_bulk_response(REQUESTED, read_bulk_answer(200, b"{}", requested=REQUESTED))[0].outcome is (
        Outcome.ARCHIVED
    )


def test_foreign_bulk_keys_are_logged_few_and_short(caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({f"9{n:04d}" + "x" * 100: {} for n in range(50)}).encode()

    with caplog.at_level(logging.WARNING, logger="sequence_archiver.reply.client"):
        read_bulk_answer(200, body, requested=REQUESTED)

    [record] = [record for record in caplog.records if record.getMessage().startswith("bulk archive answered")]
    assert record.count == 50  # type: ignore[attr-defined]
    assert len(record.keys) == 5  # type: ignore[attr-defined]
    assert all(len(key) <= 20 for key in record.keys)  # type: ignore[attr-defined]


# --------------------------------------------------------------------- the client retries, then gives up


class Answers:
    """A urllib3 stand-in that plays 2xx bodies in order (the last one again when the script runs out)."""

    def __init__(self, clock: FakeClock, *bodies: tuple[int, bytes]) -> None:
        self.clock, self.bodies, self.paths = clock, list(bodies), []  # type: ignore[var-annotated]

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.paths.append(url.removeprefix("https://api.reply.io"))
        self.clock.now += 0.05
        status, body = self.bodies.pop(0) if len(self.bodies) > 1 else self.bodies[0]
        return urllib3.HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False)


class Key:
    def api_key(self, *, refresh: bool = False, deadline: object = None) -> SecretStr:
        return SecretStr("rk_unit_key")


def client_for(http: Answers, clock: FakeClock, seen: list[object]) -> ReplyClient:
    return ReplyClient(
        base_url="https://api.reply.io",
        api_key_source=Key(),
        retry_policy=RetryPolicy(max_attempts=3, backoff_base_seconds=0.5, backoff_max_seconds=8),
        timeouts=Timeouts(connect_seconds=1, read_seconds=5),
        http=http,  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda ceiling: ceiling,
        on_unconfirmed=seen.append,
    )


def test_an_unconfirmed_archive_is_retried_with_the_usual_backoff_then_raised_holding_its_answer(
    clock: FakeClock,
) -> None:
    seen: list[object] = []
    http = Answers(clock, (200, HOSTILE["not-archived-active"]))
    client = client_for(http, clock, seen)

    with pytest.raises(ReplyUnconfirmedError) as excinfo:
        client.archive_sequence(SEQUENCE_ID, Deadline(clock.now + 60, clock))

    assert len(http.paths) == 3
    assert clock.sleeps == [0.5, 1.0]
    assert len(seen) == 3  # every unconfirmed answer is counted, the ones retried too
    answer = excinfo.value.answer
    assert isinstance(answer, ReplyResponse)
    assert answer.sequence is not None
    assert answer.sequence.is_archived is False


def test_a_retry_that_hears_already_archived_ends_already_archived(clock: FakeClock) -> None:
    already = json.dumps({"title": "Conflict", "status": 409, "code": "sequenceAction.archived"}).encode()
    http = Answers(clock, (200, b"{}"), (409, already))
    seen: list[object] = []

    [result] = SequenceArchiver(client_for(http, clock, seen)).archive(
        parse_archive_request({"sequenceId": SEQUENCE_ID}), Deadline(clock.now + 60, clock)
    )

    assert (result.outcome, result.http_status) == (Outcome.ALREADY_ARCHIVED, 409)
    assert len(seen) == 1


def test_an_archive_still_unconfirmed_is_final_and_the_request_complete(clock: FakeClock) -> None:
    http = Answers(clock, (200, b"{}"))

    results = SequenceArchiver(client_for(http, clock, [])).archive(
        parse_archive_request({"sequenceId": SEQUENCE_ID}), Deadline(clock.now + 60, clock)
    )
    report = RequestReport("request-1", Trigger.DIRECT, tuple(results))

    [result] = results
    assert result.outcome is Outcome.UNCONFIRMED
    assert report.complete  # final, like forbidden: retrying the request would only ask Reply again
    assert report.detail()["counts"]["unconfirmed"] == 1
    assert count_outcomes(results)["archived"] == 0


def test_a_bulk_call_still_unconfirmed_is_not_split_and_keeps_its_items(clock: FakeClock) -> None:
    http = Answers(clock, (200, b'{" 7001": {"error": "notFound"}, "7002": {"error": "forbidden"}}'))

    [results] = SequenceArchiver(client_for(http, clock, []), mode=ArchiveMode.BULK).archive_all(
        [parse_archive_request({"sequenceIds": list(REQUESTED)})], Deadline(clock.now + 60, clock)
    )

    assert [result.outcome for result in results] == [Outcome.UNCONFIRMED, Outcome.FORBIDDEN, Outcome.UNCONFIRMED]
    assert http.paths == ["/v3/sequences/archive"] * 3  # the client's retries, then no split into single calls


def test_the_metrics_count_unconfirmed_ids_answers_and_foreign_bulk_keys() -> None:
    metrics = Metrics(namespace="Test", service="test")
    recorder = MetricsRecorder(metrics)
    recorder.record_unconfirmed_answer(ReplyResponse(200, unconfirmed="empty"))
    recorder.record_unconfirmed_answer(BulkArchiveResponse(200, unconfirmed="keys", foreign_keys=3))

    recorder.record_invocation([SequenceResult(1, Outcome.UNCONFIRMED, 200, "empty")])

    values = {name: entry["Value"] for name, entry in metrics.metric_set.items()}
    assert values["SequencesUnconfirmed"] == [1.0]
    assert values["ReplyAnswersUnconfirmed"] == [2.0]
    assert values["BulkAnswerForeignKeys"] == [3.0]
    assert values["SequencesArchived"] == [0.0]
    metrics.clear_metrics()


# ------------------------------------------------------------------------- a pause that happened is reported


class PauseThenFail:
    """Reply that answers the first archive 409 (still running), pauses, then answers the second archive with
    `after_pause`."""

    def __init__(self, after_pause: ReplyResponse | Exception) -> None:
        self.after_pause, self.archives = after_pause, 0

    def release_unused_budget(self, deadline: Deadline) -> None:
        """No rate budget here."""

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.archives += 1
        if self.archives == 1:
            return ReplyResponse(409, problem=Problem(code="sequenceAction.invalidState"))
        if isinstance(self.after_pause, Exception):
            raise self.after_pause
        return self.after_pause

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        return ReplyResponse(200)

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        raise AssertionError("single mode")


@pytest.mark.parametrize(
    ("after_pause", "outcome", "http_status"),
    [
        (ReplyServerError("Reply answered 503", http_status=503), Outcome.FAILED, 503),
        (ReplyUnconfirmedError("empty", answer=ReplyResponse(200, unconfirmed="empty")), Outcome.UNCONFIRMED, 200),
        (DeadlineExceededError("no time left"), Outcome.FAILED, None),
        (ReplyResponse(409, problem=Problem(code="sequenceAction.invalidState")), Outcome.CONFLICT, 409),
        (ReplyResponse(200), Outcome.ARCHIVED, 200),
    ],
    ids=["503", "unconfirmed", "deadline", "still-conflict", "archived"],
)
def test_a_pause_that_succeeded_is_reported_whatever_the_archive_did(
    clock: FakeClock, after_pause: ReplyResponse | Exception, outcome: Outcome, http_status: int | None
) -> None:
    [result] = SequenceArchiver(PauseThenFail(after_pause)).archive(
        parse_archive_request({"sequenceId": SEQUENCE_ID, "pauseFirst": True}), Deadline(clock.now + 60, clock)
    )

    assert (result.outcome, result.http_status, result.paused) == (outcome, http_status, True)
    assert result.to_json()["paused"] is True


def test_a_bulk_answer_item_for_an_id_sent_is_kept_when_other_keys_are_foreign() -> None:
    answer = BulkArchiveResponse(200, {7002: BulkItemFailure("notFound")}, unconfirmed="foreign", foreign_keys=1)

    results = classify_bulk_response(REQUESTED, answer)

    assert [result.outcome for result in results] == [Outcome.UNCONFIRMED, Outcome.NOT_FOUND, Outcome.UNCONFIRMED]
    assert results[1].http_status is None  # an item of a 200 has no status of its own, as before
