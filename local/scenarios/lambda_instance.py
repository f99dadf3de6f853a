"""A fresh Lambda instance in this process: the handler `create_handler` builds from the function's environment.

A new instance is a new `create_handler` call, not a re-import: the function's modules stay loaded (their
classes stay the same objects), and only what Powertools keeps per process is reset, as a new process would
have it: the service's logger (its handler is bound to the stdout of the run that made it), the cold-start
flags, and the metric sets every `Metrics` shares.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from local.stand_ins.aws_stack import variables_to_unset

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sequence_archiver.handler import LambdaHandler

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "functions" / "archive_sequences"
IDEMPOTENCY_VARIABLE = "IDEMPOTENCY_TABLE_NAME"  # set only when the function uses Powertools idempotency
DEFAULT_SERVICE_NAME = "sequence-archiver"
COLD_START_FLAGS = (  # Powertools modules that remember whether this process has had its cold start
    "aws_lambda_powertools.metrics.provider.cold_start",
    "aws_lambda_powertools.metrics.base",
    "aws_lambda_powertools.logging.logger",
    "aws_lambda_powertools.tracing.tracer",
)


@dataclass(frozen=True)
class LambdaInstance:
    """One Lambda instance: the handler its cold start built."""

    lambda_handler: LambdaHandler


def put_function_on_path() -> None:
    """The function's code root on sys.path, as /var/task is on Lambda, so its package imports as it does there."""
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))


def forget_warm_state(service_name: str) -> None:
    """Undo what an earlier instance left in this process that Powertools would reuse: its service logger (bound
    to an older stdout), the cold-start flags and the metric sets shared by every Metrics instance."""
    logging.Logger.manager.loggerDict.pop(service_name, None)
    for module_name in COLD_START_FLAGS:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "is_cold_start"):
            setattr(module, "is_cold_start", True)  # noqa: B010 - the attribute is not declared to mypy
    from aws_lambda_powertools import Metrics

    for attribute in ("_metrics", "_dimensions", "_metadata", "_default_dimensions"):
        shared = getattr(Metrics, attribute, None)  # class-level dicts every Metrics instance shares
        if isinstance(shared, dict):
            shared.clear()


def fresh_handler(environ: Mapping[str, str] | None = None) -> LambdaInstance:
    """A new Lambda instance configured by `environ` (the process environment by default), as a cold start."""
    put_function_on_path()
    environment = os.environ if environ is None else environ
    forget_warm_state(environment.get("POWERTOOLS_SERVICE_NAME", DEFAULT_SERVICE_NAME))
    from sequence_archiver.handler import create_handler

    return LambdaInstance(create_handler(environment))


def replace_environment(environment: dict[str, str]) -> None:
    """Make the function's environment the process environment, as the Lambda runtime would."""
    for name in [*variables_to_unset(os.environ), IDEMPOTENCY_VARIABLE]:
        os.environ.pop(name, None)
    os.environ.update(environment)
