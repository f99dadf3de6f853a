"""A bound on a whole HTTP call, not just each socket read: a watchdog shuts the socket when time is up.

urllib3's read timeout applies to each socket read, so a server that sends one byte every few seconds
(in the headers or the body) keeps a call going for as long as it likes. Here the caller arms a watch
for the call (`CallWatchdog.watch`), the pool's connections hand their socket to the armed watch once
it exists (after the TCP connect, before the TLS handshake and before each request is sent), and one
daemon thread per process shuts that socket down if the call is still running when its time is up.
The blocked read then ends at once and urllib3 raises, as it would for a dropped connection.

Why not a thread per call: the hot path makes thousands of calls per invocation. Arming is a context
variable and a lock; the thread only wakes when a watch could expire sooner than it planned to.

Name resolution has no socket to shut, and `getaddrinfo` cannot be interrupted: with resolvers that never
answer, glibc waits 5 s per attempt, twice per nameserver. So a connection resolves its host through a
`BoundedResolver`: the lookup runs on a daemon thread that the connection waits for only as long as its
connect timeout and the armed watch allow; then it raises a connect timeout and leaves the thread to finish
on its own. Answers are cached for a short time and callers of a lookup already running share it, so a
black-hole resolver costs one thread per host name, not one per attempt. The connection then connects to
the resolved address; the Host header and the TLS server name are still the host name.
"""

from __future__ import annotations

import contextvars
import ipaddress
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, LocationParseError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

if TYPE_CHECKING:
    from collections.abc import Iterator

AddressInfo: TypeAlias = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
"""One answer of socket.getaddrinfo: family, socket type, protocol, canonical name, socket address."""
Lookup: TypeAlias = Callable[[str, int, int, int], Sequence[AddressInfo]]
"""socket.getaddrinfo's shape: (host, port, family, socket type) to its answers."""

DNS_CACHE_SECONDS = 30.0  # getaddrinfo reports no TTL: an answer is reused this long, short enough to follow moves
DNS_CACHE_ENTRIES = 32  # the function talks to one host; the bound keeps a long-lived CLI process small too


class _PendingLookup:
    """One getaddrinfo call running on its own thread; every caller that needs the same name waits for it."""

    __slots__ = ("answer", "done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: list[AddressInfo] = []
        self.error: Exception | None = None


class BoundedResolver:
    """getaddrinfo that a caller waits for only so long, with a small cache of recent answers.

    The lookup itself cannot be interrupted, so it runs on a daemon thread; a caller whose time is up gets a
    TimeoutError and the thread finishes on its own, its answer cached for the next caller. At most one
    thread runs per name, however many callers give up on it.
    """

    def __init__(
        self,
        *,
        lookup: Lookup = socket.getaddrinfo,
        clock: Callable[[], float] = time.monotonic,
        cache_seconds: float = DNS_CACHE_SECONDS,
        max_entries: int = DNS_CACHE_ENTRIES,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int, int], tuple[float, list[AddressInfo]]] = {}  # oldest first
        self._pending: dict[tuple[str, int, int], _PendingLookup] = {}

    def resolve(self, host: str, port: int, family: int, seconds: float | None) -> list[AddressInfo]:
        """TCP addresses of `host`, waiting at most `seconds` (None: as long as the lookup takes).

        Raises TimeoutError when the answer is not there in time, and what getaddrinfo raised otherwise
        (socket.gaierror for a name that does not resolve). IP literals and localhost need no DNS: they
        are looked up in the caller's thread, uncached.
        """
        if _needs_no_dns(host):
            return list(self._lookup(host, port, family, socket.SOCK_STREAM))
        key = (host, port, family)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and self._clock() < cached[0]:
                return cached[1]
            pending = self._pending.get(key)
            if pending is None:
                pending = _PendingLookup()
                thread = threading.Thread(target=self._run, args=(key, pending), name="reply-dns-lookup", daemon=True)
                try:
                    thread.start()
                except RuntimeError as exc:  # no thread to be had: a failed connection, not a crash
                    raise OSError("could not start a name lookup") from exc
                self._pending[key] = pending
        if not pending.done.wait(None if seconds is None else max(0.0, seconds)):
            raise TimeoutError(f"name resolution took longer than {seconds:.2f}s")
        if pending.error is not None:
            raise pending.error
        return pending.answer

    def _run(self, key: tuple[str, int, int], pending: _PendingLookup) -> None:
        host, port, family = key
        try:
            pending.answer = list(self._lookup(host, port, family, socket.SOCK_STREAM))
        except Exception as exc:  # whatever it is, the callers waiting for the answer get it
            pending.error = exc
        with self._lock:
            del self._pending[key]
            if pending.error is None:
                self._cache.pop(key, None)
                while len(self._cache) >= self._max_entries:
                    del self._cache[next(iter(self._cache))]
                self._cache[key] = (self._clock() + self._cache_seconds, pending.answer)
        pending.done.set()


