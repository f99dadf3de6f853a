"""Invoke the *built* handler the way the Lambda runtime would, in an interpreter without site-packages.

Run as: python -S -I -B invoke_built_handler.py <function_dir> <layer_python_dir> <event.json> <result.json>
Only the standard library, the built function directory and the built layer are importable, so a
dependency missing from the layer fails here exactly as it would in Lambda. No bytecode is written (`-B`), as
none can be in Lambda's read-only code directories; every module compiled from source instead of read from the
artifact's bytecode is listed in the result (`compiledFromSource`).
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

COMPILED_FROM_SOURCE: list[str] = []


def record_compiles() -> None:
    """Note every module the import system compiles from source (it reads a valid .pyc without calling this)."""
    source_to_code = importlib.machinery.SourceFileLoader.source_to_code

    def recorded(self: importlib.machinery.SourceFileLoader, data: Any, path: Any, *, _optimize: int = -1) -> Any:
        COMPILED_FROM_SOURCE.append(str(path))
        return source_to_code(self, data, path, _optimize=_optimize)

    importlib.machinery.SourceFileLoader.source_to_code = recorded  # type: ignore[method-assign]


class RuntimeContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools use."""

    def __init__(self, timeout_seconds: float = 120.0) -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = "reply-sequence-archiver"
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:reply-sequence-archiver"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/reply-sequence-archiver"
        self.log_stream_name = "local"
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    function_dir, layer_dir, event_path, result_path = sys.argv[1:5]
    sys.path[:0] = [function_dir, layer_dir]
    record_compiles()
    import app  # the built artifact's handler module

    assert Path(app.__file__).resolve().is_relative_to(Path(function_dir).resolve()), app.__file__
    event = json.loads(Path(event_path).read_text())
    try:
        result = {"response": app.lambda_handler(event, RuntimeContext())}
    except Exception as exc:  # report the exception type to the test instead of a traceback only
        result = {"error": type(exc).__name__, "message": str(exc)}
    modules = sorted({name.split(".")[0] for name in sys.modules})
    Path(result_path).write_text(json.dumps({**result, "modules": modules, "compiledFromSource": COMPILED_FROM_SOURCE}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
