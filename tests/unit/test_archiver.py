"""The core: every Reply answer maps to exactly one outcome, and nothing escapes per ID."""

from __future__ import annotations

import logging
import math
import random
from typing import TYPE_CHECKING, Any

import pytest

from sequence_archiver.archiving.archiver import ArchiveMode, SequenceArchiver
from sequence_archiver.archiving.classification import classify_response
from sequence_archiver.core.archive_request import parse_archive_request
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import (
    ApiKeyUnavailableError,
    DeadlineExceededError,
    RateBudgetExhaustedError,
    ReplyAuthenticationError,
    ReplyMalformedResponseError,
    ReplyServerError,
    ReplyThrottledError,
    ReplyTransportError,
)
from sequence_archiver.core.outcomes import Outcome, SequenceResult, SequenceSummary, Via
from sequence_archiver.core.reply_answers import BulkArchiveResponse, BulkItemFailure, Problem, ReplyResponse

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
        "via": "single",
        "error": None,
        "sequence": {"name": "Q3 outreach", "status": "paused", "isArchived": True},
    }


class ScriptedApi:
    def __init__(self, answers: dict[int, ReplyResponse | Exception]) -> None:
        self.answers, self.calls = answers, []  # type: list[int]

    def release_unused_budget(self, deadline: Deadline) -> None:
        """No rate budget here."""

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
    from sequence_archiver.core.reply_answers import BulkArchiveResponse, BulkItemFailure

    return BulkArchiveResponse(200, {int(k.lstrip("_")): BulkItemFailure(*v) for k, v in failures.items()})


def test_bulk_item_errors_map_to_outcomes_and_unlisted_ids_are_archived(clock: FakeClock) -> None:
    from sequence_archiver.archiving.archiver import ArchiveMode

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
    # Each item reads as a single call's refusal would: its own code, and no status (the 200 was the call's)
    assert results[1].error == "sequenceAction.notFound: gone"
    assert results[3].error == "sequenceAction.ARCHIVED"
    assert results[6].error == "sequenceAction.somethingNew"
    assert {r.http_status for r in results} == {None}
    assert {r.via for r in results} == {Via.BULK}
    assert api.calls == []


def test_ids_of_several_requests_are_archived_once_in_chunks_and_mapped_back(clock: FakeClock) -> None:
    from sequence_archiver.archiving.archiver import ArchiveMode

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
    from sequence_archiver.archiving.archiver import ArchiveMode

    api = BulkApi([], {7: ReplyResponse(200)})
    archiver = SequenceArchiver(api, mode=ArchiveMode.AUTO)  # type: ignore[arg-type]
    assert (
        archiver.archive(parse_archive_request({"sequenceIds": [7, "7"]}), Deadline(clock.now + 60, clock))[0].outcome
        is Outcome.ARCHIVED
    )
    assert (api.calls, api.bulk_calls) == ([7], [])


def test_a_bulk_403_falls_back_to_single_calls_for_the_life_of_the_instance(clock: FakeClock) -> None:
    from sequence_archiver.archiving.archiver import ArchiveMode
    from sequence_archiver.core.reply_answers import BulkArchiveResponse

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
    from sequence_archiver.archiving.archiver import ArchiveMode
    from sequence_archiver.core.reply_answers import BulkArchiveResponse

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
    from sequence_archiver.archiving.archiver import ArchiveMode

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

    def release_unused_budget(self, deadline: Deadline) -> None:
        """No rate budget here."""

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


# ---------------------------------------------------------------- isolating poison IDs in bulk calls

MIN_CALL_SECONDS = 1.0  # like the client's connect timeout: it starts no call that could not finish in time


