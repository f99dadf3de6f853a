"""One Lambda "instance" for the benchmark: a fresh interpreter that imports the real handler and feeds it
SQS events of the real shape, then writes what it measured to a JSON file.

`python -m bench.worker CONFIG.json` where the config holds: env (the function's environment), bodies
(one SQS message body per record), batch_size (records per invocation), result_path. With "bare": true
it runs the baseline instead: a plain urllib3 loop over sequence_ids against base_url.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:reply-sequence-archiver-requests"


def sqs_record(body: str) -> dict[str, Any]:
    """A record exactly as Lambda's SQS poller delivers it."""
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex * 4,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now_ms,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def bare_urllib3_loop(config: dict[str, Any]) -> None:
    """The baseline: the simplest client, one urllib3 POST per ID with the body decoded as JSON."""
    import urllib3

    http = urllib3.PoolManager()
    base_url, api_key, sequence_ids = config["base_url"], config["api_key"], config["sequence_ids"]
    started = time.process_time()
    for sequence_id in sequence_ids:
        response = http.request(
            "POST", f"{base_url}/v3/sequences/{sequence_id}/archive", headers={"Authorization": f"Bearer {api_key}"}
        )
        json.loads(response.data)
    cpu_seconds = time.process_time() - started
    Path(config["result_path"]).write_text(json.dumps({"cpu_seconds": cpu_seconds, "calls": len(sequence_ids)}))


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    if config.get("bare"):
        bare_urllib3_loop(config)
        return
    os.environ.update(config["env"])
    sys.path[:0] = [str(ROOT / "functions" / "archive_sequences"), str(ROOT)]
    from local.stand_ins.lambda_context import LocalLambdaContext

    import_started = time.perf_counter()
    import app

    import_seconds = time.perf_counter() - import_started
    bodies: list[str] = config["bodies"]
    batch_size: int = config["batch_size"]
    events = [
        {"Records": [sqs_record(body) for body in bodies[start : start + batch_size]]}
        for start in range(0, len(bodies), batch_size)
    ]
    failed_records = 0
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    sink = io.StringIO()
    for event in events:
        with contextlib.redirect_stdout(sink):  # logs and EMF: counted, not printed
            response = app.lambda_handler(event, LocalLambdaContext(timeout_seconds=config.get("timeout", 900)))
        failed_records += len(response["batchItemFailures"])
        sink.seek(0)
        sink.truncate()
    cpu_seconds, wall_seconds = time.process_time() - cpu_started, time.perf_counter() - wall_started
    Path(config["result_path"]).write_text(
        json.dumps(
            {
                "records": len(bodies),
                "failed_records": failed_records,
                "invocations": len(events),
                "cpu_seconds": cpu_seconds,
                "wall_seconds": wall_seconds,
                "import_seconds": import_seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
