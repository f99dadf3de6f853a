"""`sequence-archiver enqueue`: put sequence IDs on the archive queue as request messages."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from sequence_archiver.public import MAX_IDS_PER_REQUEST, is_fifo_queue, is_message_group_id
from sequence_archiver_cli.aws import sqs_client
from sequence_archiver_cli.common import (
    FromEnvironment,
    aws_from,
    aws_options,
    bounded_int,
    common_options,
    epilog,
    input_from,
    input_options,
)
from sequence_archiver_cli.confirmation import add_confirmation_option, confirm
from sequence_archiver_cli.errors import ExitCode, OutputClosedError, UnavailableError, UsageError
from sequence_archiver_cli.id_input import read_id_input
from sequence_archiver_cli.output import (
    OutputFormat,
    Progress,
    add_output_option,
    csv_text,
    json_line,
    plural,
    rejected_lines,
)
from sequence_archiver_cli.sqs_batches import (
    DEFAULT_IDS_PER_MESSAGE,
    BatchSender,
    PlannedMessage,
    SendReport,
    plan_batches,
    plan_messages,
)

if TYPE_CHECKING:
    from sequence_archiver_cli.common import Console
    from sequence_archiver_cli.id_input import IdInput

MESSAGES_SHOWN = 10
QUEUE_URL_VARIABLE = "QUEUE_URL"  # what `make stack` exports: the default of --queue-url
EXAMPLES = """\
examples:
  sequence-archiver enqueue --queue-url "$QUEUE_URL" 101 102 103
  sequence-archiver enqueue 101 102 103       # the same: --queue-url defaults to $QUEUE_URL
  sequence-archiver enqueue --queue-url "$QUEUE_URL" --file ids.txt --dry-run
  sequence-archiver enqueue --queue-url "$QUEUE_URL" --csv export.csv --column "Sequence ID" --pause-first
  sequence-archiver select --status paused | sequence-archiver enqueue --queue-url "$QUEUE_URL" -
  sequence-archiver enqueue --queue-url "$QUEUE_URL" --file ids.txt --yes --output ids > not-sent.txt
  sequence-archiver enqueue --queue-url "$FIFO_QUEUE_URL" --message-group-id campaign-7 --file ids.txt

