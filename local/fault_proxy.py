"""An HTTP proxy on 127.0.0.1 in front of the moto server that fails AWS calls on command.

moto never fails a PutEvents entry or a GetSecretValue call by itself. The function is pointed at this
proxy per service with boto3's standard service-specific endpoint variables (``AWS_ENDPOINT_URL_EVENTBRIDGE``
and ``AWS_ENDPOINT_URL_SECRETS_MANAGER``; botocore derives the suffix from the service ID, "EventBridge" and
"Secrets Manager"), so the production code path is unchanged. Everything is forwarded untouched except:

- PutEvents, while armed: a fraction of the entries (at least one per call) is answered with
  ``ErrorCode: InternalFailure`` and *not* forwarded, exactly as EventBridge reports a partial failure;
  entries of chosen request IDs can be failed on every call.
- GetSecretValue, while armed: answered with ThrottlingException (400) or InternalServiceError (500),
  alternately, for a number of calls or for a while.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from local.background import BackgroundService

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

PUT_EVENTS_TARGET = "AWSEvents.PutEvents"
GET_SECRET_VALUE_TARGET = "secretsmanager.GetSecretValue"  # noqa: S105 - an API operation, not a password
# Headers that describe one hop, not the message: never forwarded in either direction.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)
_SECRET_ERRORS = (
    (400, "ThrottlingException", "Rate exceeded (injected by the local fault proxy)"),
    (500, "InternalServiceError", "An error occurred on the server side (injected by the local fault proxy)"),
)
INJECTED_ERROR_CODE = "InternalFailure"


@dataclass(frozen=True)
class ProxyCounters:
    """What the proxy saw and what it broke, since it started."""

    forwarded: int
    put_events_calls: int
    put_events_entries: int
    put_events_entries_failed: int
    secret_reads: int
    secret_reads_failed: int


class _State:
    """Armed faults and counters, shared by the handler threads."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.put_fraction = 0.0
        self.put_calls_left = 0
        self.doomed_request_ids: set[str] = set()
        self.secret_failures_left = 0
        self.secret_failures_until = 0.0
        self.secret_error_cycle = itertools.cycle(_SECRET_ERRORS)
        self.forwarded = 0
        self.put_events_calls = 0
        self.put_events_entries = 0
        self.put_events_entries_failed = 0
        self.secret_reads = 0
        self.secret_reads_failed = 0


