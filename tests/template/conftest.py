"""Fixtures for the template tests: one `sam build` per session and the template as plain CloudFormation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cfnlint.decode.decode import decode_str

from tools.precompile import template_runtime

if TYPE_CHECKING:
    from collections.abc import Callable

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
EVENTS_DIR = PROJECT_ROOT / "events"
LAYER_LOCK = PROJECT_ROOT / "layers" / "dependencies" / "requirements.txt"
# `make wheelhouse` (part of `make test` and `make template`) downloads the layer's wheels here, with a copy of
# the lock they were downloaded for; the tests' `sam build` installs from it alone, never from a registry.
WHEELHOUSE = PROJECT_ROOT / ".wheelhouse"
WHEELHOUSE_LOCK = WHEELHOUSE / "requirements.txt"
FUNCTION_LOGICAL_ID = "ArchiveSequencesFunction"
LAYER_LOGICAL_ID = "DependenciesLayer"
REGION = "us-east-1"

SAM_BUILD_TIMEOUT_SECONDS = 600
# pytest-timeout counts fixture setup against the first test that needs the build.
BUILD_TEST_TIMEOUT_SECONDS = SAM_BUILD_TIMEOUT_SECONDS + 60

# Runs under the SAM CLI's interpreter, which ships aws-sam-translator (the project venv does not).
# CodeUri/ContentUri become S3 URIs first, as `sam package` would do, because the translator
# accepts nothing else; the managed-policy loader is a stub so no AWS call is made.
_TRANSFORM_SCRIPT = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class StubManagedPolicyLoader:
    def load(self):
        names = ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSLambdaSQSQueueExecutionRole"]
        return {name: "arn:aws:iam::aws:policy/stub/" + name for name in names}

template = yaml_parse(sys.stdin.read())
for resource in template.get("Resources", {}).values():
    properties = resource.get("Properties", {})
    if resource.get("Type") == "AWS::Serverless::Function":
        properties["CodeUri"] = "s3://stub-bucket/function.zip"
    elif resource.get("Type") == "AWS::Serverless::LayerVersion":
        properties["ContentUri"] = "s3://stub-bucket/layer.zip"
json.dump(transform(template, {}, StubManagedPolicyLoader()), sys.stdout)
"""


@dataclass(frozen=True)
class BuiltArtifact:
    """Where the build put the function code and the dependencies layer, and what its two steps printed."""

    build_dir: Path
    function_dir: Path
    layer_python_dir: Path
    build_output: str
    finish_output: str


def sam_executable() -> str:
    """The SAM CLI on PATH, else the one `make sam-cli` installs into .venv-sam."""
    on_path = shutil.which("sam")
    if on_path:
        return on_path
    fallback = PROJECT_ROOT / ".venv-sam" / "bin" / "sam"
    if fallback.is_file():
        return str(fallback)
    pytest.fail("SAM CLI not found on PATH nor at .venv-sam/bin/sam; run `make sam-cli`")


def offline_pip_environment() -> dict[str, str]:
    """pip settings for the SAM CLI's pip runs: the wheelhouse only, no index, no pip configuration file.

    aws-lambda-builders runs pip in a subprocess that inherits the environment. The machine's own pip settings
    (PIP_* variables, pip.conf with its find-links, extra index or constraints) are left out, so nothing but
    the wheelhouse can satisfy the lock, on this machine as on any other.
    """
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE), "PIP_CONFIG_FILE": os.devnull}


def sam_environment() -> dict[str, str]:
    """The current environment with SAM telemetry off, a region set (no AWS calls are made) and pip offline."""
    inherited = {name: value for name, value in os.environ.items() if not name.upper().startswith("PIP_")}
    return {
        **inherited,
        **offline_pip_environment(),
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def _sam_python() -> str:
    """The interpreter of the SAM CLI (from its entry-point shebang), which can import samtranslator."""
    sam = Path(sam_executable())
    shebang = sam.read_text(errors="replace").splitlines()[0]
    if shebang.startswith("#!") and "python" in shebang:
        return shebang[2:].strip().split()[0]
    return str(sam.resolve().parent / "python")


def run_sam(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the SAM CLI in the project root and capture its output."""
    return subprocess.run(
        [sam_executable(), *args],
        cwd=PROJECT_ROOT,
        env=sam_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give tests that use the build room for the first, slow `sam build` of the session."""
    for item in items:
        if "built_artifact" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(BUILD_TEST_TIMEOUT_SECONDS))


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The wheelhouse the SAM CLI's pip installs from, checked to hold the lock as it is now (else: the next step)."""
    if not WHEELHOUSE_LOCK.is_file():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE} for the offline `sam build`: run `make wheelhouse`")
    if WHEELHOUSE_LOCK.read_bytes() != LAYER_LOCK.read_bytes():
        pytest.fail(f"the wheelhouse {WHEELHOUSE} was downloaded for another lock: run `make wheelhouse`")
    return WHEELHOUSE


