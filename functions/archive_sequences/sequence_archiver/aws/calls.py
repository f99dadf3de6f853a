"""AWS calls bounded by the time left: the whole call, with every botocore retry, ends by the deadline.

botocore's timeouts apply to each socket read and each attempt, so an endpoint that never answers, or
answers one byte at a time, can hold one call for (connect + read timeout) x attempts, and a dripping
one for ever. `call_within` runs the call on a daemon thread and waits at most the time left; when that
runs out it raises AwsCallTimeoutError and leaves the thread behind: the client's own socket timeouts
end it later (in Lambda, possibly during a later invocation of the same instance, which it cannot harm:
it only holds a pooled connection and then drops its result).
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from sequence_archiver.core.exceptions import AwsCallTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sequence_archiver.core.deadline import Deadline

P = ParamSpec("P")
T = TypeVar("T")

# The least time worth starting one more attempt of our own retry loops with: a healthy PutEvents,
# SendMessage or PutItem takes tens of milliseconds.
MIN_ATTEMPT_SECONDS = 0.1


def call_within(
    deadline: Deadline | None, operation: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """`fn(*args, **kwargs)`, or AwsCallTimeoutError once `deadline` passes; with no deadline, a plain call.

    The call runs in a copy of the caller's context (contextvars), so log correlation ids and
    Powertools' appended keys follow it onto the thread.
    """
    if deadline is None:
        return fn(*args, **kwargs)
    remaining = deadline.remaining_seconds()
    if remaining <= 0:
        raise AwsCallTimeoutError(operation, 0.0)
    future: Future[T] = Future()
    context = contextvars.copy_context()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # handed to the caller, who decides
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, name=f"aws-{operation}", daemon=True).start()
    done, _ = wait_for([future], timeout=remaining)
    if not done:
        raise AwsCallTimeoutError(operation, remaining)
    return future.result()
