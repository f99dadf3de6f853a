"""`sequence-archiver archive`: archive IDs directly with the function's core, without AWS."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sequence_archiver.public import (
    MAX_IDS_PER_REQUEST,
    ArchiveMode,
    Deadline,
    Outcome,
    ReplyClient,
    S3SnapshotStore,
    SequenceArchiver,
    SequenceResult,
    SequenceSnapshots,
    SnapshotPolicy,
    Timeouts,
    count_outcomes,
    snapshot_key,
)
from sequence_archiver_cli.archive_steps import SteppedArchive, StopReason
from sequence_archiver_cli.aws import s3_client
from sequence_archiver_cli.common import (
    aws_from,
    aws_options,
    bounded_int,
    common_options,
    epilog,
    function_default,
    input_from,
    input_options,
    positive_float,
    rate_limiter_from,
    reply_options,
    retry_policy_from,
)
from sequence_archiver_cli.confirmation import add_confirmation_option, confirm
from sequence_archiver_cli.errors import ExitCode, OutputClosedError, UnavailableError, UsageError
from sequence_archiver_cli.id_input import read_id_input
from sequence_archiver_cli.interruption import Interruption
from sequence_archiver_cli.output import (
    LONG_WAIT_SECONDS,
    OutputFormat,
    Progress,
    add_output_option,
    csv_text,
    describe_wait,
    json_line,
    output_width,
    plural,
    rejected_lines,
    table,
)
from sequence_archiver_cli.reply_access import (
    api_key_source,
    check_key_options,
    reply_unreachable,
    validate_base_url,
)
from sequence_archiver_cli.results_report import ATTENTION_OUTCOMES
from sequence_archiver_cli.snapshot_output import FolderSnapshotStore

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from sequence_archiver.public import ApiCall, ReplyWait
    from sequence_archiver_cli.archive_steps import ArchiveRecord
    from sequence_archiver_cli.common import Console
    from sequence_archiver_cli.id_input import IdInput

DEFAULT_TIME_LIMIT_SECONDS = 3600.0
PROG = "sequence-archiver archive"
EXAMPLES = """\
examples:
  sequence-archiver archive --dry-run --file ids.txt
  REPLY_API_KEY=... sequence-archiver archive 101 102 103
  sequence-archiver archive --secret-id reply/api-key --file ids.txt --yes --output jsonl > outcomes.jsonl
  sequence-archiver select --status paused --limit 50 | sequence-archiver archive --pause-first -
  sequence-archiver archive --file ids.txt --output ids > again.txt     # the IDs that need another look

The same core as the function: the same outcomes, retries, Retry-After handling and pacing under
the key's rate limit. Before acting on more than 100 IDs it asks on the terminal (--yes answers for
you, and is needed where no one is at a terminal). --output jsonl prints each ID's outcome as soon as
it is known. Ctrl-C stops starting calls: the call in flight finishes, what finished is printed, the
IDs not attempted are counted on stderr (--output ids lists them) and the exit code is 130. IDs not
reached within --time-limit are counted the same way. A closed stdout (`--output jsonl | head`) stops
it the same way: stderr says what was done and what was not attempted, and the exit code is 141.
"""
IDS_MEANING = "the IDs that need attention or another try: failed, forbidden, conflict, and those not attempted"
RESULT_COLUMNS = ("sequenceId", "outcome", "via", "httpStatus", "error", "paused", "input")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its options."""
    parser = subparsers.add_parser(
        "archive",
        parents=[input_options(), reply_options(), aws_options(), common_options()],
        help="archive sequence IDs directly through Reply (no queue, no Lambda)",
        description="Archive sequence IDs with the function's own core and print each ID's outcome.",
        epilog=epilog(EXAMPLES),
    )
    parser.add_argument(
        "--mode",
        choices=[mode.value for mode in ArchiveMode],
        default=function_default("archive_mode"),
        help="auto: the bulk endpoint for more than one ID; single; bulk (default: %(default)s)",
    )
    parser.add_argument(
        "--bulk-max-ids",
        type=bounded_int(1, MAX_IDS_PER_REQUEST),
        default=function_default("bulk_max_ids"),
        metavar="N",
        help="IDs per bulk call (default: %(default)s)",
    )
    parser.add_argument(
        "--pause-first", action="store_true", help="pause a running sequence and archive it again on a 409"
    )
    parser.add_argument(
        "--time-limit",
        type=positive_float,
        default=DEFAULT_TIME_LIMIT_SECONDS,
        metavar="SECONDS",
        help="stop starting calls after this long (default: %(default)g)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and print the IDs that would be archived; call nothing"
    )
    snapshots = parser.add_mutually_exclusive_group()
    snapshots.add_argument(
        "--snapshot-dir",
        type=Path,
        metavar="DIR",
        help="before archiving each sequence, store its contacts (a snapshot for `restore`) under DIR",
    )
    snapshots.add_argument(
        "--snapshot-bucket",
        metavar="BUCKET",
        help="the same, as S3 objects in BUCKET (the stack's SnapshotBucketName output)",
    )
    parser.add_argument(
        "--snapshot-policy",
        choices=[policy.value for policy in SnapshotPolicy if policy is not SnapshotPolicy.OFF],
        default=SnapshotPolicy.REQUIRED.value,
        help="required: no snapshot, no archive; best-effort: archive anyway, saying what is missing "
        "(default: %(default)s)",
    )
    add_confirmation_option(parser)
    add_output_option(parser, choices=list(OutputFormat), default=OutputFormat.TABLE, ids_meaning=IDS_MEANING)
    parser.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    parser.set_defaults(run=run, output_closed=output_closed_note)


