"""The shared rate budget against Reply's ceiling: 1, 2 and 10 busy instances, with the table and without.

`python -m bench.shared_budget [--instances 1,2,10] [--ids 400] [--limit 60] [--window 10] [--runs 1]` prints
one JSON object (and a table). Every instance is a worker process running the real handler on SQS events
(bench/worker.py); all share one Reply simulator that allows `--limit` calls per `--window` seconds to the
key, and one moto server. Each run archives `--ids` IDs in single mode (one call per ID), split evenly
between the instances, started together:

- `shared`: RATE_BUDGET_TABLE_NAME set (the template's default), DynamoDB reached through a counting proxy;
- `static`: no table, each instance keeps to its share (the budget / REPLY_RATE_LIMIT_INSTANCES).

REPLY_RATE_LIMIT_INSTANCES is max(2, instances) in both: what the template sets (SqsMaximumConcurrency, at
least 2) for that many concurrent instances. Against a window limit `limit` calls may go at once, then
`limit` more a window later, and so on: the ideal time from the first call to the last is
floor((calls - 1) / limit) windows. `vs_ideal` = ideal / (last call - first call). Also reported: 429s, and DynamoDB calls per Reply call (what the table costs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import API_KEY, SCOPES, provision_bench_stack, run_workers, split
from local.stand_ins.aws_stack import create_rate_budget_table, function_environment, start_moto_server
from local.stand_ins.fault_proxy import FaultProxy
from local.stand_ins.reply_simulator import RateLimit, ReplySimulator

FIRST_ID = 3_000_000
IDS_PER_MESSAGE = 10
BATCH_SIZE = 10  # records per invocation: 100 IDs an invocation


def one_run(
    *,
    instances: int,
    shared: bool,
    ids: int,
    limit: int,
    window: float,
    endpoint: str,
    workdir: Path,
    fixed_windows: bool = False,
) -> dict[str, Any]:
    """Archive `ids` IDs with `instances` workers; what Reply saw and what the table was asked."""
    with (
        ReplySimulator(
            api_keys={API_KEY: SCOPES},
            rate_limit=RateLimit(per_minute=limit, per_hour=None, minute_seconds=window, fixed_windows=fixed_windows),
            latency_seconds=0.005,
        ) as simulator,
        FaultProxy(endpoint) as table_proxy,
    ):
        simulator.add_sequences(range(FIRST_ID, FIRST_ID + ids), status="paused")
        stack = provision_bench_stack(endpoint, "budget")
        environment = function_environment(
            stack,
            reply_base_url=simulator.base_url,
            REPLY_ARCHIVE_MODE="single",
            REPLY_RATE_LIMIT_PER_MINUTE=str(limit),
            REPLY_RATE_LIMIT_PER_HOUR="0",
            REPLY_RATE_LIMIT_INSTANCES=str(max(2, instances)),
            REPLY_RATE_LIMIT_TIME_SCALE=str(window / 60.0),
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        if shared:
            table = stack.queue_url.rsplit("/", 1)[-1] + "-rate-budget"
            create_rate_budget_table(stack, table)
            environment["RATE_BUDGET_TABLE_NAME"] = table
            environment.update(table_proxy.endpoint_variables(["dynamodb"]))
        bodies = [
            json.dumps({"sequenceIds": list(range(start, min(start + IDS_PER_MESSAGE, FIRST_ID + ids)))})
            for start in range(FIRST_ID, FIRST_ID + ids, IDS_PER_MESSAGE)
        ]
        workers = run_workers(environment, split(bodies, instances), BATCH_SIZE, workdir)
        calls = [request for request in simulator.requests if request.path.startswith("/v3/")]
        table_calls = table_proxy.counters.forwarded
        archived = sum(
            1 for i in range(FIRST_ID, FIRST_ID + ids) if (sequence := simulator.sequence(i)) and sequence.is_archived
        )
    accepted = sorted(request.at for request in calls if request.status == 200)
    ideal = ((len(accepted) - 1) // limit) * window  # the last call's earliest moment: bursts a window apart
    elapsed = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    return {
        "instances": instances,
        "budget": "shared" if shared else "static",
        "ids": ids,
        "archived": archived,
        "failed_records": sum(worker["failed_records"] for worker in workers),
        "reply_calls": len(calls),
        "http_429": sum(1 for request in calls if request.status == 429),
        "ideal_seconds": round(ideal, 2),
        "seconds": round(elapsed, 2),
        "vs_ideal": round(ideal / elapsed, 3) if elapsed > 0 else None,
        "table_calls_per_reply_call": round(table_calls / len(calls), 2) if shared and calls else None,
        "calls_per_window": _calls_per_window(accepted, window),
    }


def _calls_per_window(accepted: list[float], window: float) -> list[int]:
    """Accepted calls in each window from the first: where the time went."""
    if not accepted:
        return []
    counts = [0] * (int((accepted[-1] - accepted[0]) / window) + 1)
    for moment in accepted:
        counts[int((moment - accepted[0]) / window)] += 1
    return counts


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.shared_budget", description=__doc__.splitlines()[0])
    parser.add_argument("--instances", default="1,2,10", help="comma-separated instance counts (default 1,2,10)")
    parser.add_argument("--ids", type=int, default=400, help="IDs per run (default 400)")
    parser.add_argument("--limit", type=int, default=60, help="calls Reply allows per window (default 60)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of Reply's 'minute' (default 10)")
    parser.add_argument(
        "--fixed-windows", action="store_true", help="Reply's windows fixed on the clock (default: sliding)"
    )
    parser.add_argument("--runs", type=int, default=1, help="runs of each case; medians are reported (default 1)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    counts = [int(part) for part in arguments.instances.split(",") if part.strip()]
    server = start_moto_server()
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as directory:
            for instances in counts:
                for shared in (True, False):  # side by side: the same machine load for both
                    runs = []
                    for _ in range(arguments.runs):
                        runs.append(
                            one_run(
                                instances=instances,
                                shared=shared,
                                ids=arguments.ids,
                                limit=arguments.limit,
                                window=arguments.window,
                                endpoint=server.endpoint_url,
                                workdir=Path(directory),
                                fixed_windows=arguments.fixed_windows,
                            )
                        )
                    result = dict(runs[-1])
                    ratios = [run["vs_ideal"] for run in runs if run["vs_ideal"] is not None]
                    result["vs_ideal"] = round(statistics.median(ratios), 3) if ratios else None
                    result["runs"] = arguments.runs
                    result["http_429"] = sum(run["http_429"] for run in runs)
                    results.append(result)
                    print(json.dumps(result), file=sys.stderr)
    finally:
        server.stop()
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "limit": arguments.limit,
        "window_seconds": arguments.window,
        "windows": "fixed" if arguments.fixed_windows else "sliding",
        "results": results,
    }
    print(json.dumps(report, indent=2))
    if arguments.output:
        arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