class PoisonApi:
    """Reply where every call naming a poison ID fails: by raising `failure`, or answering it when it is a
    status. Other IDs are archived by bulk and single calls alike; `running` ones need a pause first."""

    def __init__(
        self,
        poison: set[int],
        failure: Exception | int | None = None,
        *,
        clock: FakeClock | None = None,
        call_seconds: float = 0.0,
        checks_deadline: bool = True,
        running: set[int] | None = None,
        bulk_only: bool = False,
    ) -> None:
        self.poison, self.clock, self.call_seconds = poison, clock, call_seconds
        self.failure = ReplyServerError("Reply answered 500", http_status=500) if failure is None else failure
        self.checks_deadline, self.running, self.bulk_only = checks_deadline, set(running or ()), bulk_only
        self.bulk_calls: list[list[int]] = []
        self.calls: list[int] = []
        self.paused: list[int] = []

    def _spend(self, deadline: Deadline) -> None:
        if self.checks_deadline and not deadline.allows(MIN_CALL_SECONDS):
            raise DeadlineExceededError("not enough time left in this invocation to call Reply")
        if self.clock is not None:
            self.clock.now += self.call_seconds

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        self._spend(deadline)
        self.bulk_calls.append(list(sequence_ids))
        if self.poison & set(sequence_ids):
            if isinstance(self.failure, Exception):
                raise self.failure
            return BulkArchiveResponse(self.failure, problem=Problem(code="sequenceAction.somethingNew"))
        failures = {i: BulkItemFailure("invalidState", "Pause it first") for i in sequence_ids if i in self.running}
        return BulkArchiveResponse(200, failures)

    def release_unused_budget(self, deadline: Deadline) -> None:
        """No rate budget here."""

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self._spend(deadline)
        self.calls.append(sequence_id)
        if sequence_id in self.poison and not self.bulk_only:
            if isinstance(self.failure, Exception):
                raise self.failure
            return ReplyResponse(self.failure, problem=Problem(code="sequenceAction.somethingNew"))
        return RUNNING if sequence_id in self.running else ReplyResponse(200)

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        self._spend(deadline)
        self.paused.append(sequence_id)
        self.running.discard(sequence_id)
        return ReplyResponse(200)

    @property
    def api_calls(self) -> int:
        return len(self.bulk_calls) + len(self.calls) + len(self.paused)


def archive_ids(
    api: PoisonApi, ids: list[int], deadline: Deadline, *, bulk_max_ids: int = 100, pause_first: bool = False
) -> dict[int, SequenceResult]:
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=bulk_max_ids)
    [results] = archiver.archive_all([parse_archive_request({"sequenceIds": ids, "pauseFirst": pause_first})], deadline)
    assert [r.sequence_id for r in results] == ids
    return {r.sequence_id: r for r in results if r.sequence_id is not None}


def outcomes_of(results: dict[int, SequenceResult]) -> dict[Outcome, set[int]]:
    grouped: dict[Outcome, set[int]] = {}
    for sequence_id, result in results.items():
        grouped.setdefault(result.outcome, set()).add(sequence_id)
    return grouped


