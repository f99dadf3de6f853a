"""Bulk answers say what they are: each item reads like a single call's answer, every result names the endpoint
that answered (`via`), and a bulk size Reply refuses is halved and remembered, never failing a batch."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from sequence_archiver.archiving.archiver import ArchiveMode, SequenceArchiver
from sequence_archiver.archiving.classification import classify_bulk_response
from sequence_archiver.core.archive_request import parse_archive_request
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import (
    ApiKeyUnavailableError,
    RateBudgetExhaustedError,
    ReplyAuthenticationError,
    ReplyMalformedResponseError,
    ReplyPausedError,
    ReplyServerError,
    ReplyTransportError,
)
from sequence_archiver.core.outcomes import Outcome, SequenceResult, Via
from sequence_archiver.core.reply_answers import (
    MAX_ERROR_POINTERS,
    BulkArchiveResponse,
    BulkItemFailure,
    Problem,
    ReplyResponse,
)
from sequence_archiver.reply.parsing import parse_problem, read_bulk_answer

if TYPE_CHECKING:
    from tests.unit.conftest import FakeClock

SECRET = "rk_unit_SECRET_MARKER_789"


# ---------------------------------------------------------------------------------------------- reading the answer


def test_a_validation_problem_keeps_the_pointers_of_its_errors_cleaned_and_bounded() -> None:
    body = {
        "title": "Validation failed",
        "status": 400,
        "detail": "The request body contains validation errors.",
        "errors": [
            {"pointer": "/ids", "detail": "'ids' must contain between 1 and 100 items."},
            {"detail": "no pointer"},
            "not an object",
            {"pointer": 7},
            {"pointer": "/ids/" + SECRET + "\n"},
            *({"pointer": "/ids/" + str(index)} for index in range(50)),
        ],
    }

    problem = parse_problem(json.dumps(body).encode(), secret=SECRET)

    assert problem is not None
    assert problem.has_validation_errors
    assert problem.error_pointers[:2] == ("/ids", "/ids/[redacted] ")
    assert len(problem.error_pointers) == MAX_ERROR_POINTERS - 3  # only the first entries are looked at


@pytest.mark.parametrize(
    "body",
    [{"title": "Bad Request", "status": 400, "code": "sequence.invalidSort"}, {"errors": "not a list"}],
)
def test_a_problem_without_validation_errors_has_no_pointers(body: dict[str, object]) -> None:
    problem = parse_problem(json.dumps(body).encode())

    assert problem is not None
    assert problem.error_pointers == ()


@pytest.mark.parametrize(
    ("error", "details", "code", "reason"),
    [
        ("forbidden", "No.", "sequenceAction.forbidden", "sequenceAction.forbidden: No."),
        ("sequenceAction.archived", None, "sequenceAction.archived", "sequenceAction.archived"),
        ("", "Sequence is active.", None, "Sequence is active."),
        ("", None, None, "refused by the bulk endpoint without a reason"),
    ],
    ids=["bare-variant", "namespaced", "no-error", "nothing"],
)
def test_a_bulk_item_is_named_like_the_single_endpoints_code(
    error: str, details: str | None, code: str | None, reason: str
) -> None:
    failure = BulkItemFailure(error, details)

    assert (failure.code, failure.short_reason()) == (code, reason)


def test_a_bulk_item_without_an_error_is_read_not_invented() -> None:
    body = json.dumps({"7": {"errorDetails": "Sequence is active."}, "8": {}}).encode()

    assert read_bulk_answer(200, body, requested={7, 8}).failures == {
        7: BulkItemFailure("", "Sequence is active."),
        8: BulkItemFailure("", None),
    }


# ------------------------------------------------------------------------------------------ classifying the answer


def test_bulk_items_report_their_own_code_no_status_and_via_bulk() -> None:
    response = BulkArchiveResponse(
        200,
        {
            2: BulkItemFailure("forbidden", "You do not have permission."),
            3: BulkItemFailure("sequenceAction.archived", "Sequence is already archived."),
            4: BulkItemFailure("", "Sequence is active. Pause it first."),
            5: BulkItemFailure("teamMemberNotFound", None),
        },
    )

    results = classify_bulk_response([1, 2, 3, 4, 5], response)

    assert [(r.sequence_id, r.outcome, r.http_status, r.via, r.error) for r in results] == [
        (1, Outcome.ARCHIVED, None, Via.BULK, None),
        (2, Outcome.FORBIDDEN, None, Via.BULK, "sequenceAction.forbidden: You do not have permission."),
        (3, Outcome.ALREADY_ARCHIVED, None, Via.BULK, "sequenceAction.archived: Sequence is already archived."),
        (4, Outcome.CONFLICT, None, Via.BULK, "Sequence is active. Pause it first."),
        (5, Outcome.FORBIDDEN, None, Via.BULK, "sequenceAction.teamMemberNotFound"),
    ]  # fmt: skip
    assert results[1].to_json() == {
        "sequenceId": 2,
        "outcome": "forbidden",
        "httpStatus": None,
        "via": "bulk",
        "error": "sequenceAction.forbidden: You do not have permission.",
        "sequence": None,
    }


def test_a_whole_call_answer_keeps_its_status_for_every_id() -> None:
    response = BulkArchiveResponse(400, problem=Problem(code="sequence.notFound", detail="gone"))

    results = classify_bulk_response([1, 2], response)

    assert {(r.outcome, r.http_status, r.via, r.error) for r in results} == {
        (Outcome.NOT_FOUND, 400, Via.BULK, "sequence.notFound: gone")
    }


class ScriptedApi:
    """Single calls answered from `answers`; bulk calls from `bulk` (a list, in order)."""

    def __init__(
        self,
        answers: dict[int, ReplyResponse | Exception] | None = None,
        bulk: list[BulkArchiveResponse | Exception] | None = None,
    ) -> None:
        self.answers, self.bulk = answers or {}, list(bulk or [])
        self.calls: list[int] = []
        self.bulk_calls: list[list[int]] = []

    def release_unused_budget(self, deadline: Deadline) -> None:
        """No rate budget here."""

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.calls.append(sequence_id)
        answer = self.answers.get(sequence_id, ReplyResponse(200))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        return ReplyResponse(200)

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        self.bulk_calls.append(list(sequence_ids))
        answer = self.bulk.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    ("answer", "via"),
    [
        (ReplyResponse(200), Via.SINGLE),
        (ReplyServerError("Reply answered 503", http_status=503), Via.SINGLE),
        (ReplyMalformedResponseError("Reply answered 200 with a body that is not JSON", http_status=200), Via.SINGLE),
        (ReplyAuthenticationError("Reply rejected the API key (401)", http_status=401), Via.SINGLE),
        (ReplyTransportError("no answer from Reply (ReadTimeoutError)"), None),
        (RateBudgetExhaustedError("the rate budget frees up in 30.0s", retry_after_seconds=30), None),
        (ReplyPausedError("Reply asked to wait 60s", http_status=429, retry_after_seconds=60), None),
        (ApiKeyUnavailableError("could not read the API key secret"), None),
    ],
    ids=["200", "503", "malformed", "401", "no-answer", "rate-budget", "paused", "no-key"],
)
def test_via_names_the_endpoint_only_when_reply_answered(
    clock: FakeClock, answer: ReplyResponse | Exception, via: Via | None
) -> None:
    api = ScriptedApi({1: answer})

    results = SequenceArchiver(api).archive(
        parse_archive_request({"sequenceIds": [1, 2]}), Deadline(clock.now + 60, clock)
    )

    assert results[0].via is via
    if results[1].error is not None and results[1].error.startswith("not attempted: "):
        assert results[1].via is None  # never sent
    else:
        assert results[1].via is Via.SINGLE


def test_invalid_values_have_no_via(clock: FakeClock) -> None:
    [result] = SequenceArchiver(ScriptedApi()).archive(
        parse_archive_request({"sequenceIds": [True]}), Deadline(clock.now + 60, clock)
    )

    assert (result.outcome, result.via, result.to_json()["via"]) == (Outcome.INVALID, None, None)


def test_ids_split_off_a_failing_bulk_call_say_which_endpoint_answered_them(clock: FakeClock) -> None:
    # Given a bulk call of 4 that fails, its halves of 2, and a poison ID that fails on its own single call too
    failure = ReplyServerError("Reply answered 500", http_status=500)
    api = ScriptedApi({3: failure}, bulk=[failure, BulkArchiveResponse(200), failure])
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK)

    results = archiver.archive(parse_archive_request({"sequenceIds": [1, 2, 3, 4]}), Deadline(clock.now + 60, clock))

    assert api.bulk_calls == [[1, 2, 3, 4], [1, 2], [3, 4]]
    assert api.calls == [3, 4]
    assert [(r.outcome, r.via, r.http_status) for r in results] == [
        (Outcome.ARCHIVED, Via.BULK, None),
        (Outcome.ARCHIVED, Via.BULK, None),
        (Outcome.FAILED, Via.SINGLE, 500),
        (Outcome.ARCHIVED, Via.SINGLE, 200),
    ]


# ------------------------------------------------------------------------ a bulk size Reply refuses: halve, remember


# Reply's answer to a bulk call over its limit, as the client reads the spec's own example: errors
# [{"pointer": "/ids", "detail": "'ids' must contain between 1 and 100 items."}].
TOO_LARGE = BulkArchiveResponse(
    400,
    problem=Problem(
        title="Validation failed",
        detail="The request body contains validation errors.",
        has_validation_errors=True,
        error_pointers=("/ids",),
    ),
)


class SizeLimitedApi(ScriptedApi):
    """A Reply whose bulk endpoint takes at most `limit` IDs and archives every ID it is given."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        self.bulk_calls.append(list(sequence_ids))
        return TOO_LARGE if len(sequence_ids) > self.limit else BulkArchiveResponse(200)


