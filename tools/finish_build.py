"""The build's finishing step after `sam build`: the layer keeps botocore's models for the AWS services the function
calls and no others, then every module gets the bytecode Lambda reads (tools/precompile.py).

botocore ships a model folder for each of its 449 services: 28 MB of the built layer. Before it creates a client,
botocore lists every one of them, twice (`Loader.list_available_services`, for the service models and again for the
endpoint rule sets: a directory listing and stats for each service and version), which is about 45 ms of each cold
start, as much for a bare boto3 function as for this one (docs/benchmarks-and-soak.md). The function creates clients
for five services, all in `sequence_archiver/wiring.py`, which names them in `AWS_SERVICES` (a test holds that tuple
to the `session.client(...)` calls of the code). This step reads that tuple from the *built* function and removes
every other service's folder from the built layer's `botocore/data`; the files beside the folders (endpoints,
partitions, retry and default configuration) stay. A service the tuple names that botocore has no model for stops
the build, so a typo cannot ship a function whose client cannot be made.

`make build` and `make deploy` run it; so does the tests' build of the artifact. A plain `sam build` ships the whole
of botocore, unprecompiled: it works, with the slower cold start.

    python -m tools.finish_build [BUILD_DIR]   # default .aws-sam/build
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tools.precompile import (
    DEFAULT_BUILD_DIR,
    PrecompileError,
    code_dirs,
    precompile,
    refuse_another_python,
    template_runtime,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

WIRING = Path("sequence_archiver") / "wiring.py"
SERVICES_NAME = "AWS_SERVICES"
MODELS = Path("botocore") / "data"


class FinishBuildError(Exception):
    """The built artifact cannot be finished as it is."""


@dataclass(frozen=True)
class ModelsKept:
    """What trimming botocore's models did to one built layer."""

    layer_dir: Path
    kept: tuple[str, ...]
    removed: int


def services_called(wiring: Path) -> tuple[str, ...]:
    """The `AWS_SERVICES` tuple of a wiring module, read from its source (nothing of the function is imported)."""
    for node in ast.parse(wiring.read_text(), filename=str(wiring)).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        else:
            continue
        if name != SERVICES_NAME or value is None:
            continue
        services = ast.literal_eval(value)
        if not isinstance(services, tuple) or not services or not all(isinstance(item, str) for item in services):
            raise FinishBuildError(f"{wiring}: {SERVICES_NAME} must be a non-empty tuple of service names")
        return services
    raise FinishBuildError(f"{wiring} defines no {SERVICES_NAME}: which AWS services the function calls is unknown")


def keep_called_models(build_dir: Path) -> list[ModelsKept]:
    """Remove from every built layer's botocore/data the service folders of services the function does not call."""
    dirs = code_dirs(build_dir)
    wirings = [directory / WIRING for directory in dirs if (directory / WIRING).is_file()]
    if len(wirings) != 1:
        raise FinishBuildError(f"{build_dir} must hold exactly one built function with {WIRING} (found {len(wirings)})")
    services = services_called(wirings[0])
    trimmed = []
    for directory in dirs:
        models = directory / MODELS
        if not models.is_dir():
            continue
        missing = sorted(name for name in services if not (models / name).is_dir())
        if missing:
            raise FinishBuildError(f"botocore in {directory} has no model for {', '.join(missing)}: check AWS_SERVICES")
        removed = 0
        for folder in sorted(path for path in models.iterdir() if path.is_dir()):
            if folder.name not in services:
                shutil.rmtree(folder)
                removed += 1
        trimmed.append(ModelsKept(layer_dir=directory, kept=tuple(sorted(services)), removed=removed))
    if not trimmed:
        raise FinishBuildError(f"no built layer under {build_dir} holds botocore")
    return trimmed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build_dir", nargs="?", type=Path, default=DEFAULT_BUILD_DIR, help="sam build's output")
    args = parser.parse_args(argv)
    try:
        runtime = template_runtime()
        refuse_another_python(runtime)  # before anything changes: another Python could not finish the build
        trimmed = keep_called_models(args.build_dir)
        compiled = precompile(args.build_dir, runtime)
    except (FinishBuildError, PrecompileError) as exc:
        print(f"finish_build: {exc}", file=sys.stderr)
        return 2
    for layer in trimmed:
        print(
            f"finish_build: botocore models kept for {', '.join(layer.kept)}; {layer.removed} other services' removed"
            f" from {layer.layer_dir}"
        )
    print(f"finish_build: {compiled} modules under {args.build_dir} compiled for the Lambda runtime (hash-checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
