"""What the commands share: the console streams, option groups and argument types."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from sequence_archiver.public import RateLimiter, RetryPolicy, Settings, SharedRateBudget, budgets_for
from sequence_archiver_cli.aws import AwsOptions, dynamodb_client
from sequence_archiver_cli.errors import EXIT_CODES_EPILOG, ExitCode, UsageError
from sequence_archiver_cli.id_input import InputSources
from sequence_archiver_cli.reply_access import (
    BASE_URL_VARIABLE,
    DEFAULT_API_KEY_VARIABLE,
    DEFAULT_BASE_URL,
    validate_base_url,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_LOG_HANDLER_NAME = "sequence-archiver-cli"


def function_default(field_name: str) -> Any:
    """The function's own default for a setting (the Settings model), so the command line never repeats it."""
    return Settings.model_fields[field_name].default


@dataclass(frozen=True)
class Console:
    """The streams and environment a command works with (tests pass their own)."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    environ: Mapping[str, str]

    def out(self, text: str = "") -> None:
        """A line on stdout."""
        self.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        """A line on stderr."""
        self.stderr.write(text + "\n")

    def read_text(self, path: str) -> str:
        """All of a UTF-8 text file ('-': stdin); an unreadable or undecodable one is a UsageError naming it."""
        try:
            if path == "-":
                return self.stdin.read()
            with open(path, encoding="utf-8-sig") as stream:
                return stream.read()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not UTF-8 text") from None


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) and help that keeps the epilog's layout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print `prog: error: message` and exit 2."""
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def epilog(text: str) -> str:
    """A command's examples followed by the exit codes."""
    return text.rstrip() + "\n\n" + EXIT_CODES_EPILOG


