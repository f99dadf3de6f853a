"""The Lambda handler, built once per instance from an environment: settings, Powertools, then the pipeline.

`create_handler(os.environ)` is what `app.py` calls at the cold start; tests and local scenarios call it with
the environment they want, so a new "instance" is a new call, not a re-import. The settings are read first,
so a bad variable fails the cold start naming it. The pipeline itself is built on the first invocation.
Powertools' own variables (log level, sampling) are read by Powertools from the process environment.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from sequence_archiver.observability import CorrelationIdFilter, hold_sdk_loggers_at_warning
from sequence_archiver.settings import load_settings
from sequence_archiver.wiring import build_service

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from sequence_archiver.pipeline.service import ArchiveService
    from sequence_archiver.settings import Settings

    LambdaHandler = Callable[[Any, LambdaContext], dict[str, Any]]  # what create_handler returns


def create_handler(environ: Mapping[str, str]) -> LambdaHandler:
    """The handler of one Lambda instance configured by `environ`: logs, metrics and traces around the pipeline."""
    settings = load_settings(environ)  # fails the cold start with a message naming the bad variable
    # botocore logs GetSecretValue's response at DEBUG: its loggers stay at WARNING unless SDK_DEBUG_LOGGING opts in.
    hold_sdk_loggers_at_warning(opt_in=settings.sdk_debug_logging)
    logger = Logger(service=settings.service_name)  # level from POWERTOOLS_LOG_LEVEL (or LOG_LEVEL)
    for log_handler in logger.handlers:
        log_handler.addFilter(CorrelationIdFilter())  # shared with the package's loggers below
    copy_config_to_registered_loggers(source_logger=logger, include={"sequence_archiver"})
    metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)
    # Only built when tracing is on: a disabled Tracer still imports the X-Ray SDK.
    tracer = Tracer(service=settings.service_name) if settings.tracing_enabled else None

    function = ArchiveFunction(settings, metrics, tracer)
    measured = metrics.log_metrics(capture_cold_start_metric=True)(function.archive)
    # Results can be large and go to EventBridge anyway: the trace keeps the subsegments, not the response.
    traced = tracer.capture_lambda_handler(capture_response=False)(measured) if tracer else measured
    handler: LambdaHandler = logger.inject_lambda_context(clear_state=True)(traced)
    return handler


class ArchiveFunction:
    """One Lambda instance's pipeline, built on its first invocation from the settings its cold start read."""

    def __init__(self, settings: Settings, metrics: Metrics, tracer: Tracer | None) -> None:
        self._settings = settings
        self._metrics = metrics
        self._tracer = tracer

    @cached_property
    def service(self) -> ArchiveService:
        """The pipeline and its clients (built once)."""
        return build_service(self._settings, self._metrics, self._tracer)

    def archive(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        """Archive the sequence IDs of an SQS batch, an EventBridge event or a direct payload."""
        return self.service.handle(event, context)
