"""`make bench`: how close the function gets to Reply's rate-limit ceiling, and what it costs.

Everything runs here, on loopback: the Reply simulator and a moto server in this process, the function
in worker processes (one per Lambda instance, `bench/worker.py`) fed real SQS event shapes. Prints a
table and writes the figures to `build/bench/results.json` (untracked, so a run leaves the tree clean);
`--save` writes the tracked `bench/results.json` instead, the figures the docs quote. Reproduce with
`make bench` (`make bench BENCH_ARGS=--save` to update the tracked file; `--quick` for a smoke run).

Time is compressed: Reply's 100 requests a minute become 100 per `--window` seconds (2 by default),
and the simulated latency is compressed by the same factor (a 300 ms real call becomes 10 ms), so the
ratio of latency to pacing interval stays what it is in production. The hourly limit is left out of
the throughput runs (it would bind after 30 windows and measure the same pacing again).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.cold_start import measure as measure_cold_start
from bench.cold_start import measure_artifact
from local.stand_ins.aws_stack import (
    LocalStack,
    create_snapshot_bucket,
    function_environment,
    provision,
    start_moto_server,
    unique_name_prefix,
)
from local.stand_ins.reply_simulator import RateLimit, ReplySimulator

ROOT = Path(__file__).resolve().parents[1]
# The figures the docs quote, in git: only `--save` writes them.
SAVED_RESULTS_PATH = ROOT / "bench" / "results.json"
# Where every other run writes: under build/, which .gitignore leaves out.
DEFAULT_RESULTS_PATH = ROOT / "build" / "bench" / "results.json"
API_KEY = "rk_bench_" + uuid.uuid4().hex
SCOPES = frozenset({"sequences:read", "sequences:operate", "sequences:write"})
BULK_PATH = "/v3/sequences/archive"
INSTANCES = 2  # the template's SqsMaximumConcurrency default
LIMIT_PER_WINDOW = 100


def provision_bench_stack(endpoint: str, prefix: str) -> LocalStack:
    """The local stack minus the results rules: results events still go to the bus, but moto need not copy
    every one into a sink queue or a log group (which costs it far more than PutEvents costs in AWS)."""
    stack = provision(endpoint, api_key=API_KEY, name_prefix=unique_name_prefix(prefix))
    events = stack.events()
    for rule, target in ((stack.results_rule_name, "results-sink"), (stack.results_log_rule_name, "results-log-group")):
        events.remove_targets(Rule=rule, EventBusName=stack.results_bus_name, Ids=[target])
        events.delete_rule(Name=rule, EventBusName=stack.results_bus_name)
    return stack


def run_workers(
    environment: dict[str, str], bodies_per_worker: list[list[str]], batch_size: int, workdir: Path
) -> list[dict[str, Any]]:
    """Start one worker process per body list at once; wait for all; return their results."""
    processes = []
    for index, bodies in enumerate(bodies_per_worker):
        config = workdir / f"worker-{index}.json"
        result = workdir / f"result-{index}.json"
        config.write_text(
            json.dumps({"env": environment, "bodies": bodies, "batch_size": batch_size, "result_path": str(result)})
        )
        processes.append(
            (
                subprocess.Popen(
                    [sys.executable, "-m", "bench.worker", str(config)],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
                result,
            )
        )
    results = []
    for process, result in processes:
        _, stderr = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise RuntimeError(f"worker failed: {stderr[-2000:]}")
        results.append(json.loads(result.read_text()))
    return results


def split(items: list[str], parts: int) -> list[list[str]]:
    return [items[index::parts] for index in range(parts)]


def throughput_run(
    *,
    mode: str,
    ids: int,
    ids_per_message: int,
    batch_size: int,
    window: float,
    latency: float,
    endpoint: str,
    workdir: Path,
    contact_sizes: tuple[int, ...] = (),
    snapshots: bool = False,
) -> dict[str, Any]:
    """Archive `ids` sequences through INSTANCES workers against a rate-limited simulator. `contact_sizes` (cycled)
    enrols that many contacts in each sequence; `snapshots` stores each one's contacts before it is archived."""
    with ReplySimulator(
        api_keys={API_KEY: SCOPES},
        rate_limit=RateLimit(per_minute=LIMIT_PER_WINDOW, per_hour=None, minute_seconds=window),
        latency_seconds=latency,
    ) as simulator:
        first_id = 1_000_000
        simulator.add_sequences(range(first_id, first_id + ids), status="paused")
        sizes = [contact_sizes[index % len(contact_sizes)] for index in range(ids)] if contact_sizes else []
        for index, size in enumerate(sizes):
            simulator.add_contacts(first_id + index, size, start_id=1 + index * 10_000)
        stack = provision_bench_stack(endpoint, "bench")
        overrides: dict[str, str] = {}
        if snapshots:
            overrides["SNAPSHOT_BUCKET_NAME"] = unique_name_prefix("bench-snapshots")
            create_snapshot_bucket(stack, overrides["SNAPSHOT_BUCKET_NAME"])
        environment = function_environment(
            stack,
            reply_base_url=simulator.base_url,
            REPLY_ARCHIVE_MODE=mode,
            REPLY_RATE_LIMIT_PER_MINUTE=str(LIMIT_PER_WINDOW),
            REPLY_RATE_LIMIT_PER_HOUR="0",
            REPLY_RATE_LIMIT_INSTANCES=str(INSTANCES),
            REPLY_RATE_LIMIT_TIME_SCALE=str(window / 60.0),
            POWERTOOLS_LOG_LEVEL="WARNING",
            **overrides,
        )
        bodies = [
            json.dumps({"sequenceIds": list(range(start, min(start + ids_per_message, first_id + ids)))})
            for start in range(first_id, first_id + ids, ids_per_message)
        ]
        started = time.perf_counter()
        workers = run_workers(environment, split(bodies, INSTANCES), batch_size, workdir)
        wall = time.perf_counter() - started
        requests = simulator.requests
        archived = sum(1 for i in range(first_id, first_id + ids) if (s := simulator.sequence(i)) and s.is_archived)
    calls = [r for r in requests if r.path.startswith("/v3/")]
    throttled = sum(1 for r in calls if r.status == 429)
    ids_per_call = 100 if mode == "bulk" else 1
    # A sliding window lets the first LIMIT calls through at once; the steady state is what follows:
    # the calls after the LIMIT-th, over the time from the LIMIT-th call to the last.
    times = sorted(r.at for r in calls if r.status == 200)
    steady_calls = len(times) - LIMIT_PER_WINDOW
    elapsed = times[-1] - times[LIMIT_PER_WINDOW - 1] if steady_calls > 0 else 0.0
    steady_rate = steady_calls / elapsed if elapsed > 0 else float("nan")
    ceiling_calls_per_second = LIMIT_PER_WINDOW / window
    return {
        "mode": mode,
        "ids": ids,
        "archived": archived,
        "failed_records": sum(w["failed_records"] for w in workers),
        "api_calls": len(calls),
        "http_429": throttled,
        "ids_per_call": ids_per_call,
        "wall_seconds": round(wall, 1),
        "steady_calls_per_second": round(steady_rate, 2),
        "ceiling_calls_per_second": ceiling_calls_per_second,
        "ids_per_second": round(steady_rate * ids_per_call, 1),
        "ceiling_ids_per_second": ceiling_calls_per_second * ids_per_call,
        "throughput_vs_ceiling": round(steady_rate / ceiling_calls_per_second, 3),
        "contacts": sum(sizes),
        "snapshots": snapshots,
    }


