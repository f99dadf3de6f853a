"""Name resolution within the attempt's time: a lookup that hangs costs the caller its time limit, no more."""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

import pytest
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError

from sequence_archiver.reply.http_deadline import (
    AddressInfo,
    BoundedResolver,
    CallWatchdog,
    WatchedHTTPConnection,
    WatchedHTTPSConnection,
)

if TYPE_CHECKING:
    from tests.unit.conftest import FakeClock

ADDRESS: AddressInfo = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.10", 443))


class ScriptedLookup:
    """Stands in for socket.getaddrinfo: answers ADDRESS (or raises), optionally only once released."""

    def __init__(self, *, hang: bool = False, error: OSError | None = None) -> None:
        self.released = threading.Event()
        if not hang:
            self.released.set()
        self.error = error
        self.calls: list[str] = []
        self.threads: list[threading.Thread] = []
        self.finished = threading.Event()

    def __call__(self, host: str, port: int, family: int, kind: int) -> list[AddressInfo]:
        self.calls.append(host)
        self.threads.append(threading.current_thread())
        try:
            assert self.released.wait(timeout=10), "the test never released the lookup"
            if self.error is not None:
                raise self.error
            return [ADDRESS]
        finally:
            self.finished.set()


def test_a_lookup_that_hangs_costs_the_caller_its_time_limit_and_its_answer_serves_the_next_caller() -> None:
    lookup = ScriptedLookup(hang=True)
    resolver = BoundedResolver(lookup=lookup)

    with pytest.raises(TimeoutError):
        resolver.resolve("api.reply.test", 443, socket.AF_UNSPEC, 0.05)

    # The abandoned lookup finishes on its own thread; its answer is kept.
    lookup.released.set()
    assert lookup.finished.wait(timeout=5)
    assert resolver.resolve("api.reply.test", 443, socket.AF_UNSPEC, 0.05) == [ADDRESS]
    assert lookup.calls == ["api.reply.test"]
    assert lookup.threads[0] is not threading.current_thread()


def test_callers_of_a_name_whose_lookup_still_runs_share_it_instead_of_starting_threads() -> None:
    lookup = ScriptedLookup(hang=True)
    resolver = BoundedResolver(lookup=lookup)

    for _ in range(5):
        with pytest.raises(TimeoutError):
            resolver.resolve("api.reply.test", 443, socket.AF_UNSPEC, 0.01)

    assert lookup.calls == ["api.reply.test"]
    lookup.released.set()


def test_an_answer_is_reused_until_its_time_is_up(clock: FakeClock) -> None:
    lookup = ScriptedLookup()
    resolver = BoundedResolver(lookup=lookup, clock=clock, cache_seconds=30.0)

    resolver.resolve("api.reply.test", 443, socket.AF_UNSPEC, 1.0)
    clock.now += 29.0
    resolver.resolve("api.reply.test", 443, socket.AF_UNSPEC, 1.0)
    assert lookup.calls == ["api.reply.test"]

    clock.now += 1.0
    resolver.resolve("api.reply.test", 443, socket.AF_UNSPEC, 1.0)
    assert lookup.calls == ["api.reply.test", "api.reply.test"]


def test_the_cache_keeps_only_the_most_recent_answers() -> None:
    lookup = ScriptedLookup()
    resolver = BoundedResolver(lookup=lookup, max_entries=2)

    for host in ("a.reply.test", "b.reply.test", "c.reply.test", "c.reply.test", "a.reply.test"):
        resolver.resolve(host, 443, socket.AF_UNSPEC, 1.0)

    assert lookup.calls == ["a.reply.test", "b.reply.test", "c.reply.test", "a.reply.test"]


def test_a_name_that_does_not_resolve_is_reported_and_asked_again_next_time() -> None:
    lookup = ScriptedLookup(error=socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    resolver = BoundedResolver(lookup=lookup)

    for _ in range(2):
        with pytest.raises(socket.gaierror):
            resolver.resolve("gone.reply.test", 443, socket.AF_UNSPEC, 1.0)

    assert lookup.calls == ["gone.reply.test", "gone.reply.test"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "192.0.2.10", "localhost"])
def test_ip_literals_and_localhost_are_looked_up_in_the_callers_thread_without_dns(host: str) -> None:
    lookup = ScriptedLookup()
    resolver = BoundedResolver(lookup=lookup)

    resolver.resolve(host, 443, socket.AF_UNSPEC, 1.0)
    resolver.resolve(host, 443, socket.AF_UNSPEC, 1.0)

    assert lookup.threads == [threading.current_thread()] * 2  # no thread, no cache: nothing can hang here


@pytest.mark.parametrize("connection_class", [WatchedHTTPConnection, WatchedHTTPSConnection])
def test_a_connection_whose_name_never_resolves_times_out_within_the_watch(
    connection_class: type[WatchedHTTPConnection],
) -> None:
    lookup = ScriptedLookup(hang=True)
    watchdog = CallWatchdog(resolver=BoundedResolver(lookup=lookup))
    connection = connection_class("api.reply.test", 443, timeout=30.0)

    # The connect timeout (30 s) would allow much longer; the watch's 0.05 s is what the attempt has.
    with watchdog.watch(0.05), pytest.raises(ConnectTimeoutError):
        connection.connect()

    assert connection.host == "api.reply.test"  # the name the Host header and TLS use is untouched
    assert lookup.calls == ["api.reply.test"]
    lookup.released.set()


def test_a_connection_whose_name_does_not_exist_raises_urllib3s_name_resolution_error() -> None:
    lookup = ScriptedLookup(error=socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    watchdog = CallWatchdog(resolver=BoundedResolver(lookup=lookup))
    connection = WatchedHTTPSConnection("gone.reply.test", 443, timeout=3.0)

    with watchdog.watch(1.0), pytest.raises(NameResolutionError):
        connection.connect()
