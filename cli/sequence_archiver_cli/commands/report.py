"""`sequence-archiver report`: summarise results and plan events from the results log group, a sink queue or a file."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sequence_archiver_cli import results_log, sink_queue
from sequence_archiver_cli.aws import describe_aws_error, logs_client, sqs_client
from sequence_archiver_cli.common import FromEnvironment, aws_from, aws_options, bounded_int, common_options, epilog
from sequence_archiver_cli.errors import ExitCode, UnavailableError, UsageError
from sequence_archiver_cli.output import (
    OutputFormat,
    Progress,
    add_output_option,
    clip,
    csv_text,
    json_line,
    output_width,
    plural,
    table,
    visible,
)
from sequence_archiver_cli.results_report import OUTCOMES, EventsRead, build_report, load_items, sort_events

if TYPE_CHECKING:
    import argparse

    from sequence_archiver_cli.common import Console
    from sequence_archiver_cli.plan_report import PlanSummary
    from sequence_archiver_cli.results_report import Report, ResultItem

REQUEST_ID_SHOWN = 8  # tables show a request ID's first characters, like a short commit hash; JSON and CSV show all
DEFAULT_MAX_EVENTS = 10_000  # as many as --max-messages reads from a queue: a million IDs at 100 a request
LOG_GROUP_VARIABLE = "RESULTS_LOG_GROUP"  # what `make stack` exports: the source when none is given
SINK_QUEUE_VARIABLE = "RESULTS_SINK_QUEUE_URL"  # read only when asked for: `--queue-url` without a URL
ITEM_HEADERS = (
    "requestId",
    "sequenceId",
    "input",
    "outcome",
    "httpStatus",
    "via",
    "error",
    "latest",
    "paused",
    "workspace",  # the Reply workspace the request named; empty for the default key's
)
EXAMPLES = """\
examples:
  sequence-archiver report --log-group "$RESULTS_LOG_GROUP"
  sequence-archiver report                    # the same: with no source given, $RESULTS_LOG_GROUP is read
  sequence-archiver report --log-group "$RESULTS_LOG_GROUP" --since 2026-11-29T08:00 --output json
  sequence-archiver report --log-group "$RESULTS_LOG_GROUP" --since 7d --needs-attention --output csv > attention.csv
  sequence-archiver report --log-group "$RESULTS_LOG_GROUP" --needs-attention --output ids \\
    | sequence-archiver enqueue --queue-url "$QUEUE_URL" -
  sequence-archiver report --file results.jsonl
  sequence-archiver report --queue-url "$RESULTS_SINK_QUEUE_URL" --keep
  sequence-archiver report --queue-url --keep  # the same: --queue-url without a URL is $RESULTS_SINK_QUEUE_URL

sources:
  --log-group  the stack's results log group (output ResultsLogGroupName) keeps every results event for
               ResultsRetentionDays. Reading it consumes nothing: run the report as often as you like.
  --queue-url  a sink queue is DRAINED: every results event read is deleted unless --keep, so the next
               report from that queue does not see it.
  --file       results events saved as JSON lines or a JSON array (EventBridge envelopes or bare details).

A results event is an EventBridge envelope with "detail", or a bare detail. A request that published
a complete event is done; otherwise its latest event counts (its failed IDs are being retried). The
totals count each ID once, by its latest outcome (the result of the event with the latest time; among
equal times, the one read later); "attempts" counts every request's result for it. An ID that a later
request archived (or found gone) no longer needs attention.

clean-up plans:
  A clean-up request publishes a plan event ("Sequence Archive Plan"); every source above may hold them.
  The report shows each plan (dry run or live, outcome, selected, enqueued) and, from the results events
  of the messages it enqueued, how many of its IDs were archived, already archived, not found, need
  attention, or are not yet reported (still queued, or outside the read). A plan that stopped
  (over_limit, refused, failed) needs attention, with its reason. Plans appear in --output table and
  json ("plans"); jsonl, csv and ids list the results' IDs only.