def output_closed_note(args: argparse.Namespace) -> str:
    """What a closed stdout means where no archiving had started (a dry run, or before the first call)."""
    if args.dry_run:
        return "stdout was closed before the dry run's list was all written; nothing was sent to Reply"
    return "stdout was closed before all of the output was written"


def run(args: argparse.Namespace, console: Console) -> int:
    """Archive, printing each ID's outcome; exit 1 when any ID needs attention, 130 after Ctrl-C."""
    ids = read_id_input(input_from(args), stdin=console.stdin)
    printer = ResultPrinter(console, args.output, invalid=invalid_results(ids))
    if not ids.sequence_ids:
        printer.start()
        printer.finish(None)
        raise UsageError(f"no valid sequence IDs in the input ({plural(len(ids.rejected), 'value')} rejected)")
    base_url = validate_base_url(args.base_url)
    check_key_options(secret_id=args.secret_id, variable=args.api_key_env)
    if args.dry_run:
        return dry_run(console, args, ids)
    key = api_key_source(
        secret_id=args.secret_id, variable=args.api_key_env, environ=console.environ, aws=aws_from(args)
    )
    count = len(ids.sequence_ids)
    confirm(
        f"archive {plural(count, 'sequence ID')} in Reply"
        f"{' (pausing running ones first)' if args.pause_first else ''}? This cannot be undone from here.",
        count=count,
        assume_yes=args.yes,
        no_terminal_hint="re-run with --yes to archive them, or with --dry-run to see them",
    )

    interruption = Interruption()
    calls: list[ApiCall] = []
    progress = Progress(console.stderr, label="archive", total=count, unit="IDs", enabled=not args.no_progress)
    outcomes = OutcomeStream(printer, progress, interruption, shared_terminal=console.stdout.isatty())

    def on_api_call(call: ApiCall) -> None:
        calls.append(call)
        progress.update(outcomes.done, note=f"last: {call.operation} {call.http_status or 'no answer'}")

    def on_wait(wait: ReplyWait) -> None:
        """Say why nothing moves: on the bar, or (no terminal) a line on stderr for a long wait."""
        if progress.shown:
            progress.note(describe_wait(wait))
        elif not args.no_progress and wait.seconds >= LONG_WAIT_SECONDS:
            console.err(f"{PROG}: {describe_wait(wait)}")

    client = ReplyClient(
        base_url=base_url,
        api_key_source=key,
        retry_policy=retry_policy_from(args),
        timeouts=Timeouts(),
        rate_limiter=rate_limiter_from(args),
        on_api_call=on_api_call,
        on_wait=on_wait,
        sleep=interruption.sleep,
    )
    mode = ArchiveMode(args.mode)
    if mode is ArchiveMode.AUTO:  # the core's rule for the whole input, not for each step of it
        mode = ArchiveMode.BULK if count > 1 else ArchiveMode.SINGLE
    stepped = SteppedArchive(
        archiver=SequenceArchiver(
            client, mode=mode, bulk_max_ids=args.bulk_max_ids, snapshots=_snapshots(args, client)
        ),
        request_id="cli-" + uuid.uuid4().hex[:12],
        deadline=Deadline(expires_at=time.monotonic() + args.time_limit, clock=interruption.clock),
        interruption=interruption,
        calls=calls,
        single=mode is ArchiveMode.SINGLE,
        pause_first=args.pause_first,
    )
    try:
        printer.start()
    except BrokenPipeError:
        raise OutputClosedError(f"stdout was closed before the first call: nothing was sent to Reply; "
                                f"{plural(count, 'ID')} not attempted") from None  # fmt: skip
    with interruption.on_sigint():
        record = stepped.run(ids.sequence_ids, outcomes.result)
    progress.finish()
    if outcomes.output_closed or not _printed_to_the_end(printer, console, record):
        unprinted = len(record.results) - outcomes.printed if printer.streams else None
        raise OutputClosedError(closed_output_summary(record, count, unprinted=unprinted))
    _summarise_stop(console, record, count)
    return _exit_code(record, ids, key.rejection(), base_url)


