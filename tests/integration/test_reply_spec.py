"""Reply's spec to the letter, through the real handler: the archiver works whether Reply answers as its spec
documents or as the simulator assumes (local/stand_ins/reply_simulator/assumptions.py), with either 401 body, with a
bulk size limit smaller than REPLY_BULK_MAX_IDS, and with or without the `x-rate-limit-*` headers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import urllib3

from local.stand_ins.aws_stack import read_results_events
from local.stand_ins.reply_simulator import Assumptions, RateLimit
from tests.integration.harness import details_by_request, invoke_with_sqs, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration
ALL_SCOPES = frozenset({"sequences:read", "sequences:operate", "sequences:write"})
BULK_PATH = "/v3/sequences/archive"
ACTIVE_DETAIL = "Sequence is active. Pause it first: archiving removes every contact currently in it."
SALES_AGENT_DETAIL = "This action is not allowed on a sales-agent sequence."
ANSWERS = {"assumed": Assumptions(), "spec-only": Assumptions.spec_only()}


def start_handler(
    monkeypatch: pytest.MonkeyPatch, load_handler: Callable[[], LambdaInstance], simulator: ReplySimulator, **env: str
) -> LambdaInstance:
    """The handler, cold, pointed at this simulator, with these extra environment variables."""
    monkeypatch.setenv("REPLY_API_BASE_URL", simulator.base_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_handler()


# ------------------------------------------------------------------------- 401: empty body (spec) or problem (live)


@pytest.mark.parametrize("mode", ["single", "bulk"])
@pytest.mark.parametrize("unauthorized_body", ["empty", "problem"])
def test_a_rejected_key_is_re_read_once_then_fails_the_same_with_either_401_body(
    unauthorized_body: str,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
    api_key: str,
) -> None:
    # Given Reply rejecting the function's key, answering 401 with the spec's empty body or the live problem
    simulator = start_reply_simulator(api_keys={"some-other-key": ALL_SCOPES}, unauthorized_body=unauthorized_body)
    handler = start_handler(monkeypatch, load_handler, simulator, REPLY_ARCHIVE_MODE=mode)

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [112, 113, 114]})], lambda_context())

    # Then the key is re-read once (a second call), and every ID fails retryably, the same either way
    assert [(r.status, r.key_accepted) for r in simulator.requests] == [(401, False), (401, False)]
    assert invocation.failed_message_ids == set(invocation.message_ids)
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    first, *rest = detail["results"]
    assert (first["outcome"], first["httpStatus"], first["via"], first["error"]) == (
        "failed",
        401,
        mode,
        "Reply rejected the API key (401) even after re-reading the secret",
    )
    if mode == "single":  # the others were not sent: the key is known to be refused
        assert [(r["outcome"], r["httpStatus"], r["via"]) for r in rest] == [("failed", 401, None)] * 2
        assert all(r["error"].startswith("not attempted: ") for r in rest)
    else:  # one bulk call held all three
        assert rest == [first | {"sequenceId": 113}, first | {"sequenceId": 114}]
    captured = capsys.readouterr()
    assert api_key not in captured.out + captured.err + json.dumps(detail)


# ------------------------------------------------------------ codes the spec does not document, switched on and off


def sim_call(simulator: ReplySimulator, method: str, path: str, api_key: str, body: object = None) -> Any:
    """One raw call to the simulator: (status, decoded body)."""
    response = urllib3.request(
        method, simulator.base_url + path, json=body, headers={"Authorization": "Bearer " + api_key}, retries=False
    )
    return response.status, json.loads(response.data) if response.data else None


@pytest.mark.parametrize(
    ("method", "path", "body", "assumed", "documented"),
    [
        pytest.param(
            "POST", "/v3/sequences/301/archive", None,
            (409, {"code": "sequenceAction.invalidState", "detail": ACTIVE_DETAIL}),
            (409, {"detail": ACTIVE_DETAIL}),
            id="archive-active-409",
        ),
        pytest.param(
            "POST", "/v3/sequences/701/archive", None,
            (409, {"code": "sequenceAction.salesAgentNotAllowed", "detail": SALES_AGENT_DETAIL}),
            (409, {"detail": SALES_AGENT_DETAIL}),
            id="archive-sales-agent-409",
        ),
        pytest.param(
            "POST", "/v3/sequences/201/pause", None,
            (409, {"code": "sequenceAction.notStarted", "detail": "Sequence has never been started."}),
            (409, {"detail": "Sequence has never been started."}),
            id="pause-not-started-409",
        ),
        pytest.param(
            "GET", "/v3/sequences?status=archived", None,
            (400, {"code": "sequence.invalidFilter", "detail": "Invalid status value 'archived'."}),
            (400, {"detail": "Invalid status value 'archived'."}),
            id="list-bad-filter-400",
        ),
        pytest.param(
            "POST", BULK_PATH, {"ids": [101, 301]},
            (200, {"301": {"error": "invalidState", "errorDetails": ACTIVE_DETAIL}}),
            (200, {"301": {"errorDetails": ACTIVE_DETAIL}}),
            id="bulk-item-active",
        ),
        pytest.param(
            "POST", BULK_PATH, {"ids": [101, 601]},
            (200, {"601": {"error": "teamMemberNotFound", "errorDetails": "Team member is not found."}}),
            (400, {"code": "sequenceAction.teamMemberNotFound", "detail": "Team member is not found."}),
            id="bulk-item-team-member-gone",
        ),
    ],
)  # fmt: skip
@pytest.mark.parametrize("answers", ANSWERS)
def test_each_undocumented_code_is_an_assumption_and_switched_off_the_spec_is_answered(
    answers: str,
    method: str,
    path: str,
    body: object,
    assumed: tuple[int, dict[str, Any]],
    documented: tuple[int, dict[str, Any]],
    start_reply_simulator: Callable[..., ReplySimulator],
    api_key: str,
) -> None:
    simulator = start_reply_simulator(assumptions=ANSWERS[answers], rate_limit=None)
    status, expected = assumed if answers == "assumed" else documented

    answered_status, answer = sim_call(simulator, method, path, api_key, body)

    assert answered_status == status
    if status == 200:
        assert answer == expected
    else:  # a problem: the documented fields, and a `code` only where one is assumed or documented
        assert {key: answer[key] for key in ("code", "detail") if key in answer} == expected
    bulk_refused_whole = method == "POST" and path == BULK_PATH and status == 400
    archived_101 = simulator.sequence(101)
    assert archived_101 is not None
    assert archived_101.is_archived is (path == BULK_PATH and not bulk_refused_whole)


@pytest.mark.parametrize("mode", ["single", "bulk"])
@pytest.mark.parametrize("answers", ANSWERS)
def test_the_handler_reads_the_same_outcomes_from_documented_and_assumed_answers(
    answers: str,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    simulator = start_reply_simulator(assumptions=ANSWERS[answers])
    handler = start_handler(monkeypatch, load_handler, simulator, REPLY_ARCHIVE_MODE=mode)
    body = {"sequenceIds": [101, 301, 601, 701, 401, 999_999]}

    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps(body)], lambda_context())

    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert outcomes(detail) == {
        101: "archived",
        301: "conflict",
        601: "forbidden",
        701: "conflict",
        401: "already_archived",
        999_999: "not_found",
    }
    by_id = {r["sequenceId"]: r for r in detail["results"]}
    # Reply's own words reach the results either way; the code only where Reply (or the assumption) gave one
    active_code = "sequenceAction.invalidState: " if answers == "assumed" else ""
    # (a sales-agent sequence has a documented per-item slug, but in spec-only bulk mode 601 sends every ID to
    # the single endpoint, where the code is an assumption)
    sales_agent_code = "sequenceAction.salesAgentNotAllowed: " if answers == "assumed" else ""
    assert by_id[301]["error"] == active_code + ACTIVE_DETAIL
    assert by_id[701]["error"] == sales_agent_code + SALES_AGENT_DETAIL
    assert by_id[601]["error"] == "sequenceAction.teamMemberNotFound: Team member is not found."
    calls = [(r.path == BULK_PATH, r.status) for r in simulator.requests]
    if mode == "single":
        assert calls == [(False, status) for status in (200, 409, 400, 409, 409, 404)]
        assert {r["via"] for r in detail["results"]} == {"single"}
    elif answers == "assumed":  # one bulk call decides every item
        assert calls == [(True, 200)]
        assert {(r["via"], r["httpStatus"]) for r in detail["results"]} == {("bulk", None)}
    else:  # the spec's whole-call 400 for 601: single calls find it, for this chunk only
        assert calls == [(True, 400)] + [(False, status) for status in (200, 409, 400, 409, 409, 404)]
        assert {r["via"] for r in detail["results"]} == {"single"}


@pytest.mark.parametrize("mode", ["single", "bulk"])
@pytest.mark.parametrize("answers", ANSWERS)
def test_pause_first_archives_an_active_sequence_whether_or_not_its_409_has_a_code(
    answers: str,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    simulator = start_reply_simulator(assumptions=ANSWERS[answers])
    handler = start_handler(monkeypatch, load_handler, simulator, REPLY_ARCHIVE_MODE=mode)

    invocation = invoke_with_sqs(
        handler, aws_stack, [json.dumps({"sequenceIds": [302, 303], "pauseFirst": True})], lambda_context()
    )

    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    assert [(r["outcome"], r.get("paused"), r["via"], r["httpStatus"]) for r in detail["results"]] == [
        ("archived", True, "single", 200)
    ] * 2
    for sequence_id in (302, 303):
        sequence = simulator.sequence(sequence_id)
        assert sequence is not None
        assert (sequence.status, sequence.is_archived) == ("paused", True)


# ----------------------------------------------------------------- bulk size: REPLY_BULK_MAX_IDS above Reply's limit


def test_a_bulk_size_above_replys_limit_is_halved_and_remembered_so_no_batch_fails(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
) -> None:
    # Given REPLY_BULK_MAX_IDS at the spec text's 1000, and Reply holding to its example's 100
    simulator = start_reply_simulator(bulk_max_ids=100)
    simulator.add_sequences(range(20_001, 21_201))
    handler = start_handler(monkeypatch, load_handler, simulator, REPLY_BULK_MAX_IDS="1000")
    first_ids, second_ids = list(range(20_001, 21_001)), list(range(21_001, 21_201))

    # When a request of 1000 IDs, then (on the same instance) one of 200, are archived
    first = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": first_ids})], lambda_context())
    first_calls = [(len(r.sequence_ids), r.status) for r in simulator.requests]
    second = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": second_ids})], lambda_context())
    second_calls = [(len(r.sequence_ids), r.status) for r in simulator.requests][len(first_calls) :]

    # Then every ID is archived, in bulk calls only
    assert first.failed_message_ids == second.failed_message_ids == set()
    details = details_by_request(read_results_events(aws_stack, expected=2))
    for invocation, ids in ((first, first_ids), (second, second_ids)):
        detail = details[invocation.message_ids[0]]
        assert detail["counts"]["archived"] == len(ids)
        assert {(r["outcome"], r["via"], r["httpStatus"]) for r in detail["results"]} == {("archived", "bulk", None)}
    assert all(sequence.is_archived for sequence in simulator.sequences() if sequence.id > 20_000)
    assert {r.path for r in simulator.requests} == {BULK_PATH}
    # ... the first request by halving until Reply took the calls: 4 refused calls, then chunks of 62
    assert first_calls == [(1000, 400), (500, 400), (250, 400), (125, 400)] + [(62, 200)] * 16 + [(8, 200)]
    # ... and the second one at the remembered size from its first call
    assert second_calls == [(62, 200)] * 3 + [(14, 200)]


# -------------------------------------------------------------------- x-rate-limit-* headers are not in the spec


CALLS = 41


def paced_run(
    headers: bool,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
    api_key: str,
) -> tuple[list[int], dict[str, Any], float, bool]:
    """A 20-a-minute budget compressed 60x (20 calls a second, the function paced to the same) and 41 single calls:
    two windows' worth, then one that must wait for the third window, so the run measures the pacing, not a
    burst. Returns the statuses Reply answered, the results detail, the calls per second Reply saw over the run,
    and whether its answers carried `x-rate-limit-*` headers."""
    simulator = start_reply_simulator(
        rate_limit=RateLimit(per_minute=20, per_hour=None, minute_seconds=1.0), rate_limit_headers=headers
    )
    first = 30_001 if headers else 40_001
    ids = list(range(first, first + CALLS))
    simulator.add_sequences(ids)
    handler = start_handler(
        monkeypatch,
        load_handler,
        simulator,
        REPLY_ARCHIVE_MODE="single",
        REPLY_RATE_LIMIT_PER_MINUTE="20",
        REPLY_RATE_LIMIT_PER_HOUR="0",
        REPLY_RATE_LIMIT_TIME_SCALE=str(1 / 60),
    )
    invocation = invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": ids})], lambda_context())
    assert invocation.failed_message_ids == set()
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    records = simulator.requests
    calls_per_second = (len(records) - 1) / (records[-1].at - records[0].at)
    probe = urllib3.request(
        "GET", simulator.base_url + "/v3/sequences/101", headers={"Authorization": "Bearer " + api_key}
    )
    return [r.status for r in records], detail, calls_per_second, "x-rate-limit-remaining" in probe.headers


def test_pacing_keeps_the_same_throughput_and_no_429_without_the_x_rate_limit_headers(
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    start_reply_simulator: Callable[..., ReplySimulator],
    lambda_context: Callable[..., LocalLambdaContext],
    api_key: str,
) -> None:
    # Given the same paced workload against Reply with the live headers, and against Reply as its spec has it
    runs = {
        headers: paced_run(
            headers, monkeypatch, load_handler, aws_stack, start_reply_simulator, lambda_context, api_key
        )
        for headers in (True, False)
    }

    # Then both runs make one call per ID, none refused with a 429, and archive every ID...
    for headers, (statuses, detail, _, headers_seen) in runs.items():
        assert headers_seen is headers
        assert statuses == [200] * CALLS
        assert detail["counts"]["archived"] == CALLS
    # ... at the same pace (a ratio, never a time: a loaded machine slows both runs alike)
    ratio = runs[False][2] / runs[True][2]
    print(f"x-rate-limit proof: {runs[False][2]:.1f} calls/s without the headers, {runs[True][2]:.1f} with")
    print(f"x-rate-limit proof: throughput ratio without/with = {ratio:.2f}")
    assert 0.75 <= ratio <= 1.33