def lambda_python() -> str:
    """The interpreter of Lambda's runtime (template.yaml's, python3.11), which sam build needs on PATH too."""
    command = "python{}.{}".format(*template_runtime())
    found = shutil.which(command)
    if found is None:
        pytest.fail(f"{command} (the template's runtime) is not on PATH: sam build and tools/finish_build.py need it")
    return found


@pytest.fixture(scope="session")
def built_artifact(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> BuiltArtifact:
    """What `make build` makes, once per session into a temporary directory: `sam build` of template.yaml from the
    wheelhouse (no registry), then botocore's models for the services the function calls only and the bytecode
    Lambda reads (tools/finish_build.py)."""
    build_dir = tmp_path_factory.mktemp("sam-build") / "build"
    result = run_sam(
        "build",
        "--template-file",
        str(TEMPLATE_PATH),
        "--build-dir",
        str(build_dir),
        timeout=SAM_BUILD_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        pytest.fail(
            f"sam build failed ({result.returncode}); its pip reads only {wheelhouse} (`make wheelhouse`):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    finished = subprocess.run(
        [lambda_python(), "-m", "tools.finish_build", str(build_dir)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=SAM_BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    if finished.returncode != 0:
        pytest.fail(f"tools/finish_build.py failed ({finished.returncode}):\n{finished.stdout}{finished.stderr}")
    return BuiltArtifact(
        build_dir=build_dir,
        function_dir=build_dir / FUNCTION_LOGICAL_ID,
        layer_python_dir=build_dir / LAYER_LOGICAL_ID / "python",
        build_output=result.stdout + result.stderr,
        finish_output=finished.stdout + finished.stderr,
    )


@pytest.fixture(scope="session")
def transformed_template() -> dict[str, Any]:
    """template.yaml after the SAM transform: the plain CloudFormation that would be deployed."""
    try:
        result = subprocess.run(
            [_sam_python(), "-c", _TRANSFORM_SCRIPT],
            input=TEMPLATE_PATH.read_text(),
            env=sam_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except OSError as exc:
        pytest.fail(f"cannot run the SAM CLI's Python to transform the template: {exc}")
    if result.returncode != 0:
        pytest.fail(f"SAM transform failed:\n{result.stderr}")
    transformed: dict[str, Any] = json.loads(result.stdout)
    return transformed


@pytest.fixture(scope="session")
def resources(transformed_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Resources section of the transformed template."""
    found: dict[str, dict[str, Any]] = transformed_template["Resources"]
    return found


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    """template.yaml as written (before the SAM transform), short-form intrinsics expanded."""
    template, errors = decode_str(TEMPLATE_PATH.read_text())
    assert not errors, errors
    assert template is not None
    return dict(template)


@pytest.fixture(scope="session")
def sam_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the SAM CLI in the project root: `sam_cli("validate", "--lint")`."""
    return run_sam


@pytest.fixture(scope="session")
def sam_python() -> Callable[[str], Any]:
    """Runs a Python snippet under the SAM CLI's interpreter (which can import samcli) and returns its JSON output."""

    def run(script: str) -> Any:
        result = subprocess.run(
            [_sam_python(), "-c", script],
            cwd=PROJECT_ROOT,
            env=sam_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout)

    return run


@pytest.fixture(scope="session")
def deployed_template(transformed_template: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """Factory: the transformed template as deployed with some parameters, `deployed_template(QueueType="fifo")`."""
    from tests.template.helpers import deployed

    def resolve(**parameters: str) -> dict[str, Any]:
        return deployed(transformed_template, parameters)

    return resolve