workspaces:
  A deployment serving named Reply workspaces (REPLY_WORKSPACES) names each request's workspace in its
  events. The report shows it ("workspace" in json, jsonl and csv; table: requests by workspace and a
  workspace column), and the same ID in two workspaces counts as two sequences. --output ids lists the
  default workspace's IDs only (enqueue names no workspace) and says on stderr how many others need a try.
"""


@dataclass(frozen=True, slots=True)
class SourceRead:
    """What a source gave: the report, and the warnings that belong on stderr."""

    report: Report
    empty_warning: str  # said when neither a results event nor a plan was found
    warnings: tuple[str, ...] = ()


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its options."""
    parser = subparsers.add_parser(
        "report",
        parents=[aws_options(), common_options()],
        help="summarise results events: totals per outcome, incomplete requests, IDs that need attention, "
        "clean-up plans",
        description="Summarise results events (and clean-up plans) from the results log group (read as often as\n"
        "you like), a sink queue (DRAINED: what is read is deleted unless --keep) or a file.",
        epilog=epilog(EXAMPLES),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--log-group",
        default=FromEnvironment(
            LOG_GROUP_VARIABLE,
            required=True,
            unless=("queue_url", "file"),
            missing=f"choose a source: --log-group NAME (or set {LOG_GROUP_VARIABLE}), --queue-url URL or --file FILE",
        ),
        metavar="NAME",
        help="the results log group (the stack's ResultsLogGroupName output); nothing is consumed "
        f"(default, when no source is given: ${LOG_GROUP_VARIABLE})",
    )
    source.add_argument(
        "--queue-url",
        nargs="?",
        const=FromEnvironment(
            SINK_QUEUE_VARIABLE,
            required=True,
            missing=f"--queue-url without a URL reads ${SINK_QUEUE_VARIABLE}, which is not set",
            flag_given=True,
        ),
        metavar="URL",
        help="an SQS queue the results events are copied to; DRAINED: what is read is deleted unless --keep "
        f"(without a URL: ${SINK_QUEUE_VARIABLE}; never read unless asked for, since reading drains it)",
    )
    source.add_argument(
        "--file", metavar="FILE", help="JSON lines or a JSON array of results (and plan) events; '-' is stdin"
    )
    log_group = parser.add_argument_group("--log-group")
    log_group.add_argument(
        "--since",
        metavar="WHEN",
        help="read events from WHEN on: 30m, 12h, 7d, 2w ago, or an ISO 8601 date or time, UTC if no offset "
        f"(default: {results_log.DEFAULT_SINCE})",
    )
    log_group.add_argument(
        "--max-events",
        type=bounded_int(1, 10_000_000),
        metavar="N",
        help=f"read at most N events; a report that stops there says so and exits 1 (default: {DEFAULT_MAX_EVENTS})",
    )
    queue = parser.add_argument_group("--queue-url")
    queue.add_argument(
        "--keep", action="store_true", help="leave the messages on the queue (they become visible again)"
    )
    queue.add_argument(
        "--max-messages",
        type=bounded_int(1, 1_000_000),
        default=10_000,
        metavar="N",
        help="read at most N messages from the queue (default: %(default)s)",
    )
    queue.add_argument(
        "--wait-seconds",
        type=bounded_int(0, 20),
        default=2,
        metavar="S",
        help="long-poll the queue this long for the first messages (default: %(default)s)",
    )
    parser.add_argument(
        "--needs-attention",
        action="store_true",
        help="only the IDs (and invalid inputs) that need attention, without the totals",
    )
    add_output_option(
        parser,
        choices=list(OutputFormat),
        default=OutputFormat.TABLE,
        ids_meaning="the sequence IDs that need another try, one per line, for `enqueue -` (implies "
        "--needs-attention); the default workspace's only, as `enqueue` names no workspace",
    )
    parser.set_defaults(run=run, output_closed=output_closed_note)