def archive(archiver: SequenceArchiver, ids: list[int], clock: FakeClock) -> list[SequenceResult]:
    return archiver.archive(parse_archive_request({"sequenceIds": ids}), Deadline(clock.now + 60, clock))


def test_a_bulk_size_reply_refuses_is_halved_until_it_is_taken_and_remembered(clock: FakeClock) -> None:
    # Given REPLY_BULK_MAX_IDS at the spec text's 1000, and Reply taking at most its example's 100
    api = SizeLimitedApi(100)
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=1000)

    first = archive(archiver, list(range(1, 1001)), clock)

    # Then the size is halved until Reply takes the calls, and every ID is archived, in order, once
    assert [len(call) for call in api.bulk_calls] == [1000, 500, 250, 125] + [62] * 16 + [8]
    assert [r.outcome for r in first] == [Outcome.ARCHIVED] * 1000
    assert sorted(i for call in api.bulk_calls[4:] for i in call) == list(range(1, 1001))
    assert archiver.bulk_max_ids == 62
    assert api.calls == []

    # ... and the next request of this instance starts at the size Reply took
    api.bulk_calls.clear()
    second = archive(archiver, list(range(2001, 2201)), clock)

    assert [len(call) for call in api.bulk_calls] == [62, 62, 62, 14]
    assert {r.outcome for r in second} == {Outcome.ARCHIVED}