Before sending more than 100 IDs it asks on the terminal, even when the IDs come from a pipe (--yes
answers for you, and is needed where no one is at a terminal). A send that fails says so, with the
IDs not sent: --output ids prints exactly those, ready to send again.
"""
IDS_MEANING = "the IDs not sent, ready to send again (with --dry-run: the IDs that would be sent)"
MESSAGE_COLUMNS = ("message", "status", "ids", "firstSequenceId", "lastSequenceId", "bytes", "error")
MESSAGE_GROUP_HELP = (
    "the message group of every message; required for a FIFO queue (a queue URL ending in .fifo), refused "
    "for a standard one. A group's messages are archived one after another, in the order sent (one "
    "invocation at a time per group): use one group per campaign whose order matters. Each message also "
    "gets a deduplication ID derived from the group and its body, so the same IDs resent to the same group "
    "within SQS's 5-minute window (a retried entry, a re-run) are not queued twice"
)


def message_group_id(text: str) -> str:
    """An argparse type: a message group ID SQS accepts."""
    if not is_message_group_id(text):
        raise argparse.ArgumentTypeError(
            f"must be 1 to 128 ASCII letters, digits or punctuation characters, got {text!r}"
        )
    return text


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its options."""
    parser = subparsers.add_parser(
        "enqueue",
        parents=[input_options(), aws_options(), common_options()],
        help="send sequence IDs to the archive queue (SendMessageBatch)",
        description="Validate sequence IDs and send them to the archive queue, many IDs per message\n"
        '({"sequenceIds": [...]}), ten messages per SendMessageBatch call.',
        epilog=epilog(EXAMPLES),
    )
    parser.add_argument(
        "--queue-url",
        default=FromEnvironment(
            QUEUE_URL_VARIABLE,
            required=True,
            missing=f"give --queue-url URL (the stack's queue), or set {QUEUE_URL_VARIABLE}",
        ),
        metavar="URL",
        help=f"the archive requests queue (default: ${QUEUE_URL_VARIABLE}; one of the two is required)",
    )
    parser.add_argument(
        "--ids-per-message",
        type=bounded_int(1, MAX_IDS_PER_REQUEST),
        default=DEFAULT_IDS_PER_MESSAGE,
        metavar="N",
        help=f"IDs in one message, 1-{MAX_IDS_PER_REQUEST} (default: %(default)s)",
    )
    parser.add_argument(
        "--pause-first",
        action="store_true",
        help='add "pauseFirst": true: a running sequence is paused and archived again on a 409',
    )
    parser.add_argument("--message-group-id", type=message_group_id, metavar="ID", help=MESSAGE_GROUP_HELP)
    parser.add_argument("--dry-run", action="store_true", help="validate and show what would be sent; send nothing")
    add_confirmation_option(parser)
    parser.add_argument(
        "--max-attempts",
        type=bounded_int(1, 10),
        default=5,
        metavar="N",
        help="attempts per message SQS fails on its side, with backoff (default: %(default)s)",
    )
    add_output_option(
        parser,
        choices=list(OutputFormat),
        default=OutputFormat.TABLE,
        ids_meaning=IDS_MEANING,
        synonyms={"text": OutputFormat.TABLE},
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    parser.set_defaults(run=run, output_closed=output_closed_note)


def output_closed_note(args: argparse.Namespace) -> str:
    """What a closed stdout means before anything was sent (a dry run, or a plan with no valid ID)."""
    del args
    return "stdout was closed before all of the output was written; nothing was sent to the queue"


def run(args: argparse.Namespace, console: Console) -> int:
    """Read, validate, plan, confirm, send (unless --dry-run) and summarise; a failed send is exit 3."""
    _check_message_group(args.queue_url, args.message_group_id)
    ids = read_id_input(input_from(args), stdin=console.stdin)
    messages = plan_messages(ids.sequence_ids, ids_per_message=args.ids_per_message, pause_first=args.pause_first)
    batches = plan_batches(messages)
    if not ids.sequence_ids:
        _print_summary(console, args, ids, messages, None)
        raise UsageError(f"no valid sequence IDs in the input ({_count(len(ids.rejected), 'value')} rejected)")
    if args.dry_run:
        _print_summary(console, args, ids, messages, None)
        return ExitCode.ATTENTION if ids.rejected else ExitCode.OK

    sqs = sqs_client(aws_from(args), queue_url=args.queue_url)
    count = len(ids.sequence_ids)
    confirm(
        f"send {_count(count, 'sequence ID')} to the archive queue {queue_name(args.queue_url)}? "
        "The function archives them in Reply as it receives them.",
        count=count,
        assume_yes=args.yes,
        no_terminal_hint="re-run with --yes to send them, or with --dry-run to see them",
    )
    sender = BatchSender(sqs, args.queue_url, message_group_id=args.message_group_id, max_attempts=args.max_attempts)
    progress = Progress(console.stderr, label="enqueue", total=count, unit="IDs", enabled=not args.no_progress)

    def on_batch(so_far: SendReport) -> None:
        not_sent = sum(len(item.message.sequence_ids) for item in so_far.failed)
        progress.update(so_far.sent_ids + not_sent, note=f"{not_sent:,} not sent" if not_sent else "")

    report = sender.send(batches, on_batch=on_batch)
    progress.finish()
    not_sent = _ids_of(report.not_sent)
    try:
        _print_summary(console, args, ids, messages, report)
        console.stdout.flush()
    except BrokenPipeError:
        raise OutputClosedError(
            f"stdout was closed before the summary was all written: sent {report.sent_ids:,} of {count:,} IDs to "
            f"{queue_name(args.queue_url)}" + (f", {_count(len(not_sent), 'ID')} not sent" if not_sent else "")
        ) from None
    if report.aborted:
        call = (
            "the first SendMessageBatch call"
            if report.aborted_call == 1
            else f"SendMessageBatch call {report.aborted_call} of {len(batches)}"
        )
        raise UnavailableError(
            f"sent {report.sent_ids:,} of {_count(count, 'ID')}: {call} failed, "
            f"{_count(len(not_sent), 'ID')} not sent: {report.aborted}"
        )
    if not_sent:
        console.err(
            f"sequence-archiver enqueue: sent {report.sent_ids:,} of {_count(count, 'ID')}: SQS refused "
            f"{_count(len(report.failed), 'message')} ({_count(len(not_sent), 'ID')}), listed in the output"
        )
    return ExitCode.ATTENTION if ids.rejected or not_sent else ExitCode.OK


def queue_name(queue_url: str) -> str:
    """The queue's name: the last segment of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def _ids_of(messages: list[PlannedMessage]) -> list[int]:
    return [sequence_id for message in messages for sequence_id in message.sequence_ids]


def _check_message_group(queue_url: str, group: str | None) -> None:
    """A FIFO queue needs a message group ID; a standard queue takes none."""
    if is_fifo_queue(queue_url) and group is None:
        raise UsageError(
            "the queue is a FIFO queue (its name ends in .fifo): give --message-group-id; "
            "its messages are archived in order, one group at a time"
        )
    if not is_fifo_queue(queue_url) and group is not None:
        raise UsageError("--message-group-id is for FIFO queues (a queue URL ending in .fifo)")


def _print_summary(
    console: Console,
    args: argparse.Namespace,
    ids: IdInput,
    messages: list[PlannedMessage],
    report: SendReport | None,
) -> None:
    output: OutputFormat = args.output
    if output is OutputFormat.JSON:
        summary = summary_json(args.queue_url, ids, messages, report, message_group_id=args.message_group_id)
        console.out(json.dumps(summary, indent=2))
    elif output is OutputFormat.JSONL:
        for record in message_records(messages, report):
            console.out(json_line(record))
    elif output is OutputFormat.CSV:
        rows = [
            [r["message"], r["status"], len(r["sequenceIds"]), r["sequenceIds"][0], r["sequenceIds"][-1], r["bytes"],
             r["error"]]
            for r in message_records(messages, report)
        ]  # fmt: skip
        console.out(csv_text(MESSAGE_COLUMNS, rows))
    elif output is OutputFormat.IDS:
        for sequence_id in ids.sequence_ids if report is None else _ids_of(report.not_sent):
            console.out(str(sequence_id))
    else:
        lines = summary_lines(
            args.queue_url,
            ids,
            messages,
            report,
            pause_first=args.pause_first,
            message_group_id=args.message_group_id,
        )
        for line in lines:
            console.out(line)


def message_records(messages: list[PlannedMessage], report: SendReport | None) -> list[dict[str, Any]]:
    """One record per planned message, in order: its IDs, size and status (planned, sent, failed or not_sent)."""
    failed = {item.message: item.reason for item in report.failed} if report is not None else {}
    sent = set(report.sent) if report is not None else set()
    records = []
    for number, message in enumerate(messages, start=1):
        if report is None:
            status = "planned"
        elif message in sent:
            status = "sent"
        else:
            status = "failed" if message in failed else "not_sent"
        records.append(
            {
                "message": number,
                "status": status,
                "sequenceIds": list(message.sequence_ids),
                "bytes": message.size,
                "error": failed.get(message) or (report.aborted if status == "not_sent" and report else None),
            }
        )
    return records


def summary_json(
    queue_url: str,
    ids: IdInput,
    messages: list[PlannedMessage],
    report: SendReport | None,
    *,
    message_group_id: str | None = None,
) -> dict[str, Any]:
    """The `--format json` summary; with no report it describes a dry run."""
    document: dict[str, Any] = {
        "queueUrl": queue_url,
        "messageGroupId": message_group_id,  # null for a standard queue
        "dryRun": report is None,
        "ids": {
            "read": ids.values_read,
            "valid": len(ids.sequence_ids),
            "duplicates": ids.duplicates,
            "rejected": len(ids.rejected),
        },
        "rejected": [item.to_json() for item in ids.rejected],
    }
    if report is None:
        document["messages"] = {"planned": len(messages)}
        document["plannedMessages"] = [{"sequenceIds": list(m.sequence_ids), "bytes": m.size} for m in messages]
        return document
    document["ids"]["sent"] = report.sent_ids
    document["messages"] = {
        "planned": len(messages),
        "sent": len(report.sent),
        "failed": len(report.failed),
        "unsent": len(report.unsent),
    }
    document["calls"] = report.calls
    document["retriedEntries"] = report.retried_entries
    document["failedMessages"] = [
        {"sequenceIds": list(item.message.sequence_ids), "reason": item.reason} for item in report.failed
    ]
    document["unsentIds"] = _ids_of(report.unsent)
    document["notSentIds"] = _ids_of(report.not_sent)  # failed and unsent: the IDs to send again
    document["error"] = report.aborted
    return document


def summary_lines(
    queue_url: str,
    ids: IdInput,
    messages: list[PlannedMessage],
    report: SendReport | None,
    *,
    pause_first: bool,
    message_group_id: str | None = None,
) -> list[str]:
    """The text summary: what was (or would be) sent, what was rejected and why, what failed."""
    flag = ", pauseFirst" if pause_first else ""
    if message_group_id is not None:
        queue_url = f"{queue_url} (message group {message_group_id})"
    lines: list[str] = []
    if report is None and ids.sequence_ids:
        calls = len(plan_batches(messages))
        lines.append(
            f"dry run: would send {_count(len(messages), 'message')} ({_count(len(ids.sequence_ids), 'ID')}{flag}) "
            f"in {_count(calls, 'SendMessageBatch call')} to {queue_url}"
        )
        for number, message in enumerate(messages[:MESSAGES_SHOWN], start=1):
            first, last = message.sequence_ids[0], message.sequence_ids[-1]
            span = f"{first} … {last}" if len(message.sequence_ids) > 1 else str(first)
            lines.append(
                f"  message {number}: {_count(len(message.sequence_ids), 'ID')} ({span}), {message.size} bytes"
            )
        if len(messages) > MESSAGES_SHOWN:
            lines.append(f"  … and {len(messages) - MESSAGES_SHOWN} more")
    elif report is not None and not report.not_sent:
        lines.append(
            f"sent {_count(len(report.sent), 'message')} ({_count(report.sent_ids, 'ID')}{flag}) to {queue_url} "
            f"in {_count(report.calls, 'SendMessageBatch call')}"
            + (f"; {_count(report.retried_entries, 'entry', 'entries')} retried" if report.retried_entries else "")
        )
    elif report is not None:
        not_sent = _ids_of(report.not_sent)
        lines.append(
            f"NOT ALL SENT: sent {len(report.sent)} of {_count(len(messages), 'message')} "
            f"({report.sent_ids:,} of {_count(len(ids.sequence_ids), 'ID')}{flag}) to {queue_url}; "
            f"{_count(len(not_sent), 'ID')} not sent"
        )
        lines.extend(_not_sent_lines(messages, report))
    if ids.rejected:
        lines.append(f"rejected {_count(len(ids.rejected), 'input value')} (not sequence IDs, not sent):")
        lines.extend(rejected_lines(ids.rejected))
    if ids.duplicates:
        lines.append(f"skipped {_count(ids.duplicates, 'duplicate ID')}")
    return lines


def _not_sent_lines(messages: list[PlannedMessage], report: SendReport) -> list[str]:
    """The messages not on the queue, by number, with their IDs' span and why (the first MESSAGES_SHOWN)."""
    records = [record for record in message_records(messages, report) if record["status"] != "sent"]
    lines = []
    for record in records[:MESSAGES_SHOWN]:
        sequence_ids = record["sequenceIds"]
        span = f"{sequence_ids[0]} … {sequence_ids[-1]}" if len(sequence_ids) > 1 else str(sequence_ids[0])
        why = "failed" if record["status"] == "failed" else "not sent"
        lines.append(
            f"  message {record['message']}: {_count(len(sequence_ids), 'ID')} ({span}) {why}: {record['error']}"
        )
    if len(records) > MESSAGES_SHOWN:
        lines.append(f"  … and {len(records) - MESSAGES_SHOWN} more")
    lines.append("  the IDs not sent, one per line: --output ids (or notSentIds in --output json)")
    return lines


def _count(number: int, singular: str, plural_form: str | None = None) -> str:
    return plural(number, singular, plural_form)
