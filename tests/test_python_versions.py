"""The tree compiles on every Python the project supports (3.11, 3.12, 3.13), and the CLI's modules load on 3.13.

No network, no installation: each interpreter is found on this machine (PATH, else pyenv's versions). pyenv's
shims refuse to run a version that is not selected, so each candidate is asked for its version before use.
Byte code goes to a temporary PYTHONPYCACHEPREFIX: the working tree stays as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = ("3.11", "3.12", "3.13")
TREES = ("functions", "cli", "local", "tests", "bench")
PACKAGES = ("sequence_archiver_cli", "sequence_archiver")


def reports_version(executable: Path | str, version: str) -> bool:
    """True when the executable runs and is Python `version` (a refusing pyenv shim is not)."""
    try:
        answer = subprocess.run(
            [str(executable), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return False
    return answer.returncode == 0 and answer.stdout.strip() == version


def pyenv_root() -> Path | None:
    """PYENV_ROOT, else what `pyenv root` says, else ~/.pyenv if it exists."""
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        answer = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=60, check=False)
        if answer.returncode == 0 and answer.stdout.strip():
            return Path(answer.stdout.strip())
    home = Path.home() / ".pyenv"
    return home if home.is_dir() else None


def find_python(version: str) -> tuple[str | None, list[str]]:
    """An interpreter of `version` that runs, and every candidate looked at (for the skip reason)."""
    candidates: list[Path | str] = []
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        candidates.append(sys.executable)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    root = pyenv_root()
    if root is not None:
        candidates += sorted((root / "versions").glob(f"{version}*/bin/python{version}"), reverse=True)
    for candidate in candidates:
        if reports_version(candidate, version):
            return str(candidate), [str(c) for c in candidates]
    return None, [str(c) for c in candidates]


def python_or_skip(version: str) -> str:
    """The interpreter, or a skip naming what was tried; a candidate that exists but cannot run fails."""
    found, looked_at = find_python(version)
    if found is None:
        if looked_at and any(Path(c).is_file() and "shims" not in c for c in looked_at):
            pytest.fail(f"Python {version} is installed ({looked_at}) but none of these runs")
        pytest.skip(f"no Python {version} on this machine (looked at PATH and pyenv: {looked_at or 'nothing'})")
    return found


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_whole_tree_compiles(version: str, tmp_path: Path) -> None:
    python = python_or_skip(version)

    # SyntaxWarning as an error: an invalid escape today is a SyntaxError in a later Python.
    result = subprocess.run(
        [python, "-W", "error::SyntaxWarning", "-m", "compileall", "-q", "-f", *TREES],
        cwd=ROOT,
        env={**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


# Runs on Python 3.13 with the installed environment's pure-Python distributions on the path: every module of
# the CLI and of the function either imports, or stops only at pydantic_core, whose compiled part in this
# environment is built for another Python (installing a 3.13 build of it needs the package index).
IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
report = {}
for package_name in sys.argv[1:]:
    package = importlib.import_module(package_name)
    for module in pkgutil.walk_packages(package.__path__, package_name + "."):
        try:
            importlib.import_module(module.name)
            report[module.name] = "imported"
        except ImportError as exc:
            compiled = (exc.name or "").startswith("pydantic_core")
            report[module.name] = "needs compiled pydantic_core" if compiled else f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            report[module.name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(report))
"""


def test_the_cli_and_function_modules_load_on_python_3_13(tmp_path: Path) -> None:
    python = python_or_skip("3.13")
    installed = sysconfig.get_paths()["purelib"]
    path = os.pathsep.join([str(ROOT / "cli"), str(ROOT / "functions" / "archive_sequences"), installed])

    result = subprocess.run(
        [python, "-W", "error::SyntaxWarning", "-c", IMPORT_EVERY_MODULE, *PACKAGES],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path, "PYTHONPYCACHEPREFIX": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, str] = json.loads(result.stdout)

    loaded = {"imported", "needs compiled pydantic_core"}
    problems = {name: state for name, state in report.items() if state not in loaded}
    assert problems == {}
    imported = sorted(name for name, state in report.items() if state == "imported")
    # the modules that need no pydantic do load: the CLI's error handling, confirmation and interruption (its
    # other modules use the function's public API, which includes the pydantic settings), the archiving core
    assert {
        "sequence_archiver_cli.errors",
        "sequence_archiver_cli.confirmation",
        "sequence_archiver_cli.interruption",
        "sequence_archiver.archiving.archiver",
        "sequence_archiver.reply.client",
        "sequence_archiver.core.archive_request",
    } <= set(imported)
