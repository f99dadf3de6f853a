"""The command line uses the function package through its public API (`sequence_archiver.public`) only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sequence_archiver import public

CLI_ROOT = Path(__file__).resolve().parents[2] / "cli" / "sequence_archiver_cli"
CLI_MODULES = sorted(CLI_ROOT.rglob("*.py"))


def function_package_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every `from sequence_archiver... import names` in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.module, [alias.name for alias in node.names])
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module is not None
        and (node.module == "sequence_archiver" or node.module.startswith("sequence_archiver."))
    ] + [
        (alias.name, [])
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.startswith("sequence_archiver.")
    ]


@pytest.mark.parametrize("path", CLI_MODULES, ids=lambda path: str(path.relative_to(CLI_ROOT)))
def test_the_cli_imports_only_the_package_s_public_names(path: Path) -> None:
    for module, names in function_package_imports(path):
        assert module == "sequence_archiver.public", f"{path.name} reaches into {module}"
        assert set(names) <= set(public.__all__), f"{path.name} imports non-public {names}"
