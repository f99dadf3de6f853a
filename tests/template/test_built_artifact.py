"""The artifact `sam build` produces runs: the built handler, with only the built layer, archives for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.stand_ins.aws_stack import (
    function_environment,
    provision,
    read_results_events,
    start_moto_server,
    unique_name_prefix,
)
from local.stand_ins.reply_simulator import ReplySimulator
from tools.precompile import template_runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.template.conftest import BuiltArtifact

pytestmark = pytest.mark.template

EVENTS = Path(__file__).resolve().parents[2] / "events"
DRIVER = Path(__file__).with_name("invoke_built_handler.py")
API_KEY = "rk_live_BUILT_ARTIFACT_MARKER_9f3c1a"


@pytest.fixture(scope="module")
def local_stack() -> Iterator[tuple[dict[str, str], ReplySimulator, object]]:
    scopes = frozenset({"sequences:read", "sequences:operate", "sequences:write"})
    with start_moto_server() as moto, ReplySimulator(api_keys={API_KEY: scopes}) as simulator:
        stack = provision(moto.endpoint_url, api_key=API_KEY, name_prefix=unique_name_prefix("built"))
        yield function_environment(stack, reply_base_url=simulator.base_url), simulator, stack


def invoke_built(artifact: BuiltArtifact, environment: dict[str, str], event_file: Path, tmp_path: Path) -> dict:
    result_path = tmp_path / "result.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-S",
            "-I",
            "-B",  # Lambda's code directories are read-only: no bytecode can be written there
            str(DRIVER),
            str(artifact.function_dir),
            str(artifact.layer_python_dir),
            str(event_file),
            str(result_path),
        ],
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert API_KEY not in completed.stdout + completed.stderr
    result = json.loads(result_path.read_text())
    result["stdout"] = completed.stdout
    return result


def test_the_built_handler_archives_an_sqs_record(
    built_artifact: BuiltArtifact, local_stack: tuple[dict[str, str], ReplySimulator, object], tmp_path: Path
) -> None:
    environment, simulator, stack = local_stack

    result = invoke_built(built_artifact, environment, EVENTS / "sqs-single-record.json", tmp_path)

    assert result.get("response") == {"batchItemFailures": []}, result
    for sequence_id in json.loads(json.loads((EVENTS / "sqs-single-record.json").read_text())["Records"][0]["body"])[
        "sequenceIds"
    ]:
        sequence = simulator.sequence(int(sequence_id))
        assert sequence is not None
        assert sequence.is_archived
    [envelope] = read_results_events(stack, expected=1)  # type: ignore[arg-type]
    assert envelope["detail"]["requestId"] == "0c7d4e2b-6a9f-4b1c-8d3e-5f2a7b9c1d62"
    assert '"SequencesArchived"' in result["stdout"]  # EMF metrics were printed


def test_the_built_handler_runs_without_the_development_environment(
    built_artifact: BuiltArtifact, local_stack: tuple[dict[str, str], ReplySimulator, object], tmp_path: Path
) -> None:
    environment, _, stack = local_stack

    result = invoke_built(built_artifact, environment, EVENTS / "direct-single.json", tmp_path)

    assert result["response"]["trigger"] == "direct", result
    assert not {"pytest", "moto", "local", "tests"} & set(result["modules"])
    read_results_events(stack, expected=1)  # type: ignore[arg-type]


def test_the_built_handler_compiles_nothing_at_its_cold_start(
    built_artifact: BuiltArtifact, local_stack: tuple[dict[str, str], ReplySimulator, object], tmp_path: Path
) -> None:
    # sam build ships sources only; without the build's bytecode Lambda would compile every module each cold start.
    environment, _, stack = local_stack

    result = invoke_built(built_artifact, environment, EVENTS / "sqs-single-record.json", tmp_path)

    assert result.get("response") == {"batchItemFailures": []}, result
    artifact = (built_artifact.function_dir.resolve(), built_artifact.layer_python_dir.resolve())
    compiled_in_artifact = [
        path for path in result["compiledFromSource"] if any(Path(path).resolve().is_relative_to(d) for d in artifact)
    ]
    assert compiled_in_artifact == []
    assert {"boto3", "pydantic", "aws_lambda_powertools", "sequence_archiver"} <= set(result["modules"])
    read_results_events(stack, expected=1)  # type: ignore[arg-type]


def test_every_module_of_the_artifact_has_bytecode_for_the_runtime(built_artifact: BuiltArtifact) -> None:
    major, minor = template_runtime()  # python3.11: the only bytecode Lambda's interpreter reads
    for directory in (built_artifact.function_dir, built_artifact.layer_python_dir):
        sources = list(directory.rglob("*.py"))
        bytecode = {path: path.parent / "__pycache__" / f"{path.stem}.cpython-{major}{minor}.pyc" for path in sources}
        missing = [source.relative_to(directory) for source, pyc in bytecode.items() if not pyc.is_file()]
        assert sources
        assert missing == []
        # Hash-checked (PEP 552 flags 0b11), never by mtime, which a zip upload does not keep to the second.
        flags = {int.from_bytes(pyc.read_bytes()[4:8], "little") for pyc in bytecode.values()}
        assert flags == {0b11}


def test_sam_build_installs_nothing_into_the_function_and_warns_of_nothing(built_artifact: BuiltArtifact) -> None:
    # The layer carries every dependency; the function's requirements.txt is empty on purpose.
    assert "requirements.txt file not found" not in built_artifact.build_output
    assert not list(built_artifact.function_dir.glob("*.dist-info"))
    assert (built_artifact.function_dir / "app.py").is_file()


_CLIENTS_PROBE = """
import json, sys
sys.path[:0] = sys.argv[1:3]
import boto3
from botocore.exceptions import UnknownServiceError
from sequence_archiver.wiring import AWS_SERVICES
session = boto3.session.Session(region_name="us-east-1")
made = [type(session.client(name)).__name__ for name in AWS_SERVICES]
try:
    session.client("lambda")
    other = "made"
