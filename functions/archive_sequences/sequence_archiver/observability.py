"""Observability: metrics derived from outcomes and Reply calls (EMF), correlation ids in logs, trace spans."""

from __future__ import annotations

import logging
import random
from collections import Counter
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from sequence_archiver.core.outcomes import Outcome
from sequence_archiver.core.reply_answers import BulkArchiveResponse

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from aws_lambda_powertools import Metrics, Tracer

    from sequence_archiver.core.outcomes import SequenceResult
    from sequence_archiver.core.reply_answers import ApiCall, ReplyResponse

logger = logging.getLogger(__name__)

# One EMF blob holds at most 100 values per metric; a uniform sample of that size keeps the latency
# percentiles honest without paying (in CPU and log volume) for every single call of a large batch.
LATENCY_SAMPLES_PER_INVOCATION = 100

OUTCOME_METRICS: dict[Outcome, str] = {
    Outcome.ARCHIVED: "SequencesArchived",
    Outcome.ALREADY_ARCHIVED: "SequencesAlreadyArchived",
    Outcome.NOT_FOUND: "SequencesNotFound",
    Outcome.FORBIDDEN: "SequencesForbidden",
    Outcome.CONFLICT: "SequencesConflict",
    Outcome.INVALID: "SequencesInvalid",
    Outcome.FAILED: "SequencesFailed",
    Outcome.UNCONFIRMED: "SequencesUnconfirmed",
}


WORKSPACE_DIMENSION = "workspace"


class WorkspaceMetrics(Protocol):
    """An EMF document of its own (Powertools' EphemeralMetrics): one workspace's figures, [service, workspace]."""

    def add_dimension(self, name: str, value: str) -> None: ...

    def add_metric(self, name: str, unit: MetricUnit | str, value: float) -> None: ...

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None: ...


@dataclass
class _WorkspaceCalls:
    calls: int = 0
    throttled: int = 0


