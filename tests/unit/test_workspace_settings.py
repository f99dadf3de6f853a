"""Named workspaces in the settings: REPLY_WORKSPACES and REPLY_WORKSPACE_SECRET_IDS pair up, or the cold start fails
naming the variable."""

from __future__ import annotations

import pytest

from sequence_archiver.core.exceptions import ConfigurationError
from sequence_archiver.settings import MAX_WORKSPACES, load_settings
from sequence_archiver.wiring import Workspaces

DEFAULT_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/api-key-AbCdEf"
REQUIRED = {"REPLY_API_KEY_SECRET_ID": DEFAULT_SECRET}
EU = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:reply/sales-eu-GhIjKl"
US = "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:team_a/reply+key=1.@x-Ab12Cd"


def arn(number: int) -> str:
    return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/workspace-{number}-AbCdEf"


@pytest.mark.parametrize(
    "environment",
    [{}, {"REPLY_WORKSPACES": "", "REPLY_WORKSPACE_SECRET_IDS": ""}, {"REPLY_WORKSPACES": " "}],
    ids=["unset", "empty (the template's default)", "blank"],
)
def test_without_named_workspaces_only_the_default_secret_is_configured(environment: dict[str, str]) -> None:
    settings = load_settings({**REQUIRED, **environment})

    assert (settings.reply_workspaces, settings.workspace_secret_ids) == ((), {})
    assert settings.reply_api_key_secret_id == DEFAULT_SECRET


def test_names_and_secrets_pair_up_in_order_with_spaces_around_items_allowed() -> None:
    settings = load_settings(
        {**REQUIRED, "REPLY_WORKSPACES": " sales-eu , 2nd-team", "REPLY_WORKSPACE_SECRET_IDS": f"{EU} ,{US}"}
    )

    assert settings.reply_workspaces == ("sales-eu", "2nd-team")
    assert settings.workspace_secret_ids == {"sales-eu": EU, "2nd-team": US}
    assert list(settings.workspace_secret_ids) == ["sales-eu", "2nd-team"]


def test_as_many_workspaces_as_the_limit_are_served() -> None:
    names = ",".join(f"w{number}" for number in range(MAX_WORKSPACES))
    arns = ",".join(arn(number) for number in range(MAX_WORKSPACES))

    settings = load_settings({**REQUIRED, "REPLY_WORKSPACES": names, "REPLY_WORKSPACE_SECRET_IDS": arns})

    assert len(settings.workspace_secret_ids) == MAX_WORKSPACES


@pytest.mark.parametrize(
    ("names", "arns", "message"),
    [
        ("sales-eu,sales-us", EU, "REPLY_WORKSPACES names 2 workspace(s) and REPLY_WORKSPACE_SECRET_IDS holds 1"),
        ("", EU, "REPLY_WORKSPACES names 0 workspace(s) and REPLY_WORKSPACE_SECRET_IDS holds 1"),
        ("sales-eu", "", "REPLY_WORKSPACES names 1 workspace(s) and REPLY_WORKSPACE_SECRET_IDS holds 0"),
        ("sales-eu,sales-eu", f"{EU},{US}", "REPLY_WORKSPACES names sales-eu more than once"),
        ("sales-eu,sales-us", f"{EU},{EU}", "REPLY_WORKSPACE_SECRET_IDS names a secret more than once"),
        ("sales-eu", DEFAULT_SECRET, "or the default REPLY_API_KEY_SECRET_ID"),
        ("Sales-EU", EU, "REPLY_WORKSPACES: Value error, item 1 is not a workspace name"),
        ("ok,-leading-dash", f"{EU},{US}", "REPLY_WORKSPACES: Value error, item 2 is not a workspace name"),
        ("a" * 64, EU, "REPLY_WORKSPACES: Value error, item 1 is not a workspace name"),
        ("sales eu", EU, "REPLY_WORKSPACES: Value error, item 1 is not a workspace name"),
        ("sales-eu,,sales-us", f"{EU},{US}", "REPLY_WORKSPACES: Value error, has an empty item"),
        ("sales-eu,", EU, "REPLY_WORKSPACES: Value error, has an empty item"),
        ("sales-eu", f"{EU},", "REPLY_WORKSPACE_SECRET_IDS: Value error, has an empty item"),
        ("sales-eu", "reply/sales-eu", "REPLY_WORKSPACE_SECRET_IDS: Value error, item 1 is not a Secrets Manager"),
        ("sales-eu", EU.rsplit(":", 1)[0] + ":*", "REPLY_WORKSPACE_SECRET_IDS: Value error, item 1 is not a Secrets"),
        ("a,b", f"{EU},{EU[:-6]}??????", "REPLY_WORKSPACE_SECRET_IDS: Value error, item 2 is not a Secrets Manager"),
        ("sales-eu", EU.replace("eu-west-1", "*"), "item 1 is not a Secrets Manager secret ARN"),
    ],
)
def test_a_bad_pairing_fails_the_cold_start_saying_what_is_wrong(names: str, arns: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**REQUIRED, "REPLY_WORKSPACES": names, "REPLY_WORKSPACE_SECRET_IDS": arns})

    assert message in str(raised.value)


def test_more_workspaces_than_the_limit_fail_the_cold_start() -> None:
    count = MAX_WORKSPACES + 1
    names = ",".join(f"w{number}" for number in range(count))
    arns = ",".join(arn(number) for number in range(count))

    with pytest.raises(ConfigurationError, match=f"names {count} workspaces; at most {MAX_WORKSPACES} are served"):
        load_settings({**REQUIRED, "REPLY_WORKSPACES": names, "REPLY_WORKSPACE_SECRET_IDS": arns})


def test_the_error_never_quotes_a_secret_arn() -> None:
    bad = "arn:aws:secretsmanager:us-east-1:123456789012:secret:reply/*"

    with pytest.raises(ConfigurationError) as raised:
        load_settings({**REQUIRED, "REPLY_WORKSPACES": "sales-eu", "REPLY_WORKSPACE_SECRET_IDS": bad})

    assert bad not in str(raised.value)
    assert raised.value.__cause__ is None


def test_a_workspaces_client_and_archiver_are_built_on_its_first_use_and_kept() -> None:
    settings = load_settings(
        {**REQUIRED, "REPLY_WORKSPACES": "sales-eu,sales-us", "REPLY_WORKSPACE_SECRET_IDS": f"{EU},{US}"}
    )
    built: list[str] = []

    def client_for(workspace: str) -> object:
        built.append(workspace)
        return object()

    workspaces = Workspaces(settings, lambda _client, _workspace: None, client_for)  # type: ignore[arg-type]
    assert (workspaces.names, built) == (frozenset({"sales-eu", "sales-us"}), [])

    first = workspaces.archiver("sales-us")
    assert workspaces.archiver("sales-us") is first
    assert workspaces.client("sales-us") is workspaces.client("sales-us")
    assert built == ["sales-us"]  # sales-eu: nothing built for a workspace no request named