except UnknownServiceError:
    other = "unknown"
print(json.dumps({"services": list(AWS_SERVICES), "made": made, "other": other}))
"""


def test_the_built_layer_ships_the_models_of_the_services_the_function_calls_and_no_others(
    built_artifact: BuiltArtifact,
) -> None:
    # botocore lists every model it ships before making any client: 449 of them cost every cold start about 45 ms.
    code = (built_artifact.function_dir, built_artifact.layer_python_dir)
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", _CLIENTS_PROBE, *map(str, code)],
        env={"PATH": os.environ.get("PATH", ""), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(completed.stdout)

    assert len(result["made"]) == len(result["services"]) == 5  # dynamodb, events, s3, secretsmanager, sqs
    assert result["other"] == "unknown"  # no model shipped for a service the function never calls
    models = built_artifact.layer_python_dir / "botocore" / "data"
    assert sorted(path.name for path in models.iterdir() if path.is_dir()) == sorted(result["services"])
    assert (models / "endpoints.json").is_file()
    assert "botocore models kept for dynamodb, events, s3, secretsmanager, sqs" in built_artifact.finish_output


_PACKAGE_PROBE = """
import json
from samcli.lib.package.utils import make_zip
print(json.dumps([make_zip(base, source) for source, base in {pairs!r}]))
"""


def test_what_sam_deploy_uploads_keeps_the_bytecode_and_only_the_five_models(
    built_artifact: BuiltArtifact, sam_python: Callable[[str], Any], tmp_path: Path
) -> None:
    # `sam deploy` zips each built folder with SAM's own packager: the finishing step is worth nothing if that zip
    # left `__pycache__` out. Its entries are dated 1980, which is why the bytecode is hash-checked, not timed.
    pairs = [
        (str(built_artifact.function_dir), str(tmp_path / "function")),
        (str(built_artifact.layer_python_dir.parent), str(tmp_path / "layer")),
    ]
    function_zip, layer_zip = sam_python(_PACKAGE_PROBE.format(pairs=pairs))
    major, minor = template_runtime()
    with zipfile.ZipFile(function_zip) as function, zipfile.ZipFile(layer_zip) as layer:
        function_names, layer_names = set(function.namelist()), set(layer.namelist())
        pyc = function.read(f"__pycache__/app.cpython-{major}{minor}.pyc")

    assert int.from_bytes(pyc[4:8], "little") == 0b11  # hash-checked
    assert f"sequence_archiver/__pycache__/wiring.cpython-{major}{minor}.pyc" in function_names
    assert f"python/botocore/__pycache__/client.cpython-{major}{minor}.pyc" in layer_names
    in_models = [name.split("/") for name in layer_names if name.startswith("python/botocore/data/")]
    assert {parts[3] for parts in in_models if len(parts) > 4} == {"dynamodb", "events", "s3", "secretsmanager", "sqs"}
