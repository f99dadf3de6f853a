"""`sequence-archiver select`: list sequences from Reply with filters, one ID per line by default."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sequence_archiver.public import (
    DEFAULT_PAGE_SIZE,
    HEALTH_VALUES,
    MAX_PAGE_SIZE,
    STATUSES,
    Deadline,
    InvalidRequestError,
    ReplyAuthenticationError,
    ReplyRefusedError,
    RetryableReplyError,
    Selection,
    SequenceFilter,
    SequenceListClient,
    check_sequence,
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
    from collections.abc import Iterator

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
  sequence-archiver select --status paused --health blocked,stalled --exclude-name keep --output table
  sequence-archiver select --status paused --contacts-finished --inactive-for-days 90 --exclude-ids 101,102

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
    keys = parser.add_argument_group(
        "clean-up policy keys (combined with AND with the filters; the function's own checks, cheapest first)"
    )
    keys.add_argument(
        "--health", type=_health, metavar="HEALTH[,HEALTH]", help=f"one or more of {', '.join(HEALTH_VALUES)}"
    )
    keys.add_argument(
        "--exclude-ids",
        type=_ids,
        action="append",
        metavar="ID[,ID]",
        help="never select these sequence IDs (repeatable)",
    )
    keys.add_argument(
        "--exclude-name", action="append", metavar="TEXT", help="never select a name containing TEXT (repeatable)"
    )
    keys.add_argument(
        "--exclude-folder", type=_folder, action="append", metavar="FOLDER_ID", help="never select this folder's"
    )
    keys.add_argument(
        "--exclude-owner", type=bounded_int(1), action="append", metavar="USER_ID", help="never select this owner's"
    )
    keys.add_argument(
        "--contacts-finished",
        action="store_true",
        default=None,
        help="only sequences none of whose contacts is active, paused or out of office (a call per 1,000 contacts)",
    )
    keys.add_argument(
        "--inactive-for-days",
        type=bounded_int(1, 3650),
        metavar="N",
        help="only sequences where no contact completed a step in N days (a call per 100 contacts)",
    )
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


def _health(text: str) -> list[str]:
    values = [part.strip().lower() for part in text.split(",")]
    unknown = [value for value in values if value not in HEALTH_VALUES]
    if unknown:
        raise argparse.ArgumentTypeError(f"must be one or more of {', '.join(HEALTH_VALUES)}, got {text!r}")
    return values


def _ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not sequence IDs separated by commas: {text!r}") from None
    if not ids or any(id_ < 1 for id_ in ids):
        raise argparse.ArgumentTypeError(f"not sequence IDs separated by commas: {text!r}")
    return ids


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None


FILTER_OPTIONS = ("status", "owner", "folder", "name", "created_after", "created_before")
POLICY_OPTIONS = (
    "health",
    "exclude_ids",
    "exclude_name",
    "exclude_folder",
    "exclude_owner",
    "contacts_finished",
    "inactive_for_days",
)


@dataclass(frozen=True)
class Choice:
    """What to list: the filter, the most a clean-up request would take (None: no such bound), and the clean-up
    selection when one is in use (its folders to keep out and its per-sequence checks are applied here too)."""

    sequence_filter: SequenceFilter
    max_sequences: int | None = None
    selection: Selection | None = None

    @property
    def checked(self) -> bool:
        """True when some keys need Reply calls beyond the listing's pages (excluded folders, checks)."""
        return self.selection is not None and bool(self.selection.checks or self.selection.excluded_folders)


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


def _flags(names: tuple[str, ...], args: argparse.Namespace) -> list[str]:
    return [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]


def choice_from(args: argparse.Namespace, console: Console, *, now: datetime) -> Choice:
    """The filter flags, or a clean-up policy's selection read by the function's own model (run at `now`)."""
    keys = _flags(POLICY_OPTIONS, args)
    if args.selection is None and args.selection_file is None:
        if not keys:
            return Choice(filter_from(args))
        if args.is_archived is not False:
            raise UsageError(f"{', '.join(keys)} select unarchived sequences only; drop --archived/--include-archived")
        return _policy_choice(_selection_document(args), "the options", now)
    given = _flags(FILTER_OPTIONS, args) + keys
    if given or args.is_archived is not False:
        flags = ", ".join(given) or "--archived/--include-archived"
        raise UsageError(f"--selection and --selection-file replace the filter options; drop {flags}")
    where = "--selection" if args.selection is not None else args.selection_file
    text = args.selection if args.selection is not None else console.read_text(args.selection_file)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    return _policy_choice(document, where, now)