def test_the_halved_size_applies_to_the_chunks_still_waiting(clock: FakeClock) -> None:
    api = SizeLimitedApi(3)
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=4)

    results = archive(archiver, list(range(1, 11)), clock)

    assert api.bulk_calls == [[1, 2, 3, 4], [1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    assert {r.outcome for r in results} == {Outcome.ARCHIVED}


@pytest.mark.parametrize(
    ("pointers", "ids"),
    [(("/ids/1",), [1, 2]), (("id",), [1, 2]), (("/ids",), [1])],
    ids=["one-bad-item", "another-field", "a-call-of-one"],
)
def test_other_validation_errors_are_not_a_size_and_use_single_calls_for_that_chunk(
    clock: FakeClock, pointers: tuple[str, ...], ids: list[int]
) -> None:
    refused = BulkArchiveResponse(400, problem=Problem(has_validation_errors=True, error_pointers=pointers))
    api = ScriptedApi(bulk=[refused])
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=100)

    results = archive(archiver, ids, clock)

    assert api.bulk_calls == [ids]
    assert api.calls == ids
    assert {(r.outcome, r.via) for r in results} == {(Outcome.ARCHIVED, Via.SINGLE)}
    assert archiver.bulk_max_ids == 100


def test_a_poison_id_is_still_isolated_after_the_size_was_halved(clock: FakeClock) -> None:
    class PoisonedSizeLimitedApi(SizeLimitedApi):
        def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
            if len(sequence_ids) <= self.limit and 3 in sequence_ids:
                self.bulk_calls.append(list(sequence_ids))
                raise ReplyServerError("Reply answered 500", http_status=500)
            return super().bulk_archive(sequence_ids, deadline)

    api = PoisonedSizeLimitedApi(4)
    api.answers[3] = ReplyServerError("Reply answered 500", http_status=500)
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=8)

    results = archive(archiver, list(range(1, 9)), clock)

    assert api.bulk_calls[:3] == [list(range(1, 9)), [1, 2, 3, 4], [5, 6, 7, 8]]
    assert {r.sequence_id for r in results if r.outcome is Outcome.FAILED} == {3}
    assert {r.sequence_id for r in results if r.outcome is Outcome.ARCHIVED} == {1, 2, 4, 5, 6, 7, 8}
    assert archiver.bulk_max_ids == 4