def configure_logging(stream: TextIO, *, verbose: bool) -> None:
    """The archiving core's errors (with -v, its info lines too) on stderr; outcomes are in the command's output."""
    for name in ("sequence_archiver", "sequence_archiver_cli"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if h.get_name() == _LOG_HANDLER_NAME]:
            logger.removeHandler(handler)
        handler = logging.StreamHandler(stream)
        handler.set_name(_LOG_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("sequence-archiver: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if verbose else logging.ERROR)
        logger.propagate = False


# ---------------------------------------------------------------- defaults from the environment


@dataclass(frozen=True, slots=True)
class FromEnvironment:
    """An option's default, read from an environment variable once the arguments are parsed: the flag wins.

    argparse keeps a default that is not a string as it is, so this marker survives parsing untouched and
    `resolve_environment_defaults` replaces it with the variable's value (an empty one counts as unset, as in
    `${VAR:-default}`), else `fallback`. `unless` names other options (by dest) that make this one moot when
    given: `report --file` needs no $RESULTS_LOG_GROUP. `required` makes a missing value a UsageError saying
    `missing`. `check` validates a value taken from the variable, naming the variable in its error.
    """

    variable: str
    fallback: str | None = None
    required: bool = False
    missing: str = ""
    unless: tuple[str, ...] = ()
    check: Callable[[str, str], str] | None = None
    flag_given: bool = False  # True for a `const`: the flag was given without a value, so it counts as given

    def resolve(self, environ: Mapping[str, str]) -> str | None:
        """The variable's value (checked), else the fallback; UsageError when required and neither is there."""
        value = environ.get(self.variable) or None
        if value is not None and self.check is not None:
            value = self.check(value, self.variable)
        if value is None:
            value = self.fallback
        if value is None and self.required:
            raise UsageError(self.missing or f"{self.variable} is not set")
        return value


def resolve_environment_defaults(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """Replace every FromEnvironment left in parsed arguments with its value (see FromEnvironment)."""
    given = {
        name
        for name, value in vars(args).items()
        if value is not None and (value.flag_given if isinstance(value, FromEnvironment) else True)
    }
    for name, value in list(vars(args).items()):
        if isinstance(value, FromEnvironment):
            moot = any(other in given for other in value.unless)
            setattr(args, name, None if moot else value.resolve(environ))


# ---------------------------------------------------------------- argument types


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse type: a number greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def time_scale(text: str) -> float:
    """An argparse type: a factor in (0, 1]."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be greater than 0 and at most 1, got {text}")
    return value


# ---------------------------------------------------------------- option groups


def common_options() -> Parser:
    """-v for every command."""
    parser = Parser(add_help=False)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="more on stderr: counts, and the archiving core's log lines"
    )
    return parser


def aws_options() -> Parser:
    """--profile, --region and --endpoint-url, over boto3's usual configuration, decided as aws-cli v2 does."""
    parser = Parser(add_help=False)
    group = parser.add_argument_group("AWS (as aws-cli v2 decides: each flag, else its variable, else the profile's)")
    group.add_argument(
        "--profile", metavar="NAME", help="AWS profile from ~/.aws/config (default: $AWS_PROFILE, else the default)"
    )
    group.add_argument(
        "--region",
        default=FromEnvironment("AWS_REGION"),
        metavar="REGION",
        help="AWS region (default: $AWS_REGION, else $AWS_DEFAULT_REGION, else the profile's, else the queue URL's)",
    )
    group.add_argument(
        "--endpoint-url", metavar="URL", help="AWS endpoint, e.g. a local moto server (default: $AWS_ENDPOINT_URL)"
    )
    return parser


def aws_from(args: argparse.Namespace) -> AwsOptions:
    """The AWS options of parsed arguments."""
    return AwsOptions(region=args.region, endpoint_url=args.endpoint_url, profile=args.profile)


def input_options() -> Parser:
    """Where sequence IDs come from: arguments, --file, stdin ('-'), --csv with --column."""
    parser = Parser(add_help=False)
    group = parser.add_argument_group(
        "input (sources combine; IDs are validated as the function does and deduplicated)"
    )
    group.add_argument("ids", nargs="*", metavar="ID", help="sequence IDs; '-' reads them from stdin, one per line")
    group.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="a file of IDs, one per line; blank lines and # comments are ignored; '-' is stdin (repeatable)",
    )
    group.add_argument("--csv", metavar="FILE", help="a CSV file with a header row ('-' is stdin); needs --column")
    group.add_argument("--column", metavar="NAME", help="the CSV column that holds the sequence IDs")
    return parser


def input_from(args: argparse.Namespace) -> InputSources:
    """The input sources of parsed arguments."""
    return InputSources(arguments=args.ids, files=args.file, csv_file=args.csv, csv_column=args.column)


def reply_options() -> Parser:
    """The API key, base URL and rate budget for commands that call Reply."""
    parser = Parser(add_help=False)
    group = parser.add_argument_group("Reply (the key is never printed)")
    group.add_argument(
        "--api-key-env",
        default=None,  # None: not given, so REPLY_API_KEY; an explicit one cannot go with --secret-id
        metavar="VAR",
        help=f'environment variable holding the key, bare or {{"apiKey": "..."}} (default: {DEFAULT_API_KEY_VARIABLE})',
    )
    group.add_argument(
        "--secret-id", help="read the key from this Secrets Manager secret (name or ARN; not with --api-key-env)"
    )
    group.add_argument(
        "--base-url",
        default=FromEnvironment(BASE_URL_VARIABLE, fallback=DEFAULT_BASE_URL, check=validate_base_url),
        metavar="URL",
        help="Reply API base URL; https, or http to localhost "
        f"(default: ${BASE_URL_VARIABLE}, else {DEFAULT_BASE_URL})",
    )
    group.add_argument(
        "--max-attempts",
        type=bounded_int(1, 10),
        default=function_default("reply_max_attempts"),
        metavar="N",
        help="attempts per Reply call on 429, 5xx, timeouts and dropped connections (default: %(default)s)",
    )
    group.add_argument(
        "--rate-limit-per-minute",
        type=bounded_int(0, 100_000),
        default=function_default("rate_limit_per_minute"),
        metavar="N",
        help="calls a minute this run may make with the key; 0 = no limit (default: %(default)s, Reply's limit)",
    )
    group.add_argument(
        "--rate-limit-per-hour",
        type=bounded_int(0, 1_000_000),
        default=function_default("rate_limit_per_hour"),
        metavar="N",
        help="calls an hour; 0 = no limit (default: %(default)s, Reply's limit)",
    )
    group.add_argument(
        "--rate-limit-time-scale",
        type=time_scale,
        default=function_default("rate_limit_time_scale"),
        metavar="F",
        help="shrink the minute and hour windows by F (testing against a simulator only; default: %(default)s)",
    )
    group.add_argument(
        "--budget-table",
        metavar="NAME",
        help="book every call in the deployed stack's shared rate budget table (its RateBudgetTableName output), "
        "so this run and the function's instances never exceed the key's budget together; if the table cannot "
        "be reached this run keeps to half the budget (default: this run alone, the whole budget)",
    )
    return parser


# With --budget-table: the share this run keeps to while the table cannot be reached (the template's default).
BUDGET_TABLE_FALLBACK_SHARES = 2


def rate_limiter_from(args: argparse.Namespace) -> RateLimiter:
    """The same pacing as one function instance: sliding minute and hour windows over this run's calls, or
    (--budget-table) the budget the function's instances book their calls in."""
    table = getattr(args, "budget_table", None)
    instances = BUDGET_TABLE_FALLBACK_SHARES if table else 1
    budgets = budgets_for(
        per_minute=args.rate_limit_per_minute,
        per_hour=args.rate_limit_per_hour,
        instances=instances,
        time_scale=args.rate_limit_time_scale,
    )
    if not table:
        return RateLimiter(budgets, instances=1)
    shared = SharedRateBudget.for_limits(
        dynamodb_client=dynamodb_client(aws_from(args)),
        table_name=table,
        per_minute=args.rate_limit_per_minute,
        per_hour=args.rate_limit_per_hour,
        time_scale=args.rate_limit_time_scale,
    )
    return RateLimiter(budgets, instances=instances, shared=shared)


def retry_policy_from(args: argparse.Namespace) -> RetryPolicy:
    """The function's retry policy with the command line's attempts."""
    return RetryPolicy(max_attempts=args.max_attempts)


def system_console(environ: Mapping[str, str]) -> Console:
    """The process's own streams."""
    return Console(stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr, environ=environ)
