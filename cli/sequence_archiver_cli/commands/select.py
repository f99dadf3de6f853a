"""`sequence-archiver select`: list sequences from Reply with filters, one ID per line by default."""

from __future__ import annotations

import argparse
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sequence_archiver.public import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    STATUSES,
    InvalidRequestError,
    ReplyAuthenticationError,
    ReplyRefusedError,
    RetryableReplyError,
    Selection,
    SequenceFilter,
    SequenceListClient,
    is_cleanup_request,
    list_sequences,
    parse_cleanup_request,
    parse_timestamp,
)
from sequence_archiver_cli.common import (
    aws_from,
    aws_options,
    bounded_int,
    common_options,
    epilog,
    rate_limiter_from,
    reply_options,
    retry_policy_from,
)
from sequence_archiver_cli.errors import ExitCode, UnavailableError, UsageError
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
    table,
)
from sequence_archiver_cli.reply_access import api_key_source, reply_unreachable, validate_base_url

if TYPE_CHECKING:
    from sequence_archiver.public import ReplyWait, SequenceItem
    from sequence_archiver_cli.common import Console

EXAMPLES = """\
examples:
  sequence-archiver select --status paused --created-before 2025-01-01
  sequence-archiver select --name "Q3 outreach" --output table
  sequence-archiver select --status paused --output csv > paused.csv
  sequence-archiver select --status paused | sequence-archiver enqueue --queue-url "$QUEUE_URL" -
  sequence-archiver select --selection '{"status": "paused", "olderThanDays": 180}' --output table
  sequence-archiver select --selection-file policy.json   # a clean-up request, as the schedule runs it

Sequences come oldest first (by creation time, as Reply sorts them), with or without --created-before.
Paging follows Reply's top/skip/hasMore; calls are paced under the key's rate limit like the function's,
and a 429 waits for Retry-After. Each ID is printed once.
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its options."""
    parser = subparsers.add_parser(
        "select",
        parents=[reply_options(), aws_options(), common_options()],
        help="list sequences from Reply (GET /v3/sequences) by status, owner, folder, name, creation date",
        description="List sequences from Reply and print their IDs (one per line), a table, JSON, JSON lines or CSV.",
        epilog=epilog(EXAMPLES),
    )
    filters = parser.add_argument_group("filters (combined with AND)")
    filters.add_argument("--status", type=_status, help="new, active or paused")
    filters.add_argument("--owner", type=bounded_int(1), metavar="USER_ID", help="owner's Reply user ID")
    filters.add_argument("--folder", type=_folder, metavar="FOLDER_ID", help="folder ID (a UUID)")
    filters.add_argument("--name", help="part of the name, case-insensitive")
    filters.add_argument(
        "--created-after", type=_timestamp, metavar="WHEN", help="ISO 8601 date or time (UTC if no offset)"
    )
    filters.add_argument(
        "--created-before", type=_timestamp, metavar="WHEN", help="ISO 8601 date or time (filtered on this side)"
    )
    archived = filters.add_mutually_exclusive_group()
    archived.add_argument("--archived", dest="is_archived", action="store_const", const=True, help="archived only")
    archived.add_argument(
        "--not-archived", dest="is_archived", action="store_const", const=False, help="not archived only (the default)"
    )
    archived.add_argument("--include-archived", dest="is_archived", action="store_const", const=None, help="both")
    parser.set_defaults(is_archived=False)
    policy = parser.add_argument_group(
        "a clean-up policy's selection (instead of the filters above; exactly as the function selects)"
    ).add_mutually_exclusive_group()
    policy.add_argument(
        "--selection",
        metavar="JSON",
        help='the "select" object, e.g. \'{"status": "paused", "olderThanDays": 180}\', or a whole clean-up request',
    )
    policy.add_argument(
        "--selection-file", metavar="FILE", help="the same JSON in a file ('-' is stdin), e.g. the schedule's input"
    )
    add_output_option(
        parser,
        choices=[OutputFormat.IDS, OutputFormat.TABLE, OutputFormat.JSON, OutputFormat.JSONL, OutputFormat.CSV],
        default=OutputFormat.IDS,
        ids_meaning="the sequence IDs, one per line, ready for `enqueue -`",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--limit", type=bounded_int(1), metavar="N", help="stop after N sequences")
    parser.add_argument(
        "--page-size",
        type=bounded_int(1, MAX_PAGE_SIZE),
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help=f"sequences per call (top), 1-{MAX_PAGE_SIZE} (default: %(default)s)",
    )
    parser.set_defaults(run=run, output_closed=output_closed_note)


def output_closed_note(args: argparse.Namespace) -> str:
    """What a listing cut short by a closed stdout (`select | head`) did."""
    del args
    return "stdout was closed before every sequence was listed; select changes nothing in Reply: run it again"


def _status(text: str) -> str:
    status = text.strip().lower()
    if status not in STATUSES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(STATUSES)}, got {text!r}")
    return status


