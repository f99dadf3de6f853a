"""`make run`: archive the sample events through the real handler, on a Reply simulator and a moto server."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from local.scenarios.lambda_instance import put_function_on_path, replace_environment
from local.stand_ins.aws_stack import (
    LocalStack,
    create_snapshot_bucket,
    delete_messages,
    drain_queue,
    function_environment,
    provision,
    read_results_events,
    read_snapshot,
    receive_batch,
    send_messages,
    sqs_event_from_messages,
    start_moto_server,
    unique_name_prefix,
)
from local.stand_ins.lambda_context import LocalLambdaContext
from sequence_archiver_cli.output import clip, table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from types import ModuleType

    from mypy_boto3_sqs.type_defs import MessageTypeDef

PROJECT_DIR = Path(__file__).resolve().parents[2]
EVENTS_DIR = PROJECT_DIR / "events"
# Contacts seeded in sample sequences (active, finished), so the snapshots have someone to record: 1,500 in 101
# take two pages of the listing.
DEMO_CONTACTS = {101: (1200, 300), 102: (3, 7), 106: (0, 12)}
# The policy demo's sequences: id -> (name, health, active contacts, finished contacts). With
# cleanup-policy-dry-run.json exactly 901 and 903 are selected: 902 is healthy, 904 is on the keep list by id,
# 905 by name, and 906 still has an active contact.
POLICY_SEQUENCES = {
    901: ("Retired Q1 nurture", "blocked", 0, 40),
    902: ("Retired Q2 nurture", "healthy", 0, 25),
    903: ("Retired webinar follow-up", "stalled", 0, 0),
    904: ("Retired partner intro", "blocked", 0, 10),
    905: ("Retired but keep: board", "stalled", 0, 5),
    906: ("Retired trial reminder", "blocked", 1, 30),
}
POLICY_SELECTED = [901, 903]
SCOPES = frozenset({"sequences:read", "sequences:operate", "sequences:write"})
COUNT_KEYS = ("archived", "already_archived", "not_found", "forbidden", "conflict", "invalid", "failed")
ERROR_WIDTH = 52
LOG_LINES_SHOWN = 4
# Keys Powertools Logger adds to every line; the demo shows only what the function itself logged.
_STANDARD_LOG_KEYS = frozenset(
    {
        "level",
        "message",
        "timestamp",
        "location",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "sampling_rate",
        "xray_trace_id",
    }
)


class _FollowStdout(io.TextIOBase):
    """Writes wherever sys.stdout points at write time, so handlers bound at import are still captured."""

    def __init__(self, fallback: TextIO) -> None:
        self._fallback = fallback

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        target = sys.stdout if sys.stdout is not self else self._fallback
        return target.write(text)

    def flush(self) -> None:
        target = sys.stdout if sys.stdout is not self else self._fallback
        target.flush()


@dataclass
class Invocation:
    """One call of the handler and everything it left behind."""

    trigger: str
    source: str
    seconds: float = 0.0
    response: Any = None
    incomplete: str | None = None
    unexpected: str | None = None
    stdout: str = ""
    stderr: str = ""
    notes: list[str] = field(default_factory=list)


def _invoke(app: ModuleType, event: Any, invocation: Invocation, incomplete_type: type[Exception]) -> None:
    """Call the handler with a fresh context, capturing its stdout/stderr and sorting what it raised."""
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            invocation.response = app.lambda_handler(event, LocalLambdaContext())
    except incomplete_type as exc:
        invocation.incomplete = f"{type(exc).__name__}: {exc}"
        invocation.response = getattr(exc, "detail", None)
    except Exception as exc:  # anything else is exactly what the demo must report
        invocation.unexpected = f"{type(exc).__name__}: {exc}"
    invocation.seconds = time.perf_counter() - started
    invocation.stdout, invocation.stderr = out.getvalue(), err.getvalue()


def _run_sqs(app: ModuleType, stack: LocalStack, incomplete_type: type[Exception]) -> Invocation:
    """Send the sample records to the real queue, receive them as one batch, invoke, delete the successes."""
    sample = json.loads((EVENTS_DIR / "sqs-batch.json").read_text(encoding="utf-8"))
    for record in sample["Records"]:
        attributes = {
            name: value["stringValue"]
            for name, value in record.get("messageAttributes", {}).items()
            if value.get("dataType", "").startswith(("String", "Number")) and "stringValue" in value
        }
        send_messages(stack, [record["body"]], message_attributes=attributes)
    messages = receive_batch(stack, max_messages=len(sample["Records"]))
    invocation = Invocation("sqs", f"{len(messages)} records of sqs-batch.json via the queue")
    if len(messages) != len(sample["Records"]):
        invocation.unexpected = f"received {len(messages)} of {len(sample['Records'])} messages from the queue"
        return invocation
    _invoke(app, sqs_event_from_messages(messages, stack.queue_arn, stack.region), invocation, incomplete_type)
    if invocation.unexpected is None:
        _settle_batch(stack, messages, invocation)
    return invocation


def _settle_batch(stack: LocalStack, messages: Sequence[MessageTypeDef], invocation: Invocation) -> None:
    """Delete what the handler acknowledged, as Lambda does with ReportBatchItemFailures."""
    response = invocation.response
    if not isinstance(response, dict) or not isinstance(response.get("batchItemFailures"), list):
        invocation.unexpected = f"an SQS invocation must return batchItemFailures, got {response!r}"[:200]
        return
    failed = {str(item.get("itemIdentifier")) for item in response["batchItemFailures"]}
    acknowledged = [message for message in messages if message["MessageId"] not in failed]
    delete_messages(stack, acknowledged)
    invocation.notes.append(f"{len(acknowledged)} deleted, {len(failed)} left on the queue for a retry")


def _run_file(app: ModuleType, name: str, trigger: str, incomplete_type: type[Exception]) -> Invocation:
    """Invoke the handler with one sample event file as it is."""
    event = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    invocation = Invocation(trigger, name)
    _invoke(app, event, invocation, incomplete_type)
    if invocation.unexpected is None and not isinstance(invocation.response, dict):
        invocation.unexpected = f"expected the results detail, got {invocation.response!r}"[:200]
    return invocation


# ---------------------------------------------------------------- reading the output


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every stdout line that is a JSON object."""
    documents = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                document = json.loads(stripped)
                if isinstance(document, dict):
                    documents.append(document)
    return documents