def output_closed_note(args: argparse.Namespace) -> str:
    """What a report cut short by a closed stdout did: the sink queue's messages are printed before they go."""
    if args.queue_url is not None:
        return (
            "stdout was closed before the report was all written; no message was deleted from the queue "
            "(what was read is visible again)"
        )
    return "stdout was closed before the report was all written; nothing was consumed: run it again"


def report_from(found: EventsRead, *, unrecognised: int = 0) -> Report:
    """The report over what a source gave (`unrecognised`: items the source itself could not read)."""
    return build_report(
        found.results, unrecognised=found.unrecognised + unrecognised, other_events=found.other, plans=found.plans
    )


def run(args: argparse.Namespace, console: Console) -> int:
    """Read, summarise, print; a sink queue's results events are deleted afterwards unless --keep."""
    if args.log_group is None and (args.since is not None or args.max_events is not None):
        raise UsageError("--since and --max-events read the results log group: add --log-group NAME")
    if args.queue_url is None and args.keep:
        raise UsageError("--keep applies to a sink queue: add --queue-url URL")
    if args.file is not None:
        found = sort_events(_items_from_file(args.file, console))
        return _finish(console, args, SourceRead(report_from(found), ""))
    if args.log_group is not None:
        return _finish(console, args, _read_log_group(args, console))
    return _report_from_queue(args, console)


def _finish(console: Console, args: argparse.Namespace, read: SourceRead) -> int:
    """Print the report and the warnings; the exit code says whether anything needs a person."""
    _print(console, args, read.report)
    for warning in read.warnings:
        console.err(f"sequence-archiver report: warning: {warning}")
    if read.report.events == 0 and not read.report.plan_events and read.empty_warning:
        console.err(f"sequence-archiver report: warning: {read.empty_warning}")
        return ExitCode.ATTENTION
    return ExitCode.ATTENTION if read.report.needs_attention or read.warnings else ExitCode.OK


# ---------------------------------------------------------------- sources


def _read_log_group(args: argparse.Namespace, console: Console) -> SourceRead:
    since_text = args.since if args.since is not None else results_log.DEFAULT_SINCE
    max_events = args.max_events if args.max_events is not None else DEFAULT_MAX_EVENTS
    try:
        since = results_log.parse_since(since_text, now=datetime.now(UTC))
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    logs = logs_client(aws_from(args))
    try:
        with Progress(console.stderr, label="report: reading", total=None, unit="events") as progress:
            read = results_log.read_log_group(
                logs,
                args.log_group,
                start_ms=max(0, results_log.epoch_milliseconds(since)),
                max_events=max_events,
                on_progress=progress.update,
            )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise UnavailableError(
                f"log group {args.log_group} does not exist in {logs.meta.region_name}: "
                "pass the stack's ResultsLogGroupName output (and --region if it is elsewhere)"
            ) from None
        raise UnavailableError(f"{describe_aws_error('CloudWatch Logs', exc)} (log group {args.log_group})") from None
    except BotoCoreError as exc:
        raise UnavailableError(describe_aws_error("CloudWatch Logs", exc)) from None
    report = report_from(sort_events(read.documents, skip_other=True), unrecognised=read.not_json)
    since_shown = since.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    warnings = (
        (
            f"read the first {plural(max_events, 'event')} since {since_shown} and stopped; the log group holds more: "
            "narrow --since or raise --max-events",
        )
        if read.truncated
        else ()
    )
    return SourceRead(
        report,
        f"no results events in log group {args.log_group} since {since_shown} "
        "(nothing published yet, or older than --since or the group's retention)",
        warnings,
    )


