"""Bounded AWS calls: a call, with all its retries, ends by the deadline, and every adapter keeps its contract."""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from sequence_archiver.aws.calls import call_within
from sequence_archiver.aws.dead_letters import DeadLetterQueue
from sequence_archiver.aws.idempotency import Claim, RequestIdempotency
from sequence_archiver.aws.retry_timing import MAX_VISIBILITY_SECONDS, Postponement, RecordVisibility
from sequence_archiver.aws.sqs import SqsSender
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import AwsCallTimeoutError, SequenceArchiverError

if TYPE_CHECKING:
    from collections.abc import Iterator

_request = contextvars.ContextVar[str]("request", default="none")


@pytest.fixture
def never_answers() -> Iterator[threading.Event]:
    """An event a fake call waits on; set at teardown so no test thread outlives its test for long."""
    release = threading.Event()
    yield release
    release.set()


def deadline_in(seconds: float) -> Deadline:
    return Deadline(expires_at=time.monotonic() + seconds)


def test_without_a_deadline_the_call_is_made_directly_on_this_thread() -> None:
    threads: list[threading.Thread] = []

    result = call_within(None, "PutEvents", lambda value: threads.append(threading.current_thread()) or value, 7)

    assert result == 7
    assert threads == [threading.current_thread()]


def test_a_call_that_finishes_in_time_returns_its_result() -> None:
    assert call_within(deadline_in(5), "SendMessage", lambda a, *, b: a + b, 1, b=2) == 3


def test_what_the_call_raises_reaches_the_caller_unchanged() -> None:
    class BoomError(Exception):
        pass

    def fail() -> None:
        raise BoomError

    with pytest.raises(BoomError):
        call_within(deadline_in(5), "PutItem", fail)


def test_a_call_that_never_ends_is_abandoned_when_the_time_is_up(never_answers: threading.Event) -> None:
    started = time.monotonic()

    with pytest.raises(AwsCallTimeoutError) as excinfo:
        call_within(deadline_in(0.3), "GetSecretValue", never_answers.wait)

    assert time.monotonic() - started < 0.3 + 0.3
    assert isinstance(excinfo.value, SequenceArchiverError)
    assert excinfo.value.operation == "GetSecretValue"
    assert "GetSecretValue" in str(excinfo.value)


def test_nothing_is_started_once_the_deadline_has_passed() -> None:
    calls: list[str] = []

    with pytest.raises(AwsCallTimeoutError):
        call_within(deadline_in(-1), "SendMessage", calls.append, "x")

    assert calls == []


def test_the_call_sees_the_callers_context_variables() -> None:
    token = _request.set("msg-1")
    try:
        seen = call_within(deadline_in(5), "PutEvents", _request.get)
    finally:
        _request.reset(token)

    assert seen == "msg-1"


def test_the_call_runs_on_a_daemon_thread_so_an_abandoned_one_never_holds_the_process() -> None:
    seen = call_within(deadline_in(5), "PutEvents", lambda: threading.current_thread().daemon)

    assert seen is True


# ---------------------------------------------------------------- every adapter keeps its contract when AWS hangs


class Hanging:
    """Any method call blocks until `release` is set; counts the calls."""

    def __init__(self, release: threading.Event, answer: object = None) -> None:
        self.release, self.answer, self.calls = release, answer, 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def hang(*args: Any, **kwargs: Any) -> object:
            self.calls += 1
            self.release.wait()
            return self.answer

        return hang


BOUND = 0.3  # the bound: time used <= time left + 0.3 s


def test_parking_a_record_on_a_hanging_queue_returns_false_in_time(never_answers: threading.Event) -> None:
    queue = DeadLetterQueue(
        sender=SqsSender(sqs_client=lambda: Hanging(never_answers)),  # type: ignore[arg-type,return-value]
        queue_url="https://sqs/dlq",
    )
    started = time.monotonic()

    assert queue.park(body="{}", reason="unparseable", message_id="m1", deadline=deadline_in(0.3)) is False

    assert time.monotonic() - started <= 0.3 + BOUND


def test_postponing_on_a_hanging_queue_changes_nothing_in_time(never_answers: threading.Event) -> None:
    visibility = RecordVisibility(sqs_client=lambda: Hanging(never_answers))  # type: ignore[arg-type,return-value]
    postponements = [
        Postponement("arn:aws:sqs:us-east-1:123456789012:q1", "r1", 30),
        Postponement("arn:aws:sqs:us-east-1:123456789012:q2", "r2", 30),
    ]
    started = time.monotonic()

    assert visibility.postpone(postponements, deadline_in(0.3)) == 0

    assert time.monotonic() - started <= 0.3 + BOUND


@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan, 1e308, -5.0, 0.2])
def test_hostile_postponements_never_raise(seconds: float) -> None:
    class Sqs:
        entries: ClassVar[list[dict[str, Any]]] = []

        def get_queue_url(self, **_: Any) -> dict[str, str]:
            return {"QueueUrl": "https://sqs/q"}

        def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
            Sqs.entries.extend(request["Entries"])
            return {"Successful": [{"Id": entry["Id"]} for entry in request["Entries"]], "Failed": []}

    visibility = RecordVisibility(sqs_client=Sqs)  # type: ignore[arg-type]

    changed = visibility.postpone([Postponement("arn:aws:sqs:us-east-1:123456789012:q", "r", seconds)])

    assert changed == (0 if math.isnan(seconds) else 1)
    assert all(1 <= entry["VisibilityTimeout"] <= MAX_VISIBILITY_SECONDS for entry in Sqs.entries)


def test_idempotency_on_a_hanging_table_is_unavailable_and_only_warns(never_answers: threading.Event) -> None:
    table = RequestIdempotency(Hanging(never_answers))  # type: ignore[arg-type]
    # Listen on the logger of the very module under test: handler tests re-import the package and reconfigure
    # its loggers (propagation, level), so the registry's logger of that name may not be this module's.
    module_logger: logging.Logger = RequestIdempotency.claim.__globals__["logger"]
    heard: list[logging.LogRecord] = []
    listener = logging.Handler()
    listener.emit = heard.append  # type: ignore[method-assign]
    saved = (module_logger.disabled, module_logger.level)
    module_logger.disabled, module_logger.level = False, logging.WARNING
    module_logger.addHandler(listener)
    try:
        for call in (
            lambda deadline: table.claim("m1", deadline),
            lambda deadline: table.complete("m1", {"archived": 1}, deadline),
            lambda deadline: table.release("m1", "failed", deadline),
        ):
            started = time.monotonic()
            outcome = call(deadline_in(0.3))
            assert time.monotonic() - started <= 0.3 + BOUND
            assert outcome in (Claim.UNAVAILABLE, None)
    finally:
        module_logger.removeHandler(listener)
        module_logger.disabled, module_logger.level = saved

    assert [record.levelname for record in heard] == ["WARNING"] * 3
