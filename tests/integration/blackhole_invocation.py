"""One invocation of the real handler, run by test_dns_deadline.py inside a mount namespace with black-hole DNS.

Usage: python -m tests.integration.blackhole_invocation SPEC_JSON OUTPUT_JSON. The spec holds the function's
environment, the event and the invocation's time; the output gets the response, the seconds used and the
seconds the invocation had. (The handler prints its logs to stdout, so the answer goes to a file.)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from local.scenarios.lambda_instance import fresh_handler, replace_environment
from local.stand_ins.lambda_context import LocalLambdaContext


def main(spec_path: str, output_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    replace_environment(spec["environment"])
    handler = fresh_handler()  # the cold start's imports happen before the invocation's clock starts
    context = LocalLambdaContext(timeout_seconds=spec["timeout_seconds"])
    had = context.get_remaining_time_in_millis() / 1000.0
    started = time.monotonic()
    response = handler.lambda_handler(spec["event"], context)
    used = time.monotonic() - started
    Path(output_path).write_text(json.dumps({"response": response, "used": used, "had": had}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