# A "typical" campaign for the snapshot cost: nine sequences of 150 contacts for one of 1,500 (two pages).
SNAPSHOT_CONTACT_SIZES = (150,) * 9 + (1500,)


def snapshot_cost(*, ids: int, window: float, latency: float, endpoint: str, workdir: Path) -> dict[str, Any]:
    """The same bulk campaign with snapshots off, then on, side by side: Reply calls and wall time per 1,000
    sequences (the listing spends the archive's rate budget, so time follows calls)."""
    runs = {
        label: throughput_run(
            mode="bulk",
            ids=ids,
            ids_per_message=100,
            batch_size=100,
            window=window,
            latency=latency,
            endpoint=endpoint,
            workdir=workdir,
            contact_sizes=SNAPSHOT_CONTACT_SIZES,
            snapshots=label == "on",
        )
        for label in ("off", "on")
    }
    per_thousand = {
        label: {
            "archived": run["archived"],
            "calls_per_1000": round(run["api_calls"] / ids * 1000, 1),
            "seconds_per_1000": round(run["wall_seconds"] / ids * 1000, 1),
            # Reply's real minutes: `window` seconds of the bench stand for one.
            "reply_minutes_per_1000": round(run["wall_seconds"] / ids * 1000 / window, 1),
            "http_429": run["http_429"],
        }
        for label, run in runs.items()
    }
    return {
        "ids": ids,
        "contacts_per_sequence": "9 of 10 with 150, 1 of 10 with 1,500",
        "window_seconds": window,
        **per_thousand,
        "calls_ratio": round(per_thousand["on"]["calls_per_1000"] / per_thousand["off"]["calls_per_1000"], 1),
        "time_ratio": round(per_thousand["on"]["seconds_per_1000"] / per_thousand["off"]["seconds_per_1000"], 1),
    }


