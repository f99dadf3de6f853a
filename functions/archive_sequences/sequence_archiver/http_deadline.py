"""A bound on a whole HTTP call, not just each socket read: a watchdog shuts the socket when time is up.

urllib3's read timeout applies to each socket read, so a server that sends one byte every few seconds
(in the headers or the body) keeps a call going for as long as it likes. Here the caller arms a watch
for the call (`CallWatchdog.watch`), the pool's connections hand their socket to the armed watch once
it exists (after the TCP connect, before the TLS handshake and before each request is sent), and one
daemon thread per process shuts that socket down if the call is still running when its time is up.
The blocked read then ends at once and urllib3 raises, as it would for a dropped connection.

Why not a thread per call: the hot path makes thousands of calls per invocation. Arming is a context
variable and a lock; the thread only wakes when a watch could expire sooner than it planned to.
DNS resolution is not covered (no socket exists yet); connect is bounded by its own timeout.
"""

from __future__ import annotations

import contextvars
import math
import socket
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class CallWatch:
    """One armed call: when it must end, the socket it is using, and whether the watchdog had to stop it."""

    __slots__ = ("_watchdog", "expires_at", "fired", "sock")

    def __init__(self, watchdog: CallWatchdog, expires_at: float) -> None:
        self._watchdog = watchdog
        self.expires_at = expires_at
        self.sock: Any = None
        self.fired = False

    def attach(self, sock: Any) -> None:
        """Watch `sock` from now on (replacing any socket watched before)."""
        self._watchdog.attach(self, sock)


_IDLE_EXIT_SECONDS = 60.0  # a thread with nothing to watch for this long ends; the next call starts one
_ACTIVE: contextvars.ContextVar[CallWatch | None] = contextvars.ContextVar("sequence_archiver_call_watch", default=None)


def current_watch() -> CallWatch | None:
    """The watch armed around the call running in this context, if any; connections attach their socket to it."""
    return _ACTIVE.get()


class CallWatchdog:
    """Shuts down the socket of any armed call that outlives its time; one lazily started thread."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._condition = threading.Condition(threading.Lock())
        self._watched: set[CallWatch] = set()
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, seconds: float) -> Iterator[CallWatch]:
        """Arm a watch for the HTTP call made inside the block; it must end within `seconds`."""
        call_watch = CallWatch(self, self._clock() + max(0.0, seconds))
        token = _ACTIVE.set(call_watch)
        try:
            yield call_watch
        finally:
            _ACTIVE.reset(token)
            if call_watch.sock is not None:
                with self._condition:
                    self._watched.discard(call_watch)
                    call_watch.sock = None

    def attach(self, call_watch: CallWatch, sock: Any) -> None:
        """Watch `sock` for `call_watch` (None: nothing); shut it at once when the call's time is already up."""
        with self._condition:
            call_watch.sock = sock
            if sock is None:
                self._watched.discard(call_watch)
                return
            if self._clock() >= call_watch.expires_at:
                self._stop(call_watch)
                return
            self._watched.add(call_watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="reply-call-watchdog", daemon=True)
                self._thread.start()
            elif call_watch.expires_at < self._wake_at:
                self._condition.notify()

    def _run(self) -> None:
        with self._condition:
            idle_since: float | None = None
            while True:
                now = self._clock()
                earliest = math.inf
                for call_watch in list(self._watched):
                    if call_watch.expires_at <= now:
                        self._stop(call_watch)
                    else:
                        earliest = min(earliest, call_watch.expires_at)
                if earliest == math.inf:
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= _IDLE_EXIT_SECONDS:
                        self._thread = None  # the next attach starts a new thread
                        return
                    earliest = idle_since + _IDLE_EXIT_SECONDS
                else:
                    idle_since = None
                self._wake_at = earliest
                self._condition.wait(earliest - now)

    def _stop(self, call_watch: CallWatch) -> None:
        """Shut the call's socket down (the lock is held): its blocked read or write returns at once."""
        call_watch.fired = True
        self._watched.discard(call_watch)
        sock, call_watch.sock = call_watch.sock, None
        try:
            # socket.socket's own shutdown, even for an SSLSocket: SSLSocket.shutdown would also drop its
            # TLS state under the feet of the thread that is reading.
            if isinstance(sock, socket.socket):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            elif sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass  # already closed: the call is over anyway


class _WatchedConnectionMixin:
    """Hands the connection's socket to the armed watch (if any) before it can block."""

    sock: Any
    _handshake_guard: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        call_watch = current_watch()
        if call_watch is not None:
            # The TLS wrapper takes over this socket's descriptor; a duplicate still reaches the connection.
            self._handshake_guard = sock.dup()
            call_watch.attach(self._handshake_guard)
        return sock

    def connect(self) -> None:
        call_watch = current_watch()
        connected = False
        try:
            super().connect()  # type: ignore[misc]
            connected = True
        finally:
            guard, self._handshake_guard = self._handshake_guard, None
            if call_watch is not None:
                call_watch.attach(self.sock if connected else None)
            if guard is not None:
                guard.close()

    def request(self, *args: Any, **kwargs: Any) -> None:
        call_watch = current_watch()
        if call_watch is not None and self.sock is not None:
            call_watch.attach(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    """An HTTP connection whose socket the armed call watch can shut down."""


class WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    """An HTTPS connection (TLS verified as usual) whose socket the armed call watch can shut down."""


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    """A pool of WatchedHTTPConnection."""

    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    """A pool of WatchedHTTPSConnection."""

    ConnectionCls = WatchedHTTPSConnection


def watched_pool_manager(**options: Any) -> urllib3.PoolManager:
    """A urllib3 PoolManager whose connections obey `CallWatchdog.watch`; options pass through to PoolManager."""
    manager = urllib3.PoolManager(**options)
    manager.pool_classes_by_scheme = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}
    return manager


PROCESS_WATCHDOG = CallWatchdog()  # one thread per process, started on the first watched socket
