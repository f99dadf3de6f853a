"""Exit codes scripts can rely on, and the errors that end a command with one of them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit status of every command."""

    OK = 0
    ATTENTION = 1  # some IDs or entries failed or need a person to look at them
    USAGE = 2  # bad arguments or bad input
    UNAVAILABLE = 3  # AWS or Reply unreachable, or an authentication / configuration error
    INTERRUPTED = 130


EXIT_CODES_EPILOG = """\
exit codes:
  0  success
  1  some IDs or entries failed or need attention (listed in the output)
  2  usage error or bad input (no IDs, a missing CSV column, an unreadable file)
  3  AWS or Reply unreachable, or an authentication / configuration error
"""


class CliError(Exception):
    """An expected failure: one line on stderr and an exit code, never a traceback."""

    exit_code = ExitCode.USAGE


class UsageError(CliError):
    """Bad arguments or bad input."""

    exit_code = ExitCode.USAGE


class UnavailableError(CliError):
    """A service could not be reached or refused our credentials or configuration."""

    exit_code = ExitCode.UNAVAILABLE
