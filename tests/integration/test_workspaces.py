"""Several Reply workspaces in one deployment: each request's calls use only its workspace's key (two secrets in
moto, one simulator accepting both keys and naming each call's key in its log), its results and metrics say
which workspace, a request naming an unknown workspace is rejected on its own, and continuations keep the key."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import drain_queue, read_results_events, receive_batch, sqs_event_from_messages
from local.stand_ins.reply_simulator import Fault, key_fingerprint
from tests.integration.conftest import ALL_SCOPES
from tests.integration.harness import (
    details_by_request,
    invoke_with_sqs,
    metric_total,
    outcomes,
    unsealed,
    validate_plan,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

EU, US = "sales-eu", "sales-us"
EU_IDS, US_IDS, DEFAULT_IDS, UNKNOWN_IDS = [101, 102], [103, 104], [105], [106]  # seeded, paused sequences


@pytest.fixture
def workspace_keys(api_key: str) -> dict[str, str]:
    """Each named workspace's own Reply API key (a different Reply user each)."""
    return {EU: api_key + "-eu", US: api_key + "-us"}


@pytest.fixture
def simulator(
    start_reply_simulator: Callable[..., ReplySimulator],
    api_key: str,
    workspace_keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> ReplySimulator:
    """One Reply that accepts the default key and both workspaces' keys, the function pointed at it."""
    started = start_reply_simulator(api_keys=dict.fromkeys([api_key, *workspace_keys.values()], ALL_SCOPES))
    monkeypatch.setenv("REPLY_API_BASE_URL", started.base_url)
    return started


@pytest.fixture
def two_workspaces(
    aws_stack: LocalStack, function_env: dict[str, str], workspace_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A secret per workspace in moto (JSON for one, the bare key for the other), named to the function in order."""
    secrets = aws_stack.secretsmanager()
    arns = {
        EU: secrets.create_secret(
            Name=f"{aws_stack.secret_name}-{EU}", SecretString=json.dumps({"apiKey": workspace_keys[EU]})
        )["ARN"],
        US: secrets.create_secret(Name=f"{aws_stack.secret_name}-{US}", SecretString=workspace_keys[US])["ARN"],
    }
    monkeypatch.setenv("REPLY_WORKSPACES", f"{EU},{US}")
    monkeypatch.setenv("REPLY_WORKSPACE_SECRET_IDS", ",".join(arns.values()))
    return arns


def keys_by_sequence(simulator: ReplySimulator) -> dict[int, set[str | None]]:
    """Which keys (their fingerprints) the calls naming each sequence ID used."""
    used: dict[int, set[str | None]] = defaultdict(set)
    for call in simulator.requests:
        for sequence_id in (*call.sequence_ids, *([call.sequence_id] if call.sequence_id is not None else [])):
            used[sequence_id].add(call.key_fingerprint)
    return dict(used)


def emf_totals(stdout: str) -> dict[str | None, dict[str, float]]:
    """Metric totals of the EMF documents printed, by their `workspace` dimension (None: [service] only)."""
    totals: dict[str | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        [dimensions] = directive["Dimensions"]
        if "function_name" in dimensions:
            continue  # Powertools' ColdStart document
        workspace = blob["workspace"] if dimensions == ["workspace", "service"] else None
        assert dimensions in (["service"], ["workspace", "service"])
        for metric in directive["Metrics"]:
            value = blob[metric["Name"]]
            totals[workspace][metric["Name"]] += sum(value) if isinstance(value, list) else value
    return {workspace: dict(metrics) for workspace, metrics in totals.items()}


def test_one_batch_of_four_workspaces_uses_each_requests_own_key_and_rejects_only_the_unknown_one(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    simulator: ReplySimulator,
    two_workspaces: dict[str, str],
    workspace_keys: dict[str, str],
    api_key: str,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given one SQS batch: a request for each workspace, one naming none, and one naming a workspace not served
    handler = load_handler()
    bodies = [
        json.dumps({"sequenceIds": EU_IDS, "workspace": EU}),
        json.dumps({"sequenceIds": US_IDS, "workspace": US}),
        json.dumps({"sequenceIds": DEFAULT_IDS}),
        json.dumps({"sequenceIds": UNKNOWN_IDS, "workspace": "nowhere"}),
    ]

    # When the function takes the batch
    invocation = invoke_with_sqs(handler, aws_stack, bodies, lambda_context())

    # Then every record is settled: none is left to SQS's retries
    assert invocation.failed_message_ids == set()
    eu_id, us_id, default_id, unknown_id = invocation.message_ids
    # ... each request's calls used its own workspace's key, and only that one; the unknown one made no call
    fingerprint = {workspace: key_fingerprint(key) for workspace, key in workspace_keys.items()}
    expected = ((EU_IDS, fingerprint[EU]), (US_IDS, fingerprint[US]), (DEFAULT_IDS, key_fingerprint(api_key)))
    assert keys_by_sequence(simulator) == {sequence_id: {key} for ids, key in expected for sequence_id in ids}
    assert all(call.key_accepted for call in simulator.requests)
    # ... each result names its workspace (none for the default key's), every ID archived
    details = details_by_request(read_results_events(aws_stack, expected=4))
    assert (details[eu_id]["workspace"], outcomes(details[eu_id])) == (EU, dict.fromkeys(EU_IDS, "archived"))
    assert (details[us_id]["workspace"], outcomes(details[us_id])) == (US, dict.fromkeys(US_IDS, "archived"))
    assert "workspace" not in details[default_id]
    assert outcomes(details[default_id]) == dict.fromkeys(DEFAULT_IDS, "archived")
    # ... the unknown workspace is a final rejection that says why, parked for repair like any invalid request
    rejected = details[unknown_id]
    assert (rejected["workspace"], rejected["complete"], rejected["counts"]["invalid"]) == ("nowhere", True, 1)
    [result] = rejected["results"]
    assert result["outcome"] == "invalid"
    assert result["error"].startswith('request rejected: unknown workspace "nowhere": this function serves sales-eu')
    assert not simulator.sequence(UNKNOWN_IDS[0]).is_archived  # type: ignore[union-attr]
    parked = drain_queue(aws_stack.dead_letter_queue_url, endpoint_url=aws_stack.endpoint_url)
    assert [json.loads(message["Body"]) for message in parked] == [json.loads(bodies[3])]
    # ... the [service] metrics count everything, as the alarms and the dashboard read them; each served
    # workspace has its own figures beside them, and the unknown name is never a dimension value
    stdout = capsys.readouterr().out
    totals = emf_totals(stdout)
    assert set(totals) == {None, EU, US}
    service, eu, us = totals[None], totals[EU], totals[US]
    assert (service["SequencesArchived"], service["SequencesInvalid"], service["RequestsRejected"]) == (5, 1, 1)
    assert service["ReplyApiCalls"] == len(simulator.requests)
    assert (eu["SequencesArchived"], eu["SequencesInvalid"], us["SequencesArchived"], us["SequencesInvalid"]) == (
        2,
        0,
        2,
        0,
    )
    calls = [call.key_fingerprint for call in simulator.requests]
    assert (eu["ReplyApiCalls"], us["ReplyApiCalls"]) == (calls.count(fingerprint[EU]), calls.count(fingerprint[US]))
    assert not any(key in stdout for key in [api_key, *workspace_keys.values()])


def test_a_continuation_of_a_workspace_request_is_sealed_with_it_and_still_uses_that_workspaces_key(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    simulator: ReplySimulator,
    two_workspaces: dict[str, str],
    workspace_keys: dict[str, str],
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a sales-us request whose second ID fails once after the first was archived: it is carried on
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    simulator.inject(Fault(kind="status", status=500, sequence_id=US_IDS[1]))
    handler = load_handler()
    first = invoke_with_sqs(
        handler, aws_stack, [json.dumps({"sequenceIds": US_IDS, "workspace": US})], lambda_context()
    )
    [request_id] = first.message_ids
    assert first.failed_message_ids == set()
    [part_one] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    assert (part_one["workspace"], part_one["deferredIds"], part_one["continuation"]) == (US, [US_IDS[1]], 1)

    # When its continuation comes back from the queue (sealed, carrying the workspace)
    [message] = receive_batch(aws_stack, max_messages=1, timeout_seconds=15)
    body = unsealed(message["Body"])
    assert (body["workspace"], body["sequenceIds"], body["continuation"]["requestId"]) == (US, [US_IDS[1]], request_id)
    calls_before = len(simulator.requests)
    response = handler.lambda_handler(
        sqs_event_from_messages([message], aws_stack.queue_arn, aws_stack.region), lambda_context()
    )

    # Then its call used sales-us's key again, and its results carry the request on under the same workspace
    assert response["batchItemFailures"] == []
    [retried] = simulator.requests[calls_before:]
    assert (retried.sequence_id, retried.status) == (US_IDS[1], 200)
    assert retried.key_fingerprint == key_fingerprint(workspace_keys[US])
    [part_two] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    assert (part_two["requestId"], part_two["continuation"], part_two["workspace"]) == (request_id, 2, US)
    assert outcomes(part_two) == {US_IDS[1]: "archived"}


def test_a_continuation_whose_workspace_was_edited_is_not_honoured(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    simulator: ReplySimulator,
    two_workspaces: dict[str, str],
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a sealed sales-us continuation the function sent
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_MAX_ATTEMPTS", "1")
    simulator.inject(Fault(kind="status", status=500, sequence_id=US_IDS[1]))
    handler = load_handler()
    first = invoke_with_sqs(
        handler, aws_stack, [json.dumps({"sequenceIds": US_IDS, "workspace": US})], lambda_context()
    )
    [request_id] = first.message_ids
    read_results_events(aws_stack, expected=1)
    [message] = receive_batch(aws_stack, max_messages=1, timeout_seconds=15)
    drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url)  # the original continuation is gone

    # When someone sends it again with its workspace changed to sales-eu (MAC kept)
    edited: dict[str, Any] = json.loads(message["Body"])
    edited["workspace"] = EU
    forged = invoke_with_sqs(handler, aws_stack, [json.dumps(edited)], lambda_context())

    # Then the seal does not open it: a new request under its own ID, never part 2 of the sales-us request
    [forged_id] = forged.message_ids
    [detail] = [envelope["detail"] for envelope in read_results_events(aws_stack, expected=1)]
    assert (detail["requestId"], "continuation" in detail) == (forged_id, False)
    assert detail["requestId"] != request_id
    assert metric_total(capsys.readouterr().out, "ContinuationsForged") == 1


def test_a_clean_up_request_lists_with_its_workspaces_key_and_enqueues_archive_requests_for_that_workspace(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    simulator: ReplySimulator,
    two_workspaces: dict[str, str],
    workspace_keys: dict[str, str],
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARCHIVE_QUEUE_URL", aws_stack.queue_url)
    handler = load_handler()

    plan = handler.lambda_handler({"select": {"status": "new"}, "dryRun": False, "workspace": EU}, lambda_context())

    validate_plan(plan)
    assert (plan["workspace"], plan["outcome"], plan["sequenceIds"]) == (EU, "enqueued", [201, 202, 203, 204, 205])
    assert {call.key_fingerprint for call in simulator.requests} == {key_fingerprint(workspace_keys[EU])}
    queued = drain_queue(aws_stack.queue_url, endpoint_url=aws_stack.endpoint_url)
    assert [json.loads(message["Body"]) for message in queued] == [
        {"sequenceIds": [201, 202, 203, 204, 205], "workspace": EU}
    ]


def test_each_workspace_keeps_to_its_own_rate_budget(
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    simulator: ReplySimulator,
    two_workspaces: dict[str, str],
    lambda_context: Callable[..., LocalLambdaContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a budget of one call a minute per Reply user (per key), single calls
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_MINUTE", "1")
    monkeypatch.setenv("REPLY_RATE_LIMIT_PER_HOUR", "0")
    handler = load_handler()
    bodies = [
        json.dumps({"sequenceIds": EU_IDS, "workspace": EU}),
        json.dumps({"sequenceIds": US_IDS[:1], "workspace": US}),
        json.dumps({"sequenceIds": DEFAULT_IDS}),
    ]

    invocation = invoke_with_sqs(handler, aws_stack, bodies, lambda_context(timeout_seconds=30))

    # Then sales-eu's second ID waits for sales-eu's budget (carried on), and the other keys' calls are not held up
    assert invocation.failed_message_ids == set()
    eu_id, us_id, default_id = invocation.message_ids
    details = details_by_request(read_results_events(aws_stack, expected=3))
    assert (outcomes(details[eu_id]), details[eu_id]["deferredIds"]) == ({EU_IDS[0]: "archived"}, [EU_IDS[1]])
    assert outcomes(details[us_id]) == {US_IDS[0]: "archived"}
    assert outcomes(details[default_id]) == {DEFAULT_IDS[0]: "archived"}
    assert [call.sequence_id for call in simulator.requests] == [EU_IDS[0], US_IDS[0], DEFAULT_IDS[0]]
