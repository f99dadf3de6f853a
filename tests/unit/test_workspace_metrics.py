"""Per-workspace metrics: the [service] figures as always, and for each served workspace that had work an EMF
document of its own under [service, workspace]."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics

from sequence_archiver.core.outcomes import Outcome, SequenceResult
from sequence_archiver.core.reply_answers import ApiCall
from sequence_archiver.observability import OUTCOME_METRICS, MetricsRecorder

SERVED = frozenset({"sales-eu", "sales-us"})


class ServiceMetrics:
    """Stands in for the handler's Powertools Metrics: every value added, by name."""

    def __init__(self) -> None:
        self.values: defaultdict[str, list[float]] = defaultdict(list)

    def add_metric(self, name: str, unit: object, value: float) -> None:
        self.values[name].append(value)


def emitted(stdout: str) -> dict[str, dict[str, object]]:
    """The EMF documents printed, by their workspace dimension value."""
    documents = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]
    return {document["workspace"]: document for document in documents}


def recorder(service: ServiceMetrics) -> MetricsRecorder:
    return MetricsRecorder(
        service,  # type: ignore[arg-type]
        workspaces=SERVED,
        workspace_metrics=lambda: EphemeralMetrics(namespace="ReplySequenceArchiver", service="sequence-archiver"),
    )


def test_each_served_workspace_with_work_gets_its_own_document_and_the_service_figures_stay_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = ServiceMetrics()
    metrics = recorder(service)
    eu_calls = metrics.api_call_recorder("sales-eu")
    for status in (200, 429, 200):
        eu_calls(ApiCall("ArchiveSequence", status, 5.0))
    metrics.record_api_call(ApiCall("ArchiveSequence", 200, 5.0))  # the default key's client
    archived, failed = SequenceResult(101, Outcome.ARCHIVED), SequenceResult(102, Outcome.FAILED)
    everything = [archived, failed, SequenceResult(103, Outcome.ARCHIVED)]

    metrics.record_invocation(everything)
    metrics.record_workspaces({"sales-eu": [archived, failed], "not-served": [SequenceResult(9, Outcome.ARCHIVED)]})

    assert (sum(service.values["SequencesArchived"]), sum(service.values["ReplyApiCalls"])) == (2, 4)
    documents = emitted(capsys.readouterr().out)
    assert set(documents) == {"sales-eu"}  # sales-us had no work; a name not served is never a dimension value
    eu = documents["sales-eu"]
    [directive] = eu["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert directive["Dimensions"] == [["workspace", "service"]]
    assert {metric["Name"] for metric in directive["Metrics"]} == {
        *OUTCOME_METRICS.values(),
        "ReplyApiCalls",
        "ReplyApiThrottled",
    }
    assert (eu["SequencesArchived"], eu["SequencesFailed"], eu["SequencesNotFound"]) == ([1.0], [1.0], [0.0])
    assert (eu["ReplyApiCalls"], eu["ReplyApiThrottled"]) == ([3.0], [1.0])


def test_calls_without_results_still_count_and_every_invocation_starts_from_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = recorder(ServiceMetrics())
    metrics.api_call_recorder("sales-us")(ApiCall("GetSequences", 200, 5.0))  # a clean-up's listing: no results

    metrics.record_workspaces({})
    first = emitted(capsys.readouterr().out)
    metrics.record_workspaces({})

    assert (first["sales-us"]["ReplyApiCalls"], first["sales-us"]["SequencesArchived"]) == ([1.0], [0.0])
    assert capsys.readouterr().out == ""


def test_a_failing_metrics_document_is_logged_never_raised() -> None:
    class Broken:
        def add_dimension(self, name: str, value: str) -> None:
            raise ValueError("boom")

    metrics = MetricsRecorder(
        ServiceMetrics(),  # type: ignore[arg-type]
        workspaces=SERVED,
        workspace_metrics=Broken,  # type: ignore[arg-type]
    )

    metrics.record_workspaces({"sales-eu": [SequenceResult(1, Outcome.ARCHIVED)]})