def _report_from_queue(args: argparse.Namespace, console: Console) -> int:
    sqs = sqs_client(aws_from(args), queue_url=args.queue_url)
    try:
        with Progress(console.stderr, label="report: reading", total=None, unit="messages") as progress:
            received = sink_queue.drain(
                sqs,
                args.queue_url,
                max_messages=args.max_messages,
                wait_seconds=args.wait_seconds,
                on_progress=progress.update,
            )
    except (BotoCoreError, ClientError) as exc:
        raise UnavailableError(describe_aws_error("SQS", exc)) from None
    read: list[str] = []
    other: list[str] = []
    found = EventsRead()
    for message in received:
        if message.is_json and found.add(message.document):
            read.append(message.receipt_handle)
        else:
            other.append(message.receipt_handle)
    source = SourceRead(
        build_report(found.results, unrecognised=len(other), plans=found.plans),
        "no results events on the queue — it is drained by every report without --keep; "
        "use --log-group for a repeatable report",
    )
    try:
        code = _finish(console, args, source)
        console.stdout.flush()  # the report is out before anything is deleted (a closed pipe raises here)
    except BaseException:
        # The report did not get out (a closed stdout, Ctrl-C): delete nothing, and let the next reader see it all.
        sink_queue.release_quietly(sqs, args.queue_url, other + read)
        raise
    try:
        # Messages that are not results or plan events stay for whoever reads them; the events go unless --keep.
        hidden = sink_queue.release(sqs, args.queue_url, other + read if args.keep else other)
        if not args.keep and sink_queue.delete(sqs, args.queue_url, read):
            raise UnavailableError("SQS did not delete some of the messages read; a later report may count them again")
    except (BotoCoreError, ClientError) as exc:
        raise UnavailableError(describe_aws_error("SQS", exc)) from None
    if hidden:
        console.err(
            f"sequence-archiver report: warning: SQS did not make {plural(hidden, 'message')} visible again; "
            f"they come back within {sink_queue.DRAIN_VISIBILITY_SECONDS} s"
        )
        code = ExitCode.ATTENTION
    if read and not args.keep:
        console.err(
            f"sequence-archiver report: deleted the {plural(len(read), 'results event')} read from the queue; "
            "a later report from it will not see them (--keep leaves them; --log-group reads without consuming)"
        )
    return code


def _items_from_file(path: str, console: Console) -> list[object]:
    text = console.read_text(path)
    name = "stdin" if path == "-" else path
    items = load_items(text, source=name)
    if not items:
        raise UsageError(f"{name} holds no results events")
    return items


# ---------------------------------------------------------------- output


def _item_row(item: ResultItem) -> list[object]:
    return [
        item.request_id,
        item.sequence_id,
        item.input_value,
        item.outcome,
        item.http_status,
        item.via,
        item.error,
        "true" if item.latest else "false",
        "true" if item.paused else "false",  # the pause of a pauseFirst request succeeded, whatever came after
        item.workspace,
    ]


def _print(console: Console, args: argparse.Namespace, report: Report) -> None:
    output: OutputFormat = args.output
    restricted = args.needs_attention or output is OutputFormat.IDS
    items = report.attention if restricted else report.items
    if output is OutputFormat.IDS:
        for sequence_id in report.retry_ids:
            console.out(str(sequence_id))
        for workspace, ids in report.workspace_retry_ids.items():
            console.err(
                f"sequence-archiver report: {plural(len(ids), 'sequence ID')} of workspace {visible(workspace)} "
                f"{'needs' if len(ids) == 1 else 'need'} another try and {'is' if len(ids) == 1 else 'are'} not "
                'listed: enqueue sends no "workspace" (see --output jsonl for them)'
            )
        invalid = sum(1 for item in report.attention if item.sequence_id is None)
        if invalid:
            console.err(
                f"sequence-archiver report: {plural(invalid, 'invalid input')} "
                f"{'needs' if invalid == 1 else 'need'} attention but {'has' if invalid == 1 else 'have'} "
                "no sequence ID to try again (see --output table)"
            )
    elif output is OutputFormat.JSON:
        document: object = [item.to_json() for item in items] if restricted else report.to_json()
        console.out(json.dumps(document, indent=2, ensure_ascii=False))
    elif output is OutputFormat.JSONL:
        for item in items:
            console.out(json_line(item.to_json()))
    elif output is OutputFormat.CSV:
        console.out(csv_text(ITEM_HEADERS, [_item_row(item) for item in items]))
    elif restricted:
        _print_attention(console, report)
    else:
        _print_table(console, report)
    shows_plans = output is OutputFormat.TABLE or (output is OutputFormat.JSON and not restricted)
    if report.stopped_plans and not shows_plans:
        console.err(
            f"sequence-archiver report: {plural(len(report.stopped_plans), 'clean-up plan')} "
            f"{'needs' if len(report.stopped_plans) == 1 else 'need'} attention: stopped, "
            "or with parts missing (see --output table)"
        )


