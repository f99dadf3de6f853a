"""Run the Reply simulator until Ctrl-C: `python -m local.stand_ins.reply_simulator --port 8080`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING

from local.stand_ins.reply_simulator import rules
from local.stand_ins.reply_simulator.api import UNAUTHORIZED_BODIES
from local.stand_ins.reply_simulator.assumptions import Assumptions
from local.stand_ins.reply_simulator.models import (
    ALL_SCOPES,
    DEFAULT_API_KEY,
    DEFAULT_RATE_LIMIT,
    RateLimit,
    SimulatedSequence,
)
from local.stand_ins.reply_simulator.simulator import ReplySimulator
from local.stand_ins.reply_simulator.store import DEFAULT_SEED, SeedGroup, make_sequence

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType


def parse_rate_limit(text: str) -> RateLimit | None:
    """Parse `--rate-limit`: `REQUESTS/SECONDS` for the short window (e.g. 100/60), or `none`."""
    if text.strip().lower() in ("none", "off", "unlimited"):
        return None
    requests_text, separator, seconds_text = text.partition("/")
    try:
        per_window = int(requests_text)
        seconds = float(seconds_text) if separator else DEFAULT_RATE_LIMIT.minute_seconds
        return RateLimit(per_minute=per_window, minute_seconds=seconds)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected REQUESTS/SECONDS such as 100/60, or none") from exc


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m local.stand_ins.reply_simulator",
        description="Serve a local Reply API v3 simulator (sequence operations) until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept this key with every scope (repeatable; default " + DEFAULT_API_KEY + ")",
    )
    parser.add_argument(
        "--rate-limit",
        type=parse_rate_limit,
        default=DEFAULT_RATE_LIMIT,
        metavar="N/SECONDS",
        help="per-user requests per short window (default 100/60; the hourly 3000 stays), or none",
    )
    parser.add_argument(
        "--master-key",
        metavar="KEY",
        help="workspace 1's Master API key (every scope): acts as user 1, its owner, or as the user an"
        " X-User-Id or X-User-Email header names (user 1 or 2)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API response")
    parser.add_argument("--rate-limit-headers", action="store_true", help="send x-rate-limit-* headers like live Reply")
    parser.add_argument("--bulk-max-ids", type=int, default=100, help="bulk archive size limit")
    parser.add_argument(
        "--unauthorized-body",
        choices=UNAUTHORIZED_BODIES,
        default="empty",
        help="body of a 401: empty as the spec says (default), or the problem+json seen live",
    )
    parser.add_argument(
        "--spec-only",
        action="store_true",
        help="answer only with codes Reply's spec documents: every code assumption off (see assumptions.py)",
    )
    parser.add_argument(
        "--no-assume",
        action="append",
        default=[],
        choices=Assumptions.names(),
        metavar="NAME",
        help="switch one assumption off (repeatable): " + ", ".join(Assumptions.names()),
    )
    return parser


def assumptions_from(options: argparse.Namespace) -> Assumptions:
    """The assumptions the options ask for: all on, all off (--spec-only), or some switched off."""
    base = Assumptions.spec_only() if options.spec_only else Assumptions()
    return base.updated(dict.fromkeys(options.no_assume, False))


def seed_table(assumptions: Assumptions) -> list[str]:
    """One line per seed group: its ids, its state and what archiving one answers under these assumptions."""
    lines = []
    for group in DEFAULT_SEED:
        id_range = str(group.first_id)
        if group.last_id != group.first_id:
            id_range += "-" + str(group.last_id)
        lines.append(id_range.ljust(9) + group.label.ljust(22) + archive_answer(group, assumptions))
    return lines


def archive_answer(group: SeedGroup, assumptions: Assumptions) -> str:
    """What archiving a sequence of this seed group answers under these assumptions, e.g. `archive 200`."""
    sequence = make_sequence(
        group.first_id,
        status=group.status,
        is_archived=group.is_archived,
        owner_user_id=group.owner_user_id,
        sales_agent=group.sales_agent,
        team_member_removed=group.team_member_removed,
    )
    result = rules.archive(sequence, group.first_id, assumptions)
    if isinstance(result, SimulatedSequence):
        return "archive 200"
    return "archive " + str(result.status) + " " + (result.code or "(no code)")


def main(argv: Sequence[str] | None = None) -> int:
    """Start the simulator, print where it listens and what is seeded, and wait for Ctrl-C."""
    parser = build_parser()
    options = parser.parse_args(argv)
    keys = options.api_keys or [DEFAULT_API_KEY]
    try:
        simulator = ReplySimulator(
            api_keys=dict.fromkeys(keys, ALL_SCOPES),
            rate_limit=options.rate_limit,
            rate_limit_headers=options.rate_limit_headers,
            latency_seconds=options.latency,
            bulk_max_ids=options.bulk_max_ids,
            unauthorized_body=options.unauthorized_body,
            assumptions=assumptions_from(options),
            host=options.host,
            port=options.port,
        )
        if options.master_key is not None:
            simulator.set_master_key(options.master_key)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    simulator.start()
    try:
        print("Reply simulator listening on " + simulator.base_url, flush=True)
        if options.api_keys:
            print(str(len(keys)) + " API key(s) accepted, each with every scope")
        else:
            print("API key: " + DEFAULT_API_KEY + " (every scope)")
        if options.master_key is not None:
            print("Master API key accepted (every scope): X-User-Id 1 or 2, or X-User-Email user1@example.com")
        print("Seeded sequences (every user key belongs to user 1, the workspace owner; 501-505 are user 2's):")
        for line in seed_table(simulator.settings.assumptions):
            print("  " + line)
        print("  any other id: archive 404 sequenceAction.notFound")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