def _metric_totals(invocations: Iterable[Invocation]) -> dict[tuple[str, str], list[float]]:
    """Every EMF metric value per (name, unit) over the invocations' stdout."""
    totals: dict[tuple[str, str], list[float]] = {}
    for invocation in invocations:
        for document in _json_lines(invocation.stdout):
            directives = document.get("_aws", {}).get("CloudWatchMetrics")
            if not isinstance(directives, list):
                continue
            for directive in directives:
                for metric in directive.get("Metrics", []):
                    name, unit = str(metric.get("Name")), str(metric.get("Unit", ""))
                    value = document.get(name, 0)
                    values = value if isinstance(value, list) else [value]
                    totals.setdefault((name, unit), []).extend(float(v) for v in values)
    return totals


def _log_records(invocations: Iterable[Invocation]) -> list[dict[str, Any]]:
    """Powertools Logger JSON lines (they have a level and a message) from every invocation."""
    return [
        document
        for invocation in invocations
        for document in _json_lines(invocation.stdout)
        if "level" in document and "message" in document and "_aws" not in document
    ]


# ---------------------------------------------------------------- rendering


def _style(code: str) -> Callable[[str], str]:
    """An ANSI style when stdout is a terminal that accepts colour, else the identity."""
    if sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb":
        return lambda text: f"\033[{code}m{text}\033[0m"
    return lambda text: text


