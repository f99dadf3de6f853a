"""The dashboard shows the function's own metrics, its queues and its Lambda health, naming the real resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.template.helpers import of_type, only, parse_sub_json, sub_references

pytestmark = pytest.mark.template

FUNCTION_SOURCES = Path(__file__).resolve().parents[2] / "functions" / "archive_sequences"
DASHBOARD = "OperationsDashboard"
FUNCTION = "ArchiveSequencesFunction"
REQUESTS_QUEUE = "ArchiveRequestsQueue"
CLEANUP_DLQ = "CleanupScheduleDeadLetterQueue"
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::StackName", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}


def body_text(resources: dict[str, dict[str, Any]]) -> str:
    """The dashboard body as written: one Fn::Sub string."""
    body: str = only(resources, "AWS::CloudWatch::Dashboard")["DashboardBody"]["Fn::Sub"]
    return body


def metric_widgets(resources: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The Properties of every metric widget."""
    widgets = parse_sub_json(body_text(resources))["widgets"]
    return [widget["properties"] for widget in widgets if widget["type"] == "metric"]


def metric_lines(resources: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(namespace, metric, dimension name, dimension value, options) for every line of every metric widget."""
    lines = []
    for widget in metric_widgets(resources):
        for line in widget["metrics"]:
            if len(line) == 1:  # a metric-math expression: its inputs are lines of their own
                continue
            namespace, metric, dimension, value, *options = line
            lines.append((namespace, metric, dimension, value, {"stat": widget.get("stat"), **(options or [{}])[0]}))
    return lines


def emitted_by_the_function(metric: str) -> bool:
    """True when the function's source adds this metric (the name appears as a string literal)."""
    return any(f'"{metric}"' in path.read_text() for path in FUNCTION_SOURCES.rglob("*.py"))


def test_the_body_is_json_once_its_references_are_substituted(resources):
    widgets = parse_sub_json(body_text(resources))["widgets"]

    assert widgets
    assert all({"type", "x", "y", "width", "height", "properties"} <= set(widget) for widget in widgets)


def test_every_reference_names_a_resource_parameter_or_pseudo_parameter(transformed_template, resources):
    for reference in sub_references(body_text(resources)):
        name = reference.split(".")[0]
        assert name in resources or name in transformed_template["Parameters"] or reference in PSEUDO_PARAMETERS, (
            reference
        )


def test_every_graph_is_drawn_in_the_stack_s_region(resources):
    assert {widget["region"] for widget in metric_widgets(resources)} == {"${AWS::Region}"}


def test_the_function_s_metrics_use_its_namespace_and_service_dimension(resources):
    variables = resources[FUNCTION]["Properties"]["Environment"]["Variables"]
    own = [line for line in metric_lines(resources) if not line[0].startswith("AWS/")]

    assert own
    assert {(namespace, dimension, value) for namespace, _, dimension, value, _ in own} == {
        (variables["POWERTOOLS_METRICS_NAMESPACE"], "service", variables["POWERTOOLS_SERVICE_NAME"])
    }
    assert [metric for _, metric, *_ in own if not emitted_by_the_function(metric)] == []


@pytest.mark.parametrize(
    ("metric", "stats"),
    [
        ("SequencesArchived", {"Sum"}),
        ("SequencesFailed", {"Sum"}),
        ("ReplyApiLatency", {"p50", "p90", "p99"}),
        ("ReplyApiThrottled", {"Sum"}),
        ("ReplyApiCalls", {"Sum"}),
    ],
)
def test_the_function_s_key_metric_is_graphed_per_minute(resources, metric, stats):
    lines = [options for _, name, _, _, options in metric_lines(resources) if name == metric]
    periods = {
        widget.get("period")
        for widget in metric_widgets(resources)
        if any(len(m) > 1 and m[1] == metric for m in widget["metrics"])
    }

    assert {options["stat"] for options in lines} == stats
    assert periods == {60}


@pytest.mark.parametrize("metric", ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"])
def test_the_request_queue_s_depth_and_age_are_graphed(resources, metric):
    assert ("AWS/SQS", metric, "QueueName", f"${{{REQUESTS_QUEUE}.QueueName}}") in {
        line[:4] for line in metric_lines(resources)
    }


def test_every_dead_letter_and_failure_queue_s_depth_is_graphed(resources):
    queues = of_type(resources, "AWS::SQS::Queue")
    always = {name for name, queue in queues.items() if "Condition" not in queue} - {REQUESTS_QUEUE}
    graphed = {
        value.removeprefix("${").removesuffix(".QueueName}")
        for namespace, metric, _, value, _ in metric_lines(resources)
        if (namespace, metric) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    }

    assert len(always) == 3
    assert always <= graphed
    # The clean-up schedule's queue may not exist, so the dashboard names it instead of referring to it.
    assert queues[CLEANUP_DLQ]["Properties"]["QueueName"] == {"Fn::Sub": "${AWS::StackName}-cleanup-dead-letters"}
    assert "AWS::StackName}-cleanup-dead-letters" in graphed


@pytest.mark.parametrize("metric", ["Errors", "Throttles", "Duration"])
def test_the_function_s_lambda_health_is_graphed(resources, metric):
    assert ("AWS/Lambda", metric, "FunctionName", f"${{{FUNCTION}}}") in {line[:4] for line in metric_lines(resources)}


def test_the_alarm_widget_shows_every_alarm(resources):
    widgets = parse_sub_json(body_text(resources))["widgets"]
    [alarm_widget] = [widget["properties"] for widget in widgets if widget["type"] == "alarm"]

    # Alarms that exist in every stack; the clean-up schedule's alarm (when there is one) notifies the topic.
    assert sorted(alarm_widget["alarms"]) == sorted(
        f"${{{name}.Arn}}"
        for name, alarm in of_type(resources, "AWS::CloudWatch::Alarm").items()
        if "Condition" not in alarm
    )


def test_the_outputs_name_the_dashboard_and_link_to_it(sam_template):
    outputs = sam_template["Outputs"]

    assert outputs["DashboardName"]["Value"] == {"Ref": DASHBOARD}
    assert outputs["DashboardUrl"]["Value"]["Fn::Sub"].endswith("#dashboards/dashboard/${OperationsDashboard}")


def test_deferrals_and_the_backlog_against_the_budget_are_graphed(resources):
    body = body_text(resources)
    for metric in ("RecordsDeferred", "SequencesDeferred", "ApproximateNumberOfMessagesDelayed"):
        assert metric in body
    assert "${ReplyRateLimitPerHour}" in body  # the estimate divides the backlog by the hourly budget


def test_what_clean_up_policies_select_and_enqueue_is_graphed(resources):
    graphed = {(namespace, metric) for namespace, metric, *_ in metric_lines(resources)}

    assert {("ReplySequenceArchiver", "SequencesSelected"), ("ReplySequenceArchiver", "SequencesEnqueued")} <= graphed
