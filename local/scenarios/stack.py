"""`make stack`: the local stack for running a campaign by hand, until Ctrl-C.

A Reply simulator seeded with sample sequences, a moto server with the template's resources (request queue
and DLQ, API key secret, results bus, its rule and the results log group) and the real handler attached to
the queue through the local event source mapping. It prints the `export` lines a second terminal needs for
`sequence-archiver select | enqueue` and `report`, then a line on stderr for every batch the function
handles and every results event it publishes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import shlex
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from botocore.exceptions import BotoCoreError, ClientError

from local.scenarios.lambda_instance import put_function_on_path, replace_environment
from local.stand_ins.aws_stack import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    UNSET_FUNCTION_VARIABLES,
    LocalStackError,
    QueueSettings,
    function_environment,
    provision,
    queue_settings_from_template,
    read_results_log,
    start_moto_server,
)
from local.stand_ins.event_source import EventSourceMapping, EventSourcePoller, event_source_settings_from_template
from sequence_archiver.core.results_contract import RESULTS_DETAIL_TYPE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import FrameType, ModuleType

    from local.stand_ins.aws_stack import LocalStack, LoggedEvent
    from local.stand_ins.event_source import BatchOutcome
    from local.stand_ins.lambda_context import LocalLambdaContext
    from local.stand_ins.reply_simulator import ReplySimulator

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_REPLY_PORT = 8080
DEFAULT_MOTO_PORT = 5000
DEFAULT_SEED_COUNT = 100
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 60
DEFAULT_NAME_PREFIX = "local"
FIRST_GENERATED_ID = 1001
COUNT_KEYS = ("archived", "already_archived", "not_found", "forbidden", "conflict", "invalid", "failed")
READY_LINE = "# ready: Ctrl-C in the stack's terminal stops it"
# Variables pasted with `unset`: a profile or session token would mix real credentials in, and
# AWS_IGNORE_CONFIGURED_ENDPOINT_URLS would send the CLI's calls past AWS_ENDPOINT_URL to real AWS.
_SHELL_UNSET = tuple(name for name in UNSET_FUNCTION_VARIABLES if name.startswith("AWS_"))
# Every ten generated sequences: six paused, two new, one active (archiving it is a 409), and one paused
# but already archived (`select` leaves it out unless --include-archived).
_GENERATED_PATTERN = ("paused",) * 6 + ("new", "new", "active", "archived")


class PortUnavailableError(LocalStackError):
    """A server of the stack could not listen on the port it was given (taken by another process, or refused)."""

    def __init__(self, server: str, option: str, port: int, reason: str) -> None:
        self.server, self.option, self.port = server, option, port
        super().__init__(
            f"the {server} ({option} {port}): {reason}. Free port {port}, or choose another: {option} N, "
            f"or {option} 0 for any free one (make stack STACK_ARGS='{option} 0')"
        )


@contextlib.contextmanager
def _listening_on(server: str, option: str, port: int) -> Iterator[None]:
    """Turn a failure to listen while `server` starts into a PortUnavailableError naming the port and option."""
    try:
        yield
    except OSError as exc:
        reason = f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
        raise PortUnavailableError(server, option, port, reason) from exc
    except LocalStackError as exc:  # the moto server checks its port first: "cannot listen on 127.0.0.1:5000: ..."
        raise PortUnavailableError(server, option, port, str(exc)) from exc


class _Discard(io.TextIOBase):
    """A text stream that drops what is written: the function's log lines unless --function-logs."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


def seed_generated(simulator: ReplySimulator, count: int) -> None:
    """Add `count` sequences from id 1001 on, of mixed state, to the simulator's default sample."""
    by_state: dict[str, list[int]] = {}
    for offset in range(count):
        state = _GENERATED_PATTERN[offset % len(_GENERATED_PATTERN)]
        by_state.setdefault(state, []).append(FIRST_GENERATED_ID + offset)
    for state, ids in by_state.items():
        if state == "archived":
            simulator.add_sequences(ids, status="paused", is_archived=True)
        else:
            simulator.add_sequences(ids, status=state)


def export_lines(stack: LocalStack, *, reply_base_url: str, api_key: str) -> list[str]:
    """The shell lines that point the AWS SDK and the CLI at this stack, with the names the campaign uses."""
    exports = {
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "AWS_REGION": stack.region,
        "AWS_DEFAULT_REGION": stack.region,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "REPLY_API_KEY": api_key,  # the simulator's key, not a real one; the CLI's default --api-key-env
        "REPLY_BASE_URL": reply_base_url,  # for --base-url
        "QUEUE_URL": stack.queue_url,
        "DLQ_URL": stack.dead_letter_queue_url,
        "RESULTS_LOG_GROUP": stack.results_log_group_name,
        "RESULTS_SINK_QUEUE_URL": stack.results_sink_queue_url,
    }
    return ["unset " + " ".join(_SHELL_UNSET)] + [
        f"export {name}={shlex.quote(value)}" for name, value in exports.items()
    ]