def _policy_choice(document: object, where: str, now: datetime) -> Choice:
    try:
        if is_cleanup_request(document):
            request = parse_cleanup_request(document)
            select = request.select
            return Choice(select.sequence_filter(now), max_sequences=request.max_sequences, selection=select)
        selection = _selection(document)
        return Choice(selection.sequence_filter(now), selection=selection)
    except InvalidRequestError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _selection_document(args: argparse.Namespace) -> dict[str, object]:
    """The filter and policy options as a `select` object, for the function's model to validate."""
    document: dict[str, object] = {
        key: value
        for key, value in {
            "status": args.status,
            "ownerUserId": args.owner,
            "folderId": str(args.folder) if args.folder is not None else None,
            "name": args.name,
            "createdAfter": args.created_after.isoformat() if args.created_after else None,
            "createdBefore": args.created_before.isoformat() if args.created_before else None,
            "health": args.health,
            "contactsFinished": args.contacts_finished,
            "inactiveForDays": args.inactive_for_days,
        }.items()
        if value is not None
    }
    exclude = {
        key: value
        for key, value in {
            "sequenceIds": [id_ for ids in args.exclude_ids or [] for id_ in ids],
            "nameContains": args.exclude_name or [],
            "folderIds": [str(folder) for folder in args.exclude_folder or []],
            "ownerUserIds": args.exclude_owner or [],
        }.items()
        if value
    }
    if exclude:
        document["exclude"] = exclude
    return document


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
    matched = _matched_keys(choice.selection)
    try:
        # Oldest first, always: the same order with or without --created-before (which needs it to stop paging),
        # the order the function's clean-up selects in, and new sequences land after the pages already read.
        pages = _selected_pages(client, choice, page_size=args.page_size, limit=limit)
        for page in pages:
            found += len(page)
            progress.update(found, note=plural(client.calls, "Reply call"))
            if streamed:
                _print_lines(console, output, page, matched=matched)
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
        _print_collected(console, output, collected, matched=matched)
    if args.verbose:
        console.err(f"select: {plural(found, 'sequence')} in {plural(client.calls, 'Reply call')}")
    return ExitCode.OK


NO_CALL_DEADLINE_SECONDS = 86_400.0  # a one-off command has no Lambda deadline: a day stands for "as it takes"
POLICY_KEYS = frozenset({"health", "exclude", "contactsFinished", "inactiveForDays"})


def _selected_pages(
    client: SequenceListClient, choice: Choice, *, page_size: int, limit: int | None
) -> Iterator[list[SequenceItem]]:
    """The listed pages, with the keep list's folders left out and the per-sequence checks applied, in the
    function's order (the listing's filters and fields, then the folders, then the checks); at most `limit`."""
    selection = choice.selection
    if selection is None or not choice.checked:
        yield from list_sequences(client, choice.sequence_filter, page_size=page_size, limit=limit, oldest_first=True)
        return
    deadline = Deadline(time.monotonic() + NO_CALL_DEADLINE_SECONDS)
    kept_out: set[int] = set()
    for folder in selection.excluded_folders:
        in_folder = SequenceFilter(folder_id=folder, is_archived=False)
        for page in list_sequences(client, in_folder, page_size=MAX_PAGE_SIZE):
            kept_out.update(item.id for item in page)
    active_since = selection.active_since(datetime.now(UTC))
    found = 0
    for page in list_sequences(client, choice.sequence_filter, page_size=page_size, oldest_first=True):
        selected = []
        for item in page:
            if item.id in kept_out:
                continue
            checked = check_sequence(
                client.reply_client, selection.checks, item.id, deadline=deadline, active_since=active_since
            )
            if checked.left_out_by is not None:
                continue
            selected.append(item)
            found += 1
            if limit is not None and found >= limit:
                break
        if selected:
            yield selected
        if limit is not None and found >= limit:
            return


def _matched_keys(selection: Selection | None) -> list[str] | None:
    """The keys every printed sequence matched (they combine with AND), when a policy key is in use."""
    if selection is None or not POLICY_KEYS & set(selection.to_json()):
        return None
    return [key["key"] for key in selection.applied_keys()]


def _document(item: SequenceItem, matched: list[str] | None) -> dict[str, object]:
    document = item.to_json()
    if matched is not None:
        document["matched"] = matched
    return document


def _print_lines(
    console: Console, output: OutputFormat, items: list[SequenceItem], *, matched: list[str] | None = None
) -> None:
    """IDs or JSON lines, flushed so a pipe gets them as they come."""
    for item in items:
        console.out(str(item.id) if output is OutputFormat.IDS else json_line(_document(item, matched)))
    console.stdout.flush()


def _print_collected(
    console: Console, output: OutputFormat, items: list[SequenceItem], *, matched: list[str] | None = None
) -> None:
    """Everything at once: a table fitting the terminal, one JSON document, CSV, or the lines held back."""
    if output is OutputFormat.TABLE:
        console.out(sequences_table(items, width=output_width(console.stdout, console.environ)))
        if matched is not None:
            console.out("each matched: " + ", ".join(matched))
    elif output is OutputFormat.JSON:
        document = {"count": len(items), "sequences": [_document(item, matched) for item in items]}
        console.out(json.dumps(document, indent=2, ensure_ascii=False))
    elif output is OutputFormat.CSV:
        console.out(csv_text(SEQUENCE_COLUMNS, [sequence_row(item) for item in items]))
    else:
        _print_lines(console, output, items, matched=matched)


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
