"""Bytecode for the built artifact: every module of the function and of its layer compiled ahead of deployment.

Lambda's /var/task (the function) and /opt (its layers) are read-only, so Python can neither find nor write the
`__pycache__` it would otherwise reuse: every module a cold start imports is compiled from source, every time.
`sam build` ships sources only (its pip installs with --no-compile and the function's code is copied as it is), so
without this step each cold start compiles boto3, botocore, pydantic, Powertools and the function itself before
the handler exists: about 2.8x the init with bytecode (docs/benchmarks-and-soak.md, `python -m bench.cold_start
--artifact`). `make build` and `make deploy` run it after `sam build`, as tools/finish_build.py's last step; so
does the tests' build of the artifact.

The bytecode is hash-checked (PEP 552): Python compares it with a hash of the source, not with the file's mtime,
which a zip upload does not keep to the second; a source edited in place is compiled afresh rather than ignored.
It must be made by the template's runtime (`Runtime: python3.11`): another version's bytecode is a different
file (`.cpython-312.pyc`) that Lambda's interpreter never reads, so any other interpreter is refused.

    python -m tools.precompile [BUILD_DIR]   # default .aws-sam/build
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
DEFAULT_BUILD_DIR = ROOT / ".aws-sam" / "build"
_RUNTIME = re.compile(r"^\s*Runtime:\s*python(?P<major>\d+)\.(?P<minor>\d+)\s*$", re.MULTILINE)


class PrecompileError(Exception):
    """The artifact cannot be given bytecode Lambda will use."""


def template_runtime(template: Path = TEMPLATE) -> tuple[int, int]:
    """The Python version of the template's runtime (Globals.Function.Runtime), as (major, minor)."""
    versions = {(int(match["major"]), int(match["minor"])) for match in _RUNTIME.finditer(template.read_text())}
    if len(versions) != 1:
        found = ", ".join(f"python{major}.{minor}" for major, minor in sorted(versions)) or "none"
        raise PrecompileError(f"{template} must name exactly one Python runtime (found: {found})")
    return versions.pop()


def code_dirs(build_dir: Path) -> list[Path]:
    """The directories Lambda puts on sys.path: each built function's folder, each built layer's `python/`."""
    if not build_dir.is_dir():
        raise PrecompileError(f"no build at {build_dir}: run `sam build` (make build) first")
    found = []
    for resource in sorted(path for path in build_dir.iterdir() if path.is_dir()):
        layer_python = resource / "python"
        found.append(layer_python if layer_python.is_dir() else resource)
    if not found:
        raise PrecompileError(f"{build_dir} holds no built function or layer")
    return found


def refuse_another_python(runtime: tuple[int, int]) -> None:
    """PrecompileError unless this interpreter is the template's runtime, the only one whose bytecode Lambda reads."""
    if sys.version_info[:2] != runtime:
        wanted = "{}.{}".format(*runtime)
        raise PrecompileError(
            f"the template's runtime is python{wanted} but this is Python {sys.version_info[0]}.{sys.version_info[1]},"
            f" whose bytecode Lambda would never read: run this with python{wanted}"
        )


def precompile(build_dir: Path, runtime: tuple[int, int]) -> int:
    """Compile every module under `build_dir` for `runtime` (hash-checked, not optimised); the modules compiled."""
    refuse_another_python(runtime)
    compiled = 0
    for directory in code_dirs(build_dir):
        for cache in directory.rglob("__pycache__"):
            shutil.rmtree(cache)  # what a local run left behind: timestamp-checked, maybe of another source
        sources = sum(1 for _ in directory.rglob("*.py"))
        if not compileall.compile_dir(
            directory,
            quiet=1,
            optimize=0,  # Lambda runs without -O: the plain .pyc is the one it reads
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            workers=0,  # one process per core
        ):
            raise PrecompileError(f"some modules under {directory} do not compile (listed above)")
        compiled += sources
    return compiled


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build_dir", nargs="?", type=Path, default=DEFAULT_BUILD_DIR, help="sam build's output")
    args = parser.parse_args(argv)
    try:
        compiled = precompile(args.build_dir, template_runtime())
    except PrecompileError as exc:
        print(f"precompile: {exc}", file=sys.stderr)
        return 2
    print(f"precompile: {compiled} modules under {args.build_dir} compiled for the Lambda runtime (hash-checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