def _snapshots(args: argparse.Namespace, client: ReplyClient) -> SequenceSnapshots | None:
    """The snapshots `--snapshot-dir` or `--snapshot-bucket` asks for (none without either)."""
    store: FolderSnapshotStore | S3SnapshotStore
    if args.snapshot_dir is not None:
        store = FolderSnapshotStore(args.snapshot_dir)
    elif args.snapshot_bucket is not None:
        options = aws_from(args)
        store = S3SnapshotStore(s3_client=lambda: s3_client(options), bucket=args.snapshot_bucket)
    else:
        return None
    required = SnapshotPolicy(args.snapshot_policy) is SnapshotPolicy.REQUIRED
    return SequenceSnapshots(client, store, key_of=snapshot_key, required=required)


class OutcomeStream:
    """Hands each final outcome to the printer; when stdout's reader goes away (`| head`), asks the run to stop.

    A closed output stops the run as Ctrl-C does: the calls of the step in flight have been made and their
    outcomes are kept (counted, not printed), and no further call starts.
    """

    def __init__(
        self, printer: ResultPrinter, progress: Progress, interruption: Interruption, *, shared_terminal: bool
    ) -> None:
        """`shared_terminal`: stdout is the terminal the progress bar is drawn on, so lines must not land in it."""
        self._printer = printer
        self._progress = progress
        self._interruption = interruption
        self._shared_terminal = shared_terminal
        self.done = 0  # outcomes known
        self.printed = 0  # outcomes handed to stdout before it closed
        self.output_closed = False

    def result(self, result: SequenceResult) -> None:
        """One final outcome."""
        self.done += 1
        if not self.output_closed:
            try:
                if self._shared_terminal:
                    with self._progress.cleared():
                        self._printer.result(result)
                else:
                    self._printer.result(result)
                self.printed += 1
            except BrokenPipeError:
                self.output_closed = True
                self._interruption.request()
        self._progress.update(self.done)


def _printed_to_the_end(printer: ResultPrinter, console: Console, record: ArchiveRecord) -> bool:
    """Print what the format prints at the end; False when stdout's reader has gone."""
    try:
        printer.finish(record)
        console.stdout.flush()
    except BrokenPipeError:
        return False
    return True


