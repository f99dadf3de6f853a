"""Entry point of the `sequence-archiver` console script."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError

from sequence_archiver_cli.aws import describe_aws_error
from sequence_archiver_cli.commands import archive, enqueue, report, restore, select
from sequence_archiver_cli.common import (
    Parser,
    configure_logging,
    epilog,
    resolve_environment_defaults,
    system_console,
)
from sequence_archiver_cli.errors import CliError, ExitCode, OutputClosedError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import TextIO

    from sequence_archiver_cli.common import Console

DESCRIPTION = (
    "Operate the Reply sequence archiver: choose sequences, queue them, archive them, read the results, "
    "restore a snapshot's contacts."
)
EXAMPLES = """\
a campaign:
  sequence-archiver select --status paused --created-before 2025-01-01 > ids.txt
  sequence-archiver enqueue --queue-url "$QUEUE_URL" --file ids.txt --dry-run
  sequence-archiver enqueue --queue-url "$QUEUE_URL" --file ids.txt
  sequence-archiver report --log-group "$RESULTS_LOG_GROUP"

or in one go: sequence-archiver select --status paused | sequence-archiver enqueue --queue-url "$QUEUE_URL" -

environment defaults (a flag always wins; `make stack` exports them all): REPLY_BASE_URL for --base-url,
QUEUE_URL for enqueue --queue-url, RESULTS_LOG_GROUP for report --log-group, RESULTS_SINK_QUEUE_URL for
report --queue-url given without a URL; AWS_PROFILE, AWS_REGION (then AWS_DEFAULT_REGION) and AWS_ENDPOINT_URL
as in aws-cli v2.

enqueue and archive ask on the terminal before acting on more than 100 IDs (the answer is read from
the terminal, so a pipe still works); where no one is at a terminal (cron, CI) add --yes.
"""


def _version() -> str:
    try:
        return metadata.version("reply-sequence-archiver")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> Parser:
    """The top-level parser with one subcommand per command."""
    parser = Parser(prog="sequence-archiver", description=DESCRIPTION, epilog=epilog(EXAMPLES))
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in (select, enqueue, archive, report, restore):
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    """Run one command and return its exit code (see `sequence-archiver --help`)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse has printed them
        _flush_quietly(sys.stdout)  # argparse prints there; `--help | head -1` is no error
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    console = console or system_console(os.environ)
    if args.command is None:
        console.err(
            "sequence-archiver: error: choose a command: select, enqueue, archive, report or restore (see --help)"
        )
        return ExitCode.USAGE
    configure_logging(console.stderr, verbose=args.verbose)
    return _run(args, console)


def _run(args: argparse.Namespace, console: Console) -> int:
    """The command, with every way it can end turned into an exit code and at most a line or two on stderr."""
    prog = f"sequence-archiver {args.command}"
    try:
        resolve_environment_defaults(args, console.environ)
        code = int(args.run(args, console))
        console.stdout.flush()  # here, not at exit: a reader gone by now is a closed output, not exit 120
        return code
    except OutputClosedError as exc:  # the command says what it had done when its output closed
        return _output_closed(console, f"{prog}: stopped: {exc}")
    except BrokenPipeError:  # the reader went away (`select | head`) where the command did not look
        return _output_closed(console, f"{prog}: stopped: {_closed_note(args)}")
    except CliError as exc:
        _flush_quietly(console.stdout)
        _say(console, f"{prog}: error: {exc}")
        return int(exc.exit_code)
    except BotoCoreError as exc:  # a configuration or connection error no command caught: still one line
        _flush_quietly(console.stdout)
        _say(console, f"{prog}: error: {describe_aws_error('AWS', exc)}")
        return ExitCode.UNAVAILABLE
    except KeyboardInterrupt:
        _flush_quietly(console.stdout)
        _say(console, f"{prog}: interrupted")
        return ExitCode.INTERRUPTED


def _closed_note(args: argparse.Namespace) -> str:
    """What a command that did not raise OutputClosedError has to say (its `output_closed` default), or a plain line."""
    note = getattr(args, "output_closed", None)
    return note(args) if callable(note) else "stdout was closed before all of the output was written"


def _output_closed(console: Console, line: str) -> int:
    """stdout's reader is gone: say so on stderr (if it is still open), keep Python quiet at exit, exit 141."""
    _silence(console.stdout)
    _say(console, line)
    return ExitCode.OUTPUT_CLOSED


def _say(console: Console, line: str) -> None:
    """A line on stderr, unless stderr is closed too (`2>&-`, or both on the pipe): then nothing, quietly."""
    try:
        console.err(line)
        console.stderr.flush()
    except (BrokenPipeError, ValueError):  # ValueError: a stream already closed
        _silence(console.stderr)


def _flush_quietly(stream: TextIO) -> None:
    """Flush what a command printed before it failed; a reader already gone changes nothing about that failure."""
    try:
        stream.flush()
    except (BrokenPipeError, ValueError):
        _silence(stream)


def _silence(stream: TextIO) -> None:
    """Point a broken stream at /dev/null so the interpreter's flush at exit has nowhere to fail.

    Python writes what is still buffered when it exits; to a closed pipe that is an `Exception ignored ...
    BrokenPipeError` message and exit status 120. Replacing the file descriptor keeps the exit status ours.
    """
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError):  # not a real file (tests pass StringIO): nothing will be flushed at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)