DIM, BOLD = _style("2"), _style("1")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The CLI's plain-text table, indented, with its header line in bold on a terminal."""
    header, rest = table(headers, rows, indent="  ").split("\n", 1)
    return BOLD(header) + "\n" + rest


def _short(request_id: object) -> str:
    return str(request_id)[:8]


def _print_invocations(invocations: Sequence[Invocation]) -> None:
    rows = []
    for number, invocation in enumerate(invocations, start=1):
        if invocation.unexpected:
            result = "UNEXPECTED " + invocation.unexpected
        elif invocation.incomplete:
            result = "raised " + invocation.incomplete
        elif invocation.trigger == "sqs":
            failures = len(invocation.response.get("batchItemFailures", []))
            result = f"batchItemFailures: {failures}"
        else:
            result = f"returned complete={invocation.response.get('complete')}"
        result = "; ".join([result, *invocation.notes])
        log_lines = len(_log_records([invocation]))
        rows.append(
            [number, invocation.trigger, invocation.source, clip(result, 72), f"{invocation.seconds:.2f}", log_lines]
        )
    print(BOLD("Invocations"))
    print(_table(["#", "trigger", "input", "result", "secs", "logs"], rows))


def _sequence_cell(result: dict[str, Any]) -> object:
    """The sequence ID, or for an invalid value what was sent, in parentheses."""
    sequence_id = result.get("sequenceId")
    return sequence_id if sequence_id is not None else f"({result.get('input', '-')})"


def _print_outcomes(details: Sequence[dict[str, Any]]) -> None:
    rows = []
    for detail in details:
        for result in detail.get("results", []):
            status, via = result.get("httpStatus"), result.get("via")
            rows.append(
                [
                    _short(detail.get("requestId")),
                    detail.get("trigger"),
                    _sequence_cell(result),
                    result.get("outcome"),
                    via if via is not None else "-",
                    status if status is not None else "-",  # "-" for an item of a 200 bulk answer, too
                    clip(result.get("error") or "", ERROR_WIDTH),
                ]
            )
    print(BOLD("Outcome of each sequence ID (from the results events)"))
    print(_table(["request", "trigger", "sequenceId", "outcome", "via", "http", "error"], rows))