def bare_urllib3_loop(base_url: str, sequence_ids: range, workdir: Path) -> float:
    """CPU seconds per call of the simplest client, in its own process like the handler's workers."""
    config, result = workdir / "bare.json", workdir / "bare-result.json"
    config.write_text(
        json.dumps(
            {
                "bare": True,
                "base_url": base_url,
                "api_key": API_KEY,
                "sequence_ids": list(sequence_ids),
                "result_path": str(result),
            }
        )
    )
    subprocess.run([sys.executable, "-m", "bench.worker", str(config)], cwd=ROOT, check=True, timeout=600)
    measured = json.loads(result.read_text())
    return float(measured["cpu_seconds"]) / int(measured["calls"])


def cpu_per_id(endpoint: str, workdir: Path, ids: int, rounds: int) -> dict[str, Any]:
    """Handler CPU per archived ID (zero latency, no limits) against a bare urllib3 loop, side by side."""
    handler_single, handler_bulk, bare = [], [], []
    for round_index in range(rounds):
        with ReplySimulator(api_keys={API_KEY: SCOPES}, rate_limit=None) as simulator:
            base = 2_000_000 + round_index * 3 * ids
            simulator.add_sequences(range(base, base + 3 * ids), status="paused")
            bare.append(bare_urllib3_loop(simulator.base_url, range(base, base + ids), workdir))
            stack = provision_bench_stack(endpoint, "cpu")
            for mode, sink, offset in (("single", handler_single, ids), ("bulk", handler_bulk, 2 * ids)):
                environment = function_environment(
                    stack,
                    reply_base_url=simulator.base_url,
                    REPLY_ARCHIVE_MODE=mode,
                    REPLY_RATE_LIMIT_PER_MINUTE="0",
                    REPLY_RATE_LIMIT_PER_HOUR="0",
                    POWERTOOLS_LOG_LEVEL="WARNING",
                )
                bodies = [
                    json.dumps({"sequenceIds": list(range(start, start + 10))})
                    for start in range(base + offset, base + offset + ids, 10)
                ]
                [worker] = run_workers(environment, [bodies], 100, workdir)
                sink.append(worker["cpu_seconds"] / ids)
    single, bulk, baseline = (statistics.median(v) for v in (handler_single, handler_bulk, bare))
    return {
        "ids_per_round": ids,
        "rounds": rounds,
        "handler_single_cpu_us_per_id": round(single * 1e6, 1),
        "handler_bulk_cpu_us_per_id": round(bulk * 1e6, 1),
        "bare_urllib3_cpu_us_per_id": round(baseline * 1e6, 1),
        "single_ratio": round(single / baseline, 3),
        "bulk_ratio": round(bulk / baseline, 3),
    }


