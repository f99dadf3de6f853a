"""`sequence-archiver restore`: re-add a snapshot's contacts to a sequence (issue 22).

Reply's archive removes every contact from a sequence and its unarchive does not put them back; the snapshot the
function stores before archiving records who was there. This command adds them again with
POST /v3/sequences/{id}/contact-links/bulk. What it cannot restore: a contact's step, status and history in the
sequence; Reply enrols every added contact afresh (see docs/command-line.md#restore-a-snapshots-contacts).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sequence_archiver.public import (
    CONTACT_STATUSES,
    MAX_CONTACTS_PER_CALL,
    UNFINISHED_STATUSES,
    Deadline,
    DeadlineExceededError,
    InvalidSequenceIdError,
    RateBudgetExhaustedError,
    ReplyAuthenticationError,
    ReplyClient,
    ReplyPausedError,
    RetryableReplyError,
    SequenceArchiverError,
    Timeouts,
    parse_sequence_id,
)
from sequence_archiver_cli.common import (
    aws_from,
    aws_options,
    bounded_int,
    common_options,
    epilog,
    positive_float,
    rate_limiter_from,
    reply_options,
    retry_policy_from,
)
from sequence_archiver_cli.confirmation import add_confirmation_option, confirm
from sequence_archiver_cli.errors import AttentionError, ExitCode, OutputClosedError, UnavailableError, UsageError
from sequence_archiver_cli.interruption import Interruption
from sequence_archiver_cli.output import (
    LONG_WAIT_SECONDS,
    OutputFormat,
    add_output_option,
    csv_text,
    describe_wait,
    json_line,
    output_width,
    plural,
    table,
)
from sequence_archiver_cli.reply_access import (
    api_key_source,
    check_key_options,
    reply_unreachable,
    validate_base_url,
)
from sequence_archiver_cli.restoring import RESTORED, ContactOutcome, StopReason, chunks, restore_contacts
from sequence_archiver_cli.snapshot_input import read_snapshot

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.public import ApiCall, ReplyWait
    from sequence_archiver_cli.common import Console
    from sequence_archiver_cli.restoring import ContactResult, RestoreRecord
    from sequence_archiver_cli.snapshot_input import Snapshot, SnapshotContact

PROG = "sequence-archiver restore"
DEFAULT_TIME_LIMIT_SECONDS = 3600.0
RELEASE_SECONDS = 5.0  # the most a run waits at its end to give back calls booked in a shared budget
ALL_STATUSES = "all"
# Reply's statuses in the order they are shown; a status the snapshot holds that is not among them comes after.
STATUS_ORDER = ("active", "paused", "outOfOffice", "finished", "inactive")
DEFAULT_STATUSES = tuple(status for status in STATUS_ORDER if status in UNFINISHED_STATUSES)
NOT_IMPLEMENTED = 501
NOT_ARCHIVED = "sequenceAction.notArchived"  # the unarchive's 409: the sequence is not archived
PERSONAL_COLUMNS = ("email", "firstName", "lastName", "company")
EXAMPLES = f"""\
examples:
  sequence-archiver restore --snapshot s3://BUCKET/snapshots/WORKSPACE/101/SNAPSHOT.json.gz --to-sequence 101 --dry-run
  sequence-archiver restore --snapshot 101.json.gz --to-sequence 202 --yes
  sequence-archiver restore --snapshot 101.json.gz --to-sequence 101 --unarchive --statuses all --output json