def closed_output_summary(record: ArchiveRecord, count: int, *, unprinted: int | None) -> str:
    """One line for a run whose stdout closed: what has an outcome, what was not printed, what was not attempted.

    `unprinted`: the outcomes known after the output closed (jsonl, ids); None for the formats printed at the end.
    """
    counts = count_outcomes(record.results)
    done = ", ".join(f"{outcome} {number:,}" for outcome, number in counts.items() if number) or "none"
    line = f"stdout was closed: {len(record.results):,} of {count:,} IDs have an outcome ({done})"
    if unprinted is None:
        line += ", printed only in part"
    elif unprinted:
        line += f", {unprinted:,} of them not printed"
    left = len(record.not_attempted) + len(record.unknown)
    if left:
        line += f"; {plural(left, 'ID')} not attempted: archive them again (an ID already archived is reported as such)"
    return line


def _exit_code(record: ArchiveRecord, ids: IdInput, rejection: str, base_url: str) -> int:
    if record.stop in (StopReason.INTERRUPTED, StopReason.ABORTED):
        return ExitCode.INTERRUPTED
    if record.stop is StopReason.KEY_REJECTED:
        raise UnavailableError(rejection)
    if record.stop is StopReason.UNREACHABLE:
        failed = next(result for result in reversed(record.results) if result.outcome is Outcome.FAILED)
        raise reply_unreachable(base_url, failed.error)
    attention = ids.rejected or record.not_attempted or needs_attention(record.results)
    return ExitCode.ATTENTION if attention else ExitCode.OK


def needs_attention(results: Sequence[SequenceResult]) -> bool:
    """True when an outcome needs a person or another try."""
    return any(result.outcome in ATTENTION_OUTCOMES for result in results)


def _summarise_stop(console: Console, record: ArchiveRecord, count: int) -> None:
    """On stderr, when not every ID was tried: why, what was done, and what to run again."""
    left = len(record.not_attempted) + len(record.unknown)
    if not left and record.stop not in (StopReason.INTERRUPTED, StopReason.ABORTED):
        return
    reason = record.stop.value if record.stop is not None else "stopped"
    counts = count_outcomes(record.results)
    done = ", ".join(f"{outcome} {number:,}" for outcome, number in counts.items() if number) or "none"
    finished = len(record.results)
    verb = "has" if finished == 1 else "have"
    console.err(f"{PROG}: {reason}: {finished:,} of {plural(count, 'ID')} {verb} an outcome ({done})")
    if record.unknown:
        console.err(
            f"{PROG}: {plural(len(record.unknown), 'ID')} of the call in flight without a known outcome: "
            "archived or not, archiving them again is safe"
        )
    if record.not_attempted:
        console.err(
            f"{PROG}: {plural(len(record.not_attempted), 'ID')} not attempted: archive them again "
            "(--output ids lists them; so do the input IDs without a line in --output jsonl)"
        )


def invalid_results(ids: IdInput) -> list[SequenceResult]:
    """The input values that are not sequence IDs, as `invalid` outcomes (never sent)."""
    return [
        SequenceResult(None, Outcome.INVALID, error=f"{item.where}: {item.reason}", input_value=item.value)
        for item in ids.rejected
    ]


class ResultPrinter:
    """Prints outcomes in the chosen --output: jsonl and ids as each becomes known, the others at the end."""

    def __init__(self, console: Console, output: OutputFormat, *, invalid: list[SequenceResult]) -> None:
        self._console = console
        self._output = output
        self._invalid = invalid
        self._results: list[SequenceResult] = []

    @property
    def streams(self) -> bool:
        """True for the formats printed as each outcome becomes known (jsonl, ids)."""
        return self._output in (OutputFormat.JSONL, OutputFormat.IDS)

    def start(self) -> None:
        """Before the first call: the outcomes already known (input values that are not IDs), for jsonl."""
        if self._output is OutputFormat.JSONL:
            for result in self._invalid:
                self._line(json_line(result.to_json()))

    def result(self, result: SequenceResult) -> None:
        """One final outcome."""
        self._results.append(result)
        if self._output is OutputFormat.JSONL:
            self._line(json_line(result.to_json()))
        elif self._output is OutputFormat.IDS and result.outcome in ATTENTION_OUTCOMES and result.sequence_id:
            self._line(str(result.sequence_id))

    def finish(self, record: ArchiveRecord | None) -> None:
        """What the formats that print at the end print; for `ids`, the IDs not attempted."""
        everything = [*self._results, *self._invalid]
        not_attempted = [*record.unknown, *record.not_attempted] if record is not None else []
        output, console = self._output, self._console
        if output is OutputFormat.IDS:
            for sequence_id in not_attempted:
                console.out(str(sequence_id))
        elif output is OutputFormat.JSON:
            document = {
                "counts": count_outcomes(everything),
                "results": [result.to_json() for result in everything],
                "notAttempted": not_attempted,
                "stopped": record.stop.value if record is not None and record.stop is not None else None,
            }
            console.out(json.dumps(document, indent=2, ensure_ascii=False))
        elif output is OutputFormat.CSV:
            console.out(csv_text(RESULT_COLUMNS, [_csv_row(result) for result in everything]))
        elif output is OutputFormat.TABLE:
            width = output_width(console.stdout, console.environ)
            console.out(table(["sequenceId", "outcome", "via", "http", "detail"], _table_rows(everything), width=width))
            counts = count_outcomes(everything)
            console.out("totals: " + ", ".join(f"{outcome} {number}" for outcome, number in counts.items() if number))

    def _line(self, text: str) -> None:
        self._console.out(text)
        self._console.stdout.flush()