def hint_lines() -> list[str]:
    """What to try once the exports are pasted, as shell comments (pasting them is harmless)."""
    return [
        "# try:",
        '#   sequence-archiver select --base-url "$REPLY_BASE_URL" --status paused '
        '| sequence-archiver enqueue --queue-url "$QUEUE_URL" -',
        '#   sequence-archiver report --log-group "$RESULTS_LOG_GROUP"',
    ]


def describe_counts(counts: dict[str, Any]) -> str:
    """`18 archived, 2 conflict`: the outcomes a results event counts, zeros left out."""
    parts = [f"{counts[key]} {key.replace('_', ' ')}" for key in COUNT_KEYS if counts.get(key)]
    return ", ".join(parts) or "no IDs"


def describe_event(envelope: dict[str, Any]) -> str:
    """One line for an event the function published, as the stack prints it."""
    found = envelope.get("detail")
    detail: dict[str, Any] = found if isinstance(found, dict) else {}
    detail_type = envelope.get("detail-type")
    request_id = detail.get("requestId")
    if detail_type != RESULTS_DETAIL_TYPE:
        return f"{detail_type} event" + (f" for request {request_id}" if request_id else "")
    found_counts = detail.get("counts")
    counts: dict[str, Any] = found_counts if isinstance(found_counts, dict) else {}
    if detail.get("complete"):
        state = "complete"
    elif detail.get("deferredIds"):
        state = f"{len(detail['deferredIds'])} ID(s) carried on to a continuation"
    else:
        state = "incomplete: the failed IDs will be retried"
    part = f", part {detail['part']} of {detail['parts']}" if detail.get("parts") else ""
    return f"results for request {request_id}{part}: {describe_counts(counts)} ({state})"


def describe_batch(number: int, outcome: BatchOutcome, visibility_timeout_seconds: int) -> str:
    """One line for a batch the event source mapping handed the function."""
    head = f"batch {number + 1}: {outcome.records} message(s) in {outcome.seconds:.2f} s"
    if outcome.whole_batch_failed:
        reason = outcome.handler_error or outcome.invalid_response or "the invocation timed out"
        return f"{head}, FAILED ({reason}); all of them come back in {visibility_timeout_seconds} s"
    retried = len(outcome.failed_message_ids)
    tail = f", {retried} left for a retry in {visibility_timeout_seconds} s" if retried else ""
    return f"{head}, {outcome.deleted} deleted from the queue{tail}"


@dataclass
class Watcher:
    """Prints a line per batch and one per new event in the results log group, on stderr."""

    stack: LocalStack
    stream: TextIO
    visibility_timeout_seconds: int
    _since_ms: int | None = field(default=None, init=False)
    _seen_at_since: set[tuple[str, str]] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def after_batch(self, number: int, outcome: BatchOutcome) -> None:
        """Report the batch, then whatever it published (PutEvents reaches the log group before it returns)."""
        self.say(describe_batch(number, outcome, self.visibility_timeout_seconds))
        try:
            events = self.new_events()
        except (BotoCoreError, ClientError) as exc:  # the poller goes on; only this batch's lines are missing
            self.say(f"  could not read the results log group: {type(exc).__name__}")
            return
        for event in events:
            self.say("  " + describe_event(event.envelope))

    def new_events(self) -> list[LoggedEvent]:
        """Events the log group received since the last call."""
        events = read_results_log(self.stack, start_time_ms=self._since_ms)
        fresh = [event for event in events if (event.log_stream_name, event.event_id) not in self._seen_at_since]
        if events:
            latest = max(event.timestamp_ms for event in events)
            if latest != self._since_ms:
                self._seen_at_since = set()
            self._since_ms = latest
            # StartTime is inclusive: remember what sits at the boundary so it is not printed twice.
            self._seen_at_since |= {(e.log_stream_name, e.event_id) for e in events if e.timestamp_ms == latest}
        return fresh

    def say(self, line: str) -> None:
        """A line on the stack's stderr."""
        with self._lock:
            self.stream.write(f"stack: {line}\n")
            self.stream.flush()