def memory_for_batch(endpoint: str, workdir: Path, records: int) -> dict[str, Any]:
    """Peak RSS of one worker processing one SQS batch of `records` records (bulk mode, no limits)."""
    with ReplySimulator(api_keys={API_KEY: SCOPES}, rate_limit=None) as simulator:
        base = 5_000_000
        simulator.add_sequences(range(base, base + records), status="paused")
        stack = provision_bench_stack(endpoint, "rss")
        environment = function_environment(
            stack,
            reply_base_url=simulator.base_url,
            REPLY_RATE_LIMIT_PER_MINUTE="0",
            REPLY_RATE_LIMIT_PER_HOUR="0",
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        bodies = [json.dumps({"sequenceIds": [sequence_id]}) for sequence_id in range(base, base + records)]
        [worker] = run_workers(environment, [bodies], records, workdir)
    return {
        "records": records,
        "failed_records": worker["failed_records"],
        "peak_rss_mb": round(worker["peak_rss_mb"], 1),
        "wall_seconds": round(worker["wall_seconds"], 1),
    }


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench's options; `output` is where the results go (the tracked file only with --save)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (figures not comparable)")
    parser.add_argument("--window", type=float, default=2.0, help="seconds that stand for Reply's minute")
    parser.add_argument("--real-latency-ms", type=float, default=300.0, help="Reply's latency before compression")
    parser.add_argument(
        "--only",
        choices=["cpu", "init", "memory", "snapshots"],
        help="measure one figure only (printed, not saved)",
    )
    parser.add_argument(
        "--artifact",
        type=Path,
        metavar="BUILD_DIR",
        help="also measure sam build's output as Lambda starts it, with and without bytecode (make bench: .aws-sam/build)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--save",
        action="store_true",
        help=f"write the tracked {SAVED_RESULTS_PATH.relative_to(ROOT)}, the figures the docs quote",
    )
    where.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_RESULTS_PATH,
        metavar="PATH",
        help=f"where to write the results (default: {DEFAULT_RESULTS_PATH.relative_to(ROOT)}, untracked)",
    )
    args = parser.parse_args(argv)
    if args.save and args.quick:
        parser.error("--save keeps the full run's figures; a --quick run's are not comparable")
    if args.save:
        args.output = SAVED_RESULTS_PATH
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    scale = args.window / 60.0
    latency = args.real_latency_ms / 1000.0 * scale
    sizes = (
        {"single": 600, "bulk": 30_000, "cpu": 500, "rounds": 1, "rss": 2_000, "snapshots": 200}
        if args.quick
        else {"single": 10_000, "bulk": 100_000, "cpu": 2_000, "rounds": 3, "rss": 10_000, "snapshots": 1_000}
    )
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if args.only:
        return measure_only(args.only, sizes, window=args.window, latency=latency, artifact=args.artifact)
    results: dict[str, Any] = {
        "command": "make bench" + (" (quick)" if args.quick else ""),
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "window_seconds": args.window,
        "simulated_latency_ms": round(latency * 1000, 2),
        "instances": INSTANCES,
    }
    with start_moto_server() as moto, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        endpoint = moto.endpoint_url
        results["bulk"] = throughput_run(
            mode="bulk",
            ids=sizes["bulk"],
            ids_per_message=100,
            batch_size=100,
            window=args.window,
            latency=latency,
            endpoint=endpoint,
            workdir=workdir,
        )
        print_progress("bulk", results["bulk"])
        results["single"] = throughput_run(
            mode="single",
            ids=sizes["single"],
            ids_per_message=10,
            batch_size=100,
            window=args.window,
            latency=latency,
            endpoint=endpoint,
            workdir=workdir,
        )
        print_progress("single", results["single"])
        results["snapshots"] = snapshot_cost(
            ids=sizes["snapshots"], window=args.window, latency=latency, endpoint=endpoint, workdir=workdir
        )
        results["cpu"] = cpu_per_id(endpoint, workdir, sizes["cpu"], sizes["rounds"])
        results["memory"] = memory_for_batch(endpoint, workdir, sizes["rss"])
    results["init"] = measure_cold_start(runs=11 if not args.quick else 3)
    if args.artifact is not None:
        results["init_artifact"] = measure_artifact(args.artifact, runs=11 if not args.quick else 3)
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(
        f"results written to {display_path(output)}"
        + ("" if args.save else " (BENCH_ARGS=--save updates bench/results.json)")
    )
    return 0