def _print_table(console: Console, report: Report) -> None:
    complete = len(report.requests) - len(report.incomplete)
    console.out(
        f"results events: {report.events}; requests: {len(report.requests)} "
        f"({complete} complete, {len(report.incomplete)} incomplete)"
        + (f"; {plural(report.unrecognised, 'item')} that are not results events" if report.unrecognised else "")
        + (f"; {plural(report.other_events, 'other event')} of the function skipped" if report.other_events else "")
    )
    by_workspace = Counter(request.workspace for request in report.requests)
    if set(by_workspace) - {None}:  # only a deployment serving named workspaces (REPLY_WORKSPACES) shows this
        console.out(
            "requests by workspace: "
            + ", ".join(
                f"{visible(workspace) if workspace is not None else '(default)'} {count}"
                for workspace, count in sorted(by_workspace.items(), key=lambda entry: entry[0] or "")
            )
        )
    width = output_width(console.stdout, console.environ)
    if report.events:
        counts, attempts = report.counts, report.attempt_counts
        outcomes = [*OUTCOMES, *(outcome for outcome in attempts if outcome not in OUTCOMES)]
        rows = [[outcome, counts.get(outcome, 0), attempts.get(outcome, 0)] for outcome in outcomes]
        console.out(table(["outcome", "IDs", "attempts"], rows, width=width))
        console.out(_totals_line(report))
        for request in report.requests:
            if request.parts_missing:
                console.out(
                    f"request {visible(request.request_id)}: "
                    f"{plural(request.parts_missing, 'part')} of its results event missing"
                )
        if report.incomplete:
            console.out("incomplete (being retried): " + ", ".join(visible(r.request_id) for r in report.incomplete))
        if report.attention:
            console.out(f"needs attention: {len(report.attention)}")
            console.out(_attention_table(report.attention, width))
        elif not report.stopped_plans:
            console.out("nothing needs attention")
    if report.plans:
        live = sum(1 for plan in report.plans if not plan.dry_run)
        console.out(f"clean-up plans: {len(report.plans)} ({live} live, {len(report.plans) - live} dry run)")
        for plan in report.plans:
            for line in _plan_lines(plan, width):
                console.out(line)
        if not report.events and not report.needs_attention:
            console.out("nothing needs attention")


def _totals_line(report: Report) -> str:
    """What the IDs column adds up to, and why the attempts column may be larger."""
    invalid = sum(1 for item in report.items if item.sequence_id is None)
    values = plural(report.distinct_ids, "sequence ID") + (
        f" and {plural(invalid, 'invalid input value')}" if invalid else ""
    )
    return f"{values} in {plural(len(report.items), 'attempt')}; each ID counts once above, by its latest outcome"


def _print_attention(console: Console, report: Report) -> None:
    width = output_width(console.stdout, console.environ)
    if report.attention:
        console.out(_attention_table(report.attention, width))
    stopped = report.stopped_plans
    if stopped:
        console.out(f"clean-up plans that need attention: {len(stopped)}")
        for plan in stopped:
            for line in _plan_lines(plan, width):
                console.out(line)
    if not report.attention and not stopped:
        console.out("nothing needs attention")


