"""`sequence-archiver archive`: archive IDs directly with the function's core, without AWS."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sequence_archiver.archive_request import MAX_IDS_PER_REQUEST, parse_archive_request
from sequence_archiver.archiver import ArchiveMode, SequenceArchiver
from sequence_archiver.deadline import Deadline
from sequence_archiver.outcomes import Outcome, SequenceResult, count_outcomes
from sequence_archiver.reply_client import ReplyClient, Timeouts
from sequence_archiver_cli.common import (
    aws_from,
    aws_options,
    bounded_int,
    common_options,
    epilog,
    input_from,
    input_options,
    positive_float,
    rate_limiter_from,
    reply_options,
    retry_policy_from,
)
from sequence_archiver_cli.errors import ExitCode, UnavailableError, UsageError
from sequence_archiver_cli.id_input import read_id_input
from sequence_archiver_cli.output import Progress, clip, table
from sequence_archiver_cli.reply_access import api_key_source, validate_base_url
from sequence_archiver_cli.results_report import ATTENTION_OUTCOMES

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from sequence_archiver.archive_request import ArchiveRequest
    from sequence_archiver.reply_answers import ApiCall
    from sequence_archiver_cli.common import Console
    from sequence_archiver_cli.id_input import IdInput

DEFAULT_TIME_LIMIT_SECONDS = 3600.0
ERROR_WIDTH = 60
EXAMPLES = """\
examples:
  REPLY_API_KEY=... sequence-archiver archive 101 102 103
  sequence-archiver archive --secret-id reply/api-key --file ids.txt --mode single
  sequence-archiver select --status paused --limit 50 | sequence-archiver archive --pause-first -

The same core as the function: the same outcomes, retries, Retry-After handling and pacing under
the key's rate limit. IDs not attempted within --time-limit end `failed`.
"""


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
        default=ArchiveMode.AUTO.value,
        help="auto: the bulk endpoint for more than one ID (default); single; bulk",
    )
    parser.add_argument(
        "--bulk-max-ids",
        type=bounded_int(1, MAX_IDS_PER_REQUEST),
        default=100,
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
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    parser.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    parser.set_defaults(run=run)


def build_requests(sequence_ids: Sequence[int], *, pause_first: bool) -> list[ArchiveRequest]:
    """Requests of at most 1,000 IDs, parsed by the function's own parser."""
    return [
        parse_archive_request(
            {"sequenceIds": list(sequence_ids[i : i + MAX_IDS_PER_REQUEST]), "pauseFirst": pause_first}
        )
        for i in range(0, len(sequence_ids), MAX_IDS_PER_REQUEST)
    ]


def run(args: argparse.Namespace, console: Console) -> int:
    """Archive, print one row per ID and the totals; exit 1 when any ID needs attention."""
    ids = read_id_input(input_from(args), stdin=console.stdin)
    if not ids.sequence_ids:
        _print(console, args, ids, [])
        raise UsageError(f"no valid sequence IDs in the input ({len(ids.rejected)} value(s) rejected)")
    requests = build_requests(ids.sequence_ids, pause_first=args.pause_first)
    base_url = validate_base_url(args.base_url)
    key = api_key_source(
        secret_id=args.secret_id, variable=args.api_key_env, environ=console.environ, aws=aws_from(args)
    )

    calls: list[ApiCall] = []
    progress = Progress(console.stderr, label="archive", total=None, unit="Reply calls", enabled=not args.no_progress)

    def on_api_call(call: ApiCall) -> None:
        calls.append(call)
        progress.update(len(calls), note=f"last: {call.operation} {call.http_status or 'no answer'}")

    client = ReplyClient(
        base_url=base_url,
        api_key_source=key,
        retry_policy=retry_policy_from(args),
        timeouts=Timeouts(),
        rate_limiter=rate_limiter_from(args),
        on_api_call=on_api_call,
    )
    archiver = SequenceArchiver(client, mode=ArchiveMode(args.mode), bulk_max_ids=args.bulk_max_ids)
    deadline = Deadline(expires_at=time.monotonic() + args.time_limit)
    results = [result for per_request in archiver.archive_all(requests, deadline) for result in per_request]
    progress.finish()
    _print(console, args, ids, results)

    failed = [result for result in results if result.outcome is Outcome.FAILED]
    if any(result.http_status == 401 for result in failed):
        raise UnavailableError("Reply rejected the API key (401)")
    if calls and all(call.http_status is None for call in calls) and len(failed) == len(results):
        raise UnavailableError(f"Reply unreachable: {failed[0].error}")
    attention = ids.rejected or any(result.outcome in ATTENTION_OUTCOMES for result in results)
    return ExitCode.ATTENTION if attention else ExitCode.OK


def all_results(ids: IdInput, results: Sequence[SequenceResult]) -> list[SequenceResult]:
    """Reply's outcomes followed by the input values that were never sent (outcome `invalid`)."""
    rejected = [
        SequenceResult(None, Outcome.INVALID, error=f"{item.where}: {item.reason}", input_value=item.value)
        for item in ids.rejected
    ]
    return [*results, *rejected]


def _print(console: Console, args: argparse.Namespace, ids: IdInput, results: Sequence[SequenceResult]) -> None:
    everything = all_results(ids, results)
    counts = count_outcomes(everything)
    if args.format == "json":
        document = {"counts": counts, "results": [result.to_json() for result in everything]}
        console.out(json.dumps(document, indent=2, ensure_ascii=False))
        return
    rows = [
        [
            result.sequence_id if result.sequence_id is not None else f"({result.input_value})",
            result.outcome.value,
            result.via.value if result.via is not None else "-",
            result.http_status if result.http_status is not None else "-",
            clip(result.error or ("paused first" if result.paused else ""), ERROR_WIDTH),
        ]
        for result in everything
    ]
    console.out(table(["sequenceId", "outcome", "via", "http", "detail"], rows))
    console.out("totals: " + ", ".join(f"{outcome} {count}" for outcome, count in counts.items() if count))
