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
- Any call to a stalled service (EventBridge, Secrets Manager, SQS, DynamoDB; optionally only some
  operations): `hang` accepts it and never answers; `drip` forwards it and sends the answer back one byte
  every N seconds, so a per-read socket timeout never fires. Both hold the call until `clear()` or
  `stop()`, which close its connection unanswered. Point the function at the proxy with
  ``AWS_ENDPOINT_URL_EVENTBRIDGE``, ``AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``AWS_ENDPOINT_URL_SQS`` and
  ``AWS_ENDPOINT_URL_DYNAMODB`` (`endpoint_variables()` gives them all).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import logging
import random
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from local.stand_ins.background import BackgroundService

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

# The services the function calls, by SigV4 signing name (the credential scope of the Authorization header),
# and the variable that points each at an endpoint (botocore derives the suffix from the service ID).
SERVICE_ENDPOINT_VARIABLES = {
    "events": "AWS_ENDPOINT_URL_EVENTBRIDGE",
    "secretsmanager": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "sqs": "AWS_ENDPOINT_URL_SQS",
    "dynamodb": "AWS_ENDPOINT_URL_DYNAMODB",
}
StallMode = Literal["hang", "drip"]
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")


@dataclass(frozen=True)
class _Stall:
    """How calls to one service are held: never answered, or answered one byte per interval."""

    mode: StallMode
    interval_seconds: float
    operations: frozenset[str] | None  # None: every operation of the service


@dataclass(frozen=True)
class ProxyCounters:
    """What the proxy saw and what it broke, since it started."""

    forwarded: int
    put_events_calls: int
    put_events_entries: int
    put_events_entries_failed: int
    secret_reads: int
    secret_reads_failed: int
    stalled_calls: int = 0


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
        self.stalls: dict[str, _Stall] = {}
        self.stalled_calls = 0
        # Stalled calls end when the generation moves on (clear() or stop()); waiters are woken through it.
        self.generation = 0
        self.changed = threading.Condition(self.lock)


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
        self._release_stalled()
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

    def endpoint_variables(self, services: Iterable[str] = SERVICE_ENDPOINT_VARIABLES) -> dict[str, str]:
        """AWS_ENDPOINT_URL_<SERVICE> for each service (signing names), all pointing at this proxy."""
        return {SERVICE_ENDPOINT_VARIABLES[_known_service(name)]: self.endpoint_url for name in services}

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

    def hang(self, service: str, *, operations: Iterable[str] | None = None) -> None:
        """Accept every call to `service` ("events", "secretsmanager", "sqs", "dynamodb") and never answer it."""
        self._stall(service, _Stall("hang", 0.0, _operations(operations)))

    def drip(self, service: str, *, interval_seconds: float = 1.0, operations: Iterable[str] | None = None) -> None:
        """Forward every call to `service` and send the answer back one byte every `interval_seconds`."""
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._stall(service, _Stall("drip", interval_seconds, _operations(operations)))

    def _stall(self, service: str, stall: _Stall) -> None:
        with self._state.lock:
            self._state.stalls[_known_service(service)] = stall

    def _release_stalled(self) -> None:
        with self._state.lock:
            self._state.stalls.clear()
            self._state.generation += 1
            self._state.changed.notify_all()

    def clear(self) -> None:
        """Disarm every fault and end the calls held by `hang` or `drip` unanswered (counters are kept)."""
        with self._state.lock:
            self._state.put_fraction = 0.0
            self._state.put_calls_left = 0
            self._state.doomed_request_ids.clear()
            self._state.secret_failures_left = 0
            self._state.secret_failures_until = 0.0
        self._release_stalled()

    def pending(self) -> dict[str, int]:
        """What is still armed: PutEvents calls to break, secret reads to fail, doomed request IDs, stalls."""
        with self._state.lock:
            return {
                "put_events_calls": self._state.put_calls_left,
                "secret_reads": self._state.secret_failures_left,
                "doomed_request_ids": len(self._state.doomed_request_ids),
                "stalled_services": len(self._state.stalls),
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
                stalled_calls=state.stalled_calls,
            )


def _known_service(service: str) -> str:
    if service not in SERVICE_ENDPOINT_VARIABLES:
        raise ValueError(f"service must be one of {sorted(SERVICE_ENDPOINT_VARIABLES)}")
    return service


def _operations(operations: Iterable[str] | None) -> frozenset[str] | None:
    return None if operations is None else frozenset(operations)


def _operation_of(target: str, body: bytes) -> str:
    """The API operation of a call: from X-Amz-Target (JSON protocols) or the Action form field (query)."""
    if target:
        return target.rpartition(".")[2]
    for field in body.split(b"&"):
        name, _, value = field.partition(b"=")
        if name == b"Action":
            return value.decode("ascii", errors="replace")
    return ""


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
        stall = self._stall_for(target, body)
        if stall is not None:
            self._stalled(stall, body)
            return
        if target == GET_SECRET_VALUE_TARGET and self._secret_read_fails():
            return
        if target == PUT_EVENTS_TARGET:
            self._put_events(body)
            return
        status, headers, payload = self._forward(body)
        self._reply(status, headers, payload)

    def _stall_for(self, target: str, body: bytes) -> tuple[_Stall, int] | None:
        """The stall that applies to this call, and the generation it belongs to; None to handle it normally."""
        match = _CREDENTIAL_SCOPE.search(self.headers.get("Authorization", ""))
        service = match.group(1) if match else None
        state = self.state
        with state.lock:
            stall = state.stalls.get(service or "")
            if stall is None:
                return None
            if stall.operations is not None and _operation_of(target, body) not in stall.operations:
                return None
            state.stalled_calls += 1
            return stall, state.generation

    def _stalled(self, held: tuple[_Stall, int], body: bytes) -> None:
        """Hold the call as the stall says until released; then close the connection unanswered."""
        stall, generation = held
        self.close_connection = True
        if stall.mode == "hang":
            self._wait_for_release(generation, timeout=None)
            self._drop_connection()
            return
        status, headers, payload = self._forward(body)
        answer = self._raw_answer(status, headers, payload)
        for index in range(len(answer)):
            try:
                self.wfile.write(answer[index : index + 1])
                self.wfile.flush()
            except OSError:
                return  # the client gave up
            if self._wait_for_release(generation, timeout=stall.interval_seconds):
                self._drop_connection()
                return

    def _wait_for_release(self, generation: int, *, timeout: float | None) -> bool:
        """Wait until clear() or stop() (True) or the timeout (False)."""
        state = self.state
        with state.lock:
            return state.changed.wait_for(lambda: state.generation != generation, timeout=timeout)

    def _drop_connection(self) -> None:
        with contextlib.suppress(OSError):  # the client may be gone already
            self.connection.shutdown(socket.SHUT_RDWR)

    def _raw_answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> bytes:
        """The whole HTTP answer as bytes: status line, headers, body."""
        lines = [f"{self.protocol_version} {status} {http.client.responses.get(status, '')}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines += [f"Content-Length: {len(payload)}", "Connection: close", "", ""]
        return "\r\n".join(lines).encode("latin-1") + payload

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
