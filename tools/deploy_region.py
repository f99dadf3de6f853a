"""`make deploy`'s region, decided as AWS CLI v2 decides it, and the `--region` option that makes SAM use it.

SAM CLI asks boto3 for the region, and boto3 reads AWS_DEFAULT_REGION and the profile but not AWS_REGION:
a shell with only AWS_REGION=eu-west-1 would deploy to us-east-1. This decides the region in AWS CLI v2's
order (--region, AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`), falls back to us-east-1, says
on stderr which region and why, and prints on stdout the option for `sam deploy`: `--region NAME`, or
nothing when samconfig.toml or DEPLOY_ARGS already name the region (SAM reads those itself).

    python -m tools.deploy_region [-- DEPLOY_ARGS...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import botocore.exceptions
import botocore.session

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

FALLBACK_REGION = "us-east-1"
DEFAULT_CONFIG_FILE = "samconfig.toml"
DEFAULT_CONFIG_ENV = "default"


class DeployRegionError(Exception):
    """The region cannot be decided: an unreadable samconfig.toml or a profile the AWS config does not have."""


@dataclass(frozen=True)
class RegionChoice:
    """The region `sam deploy` will use, where it came from, and whether it must be passed as --region."""

    region: str
    source: str
    pass_option: bool

    def sam_arguments(self) -> list[str]:
        """The options to add to `sam deploy`."""
        return ["--region", self.region] if self.pass_option else []


def _deploy_options(extra_args: Sequence[str]) -> argparse.Namespace:
    """The few `sam deploy` options in DEPLOY_ARGS that bear on the region; the rest are left to SAM."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--config-file", default=DEFAULT_CONFIG_FILE)
    parser.add_argument("--config-env", default=DEFAULT_CONFIG_ENV)
    options, _ = parser.parse_known_args(list(extra_args))
    return options


def samconfig_region(path: Path, config_env: str) -> tuple[str, str] | None:
    """The region samconfig.toml sets for `sam deploy` in this config environment, and the table naming it."""
    if not path.is_file():
        return None
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DeployRegionError(f"cannot read {path}: {exc}") from exc
    environment = settings.get(config_env, {})
    for command in ("deploy", "global"):  # SAM lets the command's own table win over [env.global]
        region = environment.get(command, {}).get("parameters", {}).get("region")
        if isinstance(region, str) and region:
            return region, f"{path.name} [{config_env}.{command}.parameters]"
    return None


def profile_region(profile: str | None) -> tuple[str | None, str]:
    """The `region` of the profile (named, else AWS_PROFILE's, else `default`) in the AWS config file."""
    session = botocore.session.Session(profile=profile)
    name = session.profile or "default"
    try:
        region = session.get_scoped_config().get("region")
    except botocore.exceptions.ProfileNotFound as exc:
        raise DeployRegionError(
            f"the AWS profile {name!r} is not in your AWS config: fix AWS_PROFILE, or set AWS_REGION"
        ) from exc
    return (region if isinstance(region, str) and region else None), name


def decide_region(environ: Mapping[str, str], extra_args: Sequence[str], project_dir: Path) -> RegionChoice:
    """The region `sam deploy` gets: DEPLOY_ARGS --region, samconfig.toml, AWS_REGION, AWS_DEFAULT_REGION, profile."""
    options = _deploy_options(extra_args)
    if options.region:
        return RegionChoice(options.region, "DEPLOY_ARGS --region", pass_option=False)
    configured = samconfig_region(project_dir / options.config_file, options.config_env)
    if configured is not None:
        return RegionChoice(configured[0], configured[1], pass_option=False)
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):  # AWS CLI v2's order; boto3 reads only the second
        if environ.get(variable):
            return RegionChoice(environ[variable], variable, pass_option=True)
    region, profile = profile_region(options.profile)
    if region is not None:
        return RegionChoice(region, f"the region of AWS profile {profile!r}", pass_option=True)
    return RegionChoice(
        FALLBACK_REGION,
        f"the fallback: no AWS_REGION, no AWS_DEFAULT_REGION, no region in AWS profile {profile!r}",
        pass_option=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the `sam deploy` region option on stdout and the decision on stderr; 1 when it cannot decide."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    try:
        choice = decide_region(os.environ, arguments, Path.cwd())
    except DeployRegionError as exc:
        print(f"make deploy: cannot decide the region: {exc}", file=sys.stderr)
        return 1
    print(f"make deploy: region {choice.region} ({choice.source})", file=sys.stderr)
    print(" ".join(choice.sam_arguments()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