class MetricsRecorder:
    """Translates what happened into metric values; dimensions stay low-cardinality: [service] for every figure,
    and [service, workspace] for the figures of requests naming a workspace, whose values are only ever the names
    REPLY_WORKSPACES lists (never a name a request made up)."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        latency_samples: int = LATENCY_SAMPLES_PER_INVOCATION,
        workspaces: frozenset[str] = frozenset(),
        workspace_metrics: Callable[[], WorkspaceMetrics] | None = None,
    ) -> None:
        self._metrics = metrics
        self._latency_samples = latency_samples
        self._api_calls = 0
        self._throttled = 0
        self._unconfirmed_answers = 0
        self._foreign_keys = 0
        self._latencies: list[float] = []
        self._workspaces = workspaces  # the dimension values allowed
        self._workspace_metrics = workspace_metrics  # a fresh EMF document per workspace and invocation
        self._workspace_calls: dict[str, _WorkspaceCalls] = {}

    def record_api_call(self, call: ApiCall) -> None:
        """Note one HTTP attempt; latencies are kept as a uniform sample (reservoir) for percentiles."""
        self._api_calls += 1
        self._throttled += call.http_status == 429
        if len(self._latencies) < self._latency_samples:
            self._latencies.append(call.latency_ms)
        else:
            slot = random.randrange(self._api_calls)  # noqa: S311 - sampling, not cryptography
            if slot < self._latency_samples:
                self._latencies[slot] = call.latency_ms

    def api_call_recorder(self, workspace: str) -> Callable[[ApiCall], None]:
        """What a workspace's Reply client notes each HTTP attempt with: the service's figures and its own."""

        def record(call: ApiCall) -> None:
            self.record_api_call(call)
            if workspace in self._workspaces:
                tally = self._workspace_calls.setdefault(workspace, _WorkspaceCalls())
                tally.calls += 1
                tally.throttled += call.http_status == 429

        return record

    def record_workspaces(self, results: Mapping[str, Iterable[SequenceResult]]) -> None:
        """The invocation's figures per workspace that had work in it (results, or Reply calls such as a clean-up's
        listing), each flushed as an EMF document of its own with a `workspace` dimension; the [service] figures
        (record_invocation) already count the same results, so alarms on them see every workspace.

        Never raises: the effects of the invocation are done, and a metric must not make SQS redeliver them.
        """
        calls, self._workspace_calls = self._workspace_calls, {}
        if self._workspace_metrics is None:
            return
        worked = [name for name in dict.fromkeys([*results, *calls]) if name in self._workspaces]
        for workspace in worked:
            counts = Counter(result.outcome for result in results.get(workspace, ()))
            tally = calls.get(workspace, _WorkspaceCalls())
            try:
                emf = self._workspace_metrics()
                emf.add_dimension(name=WORKSPACE_DIMENSION, value=workspace)
                for outcome, metric_name in OUTCOME_METRICS.items():
                    emf.add_metric(name=metric_name, unit=MetricUnit.Count, value=counts.get(outcome, 0))
                emf.add_metric(name="ReplyApiCalls", unit=MetricUnit.Count, value=tally.calls)
                emf.add_metric(name="ReplyApiThrottled", unit=MetricUnit.Count, value=tally.throttled)
                emf.flush_metrics()
            except Exception as exc:
                logger.warning(
                    "workspace metrics not written", extra={"workspace": workspace, "error": type(exc).__name__}
                )

    def record_unconfirmed_answer(self, answer: ReplyResponse | BulkArchiveResponse) -> None:
        """Note a 2xx archive answer that did not confirm the archive, and a bulk answer's keys naming IDs not sent."""
        self._unconfirmed_answers += 1
        if isinstance(answer, BulkArchiveResponse):
            self._foreign_keys += answer.foreign_keys

    def record_invocation(self, results: Iterable[SequenceResult]) -> None:
        """Outcome counts (zeros included, so dashboards show flat lines, not gaps) and the call totals."""
        counts = Counter(result.outcome for result in results)
        for outcome, metric_name in OUTCOME_METRICS.items():
            self._metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=counts.get(outcome, 0))
        self._metrics.add_metric(name="ReplyApiCalls", unit=MetricUnit.Count, value=self._api_calls)
        self._metrics.add_metric(name="ReplyApiThrottled", unit=MetricUnit.Count, value=self._throttled)
        self._metrics.add_metric(name="ReplyAnswersUnconfirmed", unit=MetricUnit.Count, value=self._unconfirmed_answers)
        self._metrics.add_metric(name="BulkAnswerForeignKeys", unit=MetricUnit.Count, value=self._foreign_keys)
        for latency in self._latencies:
            self._metrics.add_metric(name="ReplyApiLatency", unit=MetricUnit.Milliseconds, value=latency)
        self._api_calls = self._throttled = self._unconfirmed_answers = self._foreign_keys = 0
        self._latencies = []

    def record_duplicate_request(self) -> None:
        """A redelivered request that was already processed (idempotency), acknowledged without work."""
        self._metrics.add_metric(name="RequestsSkippedAsDuplicate", unit=MetricUnit.Count, value=1)

    def record_deferred(self, sequence_ids: int) -> None:
        """A record carried on by a continuation because the rate budget (or the time) ran out."""
        self._metrics.add_metric(name="RecordsDeferred", unit=MetricUnit.Count, value=1)
        self._metrics.add_metric(name="SequencesDeferred", unit=MetricUnit.Count, value=sequence_ids)

    def record_plan(self, *, selected: int, enqueued: int) -> None:
        """A clean-up request's plan: the sequences its selection matched, and those put on the archive queue."""
        self._metrics.add_metric(name="SequencesSelected", unit=MetricUnit.Count, value=selected)
        self._metrics.add_metric(name="SequencesEnqueued", unit=MetricUnit.Count, value=enqueued)

    def record_unsupported_event(self) -> None:
        """An event from a source the function does not serve (S3, a stream...): the invocation fails."""
        self._metrics.add_metric(name="EventsUnsupported", unit=MetricUnit.Count, value=1)

    def record_forged_continuation(self) -> None:
        """A continuation the function did not make (or one altered): honoured as a new request, never as one."""
        self._metrics.add_metric(name="ContinuationsForged", unit=MetricUnit.Count, value=1)

    def record_rejected_request(self) -> None:
        """A payload that was not an archive request at all."""
        self._metrics.add_metric(name="RequestsRejected", unit=MetricUnit.Count, value=1)

    def record_refused_cleanup(self) -> None:
        """A clean-up request on a trigger CLEANUP_ALLOWED_TRIGGERS does not name: refused, nothing listed."""
        self._metrics.add_metric(name="CleanupRequestsRefused", unit=MetricUnit.Count, value=1)


