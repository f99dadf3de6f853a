"""tools/finish_build.py: after `sam build`, the layer keeps botocore's models for the services the function calls.

A stand-in build (a function with a wiring module naming its AWS services, a layer with a botocore data folder) is
finished; what stays is what the function can make clients for. The bytecode half of the step is
tests/test_precompile.py's, and the real artifact's is tests/template/test_built_artifact.py's.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tools.finish_build import FinishBuildError, keep_called_models, main, services_called

ROOT = Path(__file__).resolve().parents[1]
FUNCTION_CODE = ROOT / "functions" / "archive_sequences"
DATA_FILES = ("_retry.json", "endpoints.json", "partitions.json", "sdk-default-configuration.json")


def stand_in_build(tmp_path: Path, services: str = '("events", "secretsmanager")') -> Path:
    """sam build's layout: a function folder with sequence_archiver/wiring.py, a layer with botocore/data."""
    build = tmp_path / "build"
    wiring = build / "SomeFunction" / "sequence_archiver" / "wiring.py"
    wiring.parent.mkdir(parents=True)
    wiring.write_text(f"from __future__ import annotations\n\nAWS_SERVICES = {services}\n")
    (build / "SomeFunction" / "app.py").write_text("")
    data = build / "SomeLayer" / "python" / "botocore" / "data"
    for service in ("ec2", "events", "lambda", "secretsmanager", "sqs"):
        (data / service / "2015-01-01").mkdir(parents=True)
        (data / service / "2015-01-01" / "service-2.json.gz").write_bytes(b"model")
    for name in DATA_FILES:
        (data / name).write_text("{}")
    return build


def models_left(build: Path) -> list[str]:
    return sorted(path.name for path in (build / "SomeLayer" / "python" / "botocore" / "data").iterdir())


def test_only_the_called_services_models_stay_beside_botocores_data_files(tmp_path: Path) -> None:
    build = stand_in_build(tmp_path)

    [layer] = keep_called_models(build)

    assert models_left(build) == sorted([*DATA_FILES, "events", "secretsmanager"])
    assert (layer.kept, layer.removed) == (("events", "secretsmanager"), 3)
    model = build / "SomeLayer" / "python" / "botocore" / "data" / "events" / "2015-01-01" / "service-2.json.gz"
    assert model.read_bytes() == b"model"  # a kept service keeps every version folder and file


def test_a_service_botocore_has_no_model_for_stops_the_build_and_removes_nothing(tmp_path: Path) -> None:
    build = stand_in_build(tmp_path, services='("events", "secretmanager")')  # a typo

    with pytest.raises(FinishBuildError, match="has no model for secretmanager: check AWS_SERVICES"):
        keep_called_models(build)

    assert len(models_left(build)) == 5 + len(DATA_FILES)


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("SERVICES = ('events',)\n", "defines no AWS_SERVICES"),
        ("AWS_SERVICES = ()\n", "must be a non-empty tuple"),
        ("AWS_SERVICES = ['events']\n", "must be a non-empty tuple"),
    ],
)
def test_a_wiring_module_without_a_tuple_of_services_stops_the_build(tmp_path: Path, source: str, says: str) -> None:
    wiring = tmp_path / "wiring.py"
    wiring.write_text(source)

    with pytest.raises(FinishBuildError, match=says):
        services_called(wiring)


def test_another_python_than_the_runtime_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = stand_in_build(tmp_path)
    other = (sys.version_info[0], sys.version_info[1] + 1)
    monkeypatch.setattr("tools.finish_build.template_runtime", lambda: other)

    assert main([str(build)]) == 2

    assert "whose bytecode Lambda would never read" in capsys.readouterr().err
    assert len(models_left(build)) == 5 + len(DATA_FILES)


def test_finishing_trims_then_compiles_and_says_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = stand_in_build(tmp_path)

    assert main([str(build)]) == 0

    out = capsys.readouterr().out
    assert "botocore models kept for events, secretsmanager; 3 other services' removed" in out
    assert "2 modules under" in out
    assert (build / "SomeFunction" / "sequence_archiver" / "__pycache__").is_dir()


def test_the_function_names_exactly_the_services_its_code_makes_clients_for() -> None:
    # Every `<session>.client("<service>", ...)` in the function's code: a client for a service the layer has no
    # model for would fail in Lambda, and a listed service nothing calls would ship a model for nothing.
    called: set[str] = set()
    for path in FUNCTION_CODE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"client", "resource"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                called.add(node.args[0].value)

    declared = services_called(FUNCTION_CODE / "sequence_archiver" / "wiring.py")

    assert sorted(called) == sorted(declared)
    assert len(set(declared)) == len(declared)


def test_no_build_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    assert "run `sam build` (make build) first" in capsys.readouterr().err
