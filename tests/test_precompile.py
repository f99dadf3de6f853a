"""tools/precompile.py: the bytecode `make build` adds to what `sam build` made, read as Lambda reads it.

A small stand-in build (a function folder and a layer's `python/`) is compiled, then imported by a fresh
interpreter that may not write bytecode (`-B`, as in Lambda's read-only code directories).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.precompile import PrecompileError, code_dirs, main, precompile, template_runtime

THIS_PYTHON = sys.version_info[:2]
# The built-artifact tests' driver, whose recorder of modules compiled from source the probes here use too.
BUILT_HANDLER_DRIVER = Path(__file__).resolve().parent / "template" / "invoke_built_handler.py"


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    """What `sam build` leaves: sources only, plus a stale timestamp cache a local run could have left."""
    build = tmp_path / "build"
    function = build / "SomeFunction"
    (function / "pkg").mkdir(parents=True)
    (function / "app.py").write_text("from pkg.value import VALUE\n")
    (function / "pkg" / "__init__.py").write_text("")
    (function / "pkg" / "value.py").write_text("VALUE = 'built'\n")
    layer = build / "SomeLayer" / "python" / "dependency"
    layer.mkdir(parents=True)
    (layer / "__init__.py").write_text("NAME = 'dependency'\n")
    stale = function / "pkg" / "__pycache__"
    stale.mkdir()
    (stale / "value.cpython-311.pyc").write_bytes(b"not bytecode")
    return build


def import_isolated(build: Path, statement: str) -> subprocess.CompletedProcess[str]:
    """Run `statement` in a fresh interpreter that sees only the build, recording modules compiled from source."""
    probe = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(BUILT_HANDLER_DRIVER.parent)!r})
        from invoke_built_handler import COMPILED_FROM_SOURCE, record_compiles
        sys.path[:1] = [{str(build / "SomeFunction")!r}, {str(build / "SomeLayer" / "python")!r}]
        record_compiles()
        {statement}
        print(sorted(p.rsplit("/", 1)[-1] for p in COMPILED_FROM_SOURCE if p.startswith({str(build)!r})))
        """
    )
    return subprocess.run(
        [sys.executable, "-I", "-B", "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )


def test_the_function_and_its_layer_import_without_compiling_anything(build_dir: Path) -> None:
    before = import_isolated(build_dir, "import app, dependency; print(app.VALUE, dependency.NAME)")
    assert before.stdout.splitlines() == ["built dependency", "['__init__.py', '__init__.py', 'app.py', 'value.py']"]

    compiled = precompile(build_dir, THIS_PYTHON)

    assert compiled == 4
    after = import_isolated(build_dir, "import app, dependency; print(app.VALUE, dependency.NAME)")
    assert after.stdout.splitlines() == ["built dependency", "[]"]


def test_a_source_edited_after_the_build_is_compiled_afresh_not_served_stale(build_dir: Path) -> None:
    precompile(build_dir, THIS_PYTHON)
    (build_dir / "SomeFunction" / "pkg" / "value.py").write_text("VALUE = 'edited'\n")

    result = import_isolated(build_dir, "import app; print(app.VALUE)")

    assert result.stdout.splitlines() == ["edited", "['value.py']"]


def test_another_python_than_the_runtime_is_refused_before_anything_is_written(build_dir: Path) -> None:
    other = (THIS_PYTHON[0], THIS_PYTHON[1] + 1)

    with pytest.raises(PrecompileError, match=rf"python{other[0]}\.{other[1]} .* whose bytecode Lambda would never"):
        precompile(build_dir, other)

    assert [path.name for path in build_dir.rglob("*.pyc")] == ["value.cpython-311.pyc"]  # the fixture's stale one


def test_the_runtime_is_read_from_the_template() -> None:
    assert template_runtime() == (3, 11)


def test_code_dirs_are_each_function_folder_and_each_layer_python_folder(build_dir: Path) -> None:
    assert code_dirs(build_dir) == [build_dir / "SomeFunction", build_dir / "SomeLayer" / "python"]


def test_no_build_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    assert "run `sam build` (make build) first" in capsys.readouterr().err
