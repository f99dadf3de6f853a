"""The API key through the real handler: a key no header can carry stops the invocation before any Reply call,
and a transformed copy of the key that Reply echoes leaves no fragment in results, logs or metrics."""

from __future__ import annotations

import base64
import json
import logging
import unicodedata
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import read_results_events, secretsmanager_client
from local.stand_ins.reply_simulator import Fault
from tests.integration.harness import details_by_request, emf_metrics, invoke_with_sqs, outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

pytestmark = pytest.mark.integration

FRAGMENT = 12  # the measure: no 12-character piece of the key anywhere


def fragments_of(key: str, found_in: str) -> list[str]:
    """The FRAGMENT-character pieces of `key` that `found_in` holds, compared as the redaction compares."""
    seen = unicodedata.normalize("NFKC", found_in).lower()
    for invisible in ("\u200b", "\u00ad"):
        seen = seen.replace(invisible, "")
    return [key[at : at + FRAGMENT] for at in range(len(key) - FRAGMENT + 1) if key[at : at + FRAGMENT].lower() in seen]


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        ("\u20ac", "a non-ASCII character"),
        ("\u2028", "a line or paragraph separator"),
        ("\x0b", "a control character"),
        (" ", "a space"),
    ],
    ids=["euro-sign", "line-separator", "vertical-tab", "inner-space"],
)
def test_a_key_no_header_can_carry_fails_every_id_before_any_reply_call(
    bad: str,
    kind: str,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a secret whose key holds a character no HTTP header carries as it is
    key = f"rk_live_BADKEY_MARKER{bad}0123456789"
    secretsmanager_client(aws_stack.endpoint_url, aws_stack.region).put_secret_value(
        SecretId=aws_stack.secret_arn, SecretString=json.dumps({"apiKey": key})
    )
    handler = load_handler()
    bodies = [json.dumps({"sequenceIds": list(range(201, 206))}), json.dumps({"sequenceIds": list(range(206, 211))})]

    # When a batch of ten IDs arrives
    invocation = invoke_with_sqs(handler, aws_stack, bodies, lambda_context())

    # Then Reply is never called, every record comes back, and every ID says why, without the key
    assert reply_simulator.api_calls == 0
    assert reply_simulator.requests == []
    assert invocation.failed_message_ids == set(invocation.message_ids)
    details = details_by_request(read_results_events(aws_stack, expected=2))
    reasons = {result["error"] for detail in details.values() for result in detail["results"]}
    assert {outcome for detail in details.values() for outcome in outcomes(detail).values()} == {"failed"}
    assert reasons == {
        f"the API key has {kind} at character 22 of {len(key)}: an HTTP header carries only visible ASCII "
        "(0x21-0x7E); check how the secret was written"
    }
    captured = capsys.readouterr()
    shown = json.dumps(list(details.values())) + captured.out + captured.err
    assert "BADKEY_MARKER" not in shown
    assert "UnicodeEncodeError" not in shown
    assert sum(emf_metrics(captured.out).get("SequencesFailed", [])) == 10
    assert sum(emf_metrics(captured.out).get("ReplyApiCalls", [])) == 0
    stopped = [json.loads(line) for line in captured.out.splitlines() if '"archiving stopped"' in line]
    assert {line["reason"] for line in stopped} == {"ApiKeyMalformedError"}  # one bulk call held all ten IDs


def transformed_copies(key: str) -> dict[str, str]:
    """The copies of the key a careless Reply might echo (issue 20)."""
    fullwidth = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}
    return {
        "75-percent-prefix": key[: len(key) * 3 // 4] + "...",
        "upper-case": key.upper(),
        "zero-width-split": "\u200b".join(key),
        "soft-hyphen-split": "\u00ad".join(key),
        "fullwidth": key.translate(fullwidth),
        "base64-of-the-header": base64.b64encode(f"Bearer {key}".encode()).decode(),
    }


@pytest.mark.parametrize(
    "form",
    ["75-percent-prefix", "upper-case", "zero-width-split", "soft-hyphen-split", "fullwidth", "base64-of-the-header"],
)
def test_a_transformed_copy_of_the_key_echoed_by_reply_leaves_no_fragment_in_results_logs_or_metrics(
    form: str,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
    load_handler: Callable[[], LambdaInstance],
    aws_stack: LocalStack,
    reply_simulator: ReplySimulator,
    lambda_context: Callable[..., LocalLambdaContext],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a Reply that echoes a transformed copy of the key in every text of its problem
    copy = transformed_copies(api_key)[form]
    problem = {"title": f"bad key {copy}", "detail": f"Authorization: Bearer {copy}", "code": copy, "status": 400}
    reply_simulator.inject(Fault(kind="body", status=400, times=None, body=json.dumps(problem)))
    monkeypatch.setenv("REPLY_ARCHIVE_MODE", "single")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)
    handler = load_handler()

    # When an ID is archived
    invoke_with_sqs(handler, aws_stack, [json.dumps({"sequenceIds": [215]})], lambda_context())

    # Then its result says Reply's answer, with the copy redacted, and nothing anywhere holds a piece of the key
    [detail] = details_by_request(read_results_events(aws_stack, expected=1)).values()
    [result] = detail["results"]
    assert result["outcome"] == "failed"
    assert "[redacted]" in result["error"]
    captured = capsys.readouterr()
    assert fragments_of(api_key, json.dumps(detail, ensure_ascii=False)) == []
    assert fragments_of(api_key, captured.out + captured.err + caplog.text) == []
    assert reply_simulator.api_calls >= 1