def _read_snapshots(s3: Any, details: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every snapshot object the results events name, read back from the bucket (by URI)."""
    uris = {result["snapshot"] for detail in details for result in detail.get("results", []) if "snapshot" in result}
    return {uri: read_snapshot(s3, uri) for uri in sorted(uris)}


def _print_snapshots(snapshots: dict[str, dict[str, Any]]) -> None:
    print(
        BOLD(f"Snapshots stored before archiving: {len(snapshots)}") + "  (the sequence and every contact, gzip JSON)"
    )
    rows = []
    for uri, snapshot in snapshots.items():
        statuses = Counter(contact["statusInSequence"] for contact in snapshot["contacts"])
        by_status = ", ".join(f"{status} {count}" for status, count in sorted(statuses.items())) or "none"
        rows.append(
            [snapshot["sequenceId"], snapshot["contactCount"], by_status, clip(uri.split("/snapshots/")[-1], 60)]
        )
    print(_table(["sequenceId", "contacts", "by status", "object (s3://<bucket>/snapshots/...)"], rows))


def _check_snapshots(details: Sequence[dict[str, Any]], snapshots: dict[str, dict[str, Any]]) -> list[str]:
    """Every archived ID names a snapshot, and the seeded sequences' snapshots hold every contact seeded."""
    problems = []
    for detail in details:
        for result in detail.get("results", []):
            if result.get("outcome") == "archived" and "snapshot" not in result:
                problems.append(f"sequence {result.get('sequenceId')} was archived without a snapshot named")
    counts = {snapshot["sequenceId"]: snapshot["contactCount"] for snapshot in snapshots.values()}
    for sequence_id, (active, finished) in DEMO_CONTACTS.items():
        if sequence_id in counts and counts[sequence_id] != active + finished:
            problems.append(
                f"the snapshot of {sequence_id} holds {counts[sequence_id]} of {active + finished} contacts"
            )
    return problems


def _print_results_events(details: Sequence[dict[str, Any]]) -> None:
    per_trigger = Counter(str(detail.get("trigger")) for detail in details)
    summary = ", ".join(f"{trigger} {count}" for trigger, count in sorted(per_trigger.items()))
    print(BOLD(f"Results events read back from the bus: {len(details)}") + f"  ({summary})")
    rows = [
        [
            _short(detail.get("requestId")),
            detail.get("trigger"),
            "yes" if detail.get("complete") else "NO",
            *(detail.get("counts", {}).get(key, 0) for key in COUNT_KEYS),
        ]
        for detail in details
    ]
    print(_table(["request", "trigger", "complete", *COUNT_KEYS], rows))


def _print_dead_letters(messages: Sequence[MessageTypeDef]) -> None:
    print(BOLD(f"Dead-letter queue: {len(messages)} message(s)"))
    if not messages:
        return
    rows = []
    for message in messages:
        attributes = message.get("MessageAttributes", {})
        reason = attributes["RejectionReason"].get("StringValue") if "RejectionReason" in attributes else None
        others = ", ".join(
            f"{name}={value.get('StringValue', '<binary>')}"
            for name, value in sorted(attributes.items())
            if name != "RejectionReason"
        )
        rows.append([clip(repr(message["Body"]), 24), clip(reason or "(no reason attribute)", 56), clip(others, 60)])
    print(_table(["body", "reason", "other attributes"], rows))


def _print_metrics(totals: dict[tuple[str, str], list[float]]) -> None:
    print(BOLD("Metrics emitted (CloudWatch EMF on stdout; counts summed, latencies as median/max)"))
    items = []
    for (name, unit), values in sorted(totals.items()):
        if unit == "Count":
            items.append(f"{name}={sum(values):g}")
        else:
            suffix = {"Milliseconds": "ms", "Seconds": "s"}.get(unit, unit)
            median, peak = statistics.median(values), max(values)
            items.append(f"{name}=median {median:.1f}{suffix}, max {peak:.1f}{suffix} (n={len(values)})")
    print(textwrap.fill("   ".join(items), width=110, initial_indent="  ", subsequent_indent="  ") or "  (none)")


def _print_logs(invocations: Sequence[Invocation]) -> None:
    records = _log_records(invocations)
    levels = Counter(str(record.get("level")) for record in records)
    summary = ", ".join(f"{level} {count}" for level, count in sorted(levels.items()))
    print(BOLD(f"Log lines (Powertools Logger JSON): {len(records)}") + f"  ({summary})")
    noteworthy = [record for record in records if record.get("level") not in {"DEBUG", "INFO"}]
    routine = [record for record in records if record.get("level") in {"DEBUG", "INFO"}]
    shown: dict[str, dict[str, Any]] = {}
    for record in noteworthy + routine:  # one line per distinct message, the unusual ones first
        shown.setdefault(str(record.get("message")), record)
    for record in list(shown.values())[:LOG_LINES_SHOWN]:
        extra = {k: v for k, v in record.items() if k not in _STANDARD_LOG_KEYS}
        text = f"{record.get('level')} {record.get('message')} {json.dumps(extra, default=str)}"
        print(DIM("  " + clip(text, 106)))
    stderr_lines = sum(len(invocation.stderr.splitlines()) for invocation in invocations)
    if stderr_lines:
        print(DIM(f"  (+ {stderr_lines} line(s) on stderr)"))


# ---------------------------------------------------------------- main


def _check_no_leak(api_key: str, invocations: Sequence[Invocation], *texts: str) -> list[str]:
    """Every place the key could leak to, searched for the key itself."""
    places = [(f"{i.trigger} stdout", i.stdout) for i in invocations]
    places += [(f"{i.trigger} stderr", i.stderr) for i in invocations]
    places += [(f"{i.trigger} response", json.dumps(i.response, default=str)) for i in invocations]
    places += [("results events / dead letters", text) for text in texts]
    return [f"the API key appears in the {where}" for where, text in places if api_key in text]


def _check_returned_details(invocations: Sequence[Invocation], details: Sequence[dict[str, Any]]) -> list[str]:
    """A non-SQS invocation returns (or raises with) exactly the detail it published."""
    published = {str(detail.get("requestId")): detail for detail in details}
    problems = []
    for invocation in invocations:
        response = invocation.response
        if invocation.trigger == "sqs" or invocation.unexpected or not isinstance(response, dict):
            continue
        if published.get(str(response.get("requestId"))) != response:
            problems.append(f"{invocation.trigger}: the returned detail differs from the published one")
    return problems


def _import_handler() -> tuple[ModuleType, type[Exception], str]:
    """Import app (its cold start) with stdout routed so every later invocation's logs can be captured."""
    put_function_on_path()
    cold_start = io.StringIO()
    with contextlib.redirect_stdout(_FollowStdout(cold_start)):
        app = importlib.import_module("app")
    exceptions = importlib.import_module("sequence_archiver.core.exceptions")
    incomplete_type: type[Exception] = exceptions.SequenceArchiveIncomplete
    return app, incomplete_type, cold_start.getvalue()


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.scenarios.demo", description=__doc__)
    parser.add_argument(
        "--fail-sequence-id",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="make Reply answer 503 for this sequence ID on every call, to show the retry path (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0915 - one story, told in order
    """Run the sample events end to end and print what happened; 0 unless something unexpected did."""
    from local.stand_ins.reply_simulator import Fault, ReplySimulator

    arguments = _parse_arguments(argv)
    api_key = "rk_demo_" + secrets.token_hex(16)
    problems: list[str] = []
    with ReplySimulator(api_keys={api_key: SCOPES}, seed=True) as reply, start_moto_server() as moto:
        stack = provision(moto.endpoint_url, api_key=api_key, name_prefix=unique_name_prefix("demo"))
        # Snapshots on, as the template deploys them: each sequence's contacts are stored before its archive call.
        snapshot_bucket = unique_name_prefix("demo-snapshots")
        s3 = create_snapshot_bucket(stack, snapshot_bucket)
        for sequence_id, (active, finished) in DEMO_CONTACTS.items():
            reply.add_contacts(sequence_id, active, status="active")
            reply.add_contacts(sequence_id, finished, status="finished", start_id=active + 1)
        for sequence_id, (name, health, active, finished) in POLICY_SEQUENCES.items():
            reply.add_sequence(sequence_id, name=name, status="paused", health=health)
            reply.add_contacts(sequence_id, active, status="active", start_id=sequence_id * 1000)
            reply.add_contacts(sequence_id, finished, status="finished", start_id=sequence_id * 1000 + active)
        overrides = {"SNAPSHOT_BUCKET_NAME": snapshot_bucket}
        for sequence_id in arguments.fail_sequence_id:
            reply.inject(Fault(kind="status", status=503, times=None, sequence_id=sequence_id))
            # Short backoffs so the demo does not wait out the production retry schedule.
            overrides |= {"REPLY_BACKOFF_BASE_SECONDS": "0.05", "REPLY_BACKOFF_MAX_SECONDS": "0.2"}
        replace_environment(function_environment(stack, reply_base_url=reply.base_url, **overrides))
        settings = stack.queue_settings
        print(BOLD("reply-sequence-archiver: local run") + " (no AWS account, nothing leaves 127.0.0.1)")
        print(f"  Reply simulator {reply.base_url} (seeded)   moto server {moto.endpoint_url}")
        print(
            f"  queue: visibility {settings.visibility_timeout_seconds} s, maxReceiveCount "
            f"{settings.max_receive_count} (from {settings.source})"
        )
        print()

        try:
            app, incomplete_type, cold_start_output = _import_handler()
        except Exception as exc:  # a failed cold start is the one thing the demo cannot go on from
            print(f"UNEXPECTED: the cold start failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if api_key in cold_start_output:
            problems.append("the API key appears in the cold start output")
        invocations = [
            _run_sqs(app, stack, incomplete_type),
            _run_file(app, "eventbridge-event.json", "eventbridge", incomplete_type),
            _run_file(app, "direct-invocation.json", "direct", incomplete_type),
        ]
        envelopes = read_results_events(stack, expected=len(invocations), timeout_seconds=5)
        details = [envelope.get("detail", {}) for envelope in envelopes]
        dead_letters = drain_queue(stack.dead_letter_queue_url, endpoint_url=stack.endpoint_url)
        snapshots = _read_snapshots(s3, details)
        archive_calls_before = sum(1 for request in reply.requests if request.method == "POST")
        cleanup = _run_file(app, CLEANUP_EVENT, "direct", incomplete_type)
        policy = _run_file(app, POLICY_EVENT, "direct", incomplete_type)
        cleanup_archive_calls = sum(1 for request in reply.requests if request.method == "POST") - archive_calls_before
        reply_calls = len(reply.requests)
        campaign = _run_cli_campaign(app, stack, reply.base_url, api_key, incomplete_type)

    runs = [*invocations, cleanup, policy]
    problems += [f"{i.trigger}: {i.unexpected}" for i in runs if i.unexpected] + campaign.problems
    problems += _check_cleanup_plan(cleanup, cleanup_archive_calls)
    problems += _check_policy_plan(policy)
    problems += _check_no_leak(api_key, invocations, json.dumps(envelopes), json.dumps(dead_letters, default=str))
    if not details:
        problems.append("no results event reached the results bus")
    problems += _check_snapshots(details, snapshots)
    problems += _check_returned_details(invocations, details)

    _print_invocations(invocations)
    print()
    _print_outcomes(details)
    print()
    _print_snapshots(snapshots)
    print()
    _print_results_events(details)
    print()
    _print_dead_letters(dead_letters)
    print()
    _print_metrics(_metric_totals(invocations))
    print()
    _print_logs(invocations)
    leaked = any("API key appears" in problem for problem in problems)
    key_note = "THE API KEY LEAKED (see below)" if leaked else "the API key appeared in none of the output"
    print(DIM(f"  Reply simulator answered {reply_calls} API request(s); {key_note}."))
    print()
    _print_cleanup_plan(cleanup, cleanup_archive_calls)
    _print_policy_plan(policy)
    _print_cli_campaign(campaign)
    if problems:
        print()
        for problem in problems:
            print("UNEXPECTED: " + problem.replace(api_key, "<api key>"), file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- a clean-up policy's dry run

CLEANUP_EVENT = "cleanup-dry-run.json"
POLICY_EVENT = "cleanup-policy-dry-run.json"
_PLAN_IDS_SHOWN = 12


def _check_cleanup_plan(cleanup: Invocation, archive_calls: int) -> list[str]:
    """A dry run's plan is complete, lists what it selected, and archived nothing."""
    plan = cleanup.response if isinstance(cleanup.response, dict) else {}
    problems = []
    if plan.get("outcome") != "planned" or plan.get("complete") is not True:
        problems.append(f"the clean-up dry run did not end planned: {plan.get('outcome')!r} {plan.get('reason')!r}")
    if plan.get("selected") != len(plan.get("sequenceIds", [])):
        problems.append("the clean-up plan's count and its sequence IDs disagree")
    if archive_calls:
        problems.append(f"the clean-up dry run archived something: {archive_calls} archive call(s)")
    return problems


def _print_cleanup_plan(cleanup: Invocation, archive_calls: int) -> None:
    plan = cleanup.response if isinstance(cleanup.response, dict) else {}
    event = json.loads((EVENTS_DIR / CLEANUP_EVENT).read_text(encoding="utf-8"))
    print(BOLD(f"Clean-up policy, dry run ({CLEANUP_EVENT}, invoked as the schedule would)"))
    print(DIM("  request: " + json.dumps(event, separators=(", ", ": "))))
    ids = [str(sequence_id) for sequence_id in plan.get("sequenceIds", [])]
    more = len(ids) - _PLAN_IDS_SHOWN
    shown = ", ".join(ids[:_PLAN_IDS_SHOWN]) + (f", … ({more} more)" if more > 0 else "")
    print(
        f"  plan {_short(plan.get('requestId'))}: outcome {plan.get('outcome')}, {plan.get('selected')} selected "
        f"over {plan.get('pages')} page(s), {plan.get('enqueued', {}).get('ids', 0)} enqueued, "
        f"{archive_calls} archive call(s) to Reply"
    )
    print(f"  would archive: {shown or '(nothing matches)'}")
    print(
        DIM('  A "Sequence Archive Plan" event went to the results bus; with "dryRun": false the IDs go to the queue.')
    )


def _check_policy_plan(policy: Invocation) -> list[str]:
    """The policy keys' dry run selects exactly the sequences POLICY_SEQUENCES says it should."""
    plan = policy.response if isinstance(policy.response, dict) else {}
    if plan.get("outcome") != "planned" or plan.get("complete") is not True:
        return [f"the policy dry run did not end planned: {plan.get('outcome')!r} {plan.get('reason')!r}"]
    if plan.get("sequenceIds") != POLICY_SELECTED:
        return [f"the policy dry run selected {plan.get('sequenceIds')!r}, not {POLICY_SELECTED!r}"]
    return []


def _print_policy_plan(policy: Invocation) -> None:
    plan = policy.response if isinstance(policy.response, dict) else {}
    event = json.loads((EVENTS_DIR / POLICY_EVENT).read_text(encoding="utf-8"))
    print()
    print(BOLD(f"Clean-up policy with the keys health, exclude and contactsFinished, dry run ({POLICY_EVENT})"))
    print(DIM("  request: " + json.dumps(event["select"], separators=(", ", ": "))))
    for sequence_id, (name, health, active, finished) in POLICY_SEQUENCES.items():
        mark = "selected" if sequence_id in plan.get("sequenceIds", []) else "left out"
        print(DIM(f"  {sequence_id} {name!r}: {health}, {active} active / {finished} finished contacts -> {mark}"))
    calls = plan.get("replyCalls", {})
    print(
        f"  plan {_short(plan.get('requestId'))}: outcome {plan.get('outcome')}, selected "
        f"{plan.get('sequenceIds')}, each matching every key: "
        + ", ".join(f"{key.get('key')} ({key.get('appliedAs')})" for key in plan.get("matchedKeys", []))
    )
    print(f"  left out by key: {json.dumps(plan.get('leftOut', {}))}")
    print(
        f"  Reply calls this dry run: {calls.get('listing')} listing + {calls.get('checks')} contacts checks; "
        f"the live run: {json.dumps(plan.get('liveRunEstimate', {}))}"
    )
    print()


# ---------------------------------------------------------------- the command line: a campaign


@dataclass
class CliCampaign:
    """`select | enqueue`, the function draining the queue, then `report`: what each step printed."""

    pipeline: str = ""
    enqueue_output: str = ""
    invocations: list[Invocation] = field(default_factory=list)
    report_command: str = ""
    report_output: str = ""
    report_exit: int | None = None
    problems: list[str] = field(default_factory=list)


def _cli_command() -> list[str]:
    """The installed console script (`make venv` installs it), else the package run as a module."""
    script = Path(sys.executable).parent / "sequence-archiver"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sequence_archiver_cli"]


def _run_cli_campaign(
    app: ModuleType, stack: LocalStack, reply_base_url: str, api_key: str, incomplete_type: type[Exception]
) -> CliCampaign:
    """Select the paused sequences, pipe them into enqueue, let the function drain the queue, report."""
    campaign = CliCampaign()
    cli = _cli_command()
    environment = {**os.environ, "REPLY_API_KEY": api_key}  # the AWS side is already AWS_ENDPOINT_URL on moto
    select_args = ["select", "--base-url", reply_base_url, "--status", "paused"]
    enqueue_args = ["enqueue", "--queue-url", stack.queue_url, "--ids-per-message", "5", "-"]
    shown = {reply_base_url: "$REPLY_URL", stack.queue_url: "$QUEUE_URL"}
    campaign.pipeline = " | ".join(
        " ".join(["sequence-archiver", *(shown.get(arg, arg) for arg in args)]) for args in (select_args, enqueue_args)
    )
    select = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [*cli, *select_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment
    )
    enqueue = subprocess.run(  # noqa: S603
        [*cli, *enqueue_args], stdin=select.stdout, capture_output=True, text=True, env=environment, check=False
    )
    if select.stdout is not None:
        select.stdout.close()
    select_error = select.stderr.read().decode() if select.stderr is not None else ""
    if select.stderr is not None:
        select.stderr.close()
    if select.wait() != 0 or enqueue.returncode != 0:
        campaign.problems.append(f"select | enqueue failed: {(select_error + enqueue.stderr).strip()}"[:300])
    campaign.enqueue_output = enqueue.stdout + enqueue.stderr

    for _ in range(10):  # Lambda's poller: batches of up to 10 records until the queue is empty
        messages = receive_batch(stack, max_messages=10, timeout_seconds=1)
        if not messages:
            break
        invocation = Invocation("sqs", f"{len(messages)} records")
        _invoke(app, sqs_event_from_messages(messages, stack.queue_arn, stack.region), invocation, incomplete_type)
        if invocation.unexpected is None:
            _settle_batch(stack, messages, invocation)
        campaign.invocations.append(invocation)
    campaign.problems += [f"cli campaign: {i.unexpected}" for i in campaign.invocations if i.unexpected]

    report_args = ["report", "--queue-url", stack.results_sink_queue_url, "--wait-seconds", "1"]
    campaign.report_command = "sequence-archiver report --queue-url $RESULTS_SINK_URL --wait-seconds 1"
    report = subprocess.run(  # noqa: S603
        [*cli, *report_args], capture_output=True, text=True, env=environment, check=False
    )
    campaign.report_exit = report.returncode
    campaign.report_output = report.stdout + report.stderr
    if report.returncode not in (0, 1) or not report.stdout.startswith("results events: "):
        campaign.problems.append(f"report failed (exit {report.returncode}): {report.stderr.strip()}"[:300])
    outputs = [select_error, campaign.enqueue_output, campaign.report_output]
    outputs += [text for i in campaign.invocations for text in (i.stdout, i.stderr)]
    if any(api_key in text for text in outputs):
        campaign.problems.append("the API key appears in the command line campaign's output")
    return campaign


def _print_cli_campaign(campaign: CliCampaign) -> None:
    print()
    print(BOLD("Command line: select | enqueue, the function drains the queue, report"))
    print(DIM("  $ " + campaign.pipeline))
    for line in campaign.enqueue_output.splitlines():
        print("    " + line)
    failures = sum(len(i.response.get("batchItemFailures", [])) for i in campaign.invocations if i.response)
    batches = ", ".join(i.source for i in campaign.invocations) or "the queue was empty"
    print(f"  the function drained the queue: {batches}; {failures} batch item failure(s)")
    meaning = {0: "nothing needs attention", 1: "some IDs need attention"}.get(campaign.report_exit or 0, "failed")
    print(DIM(f"  $ {campaign.report_command}   (exit {campaign.report_exit}: {meaning})"))
    for line in campaign.report_output.splitlines():
        print("    " + line)


if __name__ == "__main__":
    sys.exit(main())
