"""The API key secret: bare or JSON, read within the deadline, cached as a SecretStr only, never quoted."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.stub import Stubber

from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import ApiKeyMalformedError, ApiKeyUnavailableError, AwsCallTimeoutError
from sequence_archiver.reply.api_key import SecretsManagerApiKey, parse_secret_string

KEY = "rk_live_SECRET_MARKER_0123456789"


@pytest.mark.parametrize("secret", [KEY, f"  {KEY}\n", f'{{"apiKey": "{KEY}"}}', f'{{"apiKey": " {KEY} ", "note": 1}}'])
def test_bare_and_json_secrets_give_the_key(secret: str) -> None:
    key = parse_secret_string(secret)
    assert key.get_secret_value() == KEY
    assert KEY not in repr(key)
    assert KEY not in str(key)


@pytest.mark.parametrize(
    "secret",
    ["", "   ", f'{{"apiKey": "{KEY}"', f'{{"key": "{KEY}"}}', '{"apiKey": 5}', f"{KEY} extra", f"{KEY}\r\nX-Evil: 1"],
)
def test_malformed_secrets_are_rejected_without_quoting_them(secret: str) -> None:
    with pytest.raises(ApiKeyMalformedError) as excinfo:
        parse_secret_string(secret)
    assert KEY not in str(excinfo.value)
    assert excinfo.value.__cause__ is None


@pytest.mark.parametrize(
    ("key", "kind", "position"),
    [
        ("rk_live_\u20ac_SECRET_MARKER", "a non-ASCII character", 9),
        ("rk_live_SECRET\u2028MARKER", "a line or paragraph separator", 15),
        ("\ufeffrk_live_SECRET_MARKER", "a byte order mark", 1),
        ("rk_live_SECRET_MARKER\ufeff", "a byte order mark", 22),
        ("rk_live\x0bSECRET_MARKER", "a control character", 8),  # VT
        ("rk_live_SECRET_MARKER\x0c", "a control character", 22),  # FF, even at the end
        ("rk_live_SE\x7fCRET_MARKER", "a control character", 11),  # DEL
        ("rk_live_SECRET_MARKER\x85x", "a control character", 22),  # C1 (NEL)
        ("rk_live_SECRET MARKER", "a space", 15),
        ("rk_live_SECRET\u00a0MARKER", "a non-ASCII space", 15),
        ("rk_live_SECRET\u200bMARKER", "an invisible formatting character", 15),
        ("rk_live_SECRET\tMARKER", "a control character", 15),
    ],
)
@pytest.mark.parametrize("shape", ["bare", "json"])
def test_a_key_no_header_can_carry_is_refused_naming_the_kind_and_place_but_not_the_key(
    key: str, kind: str, position: int, shape: str
) -> None:
    secret = key if shape == "bare" else json.dumps({"apiKey": key})

    with pytest.raises(ApiKeyMalformedError) as excinfo:
        parse_secret_string(secret)

    message = str(excinfo.value)
    assert f"has {kind} at character {position} of {len(key)}" in message
    assert not any(key[start : start + 6] in message for start in range(len(key) - 5))
    assert excinfo.value.__cause__ is None


@pytest.mark.parametrize("edge", [" ", "\t", "\r\n", "\n\n"])
def test_spaces_tabs_and_line_ends_around_the_key_are_stripped(edge: str) -> None:
    assert parse_secret_string(f"{edge}{KEY}{edge}").get_secret_value() == KEY
    assert parse_secret_string(json.dumps({"apiKey": f"{edge}{KEY}{edge}"})).get_secret_value() == KEY


def test_every_visible_ascii_character_is_a_valid_key_character() -> None:
    every = "".join(chr(code) for code in range(0x21, 0x7F))

    assert parse_secret_string(every).get_secret_value() == every


# ---------------------------------------------------------------- reading the secret


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stubbed_provider(*responses: dict[str, Any]) -> tuple[SecretsProvider, Stubber]:
    """A real Powertools SecretsProvider on a real client whose answers are stubbed (no network)."""
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    for response in responses:
        stubber.add_response("get_secret_value", {"ARN": ARN, "Name": "reply/api-key", **response})
    stubber.activate()
    return SecretsProvider(boto3_client=client), stubber


ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/api-key-AbCdEf"


def source(provider: Any, clock: Clock | None = None, max_age_seconds: int = 300) -> SecretsManagerApiKey:
    return SecretsManagerApiKey(
        secret_id=ARN, provider=provider, max_age_seconds=max_age_seconds, clock=clock or Clock()
    )


def everything_about(error: BaseException) -> str:
    """The message, args, repr, and the same of the cause and context chain, as one text."""
    parts = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args), repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def test_the_key_is_read_once_and_cached_for_the_max_age() -> None:
    provider, stubber = stubbed_provider({"SecretString": f'{{"apiKey": "{KEY}"}}'}, {"SecretString": "rk_rotated"})
    clock = Clock()
    keys = source(provider, clock, max_age_seconds=300)

    first = keys.api_key()
    clock.now += 299
    cached = keys.api_key()
    clock.now += 2
    reread = keys.api_key()

    assert (first.get_secret_value(), cached.get_secret_value(), reread.get_secret_value()) == (KEY, KEY, "rk_rotated")
    stubber.assert_no_pending_responses()


def test_refresh_reads_the_secret_again() -> None:
    provider, stubber = stubbed_provider({"SecretString": KEY}, {"SecretString": "rk_rotated"})
    keys = source(provider)

    assert keys.api_key().get_secret_value() == KEY
    assert keys.api_key(refresh=True).get_secret_value() == "rk_rotated"
    stubber.assert_no_pending_responses()


def test_no_object_that_holds_the_key_shows_it_in_repr_or_vars() -> None:
    provider, _ = stubbed_provider({"SecretString": f'{{"apiKey": "{KEY}"}}'})
    keys = source(provider)

    keys.api_key()

    assert KEY not in repr(keys)
    assert KEY not in repr(vars(keys))
    # Powertools' cache is not used (max_age=0 is never stored): the provider holds nothing either.
    assert provider.store == {}
    assert KEY not in repr(vars(provider))


def test_a_binary_secret_in_utf8_gives_the_key() -> None:
    provider, _ = stubbed_provider({"SecretBinary": KEY.encode()})

    assert source(provider).api_key().get_secret_value() == KEY


def test_a_binary_secret_that_is_not_utf8_is_malformed_and_the_error_holds_no_bytes() -> None:
    secret_bytes = b"\xff\xfe" + KEY.encode() + b"\xc3"
    provider, _ = stubbed_provider({"SecretBinary": secret_bytes})

    with pytest.raises(ApiKeyMalformedError) as excinfo:
        source(provider).api_key()

    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None
    text = everything_about(excinfo.value)
    assert KEY not in text
    assert "\\xff" not in text


@pytest.mark.parametrize(
    "secret",
    [
        f'{{"apiKey": "{KEY}"',
        f'{{"apiKey": "{KEY}", "n": {"9" * 5000}}}',
        f'{{"apiKey": "{KEY}", "n": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["truncated JSON", "5,000-digit number", "nested too deep"],
)
def test_unparseable_json_secrets_are_malformed_and_chain_nothing_that_quotes_them(secret: str) -> None:
    with pytest.raises(ApiKeyMalformedError) as excinfo:
        parse_secret_string(secret)

    assert excinfo.value.__context__ is None
    assert KEY not in everything_about(excinfo.value)


def test_a_failed_read_is_unavailable_with_the_cause_kept() -> None:
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber.add_client_error("get_secret_value", service_error_code="ThrottlingException", http_status_code=400)
    stubber.activate()

    with pytest.raises(ApiKeyUnavailableError) as excinfo:
        source(SecretsProvider(boto3_client=client)).api_key()

    assert isinstance(excinfo.value.__cause__, GetParameterError)


class HangingProvider:
    """A provider whose read never finishes (until released at teardown)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def get(self, name: str, **options: Any) -> str:
        self.release.wait()
        return KEY


