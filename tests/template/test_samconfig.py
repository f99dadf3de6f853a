"""samconfig.toml deploys the stack the way the README says, with parameters the template accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.template

# Read by SAM itself: its config loader, then its --parameter-overrides parser.
_READ_DEPLOY_SETTINGS = """
import json
from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig

settings = SamConfig(".").get_all(["deploy"], "parameters", "default")
overrides = settings.get("parameter_overrides", [])
overrides = tuple(overrides) if isinstance(overrides, list) else (overrides,)
settings["parameter_overrides"] = CfnParameterOverridesType().convert(overrides, None, None)
print(json.dumps(settings))
"""


@pytest.fixture(scope="module")
def deploy_settings(sam_python) -> dict[str, Any]:
    """The settings `sam deploy` takes from samconfig.toml, parameter overrides parsed into a dict."""
    settings: dict[str, Any] = sam_python(_READ_DEPLOY_SETTINGS)
    return settings


def allows(declared: dict[str, Any], value: str) -> bool:
    """True when a CloudFormation parameter declaration accepts this value."""
    if "AllowedValues" in declared:
        return value in [str(allowed) for allowed in declared["AllowedValues"]]
    if declared["Type"] == "Number":
        return float(declared.get("MinValue", "-inf")) <= float(value) <= float(declared.get("MaxValue", "inf"))
    return re.fullmatch(declared.get("AllowedPattern", ".*"), value) is not None


def test_the_stack_is_named_and_deployed_with_a_confirmed_change_set(deploy_settings):
    assert deploy_settings["stack_name"] == "reply-sequence-archiver"
    assert deploy_settings["capabilities"] == "CAPABILITY_IAM"
    assert deploy_settings["confirm_changeset"] is True
    assert deploy_settings["resolve_s3"] is True


def test_the_region_is_left_to_the_user_s_environment(deploy_settings):
    assert "region" not in deploy_settings


def test_every_override_is_a_template_parameter_and_a_value_it_accepts(deploy_settings, sam_template):
    overrides = deploy_settings["parameter_overrides"]
    parameters = sam_template["Parameters"]

    assert overrides
    assert sorted(set(overrides) - set(parameters)) == []
    assert [name for name, value in overrides.items() if not allows(parameters[name], value)] == []


def test_the_overrides_keep_the_template_defaults(deploy_settings, sam_template):
    overrides = deploy_settings["parameter_overrides"]

    assert overrides == {name: str(sam_template["Parameters"][name]["Default"]) for name in overrides}
