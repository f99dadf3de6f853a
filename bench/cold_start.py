"""Cold-start cost in fresh interpreters: the handler's init against two baselines, measured side by side.

`python -m bench.cold_start [runs] [--compare-with DIR]` prints one JSON object. Each run starts three new
interpreters, one per probe, in an order that rotates from run to run so machine noise (and any advantage of
going first) hits all three alike; the ratios, each the median of the rounds' own ratios, are what count (issue 21):

- `handler`: `import app` (settings, Powertools, the handler) and what the first invocation builds, the
  service with its clients (`build_service(load_settings(os.environ), Metrics())`);
- `bare`: `import boto3`, a Secrets Manager client, an EventBridge client and a urllib3 PoolManager, the
  least any function doing this job creates;
- `powertools`: an equivalent minimal Powertools handler: Logger, Metrics (no Tracer: ours is not built
  when tracing is off, and even a disabled one imports the X-Ray SDK), parameters' SecretsProvider with a
  boto3 Secrets Manager client, an EventBridge client, a urllib3 PoolManager and a pydantic settings model
  validated from the environment, the handler decorated as Powertools' documentation shows.

`--compare-with` adds a fourth probe in the same rotation: the handler of another copy of the function's
directory (say `git archive <commit> functions | tar -x -C /tmp/before`, then
`--compare-with /tmp/before/functions/archive_sequences`), so a change is measured against what it changed.

`--artifact BUILD_DIR` measures what is deployed instead: `sam build`'s own output (`make bench` makes one in
build/bench/sam-build), started as Lambda starts it, in interpreters that see only the standard library, the
function's folder and the layer, and that cannot write bytecode (Lambda's code directories are read-only). Its
handler is timed in one rotation as `sam build` alone ships it, as tools/finish_build.py finishes it (botocore's
models for the services it calls only, then bytecode: what `make build` and `make deploy` ship), with bytecode
alone, and finished under the template's default environment (tracing on, the tables, the bucket, the queues),
beside the bare and Powertools baselines started from a copy with bytecode and every model (as on Lambda's own
boto3) and the bare one from the finished copy too. `make bench` reports both measurements.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tools.finish_build import keep_called_models
from tools.precompile import code_dirs, precompile, template_runtime

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
FUNCTION_DIR = ROOT / "functions" / "archive_sequences"
PROBES = ("handler", "bare", "powertools")

_PROBE = '''
import sys, time
sys.path[:0] = sys.argv[2:]  # the function's directory (and, for a built artifact, its layer) first, as in Lambda
started = time.perf_counter()
if sys.argv[1] == "handler":
    import os
    import app  # the cold start: settings, Powertools, the handler; then what the first invocation builds
    from aws_lambda_powertools import Metrics
    from sequence_archiver.settings import load_settings
    from sequence_archiver.wiring import build_service
    build_service(load_settings(os.environ), Metrics())
elif sys.argv[1] == "bare":
    import boto3
    import urllib3
    boto3.client("secretsmanager")
    boto3.client("events")
    urllib3.PoolManager()
else:
    import os
    import boto3
    import urllib3
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from pydantic import BaseModel, ConfigDict, Field

    class Settings(BaseModel):
        """What the function reads from its environment."""
        model_config = ConfigDict(frozen=True, extra="ignore")
        secret_id: str = Field(alias="REPLY_API_KEY_SECRET_ID", min_length=1)
        base_url: str = Field(default="https://api.reply.io", alias="REPLY_API_BASE_URL")
        event_bus_name: str = Field(default="default", alias="RESULTS_EVENT_BUS_NAME", min_length=1)
        max_attempts: int = Field(default=4, ge=1, le=10, alias="REPLY_MAX_ATTEMPTS")
        read_timeout_seconds: float = Field(default=10.0, gt=0, le=900, alias="REPLY_READ_TIMEOUT_SECONDS")

    settings = Settings.model_validate(dict(os.environ))
    logger = Logger(service="baseline")
    metrics = Metrics(namespace="Baseline", service="baseline")
    secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    events = boto3.client("events")
    http = urllib3.PoolManager()

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def lambda_handler(event, context):
        return {"ok": True}
print(time.perf_counter() - started)
'''

_ENV = {
    "REPLY_API_KEY_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:reply-api-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as template.yaml sets it (every probe gets it alike)
}


# What the template's defaults add to a deployed function's environment (template.yaml, ArchiveSequencesFunction):
# Lambda's own variables (tracing is on: `Tracing: Active`, and Powertools traces inside Lambda), the idempotency
# and rate budget tables, the snapshot bucket, the dead-letter and archive queues. The values are placeholders:
# nothing is called during init.
DEPLOYED_DEFAULTS_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "reply-sequence-archiver",
    "IDEMPOTENCY_TABLE_NAME": "reply-sequence-archiver-idempotency",
    "RATE_BUDGET_TABLE_NAME": "reply-sequence-archiver-rate-budget",
    "SNAPSHOT_BUCKET_NAME": "reply-sequence-archiver-snapshots",
    "SNAPSHOT_POLICY": "required",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/reply-sequence-archiver-dlq",
    "ARCHIVE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/reply-sequence-archiver-requests",
}


def measure_once(
    kind: str,
    python: str = sys.executable,
    function_dir: Path = FUNCTION_DIR,
    layer_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> float:
    """Seconds one fresh interpreter needs for `kind` (one of PROBES), importing the function from `function_dir`.

    With `layer_dir` (a built artifact's layer), the interpreter is isolated as Lambda's is: no site-packages, no
    environment paths, and no bytecode written (`-I -S -B`; /var/task and /opt are read-only), so a module the
    artifact ships no bytecode for is compiled from source on every start, as it is in Lambda.
    """
    if kind not in PROBES:
        raise ValueError(f"unknown probe {kind!r}: one of {', '.join(PROBES)}")
    env = {"PATH": os.environ.get("PATH", ""), **_ENV, **(extra_env or {})}
    if "LAMBDA_TASK_ROOT" in env:
        del env["POWERTOOLS_TRACE_DISABLED"]  # as deployed: tracing on
    isolation = ["-I", "-S", "-B"] if layer_dir is not None else []
    paths = [str(function_dir)] + ([str(layer_dir)] if layer_dir is not None else [])
    completed = subprocess.run(
        [python, *isolation, "-c", _PROBE, kind, *paths],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def rotated_rounds(probes: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Each probe's times over `runs` rounds, in round order, the order within a round rotating from round to round
    (so machine noise, and any advantage of going first, hits every probe alike)."""
    names = list(probes)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(runs):
        for offset in range(len(names)):
            name = names[(round_index + offset) % len(names)]
            samples[name].append(probes[name]())
    return samples


def paired_ratio(samples: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """The median over rounds of one probe's time over another's in the same round, to three places.

    A round's probes run back to back, so a slow stretch of a shared machine, which can last for several rounds,
    weighs on both sides of each round's ratio; a ratio of the two medians can take its sides from different
    stretches (on 2026-12-08 four runs of 21 rounds put the artifact between 1.35x and 1.54x bare that way).
    """
    ratios = [top / bottom for top, bottom in zip(samples[numerator], samples[denominator], strict=True)]
    return round(statistics.median(ratios), 3)


def medians_ms(samples: dict[str, list[float]]) -> dict[str, float]:
    """Each probe's median time in milliseconds, to a tenth."""
    return {name: round(statistics.median(values) * 1000, 1) for name, values in samples.items()}


def measure(runs: int = 11, compare_with: Path | None = None) -> dict[str, float]:
    """Medians of `runs` rounds of the probes (the order rotating each round) and the handler's ratios."""
    probes: dict[str, Callable[[], float]] = {kind: functools.partial(measure_once, kind) for kind in PROBES}
    if compare_with is not None:
        probes["compared"] = functools.partial(measure_once, "handler", function_dir=compare_with)
    samples = rotated_rounds(probes, runs)
    ms = medians_ms(samples)
    result = {
        "runs": runs,
        "handler_init_ms": ms["handler"],
        "bare_init_ms": ms["bare"],
        "powertools_init_ms": ms["powertools"],
        "bare_ratio": paired_ratio(samples, "handler", "bare"),
        "powertools_ratio": paired_ratio(samples, "handler", "powertools"),
        "powertools_bare_ratio": paired_ratio(samples, "powertools", "bare"),  # the floor: all of it is in the handler
    }
    if compare_with is not None:
        result |= {
            "compared_init_ms": ms["compared"],
            "compared_bare_ratio": paired_ratio(samples, "compared", "bare"),
            "compared_powertools_ratio": paired_ratio(samples, "compared", "powertools"),
        }
    return result


def measure_artifact(build_dir: Path, runs: int = 11) -> dict[str, float]:
    """The built artifact as Lambda starts it: medians of `runs` rotated rounds, as `sam build` and `make build` ship it.

    `build_dir` is `sam build`'s own output, not yet finished by tools/finish_build.py (`make bench` makes one). It
    is copied three times, without any `__pycache__`: as it is (what `sam build` alone ships), finished (botocore's
    models for the services the function calls only, then bytecode: what `make build` and `make deploy` ship), and
    given bytecode alone (every model kept). Every probe runs isolated as in Lambda (`measure_once` with a layer):
    the handler from each copy, and from the finished copy under the template's defaults too (DEPLOYED_DEFAULTS_ENV:
    tracing, the tables, the bucket, the queues), what an operator's deployment starts with. The bare and Powertools
    baselines start from the copy with bytecode and every model, as a function on Lambda's own (precompiled,
    complete) boto3 would; the bare baseline also from the finished copy, the floor with the same slim models.
    """
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        copies = {}
        for name in ("sam_build", "finished", "bytecode_only"):
            copies[name] = Path(scratch) / name
            shutil.copytree(build_dir, copies[name], ignore=shutil.ignore_patterns("__pycache__"))
        if not any(layer.removed for layer in keep_called_models(copies["finished"])):
            raise ValueError(f"{build_dir} was finished already (botocore's models trimmed): give sam build's output")
        for name in ("finished", "bytecode_only"):
            precompile(copies[name], template_runtime())
        function_dir = {name: _function_dir(copy) for name, copy in copies.items()}
        layer_dir = {
            name: next(path for path in code_dirs(copy) if path.name == "python") for name, copy in copies.items()
        }

        def probe(kind: str, copy: str, extra_env: dict[str, str] | None = None) -> Callable[[], float]:
            return functools.partial(
                measure_once, kind, function_dir=function_dir[copy], layer_dir=layer_dir[copy], extra_env=extra_env
            )

        samples = rotated_rounds(
            {
                "finished": probe("handler", "finished"),
                "sam_build": probe("handler", "sam_build"),
                "bytecode_only": probe("handler", "bytecode_only"),
                "deployed": probe("handler", "finished", DEPLOYED_DEFAULTS_ENV),
                "bare": probe("bare", "bytecode_only"),
                "powertools": probe("powertools", "bytecode_only"),
                "bare_slim": probe("bare", "finished"),
            },
            runs,
        )
    ms = medians_ms(samples)
    saved = [full - finished for full, finished in zip(samples["bytecode_only"], samples["finished"], strict=True)]
    return {
        "runs": runs,
        "artifact_init_ms": ms["finished"],
        "sam_build_alone_init_ms": ms["sam_build"],
        "bytecode_only_init_ms": ms["bytecode_only"],
        "deployed_defaults_init_ms": ms["deployed"],
        "bare_init_ms": ms["bare"],
        "powertools_init_ms": ms["powertools"],
        "bare_slim_models_init_ms": ms["bare_slim"],
        "finish_speedup": paired_ratio(samples, "sam_build", "finished"),
        "models_saved_ms": round(statistics.median(saved) * 1000, 1),  # within each round, then the median
        "bare_ratio": paired_ratio(samples, "finished", "bare"),
        "powertools_ratio": paired_ratio(samples, "finished", "powertools"),
        "powertools_bare_ratio": paired_ratio(samples, "powertools", "bare"),
        "slim_bare_ratio": paired_ratio(samples, "finished", "bare_slim"),
        "sam_build_alone_bare_ratio": paired_ratio(samples, "sam_build", "bare"),
        "deployed_defaults_bare_ratio": paired_ratio(samples, "deployed", "bare"),
    }


def _function_dir(build_dir: Path) -> Path:
    """The built function's directory in `build_dir`: the one holding app.py."""
    [app] = build_dir.glob("*/app.py")
    return app.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=11, help="rounds of the probes (default 11)")
    parser.add_argument(
        "--compare-with", type=Path, metavar="DIR", help="another copy of functions/archive_sequences to measure too"
    )
    parser.add_argument(
        "--artifact",
        type=Path,
        metavar="BUILD_DIR",
        help="measure sam build's output (say .aws-sam/build) as Lambda starts it, with and without bytecode",
    )
    args = parser.parse_args(argv)
    if args.artifact is not None:
        print(json.dumps(measure_artifact(args.artifact, args.runs)))
    else:
        print(json.dumps(measure(args.runs, compare_with=args.compare_with)))


if __name__ == "__main__":
    main()