def test_a_read_that_does_not_finish_in_time_is_unavailable() -> None:
    provider = HangingProvider()
    deadline = Deadline(expires_at=time.monotonic() + 0.3)
    started = time.monotonic()
    try:
        with pytest.raises(ApiKeyUnavailableError) as excinfo:
            source(provider).api_key(deadline=deadline)
    finally:
        provider.release.set()

    assert time.monotonic() - started < 0.3 + 0.3
    assert isinstance(excinfo.value.__cause__, AwsCallTimeoutError)
    assert KEY not in everything_about(excinfo.value)


# ---------------------------------------------------------------- the keys a continuation may be sealed with


def test_earlier_keys_are_the_current_version_read_again_and_the_previous_version() -> None:
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    answer = {"ARN": ARN, "Name": "reply/api-key"}
    stubber.add_response("get_secret_value", {**answer, "SecretString": KEY}, {"SecretId": ARN})
    stubber.add_response("get_secret_value", {**answer, "SecretString": "rk_new"}, {"SecretId": ARN})
    stubber.add_response(
        "get_secret_value", {**answer, "SecretString": KEY}, {"SecretId": ARN, "VersionStage": "AWSPREVIOUS"}
    )
    stubber.activate()
    clock = Clock()
    keys = source(SecretsProvider(boto3_client=client), clock)

    keys.api_key()
    earlier = keys.earlier_api_keys()
    clock.now += 30
    again = keys.earlier_api_keys()  # within a minute: no read (forged messages cost no reads)

    assert [key.get_secret_value() for key in earlier] == ["rk_new", KEY]
    assert again == earlier
    assert keys.api_key().get_secret_value() == "rk_new"
    stubber.assert_no_pending_responses()


def test_a_secret_never_rotated_has_no_previous_key() -> None:
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber.add_response("get_secret_value", {"ARN": ARN, "Name": "reply/api-key", "SecretString": KEY})
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException", http_status_code=400)
    stubber.activate()

    earlier = source(SecretsProvider(boto3_client=client)).earlier_api_keys()

    assert [key.get_secret_value() for key in earlier] == [KEY]
