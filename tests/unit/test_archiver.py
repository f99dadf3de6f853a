"""The core: every Reply answer maps to exactly one outcome, and nothing escapes per ID."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sequence_archiver.archive_request import parse_archive_request
from sequence_archiver.archiver import SequenceArchiver, classify_response
from sequence_archiver.deadline import Deadline
from sequence_archiver.exceptions import (
    ApiKeyUnavailableError,
    DeadlineExceededError,
    ReplyAuthenticationError,
    ReplyServerError,
    ReplyThrottledError,
)
from sequence_archiver.outcomes import Outcome, SequenceSummary
from sequence_archiver.reply_answers import Problem, ReplyResponse

if TYPE_CHECKING:
    from tests.unit.conftest import FakeClock


@pytest.mark.parametrize(
    ("status", "problem", "outcome"),
    [
        (200, None, Outcome.ARCHIVED),
        (
            409,
            Problem(code="sequenceAction.archived", detail="Sequence is already archived."),
            Outcome.ALREADY_ARCHIVED,
        ),
        (409, Problem(code="SequenceAction.Archived"), Outcome.ALREADY_ARCHIVED),
        (409, Problem(code="sequenceAction.invalidState", detail="Pause it first"), Outcome.CONFLICT),
        (409, None, Outcome.CONFLICT),
        (404, Problem(code="sequenceAction.notFound"), Outcome.NOT_FOUND),
        (404, None, Outcome.NOT_FOUND),
        (400, Problem(code="sequence.notFound"), Outcome.NOT_FOUND),
        (403, Problem(code="sequenceAction.forbidden"), Outcome.FORBIDDEN),
        (400, Problem(code="sequenceAction.teamMemberNotFound"), Outcome.FORBIDDEN),
        (400, Problem(title="One or more validation errors occurred.", has_validation_errors=True), Outcome.INVALID),
        (400, Problem(code="sequenceAction.somethingNew"), Outcome.FAILED),
        (405, None, Outcome.FAILED),
        (422, None, Outcome.FAILED),
    ],
)
def test_each_answer_maps_to_one_outcome(status: int, problem: Problem | None, outcome: Outcome) -> None:
    result = classify_response(42, ReplyResponse(http_status=status, problem=problem))
    assert result.outcome is outcome
    assert result.http_status == status
    assert result.sequence_id == 42
    if outcome is not Outcome.ARCHIVED:
        assert result.error


def test_the_200_sequence_is_kept_in_the_result() -> None:
    summary = SequenceSummary("Q3 outreach", "paused", True)
    result = classify_response(42, ReplyResponse(200, sequence=summary))
    assert result.to_json() == {
        "sequenceId": 42,
        "outcome": "archived",
        "httpStatus": 200,
        "error": None,
        "sequence": {"name": "Q3 outreach", "status": "paused", "isArchived": True},
    }


class ScriptedApi:
    def __init__(self, answers: dict[int, ReplyResponse | Exception]) -> None:
        self.answers, self.calls = answers, []  # type: list[int]

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.calls.append(sequence_id)
        answer = self.answers[sequence_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_results_follow_input_order_with_invalid_values_in_place(clock: FakeClock) -> None:
    api = ScriptedApi({1: ReplyResponse(200), 2: ReplyResponse(404)})
    request = parse_archive_request({"sequenceIds": [1, "nope", 2, 1]})

    results = SequenceArchiver(api).archive(request, Deadline(clock.now + 60, clock))

    assert [(r.sequence_id, r.outcome) for r in results] == [
        (1, Outcome.ARCHIVED),
        (None, Outcome.INVALID),
        (2, Outcome.NOT_FOUND),
    ]
    assert results[1].input_value == '"nope"'
    assert api.calls == [1, 2]


def test_transient_errors_fail_one_id_and_the_rest_go_on(clock: FakeClock) -> None:
    api = ScriptedApi(
        {
            1: ReplyServerError("Reply answered 503", http_status=503),
            2: ReplyThrottledError("429", http_status=429),
            3: ReplyResponse(200),
        }
    )
    results = SequenceArchiver(api).archive(
        parse_archive_request({"sequenceIds": [1, 2, 3]}), Deadline(clock.now + 60, clock)
    )

    assert [(r.outcome, r.http_status) for r in results] == [
        (Outcome.FAILED, 503),
        (Outcome.FAILED, 429),
        (Outcome.ARCHIVED, 200),
    ]
    assert results[0].error == "Reply answered 503"


@pytest.mark.parametrize(
    "error",
    [
        ReplyAuthenticationError("Reply rejected the API key (401)", http_status=401),
        ApiKeyUnavailableError("could not read the API key secret"),
        DeadlineExceededError("not enough time left"),
    ],
)
def test_request_wide_errors_stop_calling_and_fail_the_rest(clock: FakeClock, error: Exception) -> None:
    api = ScriptedApi({1: ReplyResponse(200), 2: error, 3: ReplyResponse(200), 4: ReplyResponse(200)})
    results = SequenceArchiver(api).archive(
        parse_archive_request({"sequenceIds": [1, 2, 3, 4]}), Deadline(clock.now + 60, clock)
    )

    assert [r.outcome for r in results] == [Outcome.ARCHIVED, Outcome.FAILED, Outcome.FAILED, Outcome.FAILED]
    assert api.calls == [1, 2]
    assert results[2].error is not None
    assert results[2].error.startswith("not attempted: ")


class BulkApi(ScriptedApi):
    """Answers bulk calls from a script and single calls from `answers`."""

    def __init__(self, bulk: list[object], answers: dict[int, ReplyResponse | Exception] | None = None) -> None:
        super().__init__(answers or {})
        self.bulk, self.bulk_calls = list(bulk), []  # type: list[object], list[list[int]]

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> object:
        self.bulk_calls.append(list(sequence_ids))
        answer = self.bulk.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def bulk_ok(**failures: tuple[str, str | None]) -> object:
    from sequence_archiver.reply_answers import BulkArchiveResponse, BulkItemFailure

    return BulkArchiveResponse(200, {int(k.lstrip("_")): BulkItemFailure(*v) for k, v in failures.items()})


def test_bulk_item_errors_map_to_outcomes_and_unlisted_ids_are_archived(clock: FakeClock) -> None:
    from sequence_archiver.archiver import ArchiveMode

    api = BulkApi(
        [
            bulk_ok(
                _2=("notFound", "gone"),
                _3=("forbidden", None),
                _4=("ARCHIVED", None),
                _5=("salesAgentNotAllowed", None),
                _6=("teamMemberNotFound", None),
                _7=("somethingNew", None),
            )
        ]
    )
    archiver = SequenceArchiver(api, mode=ArchiveMode.AUTO)  # type: ignore[arg-type]

    [results] = archiver.archive_all(
        [parse_archive_request({"sequenceIds": [1, 2, 3, 4, 5, 6, 7]})], Deadline(clock.now + 60, clock)
    )

    assert [r.outcome for r in results] == [
        Outcome.ARCHIVED,
        Outcome.NOT_FOUND,
        Outcome.FORBIDDEN,
        Outcome.ALREADY_ARCHIVED,
        Outcome.CONFLICT,
        Outcome.FORBIDDEN,
        Outcome.CONFLICT,
    ]
    assert results[1].error == "notFound: gone"
    assert results[6].error == "somethingNew"
    assert {r.http_status for r in results} == {200}
    assert api.calls == []


def test_ids_of_several_requests_are_archived_once_in_chunks_and_mapped_back(clock: FakeClock) -> None:
    from sequence_archiver.archiver import ArchiveMode

    api = BulkApi([bulk_ok(), bulk_ok(_5=("notFound", None))])
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=3)  # type: ignore[arg-type]
    requests = [parse_archive_request({"sequenceIds": ids}) for ids in ([1, 2], [2, 3, "x"], [4, 5, 1])]

    per_request = archiver.archive_all(requests, Deadline(clock.now + 60, clock))

    assert api.bulk_calls == [[1, 2, 3], [4, 5]]
    assert [[(r.sequence_id, r.outcome.value) for r in results] for results in per_request] == [
        [(1, "archived"), (2, "archived")],
        [(2, "archived"), (3, "archived"), (None, "invalid")],
        [(4, "archived"), (5, "not_found"), (1, "archived")],
    ]


def test_auto_mode_uses_the_single_endpoint_for_a_lone_id(clock: FakeClock) -> None:
    from sequence_archiver.archiver import ArchiveMode

    api = BulkApi([], {7: ReplyResponse(200)})
    archiver = SequenceArchiver(api, mode=ArchiveMode.AUTO)  # type: ignore[arg-type]
    assert (
        archiver.archive(parse_archive_request({"sequenceIds": [7, "7"]}), Deadline(clock.now + 60, clock))[0].outcome
        is Outcome.ARCHIVED
    )
    assert (api.calls, api.bulk_calls) == ([7], [])


def test_a_bulk_403_falls_back_to_single_calls_for_the_life_of_the_instance(clock: FakeClock) -> None:
    from sequence_archiver.archiver import ArchiveMode
    from sequence_archiver.reply_answers import BulkArchiveResponse

    api = BulkApi(
        [BulkArchiveResponse(403, problem=Problem(code="sequenceAction.forbidden"))],
        {1: ReplyResponse(200), 2: ReplyResponse(404), 3: ReplyResponse(200), 4: ReplyResponse(200)},
    )
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK)  # type: ignore[arg-type]
    deadline = Deadline(clock.now + 60, clock)

    first = archiver.archive(parse_archive_request({"sequenceIds": [1, 2]}), deadline)
    second = archiver.archive(parse_archive_request({"sequenceIds": [3, 4]}), deadline)

    assert [r.outcome for r in first + second] == [
        Outcome.ARCHIVED,
        Outcome.NOT_FOUND,
        Outcome.ARCHIVED,
        Outcome.ARCHIVED,
    ]
    assert api.bulk_calls == [[1, 2]]
    assert api.calls == [1, 2, 3, 4]


def test_a_bulk_validation_error_uses_single_calls_for_that_chunk_only(clock: FakeClock) -> None:
    from sequence_archiver.archiver import ArchiveMode
    from sequence_archiver.reply_answers import BulkArchiveResponse

    api = BulkApi(
        [BulkArchiveResponse(400, problem=Problem(has_validation_errors=True)), bulk_ok()],
        {1: ReplyResponse(200), 2: ReplyResponse(200)},
    )
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=2)  # type: ignore[arg-type]

    results = archiver.archive(parse_archive_request({"sequenceIds": [1, 2, 3, 4]}), Deadline(clock.now + 60, clock))

    assert [r.outcome for r in results] == [Outcome.ARCHIVED] * 4
    assert api.bulk_calls == [[1, 2], [3, 4]]
    assert api.calls == [1, 2]


def test_a_failed_bulk_call_fails_its_ids_with_the_retry_hint_and_the_next_chunk_goes_on(clock: FakeClock) -> None:
    from sequence_archiver.archiver import ArchiveMode

    api = BulkApi([ReplyThrottledError("429", http_status=429, retry_after_seconds=42), bulk_ok()])
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=2)  # type: ignore[arg-type]

    results = archiver.archive(parse_archive_request({"sequenceIds": [1, 2, 3]}), Deadline(clock.now + 60, clock))

    assert [(r.outcome, r.retry_after_seconds) for r in results] == [
        (Outcome.FAILED, 42),
        (Outcome.FAILED, 42),
        (Outcome.ARCHIVED, None),
    ]


class PausingApi(ScriptedApi):
    """Single archive answers from a list per ID (first call, second call...), pauses from `pauses`."""

    def __init__(self, archives: dict[int, list[ReplyResponse]], pauses: dict[int, ReplyResponse | Exception]) -> None:
        super().__init__({})
        self.archives, self.pauses, self.paused = archives, pauses, []  # type: ignore[var-annotated]

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.calls.append(sequence_id)
        return self.archives[sequence_id].pop(0)

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self.paused.append(sequence_id)
        answer = self.pauses[sequence_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


RUNNING = ReplyResponse(409, problem=Problem(code="sequenceAction.invalidState", detail="Pause it first"))


@pytest.mark.parametrize("pause_first", [True, False])
def test_pause_first_pauses_a_running_sequence_and_archives_it_again(clock: FakeClock, pause_first: bool) -> None:
    api = PausingApi({1: [RUNNING, ReplyResponse(200)], 2: [ReplyResponse(200)]}, {1: ReplyResponse(200)})
    request = parse_archive_request({"sequenceIds": [1, 2], "pauseFirst": pause_first})

    results = SequenceArchiver(api).archive(request, Deadline(clock.now + 60, clock))

    if pause_first:
        assert [(r.outcome, r.paused) for r in results] == [(Outcome.ARCHIVED, True), (Outcome.ARCHIVED, False)]
        assert results[0].to_json()["paused"] is True
        assert api.paused == [1]
        assert api.calls == [1, 2, 1]
    else:
        assert [r.outcome for r in results] == [Outcome.CONFLICT, Outcome.ARCHIVED]
        assert "paused" not in results[0].to_json()
        assert api.paused == []


@pytest.mark.parametrize(
    ("conflict", "pause", "outcome", "pause_calls"),
    [
        (RUNNING, ReplyResponse(409, problem=Problem(code="sequenceAction.notStarted")), Outcome.CONFLICT, 1),
        (RUNNING, ReplyResponse(409, problem=Problem(code="sequenceAction.archived")), Outcome.ALREADY_ARCHIVED, 1),
        (RUNNING, ReplyResponse(404), Outcome.NOT_FOUND, 1),
        (RUNNING, ReplyServerError("503", http_status=503), Outcome.FAILED, 1),
        (ReplyResponse(409, problem=Problem(code="sequenceAction.salesAgentNotAllowed")), None, Outcome.CONFLICT, 0),
        (ReplyResponse(409, problem=Problem(code="sequenceAction.archived")), None, Outcome.ALREADY_ARCHIVED, 0),
    ],
)
def test_pause_first_reports_what_the_pause_answered(
    clock: FakeClock, conflict: ReplyResponse, pause: object, outcome: Outcome, pause_calls: int
) -> None:
    api = PausingApi({1: [conflict]}, {1: pause} if pause is not None else {})  # type: ignore[dict-item]

    [result] = SequenceArchiver(api).archive(
        parse_archive_request({"sequenceId": 1, "pauseFirst": True}), Deadline(clock.now + 60, clock)
    )

    assert result.outcome is outcome
    assert result.paused is False
    assert len(api.paused) == pause_calls