def _attention_table(attention: list[ResultItem], width: int | None) -> str:
    # The workspace column only where some request named one: a single-workspace report looks as it always did.
    workspaces = any(item.workspace is not None for item in attention)
    rows = [
        [
            item.request_id[:REQUEST_ID_SHOWN],
            *([item.workspace or "-"] if workspaces else []),
            item.sequence_id if item.sequence_id is not None else f"({item.input_value})",
            item.outcome,
            item.via or "-",
            item.http_status if item.http_status is not None else "-",
            # paused in Reply (pauseFirst) although its archive needs attention: said first, so no width cuts it off
            "; ".join(filter(None, ["paused in Reply" if item.paused else "", item.error or ""])),
        ]
        for item in attention
    ]
    headers = ["request", *(["workspace"] if workspaces else []), "sequenceId", "outcome", "via", "http", "error"]
    return table(headers, rows, width=width)


def _plan_lines(plan: PlanSummary, width: int | None) -> list[str]:
    """A plan in a few short lines: what it selected and enqueued, how far the archiving got, why it stopped."""
    workspace = f"workspace {plan.workspace}" if plan.workspace is not None else None
    how = ", ".join(filter(None, ["dry run" if plan.dry_run else "live", plan.trigger, workspace]))
    lines = [f"plan {visible(plan.request_id[:REQUEST_ID_SHOWN])} ({visible(how)}): {visible(plan.outcome)}"]
    if plan.enqueued_messages:
        progress, counts = plan.progress, plan.progress.counts
        lines += [
            f"  selected {plan.selected:,}; enqueued {plural(plan.enqueued_ids, 'ID')} "
            f"in {plural(plan.enqueued_messages, 'message')}",
            f"  archived {counts.get('archived', 0)}; already archived {counts.get('already_archived', 0)}; "
            f"not found {counts.get('not_found', 0)}",
            f"  need attention {progress.needing_attention}; not yet reported {progress.not_yet_reported} "
            f"(results of {progress.messages_reported:,} of {plural(len(plan.message_ids), 'message')} read)",
        ]
    else:
        lines.append(f"  selected {plan.selected}; nothing enqueued" + (" (dry run)" if plan.dry_run else ""))
    if plan.reason:
        label = "needs attention" if plan.stopped else "reason"
        lines.append(clip(f"  {label}: {plan.reason}", width) if width is not None else f"  {label}: {plan.reason}")
    elif plan.stopped:
        lines.append(f"  needs attention: the plan's outcome is {plan.outcome!r}")
    lines += [clip(line, width) if width is not None else line for line in _policy_lines(plan)]
    if plan.parts_missing:
        lines.append(f"  {plural(plan.parts_missing, 'part')} of its plan event missing")
    return lines


# The keys whose plans say more (why, left out, costs); a plan of the listing's filters alone keeps to its lines.
POLICY_KEYS = frozenset({"health", "exclude", "contactsFinished", "inactiveForDays"})
APPLIED_AS = {"listFilter": "list filter", "listedField": "listed field", "perSequenceCheck": "calls per sequence"}


def _policy_lines(plan: PlanSummary) -> list[str]:
    """Why its sequences matched, what each key left out, and what the run and its live run cost in Reply calls."""
    lines: list[str] = []
    if not POLICY_KEYS & {key for key, _ in plan.matched_keys}:
        return lines
    if plan.matched_keys:
        keys = ", ".join(f"{key} ({APPLIED_AS.get(how, how)})" for key, how in plan.matched_keys)
        lines.append(visible(f"  each selected matched: {keys}"))
    if plan.left_out:
        lines.append(visible("  left out: " + ", ".join(f"{key} {count:,}" for key, count in plan.left_out.items())))
    calls, estimate = plan.reply_calls, plan.live_run_estimate
    if calls is not None:
        lines.append(
            f"  Reply calls spent: {calls['total']:,} (listing {calls['listing']:,}, checks {calls['checks']:,})"
        )
    if estimate is not None and estimate["sequences"]:
        pauses = f", {plural(estimate['pauseCalls'], 'pause call')}" if estimate["pauseCalls"] else ""
        lines.append(
            f"  archiving them: {plural(estimate['bulkArchiveCalls'], 'bulk call')} "
            f"(up to {estimate['singleArchiveCalls']:,} single){pauses}; "
            f"with snapshots at least {estimate['snapshotCallsAtLeast']:,} more"
        )
    return lines