@pytest.mark.parametrize("size", [10, 50, 100])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_poison_id_in_a_bulk_chunk_fails_alone_in_a_logarithmic_number_of_calls(
    clock: FakeClock, size: int, where: str
) -> None:
    # Given a chunk of `size` IDs where every call naming one of them answers 500 (after the client's retries)
    ids = list(range(1, size + 1))
    poison = {"first": ids[0], "middle": ids[size // 2], "last": ids[-1]}[where]
    api = PoisonApi({poison})

    # When the chunk is archived in bulk
    results = archive_ids(api, ids, Deadline(clock.now + 60, clock))

    # Then only the poison ID fails, with Reply's answer, and every other ID of its chunk is archived
    assert outcomes_of(results) == {Outcome.FAILED: {poison}, Outcome.ARCHIVED: set(ids) - {poison}}
    assert (results[poison].http_status, results[poison].error) == (500, "Reply answered 500")
    # ... by halving: the first call, then two calls per level down to single IDs
    levels = math.ceil(math.log2(size))
    assert len(api.bulk_calls) <= 1 + 2 * (levels - 1)
    assert api.api_calls <= 1 + 2 * levels
    assert api.bulk_calls[0] == ids


@pytest.mark.parametrize(
    "failure",
    [
        ReplyServerError("Reply answered 503", http_status=503),
        ReplyTransportError("no answer from Reply (ReadTimeoutError)"),
        ReplyMalformedResponseError("Reply answered 200 to a bulk archive with a body that is not JSON"),
        422,  # an unexpected answer to the whole call, which classify_response reports as failed
    ],
    ids=["5xx", "transport", "malformed", "unexpected-status"],
)
def test_every_retryable_failure_that_may_lie_in_the_ids_is_split(clock: FakeClock, failure: Exception | int) -> None:
    api = PoisonApi({7}, failure)

    results = archive_ids(api, list(range(1, 11)), Deadline(clock.now + 60, clock))

    assert outcomes_of(results) == {Outcome.FAILED: {7}, Outcome.ARCHIVED: set(range(1, 11)) - {7}}
    assert api.calls[-1] == 7  # found by a single call


@pytest.mark.parametrize("poison", [{3, 77}, {10, 12}], ids=["different-halves", "same-quarter"])
def test_two_poison_ids_fail_alone(clock: FakeClock, poison: set[int]) -> None:
    ids = list(range(1, 101))
    api = PoisonApi(poison)

    results = archive_ids(api, ids, Deadline(clock.now + 60, clock))

    assert outcomes_of(results) == {Outcome.FAILED: poison, Outcome.ARCHIVED: set(ids) - poison}
    assert api.api_calls <= 2 * (1 + 2 * math.ceil(math.log2(len(ids))))


@pytest.mark.parametrize("seed", range(40))
def test_random_chunks_and_poisons_every_id_gets_one_result_and_few_poisons_harm_only_themselves(
    clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)
    ids = rng.sample(range(1, 10_000), rng.randint(1, 250))
    poison = set(rng.sample(ids, min(len(ids), rng.randint(0, 6))))
    api = PoisonApi(poison)

    results = archive_ids(api, ids, Deadline(clock.now + 60, clock), bulk_max_ids=rng.choice([1, 7, 50, 100]))

    assert set(results) == set(ids)
    assert all(results[i].outcome is Outcome.FAILED for i in poison)
    if len(poison) <= 2:
        assert outcomes_of(results).get(Outcome.ARCHIVED, set()) == set(ids) - poison
    assert all(results[i].outcome in {Outcome.ARCHIVED, Outcome.FAILED} for i in ids)


def test_an_id_that_only_breaks_the_bulk_endpoint_is_archived_by_its_single_call(clock: FakeClock) -> None:
    api = PoisonApi({5}, bulk_only=True)

    results = archive_ids(api, list(range(1, 11)), Deadline(clock.now + 60, clock))

    assert outcomes_of(results) == {Outcome.ARCHIVED: set(range(1, 11))}
    assert 5 in api.calls


@pytest.mark.parametrize("api_checks_deadline", [True, False], ids=["client-refuses", "archiver-checks"])
def test_when_the_deadline_runs_out_mid_bisection_the_ids_not_isolated_fail_retryably(
    clock: FakeClock, api_checks_deadline: bool
) -> None:
    # Given two chunks (80 + 20 IDs), a poison at the end of the first, and calls that take 1 s each
    ids = list(range(1, 101))
    api = PoisonApi({80}, clock=clock, call_seconds=1.0, checks_deadline=api_checks_deadline)
    deadline = Deadline(clock.now + 4.5, clock)

    # When time runs out while the first chunk is being split
    results = archive_ids(api, ids, deadline, bulk_max_ids=80)

    # Then the halves that answered are archived: 1-40 (2nd call) and 41-60 (4th call)...
    expected_calls = [list(range(1, 81)), list(range(1, 41)), list(range(41, 81)), list(range(41, 61))]
    if not api_checks_deadline:
        expected_calls.append(list(range(61, 81)))  # the 5th call starts at 4.0 s, with 0.5 s left
    assert api.bulk_calls == expected_calls
    assert outcomes_of(results)[Outcome.ARCHIVED] == set(range(1, 61))
    # ... the IDs not yet isolated fail (retryably) with the bulk call's failure and why they were not isolated
    for sequence_id in range(61, 81):
        result = results[sequence_id]
        assert (result.outcome, result.http_status) == (Outcome.FAILED, 500)
        assert result.error is not None
        assert result.error.startswith("not isolated (")
        assert result.error.endswith("): Reply answered 500")
    # ... and the next chunk is not attempted
    for sequence_id in range(81, 101):
        assert results[sequence_id].outcome is Outcome.FAILED
        assert (results[sequence_id].error or "").startswith("not attempted: ")


@pytest.mark.parametrize(
    "error",
    [
        ReplyThrottledError("Reply rate limit exceeded (429)", http_status=429, retry_after_seconds=30),
        RateBudgetExhaustedError("the rate budget frees up in 30.0s", retry_after_seconds=30),
    ],
    ids=["429", "rate-budget"],
)
def test_a_throttled_bulk_call_is_not_split(clock: FakeClock, error: Exception) -> None:
    api = PoisonApi(set(range(1, 11)), error)

    results = archive_ids(api, list(range(1, 11)), Deadline(clock.now + 60, clock))

    assert api.bulk_calls == [list(range(1, 11))]
    assert api.calls == []
    assert {(r.outcome, r.retry_after_seconds) for r in results.values()} == {(Outcome.FAILED, 30)}


def test_a_request_wide_error_while_splitting_stops_and_keeps_the_bulk_failure(clock: FakeClock) -> None:
    class KeyRevokedMidway(PoisonApi):
        def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
            if len(self.bulk_calls) == 2:
                self.bulk_calls.append(list(sequence_ids))
                raise ReplyAuthenticationError("Reply rejected the API key (401)", http_status=401)
            return super().bulk_archive(sequence_ids, deadline)

    api = KeyRevokedMidway({9})

    results = archive_ids(api, list(range(1, 11)), Deadline(clock.now + 60, clock))

    assert api.bulk_calls == [list(range(1, 11)), [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    assert outcomes_of(results) == {Outcome.ARCHIVED: {1, 2, 3, 4, 5}, Outcome.FAILED: {6, 7, 8, 9, 10}}
    assert results[6].http_status == 401


def test_when_every_part_of_a_split_fails_too_isolation_stops_and_later_chunks_are_not_split(
    clock: FakeClock,
) -> None:
    # Given Reply answering 500 to everything (an outage, not a poison ID)
    ids = list(range(1, 201))
    api = PoisonApi(set(ids))

    results = archive_ids(api, ids, Deadline(clock.now + 60, clock))

    # Then two levels of halves are tried (2 + 4 calls), not 2n - 1, and the second chunk only once
    assert [len(call) for call in api.bulk_calls] == [100, 50, 50, 25, 25, 25, 25, 100]
    assert api.calls == []
    assert {r.outcome for r in results.values()} == {Outcome.FAILED}
    assert results[1].error == "not isolated (every part of the failing bulk call failed too): Reply answered 500"


def test_a_sequence_split_off_a_poisoned_chunk_is_still_paused_first(clock: FakeClock) -> None:
    api = PoisonApi({4}, running={2})

    results = archive_ids(api, [1, 2, 3, 4], Deadline(clock.now + 60, clock), pause_first=True)

    assert outcomes_of(results) == {Outcome.ARCHIVED: {1, 2, 3}, Outcome.FAILED: {4}}
    assert results[2].paused is True
    assert api.paused == [2]


@pytest.mark.parametrize("code", ["sequenceAction.teamMemberNotFound", "SEQUENCEACTION.TEAMMEMBERNOTFOUND"])
def test_a_whole_call_team_member_not_found_uses_single_calls_for_that_chunk_only(clock: FakeClock, code: str) -> None:
    # Given a bulk call refused as a whole for one ID whose team member is gone
    gone = ReplyResponse(
        400, problem=Problem(code="sequenceAction.teamMemberNotFound", detail="Team member is not found.")
    )
    api = BulkApi(
        [BulkArchiveResponse(400, problem=Problem(code=code)), bulk_ok()],
        {1: ReplyResponse(200), 2: gone, 3: ReplyResponse(200)},
    )
    archiver = SequenceArchiver(api, mode=ArchiveMode.BULK, bulk_max_ids=3)  # type: ignore[arg-type]
    deadline = Deadline(clock.now + 60, clock)

    results = archiver.archive(parse_archive_request({"sequenceIds": [1, 2, 3, 4, 5]}), deadline)

    # Then single calls find it: only that ID is forbidden, and the next chunk still goes in bulk
    assert [r.outcome for r in results] == [
        Outcome.ARCHIVED,
        Outcome.FORBIDDEN,
        Outcome.ARCHIVED,
        Outcome.ARCHIVED,
        Outcome.ARCHIVED,
    ]
    assert api.calls == [1, 2, 3]
    assert api.bulk_calls == [[1, 2, 3], [4, 5]]


class BuggyApi(PoisonApi):
    """An api whose call raises a plain Python error (a bug) for the IDs in `broken`."""

    def __init__(self, broken: set[int], **kwargs: Any) -> None:
        super().__init__(set(), **kwargs)
        self.broken = broken

    def bulk_archive(self, sequence_ids: list[int], deadline: Deadline) -> BulkArchiveResponse:
        if self.broken & set(sequence_ids):
            self.bulk_calls.append(list(sequence_ids))
            raise KeyError("rk_live_SECRET in the text")
        return super().bulk_archive(sequence_ids, deadline)

    def release_unused_budget(self, deadline: Deadline) -> None:
        """No rate budget here."""

    def archive_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        if sequence_id in self.broken:
            self.calls.append(sequence_id)
            raise RuntimeError("rk_live_SECRET in the text")
        return super().archive_sequence(sequence_id, deadline)

    def pause_sequence(self, sequence_id: int, deadline: Deadline) -> ReplyResponse:
        if sequence_id in self.broken:
            raise AttributeError("rk_live_SECRET in the text")
        return super().pause_sequence(sequence_id, deadline)


@pytest.mark.parametrize(
    ("mode", "pause_first", "broken_ids", "error_type"),
    [
        (ArchiveMode.BULK, False, {1, 2, 3}, "KeyError"),  # the first chunk's bulk call raises
        (ArchiveMode.SINGLE, False, {2}, "RuntimeError"),
        (ArchiveMode.SINGLE, True, {2}, "RuntimeError"),  # the pause-then-archive path
    ],
    ids=["bulk", "single", "pause-first"],
)
def test_an_unexpected_exception_fails_only_the_ids_of_that_call(
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    mode: ArchiveMode,
    pause_first: bool,
    broken_ids: set[int],
    error_type: str,
) -> None:
    api = BuggyApi({2}, running={2} if pause_first else None)
    archiver = SequenceArchiver(api, mode=mode, bulk_max_ids=3)
    request = parse_archive_request({"sequenceIds": [1, 2, 3, 4, 5], "pauseFirst": pause_first})

    with caplog.at_level(logging.ERROR, logger="sequence_archiver.archiving.archiver"):
        results = archiver.archive(request, Deadline(clock.now + 60, clock))

    assert {r.sequence_id for r in results if r.outcome is Outcome.FAILED} == broken_ids
    assert {r.sequence_id for r in results if r.outcome is Outcome.ARCHIVED} == {1, 2, 3, 4, 5} - broken_ids
    failed = next(r for r in results if r.outcome is Outcome.FAILED)
    assert failed.error == f"unexpected error while calling Reply ({error_type})"
    [record] = [r for r in caplog.records if r.getMessage() == "unexpected error while calling reply"]
    assert record.__dict__["error"] == error_type
    assert "rk_live_SECRET" not in caplog.text