def display_path(path: Path) -> str:
    """The path relative to the repository when it is inside it, as the user would type it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def measure_only(
    figure: str, sizes: dict[str, int], *, window: float, latency: float, artifact: Path | None = None
) -> int:
    """One figure, printed as JSON: for working on that figure without the long throughput runs."""
    if figure == "init":
        print(json.dumps(measure_cold_start(runs=11)))
        if artifact is not None:
            print(json.dumps(measure_artifact(artifact, runs=11)))
        return 0
    with start_moto_server() as moto, tempfile.TemporaryDirectory() as tmp:
        if figure == "snapshots":
            cost = snapshot_cost(
                ids=sizes["snapshots"], window=window, latency=latency, endpoint=moto.endpoint_url, workdir=Path(tmp)
            )
            print(json.dumps(cost))
        elif figure == "cpu":
            print(json.dumps(cpu_per_id(moto.endpoint_url, Path(tmp), sizes["cpu"], sizes["rounds"])))
        else:
            print(json.dumps(memory_for_batch(moto.endpoint_url, Path(tmp), sizes["rss"])))
    return 0


def print_progress(name: str, run: dict[str, Any]) -> None:
    print(f"  {name}: {run['archived']}/{run['ids']} archived in {run['wall_seconds']} s", file=sys.stderr)


def print_table(results: dict[str, Any]) -> None:
    bulk, single, cpu, memory, init = (results[k] for k in ("bulk", "single", "cpu", "memory", "init"))
    rows = [
        (
            "bulk throughput vs ceiling",
            f"{bulk['throughput_vs_ceiling']:.1%}",
            f"{bulk['ids_per_second']} of {bulk['ceiling_ids_per_second']} IDs/s, {bulk['ids']} IDs",
            ">= 95%",
        ),
        (
            "bulk 429s / API calls",
            f"{bulk['http_429']} / {bulk['api_calls']}",
            f"{bulk['archived']} archived",
            "0 429s",
        ),
        (
            "single throughput vs ceiling",
            f"{single['throughput_vs_ceiling']:.1%}",
            f"{single['ids_per_second']} of {single['ceiling_ids_per_second']} IDs/s, {single['ids']} IDs",
            ">= 90%",
        ),
        (
            "single 429s / API calls",
            f"{single['http_429']} / {single['api_calls']}",
            f"{single['archived']} archived",
            "0 429s",
        ),
        (
            "CPU per ID, single vs bare urllib3",
            f"{cpu['single_ratio']:.2f}x",
            f"{cpu['handler_single_cpu_us_per_id']} vs {cpu['bare_urllib3_cpu_us_per_id']} us",
            "<= 2x",
        ),
        (
            "CPU per ID, bulk vs bare urllib3",
            f"{cpu['bulk_ratio']:.2f}x",
            f"{cpu['handler_bulk_cpu_us_per_id']} us",
            "",
        ),
        (
            "init vs bare boto3 (2 clients, PoolManager)",
            f"{init['bare_ratio']:.2f}x",
            f"{init['handler_init_ms']} vs {init['bare_init_ms']} ms (medians of {init['runs']})",
            "<= 1.3x",
        ),
        (
            "init vs a minimal Powertools handler",
            f"{init['powertools_ratio']:.2f}x",
            f"{init['handler_init_ms']} vs {init['powertools_init_ms']} ms",
            "<= 1.1x",
        ),
        (
            "the minimal Powertools handler vs bare boto3 (the handler's floor)",
            f"{init['powertools_bare_ratio']:.2f}x",
            f"{init['powertools_init_ms']} vs {init['bare_init_ms']} ms",
            "",
        ),
        ("peak RSS, one batch", f"{memory['peak_rss_mb']} MB", f"{memory['records']} records", "<= 250 MB"),
    ]
    artifact = results.get("init_artifact")
    if artifact:
        rows += [
            (
                "built artifact init, as Lambda starts it: sam build alone vs finished (models, bytecode)",
                f"{artifact['finish_speedup']:.2f}x",
                f"{artifact['sam_build_alone_init_ms']} vs {artifact['artifact_init_ms']} ms",
                "",
            ),
            (
                "built artifact init: botocore's models for the services called only, time saved",
                f"{artifact['models_saved_ms']} ms",
                f"{artifact['bytecode_only_init_ms']} ms with every model",
                "",
            ),
            (
                "built artifact init vs bare boto3 / a minimal Powertools handler",
                f"{artifact['bare_ratio']:.2f}x / {artifact['powertools_ratio']:.2f}x",
                f"{artifact['artifact_init_ms']} vs {artifact['bare_init_ms']} / {artifact['powertools_init_ms']} ms",
                "<= 1.3x / <= 1.1x",
            ),
            (
                "built artifact: the minimal Powertools handler vs bare boto3 (the handler's floor)",
                f"{artifact['powertools_bare_ratio']:.2f}x",
                f"{artifact['powertools_init_ms']} vs {artifact['bare_init_ms']} ms",
                "",
            ),
            (
                "built artifact init vs bare boto3 with the same slim models",
                f"{artifact['slim_bare_ratio']:.2f}x",
                f"{artifact['artifact_init_ms']} vs {artifact['bare_slim_models_init_ms']} ms",
                "",
            ),
            (
                "built artifact init, template defaults (tracing, tables, bucket) vs bare boto3",
                f"{artifact['deployed_defaults_bare_ratio']:.2f}x",
                f"{artifact['deployed_defaults_init_ms']} vs {artifact['bare_init_ms']} ms",
                "",
            ),
        ]
    snapshots = results.get("snapshots")
    if snapshots:
        off, on = snapshots["off"], snapshots["on"]
        rows.append(
            (
                "snapshots on vs off, Reply calls per 1,000 sequences",
                f"{snapshots['calls_ratio']}x",
                f"{on['calls_per_1000']} vs {off['calls_per_1000']} calls ({snapshots['contacts_per_sequence']})",
                "",
            )
        )
        rows.append(
            (
                "snapshots on vs off, time per 1,000 sequences",
                f"{snapshots['time_ratio']}x",
                f"{on['reply_minutes_per_1000']} vs {off['reply_minutes_per_1000']} min at 100 calls/min",
                "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print(
        f"window {results['window_seconds']} s = Reply's minute; latency {results['simulated_latency_ms']} ms; {results['instances']} instances"
    )
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