def _load_handler(function_output: TextIO) -> Callable[[dict[str, Any], LocalLambdaContext], Any]:
    """Import app (its cold start) and wrap its handler so everything the function prints goes to function_output."""
    put_function_on_path()
    with contextlib.redirect_stdout(function_output):  # Powertools' Logger binds to stdout as it is now
        app: ModuleType = importlib.import_module("app")

    def invoke(event: dict[str, Any], context: LocalLambdaContext) -> Any:
        # Metrics print their EMF line at the end of an invocation; the exports stay alone on stdout.
        with contextlib.redirect_stdout(function_output):
            return app.lambda_handler(event, context)

    return invoke


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.scenarios.stack",
        description="Run the Reply simulator, a moto server with the template's resources and the function on "
        "the request queue, print the exports a second terminal needs, and wait for Ctrl-C.",
        epilog="Everything listens on 127.0.0.1. Port 0 picks a free port.",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_REPLY_PORT, help="the Reply simulator's port (default: %(default)s)"
    )
    parser.add_argument(
        "--moto-port", type=int, default=DEFAULT_MOTO_PORT, help="the moto server's port (default: %(default)s)"
    )
    parser.add_argument(
        "--seed-count",
        type=int,
        default=DEFAULT_SEED_COUNT,
        metavar="N",
        help="sequences to add from id 1001 on to the simulator's sample (101-702): six in ten paused, "
        "two new, one active, one already archived (default: %(default)s)",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="the request queue's visibility timeout, and the function's timeout when shorter than the "
        "template's: a failed message comes back this soon (default: %(default)s; the template's 2100 s "
        "would keep it away for 35 minutes)",
    )
    parser.add_argument(
        "--batching-window",
        type=float,
        metavar="SECONDS",
        help="how long the event source gathers messages into a batch (default: the template's "
        "MaximumBatchingWindowInSeconds)",
    )
    parser.add_argument(
        "--name-prefix",
        default=DEFAULT_NAME_PREFIX,
        help="prefix of the resource names, the stack name in the log group's (default: %(default)s)",
    )
    parser.add_argument(
        "--function-logs",
        action="store_true",
        help="also show the function's own output (Powertools JSON log lines, EMF metrics) on stderr",
    )
    options = parser.parse_args(argv)
    for name in ("port", "moto_port"):
        if not 0 <= getattr(options, name) <= 65535:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 65535")
    if options.seed_count < 0:
        parser.error("--seed-count must not be negative")
    if options.batching_window is not None and not 0 <= options.batching_window <= 300:
        parser.error("--batching-window must be between 0 and 300 seconds")
    if options.visibility_timeout < 1:
        parser.error("--visibility-timeout must be at least 1 second")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Bring the stack up, print its exports, serve until SIGINT or SIGTERM, then shut it down; 0 on a clean stop."""
    from local.stand_ins.reply_simulator import ReplySimulator
    from local.stand_ins.reply_simulator.models import ALL_SCOPES, DEFAULT_API_KEY

    options = _parse_arguments(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    function_output: TextIO = sys.stderr if options.function_logs else cast("TextIO", _Discard())
    api_key = DEFAULT_API_KEY
    serving = False
    try:
        with contextlib.ExitStack() as running:
            with _listening_on("Reply simulator", "--port", options.port):
                simulator = running.enter_context(
                    ReplySimulator(api_keys={api_key: ALL_SCOPES}, seed=True, port=options.port)
                )
            seed_generated(simulator, options.seed_count)
            with _listening_on("moto server", "--moto-port", options.moto_port):
                moto = running.enter_context(start_moto_server(port=options.moto_port))
            template = queue_settings_from_template()
            visibility = options.visibility_timeout
            stack = provision(
                moto.endpoint_url,
                api_key=api_key,
                name_prefix=options.name_prefix,
                queue_settings=QueueSettings(
                    visibility, template.max_receive_count, f"--visibility-timeout; {template.source}"
                ),
            )
            replace_environment(function_environment(stack, reply_base_url=simulator.base_url))
            handler = _load_handler(function_output)
            function_timeout = min(event_source_settings_from_template().function_timeout_seconds, visibility)
            mapping = EventSourceMapping(
                stack,
                handler,
                function_timeout_seconds=function_timeout,
                batching_window_seconds=options.batching_window,
            )
            watcher = Watcher(stack, sys.stderr, visibility)
            poller = running.enter_context(EventSourcePoller(mapping, after_batch=watcher.after_batch))
            print(
                "# reply-sequence-archiver local stack: paste these lines into another terminal",
                *export_lines(stack, reply_base_url=simulator.base_url, api_key=api_key),
                *hint_lines(),
                READY_LINE,
                sep="\n",
                flush=True,
            )
            watcher.say(
                f"Reply simulator {simulator.base_url} ({len(simulator.sequences())} sequences), moto "
                f"{moto.endpoint_url}; the function polls {stack.queue_url.rsplit('/', 1)[-1]} (batches of "
                f"{mapping.batch_size} within {mapping.batching_window_seconds:g} s, timeout {function_timeout:g} s, "
                f"visibility {visibility} s)"
            )
            serving = True
            while not stop.wait(0.5):
                if not poller.running:  # its thread died: the queue is no longer served, so say so and stop
                    watcher.say("the event source mapping stopped unexpectedly (see above); stopping")
                    return 1
            watcher.say("stopping")
    except (OSError, LocalStackError, ValueError) as exc:  # a taken port, a bad --name-prefix
        print(f"stack: {'stopped on an error' if serving else 'cannot start'}: {exc}", file=sys.stderr)
        return 1
    print(
        f"stack: stopped ({poller.totals.batches} batch(es), {poller.totals.records} message(s) handled); bye",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
