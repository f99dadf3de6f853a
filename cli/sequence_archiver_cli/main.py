"""Entry point of the `sequence-archiver` console script."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import TYPE_CHECKING

from sequence_archiver_cli.commands import archive, enqueue, report, select
from sequence_archiver_cli.common import Parser, configure_logging, epilog, system_console
from sequence_archiver_cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver_cli.common import Console

DESCRIPTION = "Operate the Reply sequence archiver: choose sequences, queue them, archive them, read the results."
EXAMPLES = """\
a campaign:
  sequence-archiver select --status paused --created-before 2025-01-01 > ids.txt
  sequence-archiver enqueue --queue-url "$QUEUE_URL" --file ids.txt --dry-run
  sequence-archiver enqueue --queue-url "$QUEUE_URL" --file ids.txt
  sequence-archiver report --log-group "$RESULTS_LOG_GROUP"

or in one go: sequence-archiver select --status paused | sequence-archiver enqueue --queue-url "$QUEUE_URL" -

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
    for command in (select, enqueue, archive, report):
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    """Run one command and return its exit code (see `sequence-archiver --help`)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse has printed them
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    console = console or system_console(os.environ)
    if args.command is None:
        console.err("sequence-archiver: error: choose a command: select, enqueue, archive or report (see --help)")
        return ExitCode.USAGE
    configure_logging(console.stderr, verbose=args.verbose)
    try:
        return int(args.run(args, console))
    except CliError as exc:
        console.err(f"sequence-archiver {args.command}: error: {exc}")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        console.err(f"sequence-archiver {args.command}: interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`select | head`): stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