def _folder(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a folder ID (a UUID): {text!r}") from None


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None


FILTER_OPTIONS = ("status", "owner", "folder", "name", "created_after", "created_before")


@dataclass(frozen=True)
class Choice:
    """What to list: the filter, and the most a clean-up request would take (None: no such bound)."""

    sequence_filter: SequenceFilter
    max_sequences: int | None = None


def filter_from(args: argparse.Namespace) -> SequenceFilter:
    """The filters of parsed arguments; contradictory dates are a UsageError."""
    if args.created_after and args.created_before and args.created_after >= args.created_before:
        raise UsageError("--created-after must be earlier than --created-before")
    return SequenceFilter(
        status=args.status,
        owner_user_id=args.owner,
        folder_id=args.folder,
        name=args.name,
        created_after=args.created_after,
        created_before=args.created_before,
        is_archived=args.is_archived,
    )


def choice_from(args: argparse.Namespace, console: Console, *, now: datetime) -> Choice:
    """The filter flags, or a clean-up policy's selection read by the function's own model (run at `now`)."""
    if args.selection is None and args.selection_file is None:
        return Choice(filter_from(args))
    given = [f"--{name.replace('_', '-')}" for name in FILTER_OPTIONS if getattr(args, name) is not None]
    if given or args.is_archived is not False:
        flags = ", ".join(given) or "--archived/--include-archived"
        raise UsageError(f"--selection and --selection-file replace the filter options; drop {flags}")
    where = "--selection" if args.selection is not None else args.selection_file
    text = args.selection if args.selection is not None else console.read_text(args.selection_file)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    try:
        if is_cleanup_request(document):
            request = parse_cleanup_request(document)
            return Choice(request.select.sequence_filter(now), max_sequences=request.max_sequences)
        return Choice(_selection(document).sequence_filter(now))
    except InvalidRequestError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _selection(document: object) -> Selection:
    """A bare `select` object, validated as the function validates the one inside a request."""
    return parse_cleanup_request({"select": document}).select if isinstance(document, dict) else _not_an_object()


def _not_an_object() -> Selection:
    raise InvalidRequestError('a selection is a JSON object of filters, e.g. {"status": "paused"}')


def run(args: argparse.Namespace, console: Console) -> int:
    """List page by page; IDs and JSON lines stream as pages arrive, a table is printed at the end."""
    choice = choice_from(args, console, now=datetime.now(UTC))
    # A clean-up request's maxSequences: the function lists one more to know the selection is too large, and
    # enqueues nothing until it knows the selection fits; so nothing is printed until then either.
    bounded = choice.max_sequences is not None and args.limit is None
    limit = choice.max_sequences + 1 if bounded and choice.max_sequences is not None else args.limit
    base_url = validate_base_url(args.base_url)
    key = api_key_source(
        secret_id=args.secret_id, variable=args.api_key_env, environ=console.environ, aws=aws_from(args)
    )
    progress = Progress(console.stderr, label="select", total=limit, unit="sequences", enabled=not args.no_progress)

    def on_wait(wait: ReplyWait) -> None:
        """Say why nothing moves: on the bar, or (no terminal) a line on stderr for a long wait."""
        if progress.shown:
            progress.note(describe_wait(wait))
        elif not args.no_progress and wait.seconds >= LONG_WAIT_SECONDS:
            console.err(f"select: {describe_wait(wait)}")

    client = SequenceListClient(
        base_url=base_url,
        api_key_source=key,
        rate_limiter=rate_limiter_from(args),
        retry_policy=retry_policy_from(args),
        on_wait=on_wait,
    )
    output: OutputFormat = args.output
    streamed = output in {OutputFormat.IDS, OutputFormat.JSONL} and not bounded
    collected: list[SequenceItem] = []
    found = 0
    try:
        # Oldest first, always: the same order with or without --created-before (which needs it to stop paging),
        # the order the function's clean-up selects in, and new sequences land after the pages already read.
        pages = list_sequences(client, choice.sequence_filter, page_size=args.page_size, limit=limit, oldest_first=True)
        for page in pages:
            found += len(page)
            progress.update(found, note=plural(client.calls, "Reply call"))
            if streamed:
                _print_lines(console, output, page)
            else:
                collected.extend(page)
    except ReplyRefusedError as exc:
        if exc.http_status == 400:
            raise UsageError(f"Reply rejected the filters (400): {exc.reason}") from None
        hint = " (the key needs the sequences:read scope)" if exc.http_status == 403 else ""
        raise UnavailableError(f"{exc}{hint}") from None
    except ReplyAuthenticationError as exc:  # the key's own words: the variable or the secret it came from
        raise UnavailableError(key.rejection() if exc.http_status == 401 else str(exc)) from None
    except RetryableReplyError as exc:
        raise reply_unreachable(base_url, exc, after_retries=True) from None
    finally:
        progress.finish()
    if bounded and choice.max_sequences is not None and found > choice.max_sequences:
        console.err(
            f"select: more than maxSequences ({choice.max_sequences}) sequences match: the function would stop and "
            "archive none of them; narrow the selection or raise maxSequences"
        )
        return ExitCode.ATTENTION
    if not streamed:
        _print_collected(console, output, collected)
    if args.verbose:
        console.err(f"select: {plural(found, 'sequence')} in {plural(client.calls, 'Reply call')}")
    return ExitCode.OK


def _print_lines(console: Console, output: OutputFormat, items: list[SequenceItem]) -> None:
    """IDs or JSON lines, flushed so a pipe gets them as they come."""
    for item in items:
        console.out(str(item.id) if output is OutputFormat.IDS else json_line(item.to_json()))
    console.stdout.flush()


def _print_collected(console: Console, output: OutputFormat, items: list[SequenceItem]) -> None:
    """Everything at once: a table fitting the terminal, one JSON document, CSV, or the lines held back."""
    if output is OutputFormat.TABLE:
        console.out(sequences_table(items, width=output_width(console.stdout, console.environ)))
    elif output is OutputFormat.JSON:
        document = {"count": len(items), "sequences": [item.to_json() for item in items]}
        console.out(json.dumps(document, indent=2, ensure_ascii=False))
    elif output is OutputFormat.CSV:
        console.out(csv_text(SEQUENCE_COLUMNS, [sequence_row(item) for item in items]))
    else:
        _print_lines(console, output, items)


SEQUENCE_COLUMNS = ("id", "status", "archived", "created (UTC)", "owner", "name")


def sequence_row(item: SequenceItem) -> list[object]:
    """One listed sequence as table or CSV cells."""
    return [
        item.id,
        item.status or "-",
        {True: "yes", False: "no", None: "-"}[item.is_archived],
        item.created.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if item.created else "-",
        item.owner_user_id if item.owner_user_id is not None else "-",
        item.name or "",
    ]


def sequences_table(items: list[SequenceItem], *, width: int | None = None) -> str:
    """ID, status, archived, created, owner and name (cut to fit `width`), with a count below."""
    return (
        table(SEQUENCE_COLUMNS, [sequence_row(item) for item in items], width=width)
        + "\n"
        + plural(len(items), "sequence")
    )