def _needs_no_dns(host: str) -> bool:
    """True for IP literals and localhost, which getaddrinfo answers from the text itself or /etc/hosts."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


PROCESS_RESOLVER = BoundedResolver()  # one cache per process, shared by every watched connection


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

    def seconds_left(self) -> float:
        """Seconds until the call must have ended (never negative)."""
        return max(0.0, self.expires_at - self._watchdog._clock())

    @property
    def resolver(self) -> BoundedResolver:
        """The resolver this call's connection looks its host up with, within `seconds_left`."""
        return self._watchdog.resolver


_IDLE_EXIT_SECONDS = 60.0  # a thread with nothing to watch for this long ends; the next call starts one
_ACTIVE: contextvars.ContextVar[CallWatch | None] = contextvars.ContextVar("sequence_archiver_call_watch", default=None)


def current_watch() -> CallWatch | None:
    """The watch armed around the call running in this context, if any; connections attach their socket to it."""
    return _ACTIVE.get()


class CallWatchdog:
    """Shuts down the socket of any armed call that outlives its time; one lazily started thread."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, resolver: BoundedResolver | None = None) -> None:
        self._clock = clock
        self.resolver = resolver or PROCESS_RESOLVER
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
        call_watch = current_watch()
        sock = _open_socket(self, call_watch)  # type: ignore[arg-type]
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


def _open_socket(conn: HTTPConnection, call_watch: CallWatch | None) -> socket.socket:
    """urllib3's HTTPConnection._new_conn, but the host name is resolved within the time the connection has.

    That time is the connect timeout, within what the armed watch has left: resolving and connecting
    share it. The same urllib3 errors are raised as for any connection, a resolution that takes too long
    being a connect timeout.
    """
    limits = [call_watch.seconds_left()] if call_watch is not None else []
    if isinstance(conn.timeout, int | float):
        limits.append(conn.timeout)
    ends_at = time.monotonic() + min(limits) if limits else None
    resolver = call_watch.resolver if call_watch is not None else PROCESS_RESOLVER
    host = conn._dns_host.strip("[]")  # the name as given, never the Host header's or TLS's concern
    try:
        addresses = resolver.resolve(host, conn.port, allowed_gai_family(), _seconds_until(ends_at))
        sock = _connect_first(conn, addresses, ends_at)
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. ({exc})") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    return sock


def _connect_first(conn: HTTPConnection, addresses: list[AddressInfo], ends_at: float | None) -> socket.socket:
    """A socket connected to the first address that accepts, each try bounded by the time still left."""
    error: OSError = OSError("getaddrinfo returned no address")
    for address in addresses:
        seconds = _seconds_until(ends_at)
        if seconds is not None and seconds <= 0:
            raise TimeoutError("no time left to connect")
        try:
            # urllib3's own socket set-up (options, source address); the literal address needs no lookup.
            return create_connection(
                address[4][:2],
                conn.timeout if seconds is None else seconds,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except OSError as exc:
            error = exc
    raise error


def _seconds_until(ends_at: float | None) -> float | None:
    """Seconds from now until `ends_at` (never negative); None when nothing bounds the connection."""
    return None if ends_at is None else max(0.0, ends_at - time.monotonic())


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
