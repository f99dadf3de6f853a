"""The CLI shares the function's key rules: a key no header can carry is exit 3 before any Reply call, naming where
it came from and never the key; a transformed copy of the key that Reply echoes is redacted from its errors."""

from __future__ import annotations

import base64
import json
import os
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import secretsmanager_client
from local.stand_ins.reply_simulator import Fault
from tests.cli.terminal import run_without_terminal, without_width

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]
MARKER = "CLI_BADKEY_MARKER"
BAD_KEYS = {
    "euro-sign": (f"rk_{MARKER}\u20ac0123", "a non-ASCII character", 21),
    "byte-order-mark": (f"\ufeffrk_{MARKER}0123", "a byte order mark", 1),
    "form-feed": (f"rk_{MARKER}\x0c0123", "a control character", 21),
    "c1-control": (f"rk_{MARKER}\x9b0123", "a control character", 21),
    "inner-space": (f"rk_{MARKER} 0123", "a space", 21),
}
LIST_PATH = "/v3/sequences"
REASON = "an HTTP header carries only visible ASCII (0x21-0x7E); check how the secret was written"


@pytest.mark.parametrize(("key", "kind", "position"), list(BAD_KEYS.values()), ids=list(BAD_KEYS))
def test_a_bad_key_in_the_variable_is_exit_3_naming_the_variable_and_calling_nothing(
    key: str,
    kind: str,
    position: int,
    cli: Callable[..., Run],
    reply_simulator: ReplySimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_API_KEY", key)

    run = cli("select", "--base-url", reply_simulator.base_url, "--status", "new")

    assert run.code == 3
    assert run.out == ""
    assert run.err == (
        f"sequence-archiver select: error: REPLY_API_KEY: the API key has {kind} at character {position} of "
        f"{len(key)}: {REASON}\n"
    )
    assert reply_simulator.requests == []


def test_a_bad_key_in_the_secret_is_exit_3_naming_the_secret_and_calling_nothing(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, aws_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPLY_API_KEY")
    key, kind, position = BAD_KEYS["euro-sign"]
    secretsmanager_client(aws_stack.endpoint_url, aws_stack.region).put_secret_value(
        SecretId=aws_stack.secret_arn, SecretString=json.dumps({"apiKey": key})
    )

    run = cli(
        "archive", "--base-url", reply_simulator.base_url, "--secret-id", aws_stack.secret_arn, "--yes", "101", "102"
    )

    assert run.code == 3
    assert run.err == (
        f"sequence-archiver archive: error: the API key secret {aws_stack.secret_arn}: the API key has {kind} at "
        f"character {position} of {len(key)}: {REASON}\n"
    )
    assert MARKER not in run.out
    assert reply_simulator.requests == []


def test_the_console_script_refuses_a_bad_key_with_exit_3_and_one_line(reply_simulator: ReplySimulator) -> None:
    key, kind, position = BAD_KEYS["c1-control"]

    run = run_without_terminal(
        ["archive", "--base-url", reply_simulator.base_url, "--yes", "101"],
        env=without_width(os.environ) | {"REPLY_API_KEY": key},
    )

    assert run.returncode == 3
    assert run.stdout == ""
    assert run.stderr == (
        f"sequence-archiver archive: error: REPLY_API_KEY: the API key has {kind} at character {position} of "
        f"{len(key)}: {REASON}\n"
    )
    assert reply_simulator.requests == []


def transformed(key: str) -> dict[str, str]:
    """Copies of the key a careless Reply might put in its problem text."""
    return {
        "75-percent-prefix": key[: len(key) * 3 // 4] + "...",
        "upper-case": key.upper(),
        "zero-width-split": "\u200b".join(key),
        "base64-of-the-header": base64.b64encode(f"Bearer {key}".encode()).decode(),
    }


@pytest.mark.parametrize("form", ["75-percent-prefix", "upper-case", "zero-width-split", "base64-of-the-header"])
def test_reply_errors_the_cli_prints_hold_no_fragment_of_the_key(
    form: str, api_key: str, cli: Callable[..., Run], reply_simulator: ReplySimulator
) -> None:
    copy = transformed(api_key)[form]
    problem = {"title": "Bad Request", "detail": f"unknown key {copy}", "status": 400}
    reply_simulator.inject(Fault(kind="body", status=400, times=1, path_prefix=LIST_PATH, body=json.dumps(problem)))

    run = cli("select", "--base-url", reply_simulator.base_url, "--status", "new")

    assert run.code == 2
    assert "[redacted]" in run.err
    shown = (run.out + run.err).lower()
    assert [api_key[at : at + 12] for at in range(len(api_key) - 11) if api_key[at : at + 12].lower() in shown] == []