# ---------------------------------------------------------------- correlation ids in every log line

_correlation_id: ContextVar[str | list[str] | None] = ContextVar("correlation_id", default=None)


class CorrelationIdFilter(logging.Filter):
    """Adds the current request's correlation id (SQS message id, EventBridge event id...) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate, never drop."""
        correlation_id = _correlation_id.get()
        if correlation_id is not None and not hasattr(record, "correlation_id"):
            record.correlation_id = correlation_id
        return True


@contextmanager
def correlation(correlation_id: str | list[str]) -> Iterator[None]:
    """Log lines inside the block carry this correlation id (a list for work on a whole SQS batch)."""
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)


# ---------------------------------------------------------------- the AWS SDK's own loggers

# The SDK's loggers: at DEBUG, botocore logs every request (the session token header included) and every
# response body (GetSecretValue's holds the API key).
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
# The loggers whose debug lines quote requests and response bodies.
_SDK_BODY_LOGGERS = ("botocore.parsers", "botocore.endpoint")
_SECRET_MARKERS = ("SecretString", "SecretBinary", "X-Amz-Security-Token", "x-amz-security-token")
WITHHELD_SDK_LINE = "[SDK debug line withheld: it may hold a secret or credentials]"


class SdkSecretFilter(logging.Filter):
    """Withholds SDK debug lines that quote a secret's value or a session token (the record is kept, emptied)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite, never drop."""
        if record.name.split(".", 1)[0] in SDK_LOGGERS:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string must not break logging: withhold it too
                message = _SECRET_MARKERS[0]
            if any(marker in message for marker in _SECRET_MARKERS):
                record.msg, record.args = WITHHELD_SDK_LINE, ()
        return True


def hold_sdk_loggers_at_warning(opt_in: bool) -> None:
    """Keep the SDK's loggers at WARNING whatever the root level, unless `opt_in` (SDK_DEBUG_LOGGING=true).

    Opted in, their debug lines pass, except those quoting a secret or session token (SdkSecretFilter on
    the loggers that quote bodies and on the root logger's handlers).
    """
    if not opt_in:
        for name in SDK_LOGGERS:
            sdk_logger = logging.getLogger(name)
            if sdk_logger.level < logging.WARNING:  # NOTSET (follow the root) included; ERROR is left as set
                sdk_logger.setLevel(logging.WARNING)
        return
    secret_filter = SdkSecretFilter()
    for name in _SDK_BODY_LOGGERS:
        logging.getLogger(name).addFilter(secret_filter)
    for handler in logging.getLogger().handlers:
        handler.addFilter(secret_filter)


# ---------------------------------------------------------------- tracing


class Tracing(Protocol):
    """Opens a named trace subsegment around a piece of work (X-Ray through Powertools Tracer)."""

    def span(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        """A subsegment with these annotations (searchable in X-Ray)."""
        ...


class NoTracing:
    """Tracing turned off (tests, local runs, POWERTOOLS_TRACE_DISABLED)."""

    def span(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        """Nothing to open."""
        del name, annotations
        return nullcontext()


class PowertoolsTracing:
    """Subsegments through a Powertools Tracer."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    @contextmanager
    def span(self, name: str, **annotations: str) -> Iterator[None]:
        """Open `name` as a subsegment of the current segment."""
        with self._tracer.provider.in_subsegment(name) as subsegment:
            for key, value in annotations.items():
                subsegment.put_annotation(key=key, value=value)
            yield
