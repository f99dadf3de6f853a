"""The call watchdog: a whole HTTP call ends by its time, however slowly its answer arrives."""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

import pytest

from sequence_archiver.reply import http_deadline
from sequence_archiver.reply.http_deadline import CallWatchdog, current_watch, watched_pool_manager

if TYPE_CHECKING:
    from tests.unit.conftest import FakeClock


class FakeSocket:
    """Stands in for a connection's socket (unit tests open none); records shutdown()."""

    def __init__(self) -> None:
        self.shut = threading.Event()
        self.how: int | None = None

    def shutdown(self, how: int) -> None:
        self.how = how
        self.shut.set()


def test_a_call_still_running_when_its_time_is_up_has_its_socket_shut() -> None:
    watchdog = CallWatchdog()
    sock = FakeSocket()

    with watchdog.watch(0.05) as call_watch:
        call_watch.attach(sock)
        assert sock.shut.wait(timeout=5)

    assert call_watch.fired
    assert sock.how == socket.SHUT_RDWR


def test_a_call_that_ends_in_time_is_left_alone() -> None:
    watchdog = CallWatchdog()
    sock, later = FakeSocket(), FakeSocket()

    with watchdog.watch(0.05) as call_watch:
        call_watch.attach(sock)
    with watchdog.watch(0.3) as second:  # the thread's next wake-up: the first watch has gone
        second.attach(later)
        assert later.shut.wait(timeout=5)

    assert not sock.shut.is_set()
    assert not call_watch.fired


def test_a_watchdog_with_nothing_to_watch_ends_its_thread_and_starts_another_when_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_deadline, "_IDLE_EXIT_SECONDS", 0.05)
    watchdog = CallWatchdog()
    with watchdog.watch(0.01) as call_watch:
        call_watch.attach(FakeSocket())
    first = watchdog._thread
    assert first is not None
    first.join(timeout=5)
    assert watchdog._thread is None

    sock = FakeSocket()
    with watchdog.watch(0.05) as call_watch:
        call_watch.attach(sock)
        assert sock.shut.wait(timeout=5)


def test_a_socket_attached_after_the_time_is_up_is_shut_at_once(clock: FakeClock) -> None:
    watchdog = CallWatchdog(clock=clock)
    sock = FakeSocket()

    with watchdog.watch(2.0) as call_watch:
        clock.now += 2.5
        call_watch.attach(sock)

    assert sock.shut.is_set()
    assert call_watch.fired


def test_the_watch_is_visible_only_inside_its_block() -> None:
    watchdog = CallWatchdog()
    assert current_watch() is None
    with watchdog.watch(10) as call_watch:
        assert current_watch() is call_watch
    assert current_watch() is None


def test_arming_needs_no_thread_and_many_calls_share_one() -> None:
    watchdog = CallWatchdog()
    for _ in range(100):
        with watchdog.watch(30):
            pass
    assert watchdog._thread is None  # nothing to watch yet: no thread

    threads = set()
    for _ in range(100):
        with watchdog.watch(30) as call_watch:
            call_watch.attach(FakeSocket())
        threads.add(watchdog._thread)
    assert len(threads) == 1
    assert None not in threads


def test_the_watched_pool_manager_keeps_tls_verification() -> None:
    manager = watched_pool_manager(cert_reqs="CERT_REQUIRED")
    pool = manager.connection_from_url("https://api.reply.io")
    assert pool.cert_reqs == "CERT_REQUIRED"
    assert pool.ConnectionCls.__name__ == "WatchedHTTPSConnection"
