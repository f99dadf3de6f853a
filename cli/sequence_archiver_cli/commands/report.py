"""`sequence-archiver report`: summarise results events from a sink queue or a file."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sequence_archiver_cli import sink_queue
from sequence_archiver_cli.aws import describe_aws_error, sqs_client
from sequence_archiver_cli.common import aws_from, aws_options, bounded_int, common_options, epilog
from sequence_archiver_cli.errors import ExitCode, UnavailableError, UsageError
from sequence_archiver_cli.output import clip, table
from sequence_archiver_cli.results_report import OUTCOMES, build_report, load_items, results_event_from

if TYPE_CHECKING:
    import argparse

    from sequence_archiver_cli.common import Console
    from sequence_archiver_cli.results_report import Report, ResultsEvent

ERROR_WIDTH = 60
EXAMPLES = """\
examples:
  sequence-archiver report --queue-url "$RESULTS_SINK_QUEUE_URL"
  sequence-archiver report --queue-url "$RESULTS_SINK_QUEUE_URL" --keep --format json
  sequence-archiver report --file results.jsonl

A results event is an EventBridge envelope with "detail", or a bare detail. A request that published
a complete event is done; otherwise its latest event counts (its failed IDs are being retried).
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its options."""
    parser = subparsers.add_parser(
        "report",
        parents=[aws_options(), common_options()],
        help="summarise results events: totals per outcome, incomplete requests, IDs that need attention",
        description="Summarise results events from a sink queue (drained, with a bound) or a file.",
        epilog=epilog(EXAMPLES),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--queue-url", metavar="URL", help="an SQS queue the results events are copied to")
    source.add_argument("--file", metavar="FILE", help="JSON lines or a JSON array of results events; '-' is stdin")
    parser.add_argument(
        "--keep", action="store_true", help="leave the messages on the queue (they become visible again)"
    )
    parser.add_argument(
        "--max-messages",
        type=bounded_int(1, 1_000_000),
        default=10_000,
        metavar="N",
        help="read at most N messages from the queue (default: %(default)s)",
    )
    parser.add_argument(
        "--wait-seconds",
        type=bounded_int(0, 20),
        default=2,
        metavar="S",
        help="long-poll the queue this long for the first messages (default: %(default)s)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    parser.set_defaults(run=run)


def events_from(items: list[object]) -> tuple[list[ResultsEvent], int]:
    """The results events among the items, and how many items were something else."""
    events = [event for event in map(results_event_from, items) if event is not None]
    return events, len(items) - len(events)


def run(args: argparse.Namespace, console: Console) -> int:
    """Read, summarise, print; then delete what was read from the queue unless --keep."""
    if args.file is not None:
        found, unrecognised = events_from(_items_from_file(args.file, console))
        report = build_report(found, unrecognised=unrecognised)
        _print(console, args.format, report)
        return ExitCode.ATTENTION if report.needs_attention else ExitCode.OK

    sqs = sqs_client(aws_from(args), queue_url=args.queue_url)
    try:
        received = sink_queue.drain(sqs, args.queue_url, max_messages=args.max_messages, wait_seconds=args.wait_seconds)
    except (BotoCoreError, ClientError) as exc:
        raise UnavailableError(describe_aws_error("SQS", exc)) from None
    read: list[str] = []
    other: list[str] = []
    events: list[ResultsEvent] = []
    for message in received:
        event = results_event_from(message.document) if message.is_json else None
        if event is None:
            other.append(message.receipt_handle)
        else:
            events.append(event)
            read.append(message.receipt_handle)
    report = build_report(events, unrecognised=len(other))
    _print(console, args.format, report)
    try:
        # Messages that are not results events stay for whoever reads them; results events go unless --keep.
        sink_queue.release(sqs, args.queue_url, other + read if args.keep else other)
        if not args.keep and sink_queue.delete(sqs, args.queue_url, read):
            raise UnavailableError("SQS did not delete some of the messages read; a later report may count them again")
    except (BotoCoreError, ClientError) as exc:
        raise UnavailableError(describe_aws_error("SQS", exc)) from None
    return ExitCode.ATTENTION if report.needs_attention else ExitCode.OK


def _items_from_file(path: str, console: Console) -> list[object]:
    try:
        if path == "-":
            text = console.stdin.read()
        else:
            with open(path, encoding="utf-8-sig") as stream:
                text = stream.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    name = "stdin" if path == "-" else path
    items = load_items(text, source=name)
    if not items:
        raise UsageError(f"{name} holds no results events")
    return items


def _print(console: Console, output_format: str, report: Report) -> None:
    if output_format == "json":
        console.out(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return
    complete = len(report.requests) - len(report.incomplete)
    console.out(
        f"results events: {report.events}; requests: {len(report.requests)} "
        f"({complete} complete, {len(report.incomplete)} incomplete)"
        + (f"; {report.unrecognised} item(s) that are not results events" if report.unrecognised else "")
    )
    counts = report.counts
    console.out(table(["outcome", "IDs"], [[outcome, counts.get(outcome, 0)] for outcome in OUTCOMES]))
    for request in report.requests:
        if request.parts_missing:
            console.out(f"request {request.request_id}: {request.parts_missing} part(s) of its results event missing")
    if report.incomplete:
        console.out("incomplete (being retried): " + ", ".join(r.request_id for r in report.incomplete))
    attention = report.attention
    if not attention:
        console.out("nothing needs attention")
        return
    console.out(f"needs attention: {len(attention)}")
    rows = [
        [
            item.request_id[:8],
            item.sequence_id if item.sequence_id is not None else f"({item.input_value})",
            item.outcome,
            item.via or "-",
            item.http_status if item.http_status is not None else "-",
            clip(item.error or "", ERROR_WIDTH),
        ]
        for item in attention
    ]
    console.out(table(["request", "sequenceId", "outcome", "via", "http", "error"], rows))