class FaultProxy(BackgroundService):
    """Forwards AWS API calls to an upstream endpoint (the moto server), failing some on command."""

    def __init__(self, upstream_url: str, *, seed: int = 0, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError("upstream_url must be a plain http://host:port URL (the local moto server)")
        self._upstream = (parts.hostname, parts.port)
        self._state = _State(seed)
        self._bind = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FaultProxy:
        """Listen on a free port (unless one was given) and serve on a daemon thread."""
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_ProxyHandler,), {"state": self._state, "upstream": self._upstream})
        server = ThreadingHTTPServer(self._bind, handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def endpoint_url(self) -> str:
        """The URL to give AWS_ENDPOINT_URL_<SERVICE> (only while running)."""
        if self._server is None:
            raise RuntimeError("the fault proxy is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # Commands

    def fail_put_events(self, *, fraction: float, calls: int) -> None:
        """Fail this fraction of the entries (at least one) of each of the next `calls` PutEvents calls."""
        if not 0.0 < fraction <= 1.0 or calls < 1:
            raise ValueError("fraction must be in (0, 1] and calls at least 1")
        with self._state.lock:
            self._state.put_fraction = fraction
            self._state.put_calls_left = calls

    def fail_results_of(self, request_ids: Iterable[str]) -> None:
        """Fail, on every call until cleared, the PutEvents entries whose detail has one of these requestIds."""
        with self._state.lock:
            self._state.doomed_request_ids.update(request_ids)

    def fail_secret_reads(self, *, times: int = 0, seconds: float = 0.0) -> None:
        """Answer the next `times` GetSecretValue calls, and every one for `seconds`, with an error."""
        if times < 0 or seconds < 0:
            raise ValueError("times and seconds must not be negative")
        with self._state.lock:
            self._state.secret_failures_left += times
            if seconds:
                self._state.secret_failures_until = max(self._state.secret_failures_until, time.monotonic() + seconds)

    def clear(self) -> None:
        """Disarm every fault (counters are kept)."""
        with self._state.lock:
            self._state.put_fraction = 0.0
            self._state.put_calls_left = 0
            self._state.doomed_request_ids.clear()
            self._state.secret_failures_left = 0
            self._state.secret_failures_until = 0.0

    def pending(self) -> dict[str, int]:
        """What is still armed: PutEvents calls to break, secret reads to fail, doomed request IDs."""
        with self._state.lock:
            return {
                "put_events_calls": self._state.put_calls_left,
                "secret_reads": self._state.secret_failures_left,
                "doomed_request_ids": len(self._state.doomed_request_ids),
            }

    @property
    def counters(self) -> ProxyCounters:
        """A snapshot of the counters."""
        state = self._state
        with state.lock:
            return ProxyCounters(
                forwarded=state.forwarded,
                put_events_calls=state.put_events_calls,
                put_events_entries=state.put_events_entries,
                put_events_entries_failed=state.put_events_entries_failed,
                secret_reads=state.secret_reads,
                secret_reads_failed=state.secret_reads_failed,
            )


def _request_id_of(entry: Any) -> str | None:
    """The requestId inside a PutEvents entry's Detail, if it is a results event."""
    try:
        detail = json.loads(entry.get("Detail", "")) if isinstance(entry, dict) else None
    except (TypeError, ValueError):
        return None
    request_id = detail.get("requestId") if isinstance(detail, dict) else None
    return request_id if isinstance(request_id, str) else None


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forwards one request upstream, or answers it with an injected failure."""

    protocol_version = "HTTP/1.1"
    state: ClassVar[_State]
    upstream: ClassVar[tuple[str, int]]

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log on stderr."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target", "")
        if target == GET_SECRET_VALUE_TARGET and self._secret_read_fails():
            return
        if target == PUT_EVENTS_TARGET:
            self._put_events(body)
            return
        status, headers, payload = self._forward(body)
        self._reply(status, headers, payload)

    def _secret_read_fails(self) -> bool:
        state = self.state
        with state.lock:
            state.secret_reads += 1
            failing = state.secret_failures_left > 0 or time.monotonic() < state.secret_failures_until
            if not failing:
                return False
            state.secret_failures_left = max(0, state.secret_failures_left - 1)
            state.secret_reads_failed += 1
            status, error_type, message = next(state.secret_error_cycle)
        logger.info("fault proxy failed a secret read", extra={"status": status, "error": error_type})
        payload = json.dumps({"__type": error_type, "message": message}).encode()
        self._reply(status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", error_type)], payload)
        return True

    def _put_events(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            entries = list(request["Entries"])
        except (ValueError, KeyError, TypeError):
            status, headers, payload = self._forward(body)  # let the upstream answer a malformed call
            self._reply(status, headers, payload)
            return
        failing = self._choose_failures(entries)
        kept = [entry for index, entry in enumerate(entries) if index not in failing]
        upstream_entries: list[Any] = []
        upstream_failed = 0
        status, headers = 200, [("Content-Type", "application/x-amz-json-1.1")]
        if kept:
            status, headers, payload = self._forward(json.dumps({**request, "Entries": kept}).encode())
            if status != 200:
                self._reply(status, headers, payload)  # a real error of the upstream: pass it on as is
                return
            answer = json.loads(payload)
            upstream_entries = list(answer.get("Entries", []))
            upstream_failed = int(answer.get("FailedEntryCount", 0))
        results = iter(upstream_entries)
        merged = [
            {"ErrorCode": INJECTED_ERROR_CODE, "ErrorMessage": "Injected by the local fault proxy"}
            if index in failing
            else next(results, {"ErrorCode": INJECTED_ERROR_CODE, "ErrorMessage": "No upstream result"})
            for index in range(len(entries))
        ]
        response = {"FailedEntryCount": upstream_failed + len(failing), "Entries": merged}
        headers = [(name, value) for name, value in headers if name.lower() != "content-type"]
        self._reply(200, [*headers, ("Content-Type", "application/x-amz-json-1.1")], json.dumps(response).encode())

    def _choose_failures(self, entries: list[Any]) -> set[int]:
        """Indices of the entries to fail in this call, and the counters updated."""
        state = self.state
        with state.lock:
            state.put_events_calls += 1
            state.put_events_entries += len(entries)
            failing = {
                index for index, entry in enumerate(entries) if _request_id_of(entry) in state.doomed_request_ids
            }
            if state.put_calls_left > 0 and entries:
                state.put_calls_left -= 1
                count = max(1, round(len(entries) * state.put_fraction))
                failing.update(state.rng.sample(range(len(entries)), count))
            state.put_events_entries_failed += len(failing)
        return failing

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream unchanged (except hop-by-hop headers); return status, headers, body."""
        with self.state.lock:
            self.state.forwarded += 1
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {
                name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP | {"host"}
            }
            headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            # send_response() writes its own Server and Date headers.
            dropped = _HOP_BY_HOP | {"server", "date"}
            kept = [(name, value) for name, value in response.getheaders() if name.lower() not in dropped]
            return response.status, kept, payload
        finally:
            connection.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
