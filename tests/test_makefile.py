"""The Makefile's front door: `make deploy`'s region, `make venv`'s interpreter, `make bench`'s output file.

`make deploy` runs for real here, with a stand-in `sam` that records its arguments: no AWS, no SAM CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import run as bench_run
from tools.deploy_region import decide_region

ROOT = Path(__file__).resolve().parents[1]


def make(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`make -C ROOT ...` as a user's shell runs it: not a sub-make of `make test` (no MAKEFLAGS from it)."""
    environment = {
        name: value
        for name, value in (os.environ if env is None else env).items()
        if name not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    }
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shell with no region set and an AWS config file of its own (profile `dev` names ap-southeast-2)."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\noutput = json\n\n[profile dev]\nregion = ap-southeast-2\n")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def fake_sam(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Make variables that swap the SAM CLI for a script logging each call, and the log it writes."""
    sam_venv = tmp_path / "sam-venv"
    (sam_venv / "bin").mkdir(parents=True)
    calls = tmp_path / "sam-calls"
    sam = sam_venv / "bin" / "sam"
    sam.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    # tools/deploy_region needs botocore, as the SAM CLI's virtualenv has: this interpreter has it too.
    python = sam_venv / "bin" / "python"
    python.write_text(f'#!/usr/bin/env bash\nexec {sys.executable} "$@"\n')
    # The build's second step (tools/finish_build.py) with Lambda's interpreter, logged in the same file.
    lambda_python = tmp_path / "python3.11"
    lambda_python.write_text(f'#!/usr/bin/env bash\necho "python $*" >> {calls}\n')
    for script in (sam, python, lambda_python):
        script.chmod(0o755)
    (sam_venv / ".installed").touch()  # newer than requirements-sam.txt: `make sam-cli` has nothing to do
    return {"SAM_VENV": str(sam_venv), "SAM": str(sam), "LAMBDA_PYTHON": str(lambda_python)}, calls


def make_deploy(variables: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return make("deploy", *(f"{name}={value}" for name, value in variables.items()), *extra)


@pytest.mark.parametrize(
    ("environment", "region", "source"),
    [
        ({"AWS_REGION": "eu-west-1"}, "eu-west-1", "AWS_REGION"),
        ({"AWS_DEFAULT_REGION": "eu-central-1"}, "eu-central-1", "AWS_DEFAULT_REGION"),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-central-1"}, "eu-west-1", "AWS_REGION"),
        ({"AWS_PROFILE": "dev"}, "ap-southeast-2", "the region of AWS profile 'dev'"),
        ({}, "us-east-1", "the fallback"),
    ],
    ids=["AWS_REGION alone", "AWS_DEFAULT_REGION alone", "both", "profile", "none"],
)
def test_make_deploy_passes_the_region_aws_cli_v2_would_use_and_says_which(
    aws_home, fake_sam, monkeypatch, environment, region, source
):
    variables, calls = fake_sam
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    result = make_deploy(variables)

    assert result.returncode == 0, result.stderr
    assert f"region {region} ({source}" in result.stderr
    build, finish, deploy = calls.read_text().splitlines()
    assert build == "build"
    assert finish == "python -m tools.finish_build .aws-sam/build"  # models trimmed, bytecode, before any upload
    assert deploy.split() == ["deploy", "--region", region]


def test_a_region_in_deploy_args_is_left_for_sam_to_read(aws_home, fake_sam, monkeypatch):
    variables, calls = fake_sam
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    result = make_deploy(variables, "DEPLOY_ARGS=--region sa-east-1 --no-confirm-changeset")

    assert result.returncode == 0, result.stderr
    assert "region sa-east-1 (DEPLOY_ARGS --region)" in result.stderr
    assert calls.read_text().splitlines()[-1].split() == ["deploy", "--region", "sa-east-1", "--no-confirm-changeset"]


def test_an_unknown_profile_stops_make_deploy_before_the_build_with_one_line(aws_home, fake_sam, monkeypatch):
    variables, calls = fake_sam
    monkeypatch.setenv("AWS_PROFILE", "nope")

    result = make_deploy(variables)

    assert result.returncode != 0
    assert "the AWS profile 'nope' is not in your AWS config" in result.stderr
    assert "Traceback" not in result.stderr
    assert not calls.exists()


def test_a_region_in_samconfig_wins_and_is_not_passed_again(aws_home, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "samconfig.toml").write_text(
        textwrap.dedent(
            """
            version = 0.1
            [default.deploy.parameters]
            region = "eu-north-1"
            """
        )
    )

    choice = decide_region({"AWS_REGION": "eu-west-1"}, [], project)

    assert (choice.region, choice.sam_arguments()) == ("eu-north-1", [])
    assert "samconfig.toml [default.deploy.parameters]" in choice.source


def test_the_project_samconfig_names_no_region(aws_home):
    choice = decide_region({"AWS_REGION": "eu-west-1"}, [], ROOT)

    assert choice.sam_arguments() == ["--region", "eu-west-1"]


@pytest.fixture
def pyenv_with_unselected_313(tmp_path: Path) -> dict[str, str]:
    """A PATH where `python3.13` is a pyenv shim that refuses (as pyenv's do) and pyenv has 3.13.0 and 3.13.2."""
    shims, root = tmp_path / "shims", tmp_path / "pyenv"
    versions = "system 3.11.7 3.13.0 3.13.2"
    shims.mkdir()
    scripts = {
        shims / "python3.13": 'echo "pyenv: python3.13: command not found" >&2\nexit 127\n',
        shims / "pyenv": f'case "$1" in root) echo {root} ;; versions) printf "%s\\n" {versions} ;; esac\n',
    }
    for version in ("3.13.0", "3.13.2"):
        scripts[root / "versions" / version / "bin" / "python3.13"] = f'exec {sys.executable} "$@"\n'
    for path, body in scripts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/usr/bin/env bash\n" + body)
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "PYENV_ROOT": str(root)}


def test_a_python_pyenv_has_but_has_not_selected_is_found_and_gets_its_own_virtualenv(
    pyenv_with_unselected_313, tmp_path
):
    found = subprocess.run(
        [ROOT / "tools" / "find-python", "python3.13"],
        env=pyenv_with_unselected_313,
        capture_output=True,
        text=True,
        check=True,
    )
    newest = tmp_path / "pyenv" / "versions" / "3.13.2" / "bin" / "python3.13"
    assert found.stdout.strip() == str(newest)

    planned = make("-n", "-B", "venv", "PYTHON=python3.13", env=pyenv_with_unselected_313)
    assert planned.returncode == 0, planned.stderr
    planned = planned.stdout
    assert f"{newest} -m venv .venv-python3.13" in planned
    assert ".venv-python3.13/bin/python -m pip install --quiet --require-hashes -r requirements-dev.txt" in planned


def test_the_default_python_keeps_the_plain_venv():
    planned = make("-n", "-B", "venv")

    assert planned.returncode == 0, planned.stderr
    assert "-m venv .venv\n" in planned.stdout


def test_a_missing_python_is_named_with_what_to_do():
    result = make("-B", "venv", "PYTHON=python3.99")

    assert result.returncode != 0
    assert "python3.99 is required: not found on PATH nor among pyenv's versions" in result.stderr


def git(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *arguments], capture_output=True, text=True, check=False)


def test_make_bench_writes_where_git_does_not_look():
    output = bench_run.parse_arguments([]).output

    assert output == ROOT / "build" / "bench" / "results.json"
    assert git("check-ignore", "--quiet", str(output)).returncode == 0
    assert git("ls-files", "--error-unmatch", str(output)).returncode != 0


def test_only_save_writes_the_tracked_results():
    output = bench_run.parse_arguments(["--save"]).output

    assert output == ROOT / "bench" / "results.json"
    assert git("ls-files", "--error-unmatch", str(output)).returncode == 0


def test_a_quick_run_cannot_overwrite_the_saved_figures(capsys):
    with pytest.raises(SystemExit):
        bench_run.parse_arguments(["--quick", "--save"])
    assert "not comparable" in capsys.readouterr().err