Reads a snapshot the function stored before archiving (a local file or s3://, gzip or plain JSON) and adds its
contacts to --to-sequence with Reply's bulk add (up to {MAX_CONTACTS_PER_CALL:,} a call): by default those that were
still being worked ({",".join(DEFAULT_STATUSES)}), --statuses all for every one. Reply enrols each added contact
afresh, from the first step: their old step, status and history are not restored. Above 100 contacts it asks on the
terminal (--yes answers for you). Contacts are named by ID only unless --show-contacts. The exit code is 0 only when
every selected contact is in the sequence (added, or already there); 1 when Reply refused or did not confirm some,
or refused the unarchive; 3 when Reply's unarchive endpoint is not available yet (404, 501), or Reply could not be
reached or rejected the key.
"""


class UnarchiveOutcome(StrEnum):
    """What the unarchive before a restore came to."""

    UNARCHIVED = "unarchived"
    NOT_ARCHIVED = "not_archived"  # 409 sequenceAction.notArchived: nothing to undo, the contacts can be added


@dataclass(frozen=True, slots=True)
class Unarchived:
    """The unarchive call's answer, when it let the restore go ahead."""

    outcome: UnarchiveOutcome
    http_status: int


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its options."""
    parser = subparsers.add_parser(
        "restore",
        parents=[reply_options(), aws_options(), common_options()],
        help="re-add the contacts of a sequence snapshot to a sequence in Reply",
        description="Re-add the contacts a snapshot recorded before archiving to a sequence, and report what "
        "Reply added and what it refused.",
        epilog=epilog(EXAMPLES),
    )
    parser.add_argument(
        "--snapshot", required=True, metavar="PATH|s3://BUCKET/KEY", help="the snapshot (.json.gz or .json)"
    )
    parser.add_argument(
        "--to-sequence",
        required=True,
        type=_sequence_id,
        metavar="ID",
        help="the sequence to add the contacts to (the snapshot's own, or another)",
    )
    parser.add_argument(
        "--statuses",
        type=_statuses,
        default=DEFAULT_STATUSES,
        metavar="LIST",
        help="the contacts to restore, by their status in the snapshot: a comma-separated list of "
        f"{', '.join(STATUS_ORDER)}, or 'all' (default: {','.join(DEFAULT_STATUSES)}, those not finished)",
    )
    parser.add_argument(
        "--unarchive",
        action="store_true",
        help="unarchive --to-sequence first (only the snapshot's own sequence); stops, adding nothing, when "
        "Reply's unarchive endpoint is not available yet",
    )
    parser.add_argument(
        "--contacts-per-call",
        type=bounded_int(1, MAX_CONTACTS_PER_CALL),
        default=MAX_CONTACTS_PER_CALL,
        metavar="N",
        help="contacts per bulk add call (default: %(default)s, Reply's most)",
    )
    parser.add_argument(
        "--time-limit",
        type=positive_float,
        default=DEFAULT_TIME_LIMIT_SECONDS,
        metavar="SECONDS",
        help="stop starting calls after this long (default: %(default)g)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="read the snapshot and say what would be added; call nothing"
    )
    parser.add_argument(
        "--show-contacts",
        action="store_true",
        help="also print each contact's email, name and company (default: contact IDs and counts only)",
    )
    add_confirmation_option(parser)
    add_output_option(
        parser,
        choices=[OutputFormat.TABLE, OutputFormat.JSON, OutputFormat.JSONL, OutputFormat.CSV],
        default=OutputFormat.TABLE,
    )
    parser.add_argument("--no-progress", action="store_true", help="no lines on stderr about long waits")
    parser.set_defaults(run=run, output_closed=output_closed_note)


def _sequence_id(text: str) -> int:
    try:
        return parse_sequence_id(text)
    except InvalidSequenceIdError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _statuses(text: str) -> tuple[str, ...]:
    """`all`, or statuses spelt as Reply does (compared without case), each once, in Reply's order."""
    words = [word.strip() for word in text.split(",") if word.strip()]
    if [word.lower() for word in words] == [ALL_STATUSES]:
        return ()  # every status, known or not
    known = {status.lower(): status for status in CONTACT_STATUSES}
    unknown = [word for word in words if word.lower() not in known]
    if not words or unknown:
        raise argparse.ArgumentTypeError(
            f"not a status: {', '.join(unknown) or repr(text)} (choose from {', '.join(STATUS_ORDER)}, or all)"
        )
    chosen = {known[word.lower()] for word in words}
    return tuple(status for status in STATUS_ORDER if status in chosen)


def output_closed_note(args: argparse.Namespace) -> str:
    """What a closed stdout means where nothing had been sent (a dry run, or before the first call)."""
    if args.dry_run:
        return "stdout was closed before the dry run's plan was all written; nothing was sent to Reply"
    return "stdout was closed before all of the output was written"


def run(args: argparse.Namespace, console: Console) -> int:
    """Restore; exit 0 when every selected contact is in the sequence (see the exit codes in --help)."""
    base_url = validate_base_url(args.base_url)
    check_key_options(secret_id=args.secret_id, variable=args.api_key_env)
    snapshot = read_snapshot(args.snapshot, aws=aws_from(args))
    if args.unarchive and args.to_sequence != snapshot.sequence_id:
        raise UsageError(
            f"--unarchive unarchives the snapshot's own sequence ({snapshot.sequence_id}), not {args.to_sequence}: "
            "drop --unarchive, or restore to the snapshot's sequence"
        )
    selected = [contact for contact in snapshot.contacts if not args.statuses or contact.status in args.statuses]
    plan = Plan(snapshot, selected, args)
    if args.dry_run:
        return dry_run(console, plan)
    if not selected:
        plan.say_nothing_selected(console)
        return ExitCode.OK
    key = api_key_source(
        secret_id=args.secret_id, variable=args.api_key_env, environ=console.environ, aws=aws_from(args)
    )
    confirm(
        f"add {plural(len(selected), 'contact')} of sequence {snapshot.sequence_id}'s snapshot to sequence "
        f"{args.to_sequence} in Reply{' (unarchiving it first)' if args.unarchive else ''}? Reply enrols them "
        "afresh, from the first step.",
        count=len(selected),
        assume_yes=args.yes,
        no_terminal_hint="re-run with --yes to add them, or with --dry-run to see what would be added",
    )
    interruption = Interruption()
    attempts: list[ApiCall] = []

    def on_wait(wait: ReplyWait) -> None:
        if not args.no_progress and wait.seconds >= LONG_WAIT_SECONDS:
            console.err(f"{PROG}: {describe_wait(wait)}")

    client = ReplyClient(
        base_url=base_url,
        api_key_source=key,
        retry_policy=retry_policy_from(args),
        timeouts=Timeouts(),
        rate_limiter=rate_limiter_from(args),
        on_api_call=attempts.append,
        on_wait=on_wait,
        sleep=interruption.sleep,
    )
    deadline = Deadline(expires_at=time.monotonic() + args.time_limit, clock=interruption.clock)
    try:
        with interruption.on_sigint():
            unarchived = None
            if args.unarchive:
                unarchived = unarchive_first(client, args.to_sequence, deadline, rejection=key.rejection(),
                                             base_url=base_url, interruption=interruption)  # fmt: skip
            record = restore_contacts(
                client,
                args.to_sequence,
                selected,
                deadline,
                interruption=interruption,
                attempts_made=lambda: len(attempts),
                per_call=args.contacts_per_call,
            )
    finally:  # calls booked in a shared budget (--budget-table) and not made go back
        client.release_unused_budget(Deadline(expires_at=time.monotonic() + RELEASE_SECONDS))
    try:
        ReportPrinter(console, plan).report(record, unarchived)
        console.stdout.flush()
    except BrokenPipeError:
        raise OutputClosedError(f"stdout was closed before the report was all written: {summary(record)}") from None
    _summarise_stop(console, record)
    return _exit_code(record, key.rejection(), base_url)


def unarchive_first(
    client: ReplyClient,
    sequence_id: int,
    deadline: Deadline,
    *,
    rejection: str,
    base_url: str,
    interruption: Interruption,
) -> Unarchived:
    """POST /v3/sequences/{id}/unarchive before adding anything; a CliError (nothing added) when it did not work.

    A 409 `sequenceAction.notArchived` (the sequence is not archived) lets the restore go ahead: there is nothing
    to undo. A 404 or 501 is the endpoint Reply announces as coming soon, not there yet (a 404 may also be a
    sequence that no longer exists).
    """
    try:
        answer = client.unarchive_sequence(sequence_id, deadline)
    except ReplyAuthenticationError:
        raise UnavailableError(rejection) from None
    except (DeadlineExceededError, RateBudgetExhaustedError, ReplyPausedError) as exc:
        if interruption.requested:
            raise KeyboardInterrupt from None  # Ctrl-C before the unarchive was made: exit 130, nothing done
        raise AttentionError(f"the time limit ran out before the unarchive call ({exc}); nothing was added") from None
    except RetryableReplyError as exc:
        if exc.http_status == NOT_IMPLEMENTED:  # the client retries every 5xx: a 501 comes back as its last error
            raise _not_available(sequence_id, NOT_IMPLEMENTED, str(exc).removeprefix("Reply answered 501 ")) from None
        raise reply_unreachable(
            base_url, f"the unarchive call got no usable answer ({exc}); nothing was added"
        ) from None
    except SequenceArchiverError as exc:
        raise reply_unreachable(
            base_url, f"the unarchive call got no usable answer ({exc}); nothing was added"
        ) from None
    status = answer.http_status
    reason = (answer.problem.short_reason() if answer.problem else None) or f"HTTP {status}"
    if 200 <= status < 300:
        return Unarchived(UnarchiveOutcome.UNARCHIVED, status)
    if status == 409 and (answer.problem is None or answer.problem.code in {None, NOT_ARCHIVED}):
        return Unarchived(UnarchiveOutcome.NOT_ARCHIVED, status)
    if status in {404, NOT_IMPLEMENTED}:
        raise _not_available(sequence_id, status, f"({reason})")
    raise AttentionError(f"Reply refused to unarchive sequence {sequence_id} ({status}): {reason}; nothing was added")


class Plan:
    """What a run is asked to do: the snapshot, the contacts selected, and the calls they take."""

    def __init__(self, snapshot: Snapshot, selected: list[SnapshotContact], args: argparse.Namespace) -> None:
        self.snapshot = snapshot
        self.selected = selected
        self.to_sequence: int = args.to_sequence
        self.statuses: tuple[str, ...] = args.statuses
        self.unarchive: bool = args.unarchive
        self.per_call: int = args.contacts_per_call
        self.output: OutputFormat = args.output
        self.show_contacts: bool = args.show_contacts

    def call_sizes(self) -> list[int]:
        """The contacts each bulk add call sends."""
        return [len(chunk) for chunk in chunks(self.selected, self.per_call)] if self.selected else []

    def calls(self) -> list[str]:
        """The Reply calls a run makes, in order."""
        calls = [f"POST /v3/sequences/{self.to_sequence}/unarchive"] if self.unarchive else []
        path = f"POST /v3/sequences/{self.to_sequence}/contact-links/bulk"
        calls += [f"{path} ({plural(size, 'contact')})" for size in self.call_sizes()]
        return calls

    def statuses_text(self) -> str:
        return ",".join(self.statuses) if self.statuses else ALL_STATUSES

    def snapshot_json(self) -> dict[str, object]:
        snapshot = self.snapshot
        return {
            "source": snapshot.source,
            "sequenceId": snapshot.sequence_id,
            "takenAt": snapshot.taken_at,
            "workspace": snapshot.workspace,
            "contacts": len(snapshot.contacts),
            "byStatus": by_status(snapshot.contacts),
            "duplicates": snapshot.duplicates,
        }

    def describe(self) -> list[str]:
        """The snapshot and the selection, for a person."""
        snapshot = self.snapshot
        statuses = ", ".join(f"{status} {count:,}" for status, count in by_status(snapshot.contacts).items())
        taken = f", taken {snapshot.taken_at}" if snapshot.taken_at else ""
        workspace = f" in workspace {snapshot.workspace}" if snapshot.workspace else ""
        lines = [
            f"snapshot {snapshot.source}: sequence {snapshot.sequence_id}{workspace}{taken}, "
            f"{plural(len(snapshot.contacts), 'contact')}" + (f" ({statuses})" if statuses else "")
        ]
        if snapshot.duplicates:
            lines.append(f"  {plural(snapshot.duplicates, 'duplicate contact item')} left out")
        listed = len(snapshot.contacts) + snapshot.duplicates
        if snapshot.contact_count is not None and snapshot.contact_count != listed:
            lines.append(f"  the snapshot says it holds {snapshot.contact_count:,} contacts but lists {listed:,}")
        lines.append(
            f"selected ({self.statuses_text()}): {plural(len(self.selected), 'contact')} for sequence "
            f"{self.to_sequence}, in {plural(len(self.call_sizes()), 'bulk add call')}"
        )
        return lines

    def say_nothing_selected(self, console: Console) -> None:
        for line in self.describe():
            console.err(f"{PROG}: {line}")
        console.err(f"{PROG}: no contact in the snapshot has the statuses {self.statuses_text()}: nothing to add")

    def contact_json(self, contact: SnapshotContact) -> dict[str, object]:
        document: dict[str, object] = {"contactId": contact.contact_id, "statusInSnapshot": contact.status}
        if self.show_contacts:
            document.update(contact.personal())
        return document


def by_status(contacts: Sequence[SnapshotContact]) -> dict[str, int]:
    """Contacts per status, in Reply's order (statuses it does not know after)."""
    found = Counter(contact.status for contact in contacts)
    order = [status for status in STATUS_ORDER if status in found] + sorted(set(found) - set(STATUS_ORDER))
    return {status: found[status] for status in order}


def dry_run(console: Console, plan: Plan) -> int:
    """Print what a run would add and the calls it would make; call nothing."""
    output = plan.output
    if output is OutputFormat.JSON:
        document = {
            "dryRun": True,
            "snapshot": plan.snapshot_json(),
            "toSequence": plan.to_sequence,
            "statuses": list(plan.statuses) or ALL_STATUSES,
            "selected": len(plan.selected),
            "selectedByStatus": by_status(plan.selected),
            "calls": plan.calls(),
            "contacts": [plan.contact_json(contact) for contact in plan.selected],
        }
        console.out(json.dumps(document, indent=2, ensure_ascii=False))
    elif output is OutputFormat.JSONL:
        for contact in plan.selected:
            console.out(json_line({**plan.contact_json(contact), "action": "add"}))
    elif output is OutputFormat.CSV:
        headers, rows = _contact_rows(plan, [(contact, "add", None) for contact in plan.selected])
        console.out(csv_text(headers, rows))
    else:
        for line in plan.describe():
            console.out(line)
        console.out("would call:")
        for call in plan.calls():
            console.out(f"  {call}")
        if plan.show_contacts and plan.selected:
            headers, rows = _contact_rows(plan, [(contact, "add", None) for contact in plan.selected])
            console.out(table(headers, rows, width=output_width(console.stdout, console.environ)))
    console.err(
        f"dry run: would add {plural(len(plan.selected), 'contact')} to sequence {plan.to_sequence} in "
        f"{plural(len(plan.calls()), 'call')}; nothing was sent to Reply"
    )
    return ExitCode.OK


def _contact_rows(
    plan: Plan, items: Sequence[tuple[SnapshotContact, str, str | None]]
) -> tuple[list[str], list[list[object]]]:
    """Headers and rows of contacts with an outcome (or action) and a reason; the personal columns when asked."""
    headers = ["contactId", "statusInSnapshot", "outcome", "reason"]
    if plan.show_contacts:
        headers += list(PERSONAL_COLUMNS)
    rows: list[list[object]] = []
    for contact, outcome, reason in items:
        row: list[object] = [contact.contact_id, contact.status, outcome, reason]
        if plan.show_contacts:
            personal = contact.personal()
            row += [personal[name] if isinstance(personal[name], str) else None for name in PERSONAL_COLUMNS]
        rows.append(row)
    return headers, rows


def _not_available(sequence_id: int, status: int, reason: str) -> UnavailableError:
    """Reply's unarchive endpoint, announced as coming soon, is not there (404 or 501): nothing was added."""
    return UnavailableError(
        f"Reply answered {status} to POST /v3/sequences/{sequence_id}/unarchive {reason}: Reply's unarchive "
        'endpoint is not available yet ("coming soon" in Reply\'s API reference)'
        + (", or the sequence does not exist" if status == 404 else "")
        + "; nothing was added. Restore without --unarchive to another sequence, or once Reply offers it"
    )


class ReportPrinter:
    """The report of a run in the chosen --output."""

    def __init__(self, console: Console, plan: Plan) -> None:
        self._console = console
        self._plan = plan

    def report(self, record: RestoreRecord, unarchived: Unarchived | None) -> None:
        plan, console = self._plan, self._console
        output = plan.output
        if output is OutputFormat.JSON:
            console.out(json.dumps(self._document(record, unarchived), indent=2, ensure_ascii=False))
        elif output is OutputFormat.JSONL:
            for result in record.results:
                console.out(json_line(self._result_json(result)))
        elif output is OutputFormat.CSV:
            headers, rows = _contact_rows(plan, [(r.contact, r.outcome.value, r.reason) for r in record.results])
            console.out(csv_text(headers, rows))
        else:
            self._table(record, unarchived)

    def _document(self, record: RestoreRecord, unarchived: Unarchived | None) -> dict[str, object]:
        plan = self._plan
        return {
            "dryRun": False,
            "snapshot": plan.snapshot_json(),
            "toSequence": plan.to_sequence,
            "statuses": list(plan.statuses) or ALL_STATUSES,
            "selected": len(plan.selected),
            "selectedByStatus": by_status(plan.selected),
            "unarchive": None
            if unarchived is None
            else {"outcome": unarchived.outcome.value, "httpStatus": unarchived.http_status},
            "calls": [{"contacts": call.contacts, "httpStatus": call.http_status} for call in record.calls],
            "counts": record.counts(),
            "refusedByReason": record.refused_by_reason(),
            "complete": record.complete,
            "stopped": record.stop.value if record.stop is not None else None,
            "stopDetail": record.stop_detail,
            "contacts": [self._result_json(result) for result in record.results],
        }

    def _result_json(self, result: ContactResult) -> dict[str, object]:
        return {
            **self._plan.contact_json(result.contact),
            "outcome": result.outcome.value,
            "code": result.code,
            "reason": result.reason,
        }

    def _table(self, record: RestoreRecord, unarchived: Unarchived | None) -> None:
        plan, console = self._plan, self._console
        for line in plan.describe():
            console.out(line)
        if unarchived is not None:
            said = "unarchived" if unarchived.outcome is UnarchiveOutcome.UNARCHIVED else "was not archived (409)"
            console.out(f"sequence {plan.to_sequence} {said}")
        calls = "; ".join(f"{call.contacts:,} contacts → {_status(call.http_status)}" for call in record.calls)
        console.out(f"bulk add calls: {len(record.calls)}" + (f" ({calls})" if calls else ""))
        console.out(summary(record))
        refused = record.refused_by_reason()
        if refused:
            console.out("refused, by reason:")
            console.out(table(["reason", "contacts"], [[code, count] for code, count in refused.items()], indent="  "))
        left = [r for r in record.results if r.outcome not in RESTORED]
        shown = record.results if plan.show_contacts else left
        if shown:
            console.out("contacts not in the sequence:" if not plan.show_contacts else "contacts:")
            headers, rows = _contact_rows(plan, [(r.contact, r.outcome.value, r.reason) for r in shown])
            console.out(table(headers, rows, width=output_width(console.stdout, console.environ)))


def _status(http_status: int | None) -> str:
    return f"HTTP {http_status}" if http_status is not None else "no usable answer"


def summary(record: RestoreRecord) -> str:
    """`added 140, already_in_sequence 5, refused 5 of 150 contacts`: every outcome that happened."""
    counts = ", ".join(f"{outcome} {count:,}" for outcome, count in record.counts().items() if count) or "none"
    return f"{counts} of {plural(len(record.results), 'contact')}"


def _summarise_stop(console: Console, record: RestoreRecord) -> None:
    """On stderr, when the run stopped before every contact was sent: why, and what to do."""
    if record.stop is None:
        return
    detail = f": {record.stop_detail}" if record.stop_detail and record.stop is not StopReason.KEY_REJECTED else ""
    console.err(f"{PROG}: stopped: {record.stop.value}{detail}")
    left = record.counts()[ContactOutcome.NOT_ATTEMPTED.value] + record.counts()[ContactOutcome.UNCONFIRMED.value]
    if left:
        console.err(
            f"{PROG}: {plural(left, 'contact')} not known to be added: run the same restore again "
            "(contacts already added are reported as already in the sequence)"
        )


def _exit_code(record: RestoreRecord, rejection: str, base_url: str) -> int:
    if record.stop is StopReason.INTERRUPTED:
        return ExitCode.INTERRUPTED
    if record.stop is StopReason.KEY_REJECTED:
        raise UnavailableError(rejection)
    if record.stop is StopReason.UNREACHABLE:
        raise reply_unreachable(base_url, record.stop_detail, after_retries=True)
    return ExitCode.OK if record.complete else ExitCode.ATTENTION
