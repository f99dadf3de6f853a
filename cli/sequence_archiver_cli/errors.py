"""Exit codes scripts can rely on, and the errors that end a command with one of them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit status of every command."""

    OK = 0
    ATTENTION = 1  # some IDs or entries failed or need a person to look at them
    USAGE = 2  # nothing was done: bad arguments, bad input, or a confirmation declined or impossible
    UNAVAILABLE = 3  # AWS or Reply unreachable, or an authentication / configuration error
    INTERRUPTED = 130
    OUTPUT_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by a closed pipe


EXIT_CODES_EPILOG = """\
exit codes:
  0  success
  1  some IDs or entries failed or need attention (listed in the output)
  2  nothing was done: a usage error, bad input (no IDs, a missing CSV column, an unreadable file), or a
     confirmation declined, or needed with no terminal to ask on (re-run with --yes)
  3  AWS or Reply unreachable, or an authentication / configuration error
  130  interrupted (Ctrl-C): what was printed is what was done
  141  stdout was closed before all of the output was written (`| head`): the run stopped there, and
       stderr says what was done and what was not attempted
"""


class CliError(Exception):
    """An expected failure: one line on stderr and an exit code, never a traceback."""

    exit_code = ExitCode.USAGE


class AttentionError(CliError):
    """A step that had to work first was refused (restore's unarchive): nothing was done, a person has to look."""

    exit_code = ExitCode.ATTENTION


class UsageError(CliError):
    """Bad arguments or bad input."""

    exit_code = ExitCode.USAGE


class NotConfirmedError(UsageError):
    """The person at the terminal did not confirm, or no one was there to ask: nothing was done."""


class UnavailableError(CliError):
    """A service could not be reached or refused our credentials or configuration."""

    exit_code = ExitCode.UNAVAILABLE


class OutputClosedError(CliError):
    """stdout's reader went away (`| head`): the run stopped; the message says what was done and what was not."""

    exit_code = ExitCode.OUTPUT_CLOSED
