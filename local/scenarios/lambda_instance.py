"""A fresh Lambda instance in this process: the function's environment, then `app` imported as on a cold start."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from local.stand_ins.aws_stack import variables_to_unset

if TYPE_CHECKING:
    from types import ModuleType

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "functions" / "archive_sequences"
IDEMPOTENCY_VARIABLE = "IDEMPOTENCY_TABLE_NAME"  # set only when the function uses Powertools idempotency


def put_function_on_path() -> None:
    """The function's code root on sys.path, as /var/task is on Lambda, so `import app` finds the handler."""
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))


def fresh_handler(service_name: str = "sequence-archiver") -> ModuleType:
    """Import `app` afresh, as a new Lambda instance would (a cold start reading the current environment)."""
    put_function_on_path()
    for name in [name for name in sys.modules if name == "app" or name.split(".", 1)[0] == "sequence_archiver"]:
        del sys.modules[name]  # this module keeps its own references to the parser it imported
    registry = logging.Logger.manager.loggerDict
    for name in [name for name in registry if name == service_name or name.split(".", 1)[0] == "sequence_archiver"]:
        del registry[name]  # Powertools would reuse a logger bound to the previous run's stdout
    for module_name in (
        "aws_lambda_powertools.metrics.provider.cold_start",
        "aws_lambda_powertools.logging.logger",
    ):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "is_cold_start"):
            setattr(module, "is_cold_start", True)  # noqa: B010 - the attribute is not declared to mypy
    from aws_lambda_powertools import Metrics

    for attribute in ("_metrics", "_dimensions", "_metadata", "_default_dimensions"):
        shared = getattr(Metrics, attribute, None)  # class-level dicts every Metrics instance shares
        if isinstance(shared, dict):
            shared.clear()
    return importlib.import_module("app")


def replace_environment(environment: dict[str, str]) -> None:
    """Make the function's environment the process environment, as the Lambda runtime would."""
    for name in [*variables_to_unset(os.environ), IDEMPOTENCY_VARIABLE]:
        os.environ.pop(name, None)
    os.environ.update(environment)
