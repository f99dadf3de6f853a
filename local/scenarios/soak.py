"""`make soak`: thousands of sequence IDs through the local event source under injected faults, then a ledger.

Everything runs on 127.0.0.1: a moto server, a fault proxy in front of it (the function reaches EventBridge,
Secrets Manager, SQS and DynamoDB through it), the Reply simulator (429, 5xx, slow and dropped responses,
malformed bodies, a key rotation) and the real handler, driven by local.stand_ins.event_source exactly as Lambda's SQS
poller would drive it. The queue is provisioned with a short visibility timeout (and the function with a
matching short timeout) so retries and the redrive to the dead-letter queue happen in seconds;
maxReceiveCount is the template's.

Two containment phases (local/scenarios/soak_phases.py) ride along: poison IDs (500 on every call) hidden inside
healthy multi-ID requests of the traffic, and, once the traffic has drained, one hanging or dripping endpoint
at a time (Reply's headers or body, EventBridge, Secrets Manager, SQS, DynamoDB) for a batch or two of fresh
requests. Every invocation's time used is measured against the time it had.

The ledger proves that nothing is lost: every distinct valid ID sent is archived in the simulator, or has a
final outcome in a results event, or sits in the dead-letter queue inside a message that carries it (a poison
ID must be there, and the healthy IDs of its record reported final by that record). The run is bounded (time
and batches) and stops by itself; the exit status is non-zero if an ID is lost, an outcome is wrong, a fault
kind never fired, an invocation ran past its time, the API key leaked or the queue was not drained.

The parts: soak_config (settings), soak_traffic (the messages, from the seed), soak_faults (the fault plan),
soak_phases (poison IDs, hanging endpoints, timings), soak_ledger (the accounting), soak_report (what a run
measured and the printed tables), soak_run (one run) and lambda_instance (the handler loaded as on a cold start).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import uuid
from typing import TYPE_CHECKING

from local.scenarios.lambda_instance import fresh_handler, replace_environment
from local.scenarios.soak_config import SoakConfig
from local.scenarios.soak_ledger import find_leaks
from local.scenarios.soak_phases import HANG_STEPS
from local.scenarios.soak_report import describe, print_report
from local.scenarios.soak_run import run_soak
from local.stand_ins.aws_stack import start_moto_server

if TYPE_CHECKING:
    from collections.abc import Sequence

    from local.scenarios.soak_report import SoakReport


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.scenarios.soak", description=__doc__.splitlines()[0])
    defaults = SoakConfig()
    parser.add_argument(
        "--ids", type=int, default=defaults.ids, help="distinct valid IDs to send (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the traffic and faults")
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="records per invocation; 0 = the template's"
    )
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds, help="time limit of each drain")
    parser.add_argument(
        "--runs", choices=("both", "plain", "idempotent"), default="both", help="without and/or with idempotency"
    )
    parser.add_argument(
        "--hang-batches",
        type=int,
        default=defaults.hang_batches,
        help="batches each hanging-endpoint step holds its endpoint for; 0 skips the phase (default %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak without and with idempotency, print the ledger; 1 if anything was lost or went wrong."""
    arguments = _parse_arguments(argv)
    out = sys.stdout
    modes = {"both": (False, True), "plain": (False,), "idempotent": (True,)}[arguments.runs]
    api_key = "rk_soak_KEY_" + uuid.uuid4().hex
    reports: list[SoakReport] = []
    captured_out, captured_err = io.StringIO(), io.StringIO()
    saved_environment = dict(os.environ)
    configs = [
        SoakConfig(
            ids=arguments.ids,
            seed=arguments.seed,
            batch_size=arguments.batch_size or None,
            max_seconds=arguments.max_seconds,
            idempotency=idempotent,
            hang_batches=max(1, arguments.hang_batches),
            hang_steps=HANG_STEPS if arguments.hang_batches > 0 else (),
        )
        for idempotent in modes
    ]
    print(f"reply-sequence-archiver soak: {arguments.ids} IDs, seed {arguments.seed}, runs: {arguments.runs}", file=out)
    print("\n".join(describe(configs[0])), file=out)
    with start_moto_server() as moto:
        for config in configs:
            try:
                with contextlib.redirect_stdout(captured_out), contextlib.redirect_stderr(captured_err):
                    report = run_soak(
                        config,
                        api_key=api_key,
                        moto_endpoint=moto.endpoint_url,
                        load_handler=fresh_handler,
                        apply_environment=replace_environment,
                        progress=lambda text: print(text, file=out, flush=True),
                    )
            finally:
                os.environ.clear()
                os.environ.update(saved_environment)
            reports.append(report)
            print(report.skipped or f"  [{report.label}] done in {report.wall_seconds:.1f} s", file=out)
    output_leaks = find_leaks(
        [key for report in reports for key in report.api_keys] or [api_key],
        {"function's stdout": captured_out.getvalue(), "function's stderr": captured_err.getvalue()},
    )
    log_lines = captured_out.getvalue().count("\n") + captured_err.getvalue().count("\n")
    print_report(reports, output_leaks, log_lines, out)
    problems = [*output_leaks, *(f"[{r.label}] {problem}" for r in reports for problem in r.problems)]
    for problem in problems:
        print("PROBLEM: " + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