def _table_rows(results: Sequence[SequenceResult]) -> list[list[object]]:
    return [
        [
            result.sequence_id if result.sequence_id is not None else f"({result.input_value})",
            result.outcome.value,
            result.via.value if result.via is not None else "-",
            result.http_status if result.http_status is not None else "-",
            result.error or ("paused first" if result.paused else ""),
        ]
        for result in results
    ]


def _csv_row(result: SequenceResult) -> list[object]:
    return [
        result.sequence_id,
        result.outcome.value,
        result.via.value if result.via is not None else None,
        result.http_status,
        result.error,
        "true" if result.paused else "false",
        result.input_value,
    ]


def dry_run(console: Console, args: argparse.Namespace, ids: IdInput) -> int:
    """Print the IDs that would be archived in the chosen --output, the counts on stderr; call nothing."""
    action = "archive, pausing first if running" if args.pause_first else "archive"
    output: OutputFormat = args.output
    sequence_ids = ids.sequence_ids
    if output is OutputFormat.IDS:
        console.out("\n".join(str(sequence_id) for sequence_id in sequence_ids))
    elif output is OutputFormat.JSONL:
        console.out("\n".join(json_line({"sequenceId": i, "action": action}) for i in sequence_ids))
    elif output is OutputFormat.CSV:
        console.out(csv_text(["sequenceId", "action"], [[i, action] for i in sequence_ids]))
    elif output is OutputFormat.JSON:
        document = {
            "dryRun": True,
            "action": action,
            "ids": {
                "read": ids.values_read,
                "valid": len(sequence_ids),
                "duplicates": ids.duplicates,
                "rejected": len(ids.rejected),
            },
            "sequenceIds": list(sequence_ids),
            "rejected": [item.to_json() for item in ids.rejected],
        }
        console.out(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        width = output_width(console.stdout, console.environ)
        console.out(table(["sequenceId", "would"], [[i, action] for i in sequence_ids], width=width))
    console.err(f"dry run: would archive {plural(len(sequence_ids), 'sequence ID')} "
                f"({_plan(args, len(sequence_ids))}); nothing was sent to Reply")  # fmt: skip
    if ids.rejected:
        console.err(f"rejected {plural(len(ids.rejected), 'input value')} (not sequence IDs, never sent):")
        for line in rejected_lines(ids.rejected):
            console.err(line)
    if ids.duplicates:
        console.err(f"skipped {plural(ids.duplicates, 'duplicate ID')}")
    return ExitCode.ATTENTION if ids.rejected else ExitCode.OK


def _plan(args: argparse.Namespace, count: int) -> str:
    mode = ArchiveMode(args.mode)
    if mode is ArchiveMode.SINGLE or (mode is ArchiveMode.AUTO and count == 1):
        return "one call per ID"
    calls = -(-count // args.bulk_max_ids)
    return f"{plural(calls, 'bulk call')} of up to {plural(args.bulk_max_ids, 'ID')}"
