"""Archiving a step at a time, so every ID's outcome is known (and can be printed) as soon as it is final.

A step is what the function's core does in one go anyway: one bulk call's chunk (with its bisection and the
pause-first retries of its conflicts), or one ID on the single endpoint. The same SequenceArchiver instance takes
every step, so what it learns (Reply's smaller bulk size, a bulk endpoint refused to the key) holds for the rest.

Between steps the run stops when the person pressed Ctrl-C, when the time limit ran out, when Reply rejected the
key, or when a whole step got no answer from Reply at all: the IDs not reached are then `not attempted`, never
reported as an outcome they did not have.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from sequence_archiver.public import Outcome, parse_archive_request

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sequence_archiver.public import ApiCall, Deadline, SequenceArchiver, SequenceResult
    from sequence_archiver_cli.interruption import Interruption


class StopReason(Enum):
    """Why a run ended before every ID was tried."""

    INTERRUPTED = "interrupted (Ctrl-C)"
    ABORTED = "interrupted twice (Ctrl-C): stopped at once"
    TIME_LIMIT = "the time limit ran out"
    KEY_REJECTED = "Reply rejected the API key"
    UNREACHABLE = "Reply did not answer"


@dataclass
class ArchiveRecord:
    """What a run did: the outcomes in the order they became known, and the IDs it did not try."""

    results: list[SequenceResult] = field(default_factory=list)
    not_attempted: list[int] = field(default_factory=list)
    # IDs of a step abandoned by a second Ctrl-C: a call about them may or may not have reached Reply.
    unknown: list[int] = field(default_factory=list)
    stop: StopReason | None = None


@dataclass
class SteppedArchive:
    """Drives one SequenceArchiver step by step; `calls` is the list the Reply client's on_api_call fills."""

    archiver: SequenceArchiver
    deadline: Deadline
    interruption: Interruption
    calls: list[ApiCall]
    single: bool = False
    pause_first: bool = False
    request_id: str | None = None  # recorded in each snapshot the run takes

    def step_size(self) -> int:
        """One ID on the single endpoint; otherwise the archiver's current bulk size."""
        return 1 if self.single or self.archiver.bulk_unavailable else self.archiver.bulk_max_ids

    def run(self, sequence_ids: Sequence[int], on_result: Callable[[SequenceResult], None]) -> ArchiveRecord:
        """Archive the IDs in order; `on_result` hears each final outcome as soon as its step ends."""
        record = ArchiveRecord()
        pending = deque(sequence_ids)
        step: list[int] = []
        try:
            while pending:
                record.stop = self._stop_before_step()
                if record.stop is not None:
                    break
                step = [pending.popleft() for _ in range(min(self.step_size(), len(pending)))]
                calls_before = len(self.calls)
                request = parse_archive_request({"sequenceIds": step, "pauseFirst": self.pause_first})
                labels = [self.request_id] if self.request_id is not None else []
                results = self.archiver.archive_all([request], self.deadline, request_ids=labels)[0]
                step = []
                for result in results:
                    if result.deferred and result.sequence_id is not None:
                        record.not_attempted.append(result.sequence_id)  # no call was made for it
                        continue
                    record.results.append(result)
                    on_result(result)
                record.stop = self._stop_after_step(results, self.calls[calls_before:])
                if record.stop is not None:
                    break
        except KeyboardInterrupt:  # the second Ctrl-C: the step in flight is abandoned
            record.stop = StopReason.ABORTED
            record.unknown.extend(step)
        record.not_attempted.extend(pending)
        return record

    def _stop_before_step(self) -> StopReason | None:
        if self.interruption.requested:
            return StopReason.INTERRUPTED
        if self.deadline.remaining_seconds() <= 0:
            return StopReason.TIME_LIMIT
        return None

    def _stop_after_step(self, results: Sequence[SequenceResult], step_calls: Sequence[ApiCall]) -> StopReason | None:
        if self.interruption.requested:
            return StopReason.INTERRUPTED
        if any(result.deferred for result in results):  # the core stopped: time (or a 429 pause) ran out
            return StopReason.TIME_LIMIT
        if step_calls and step_calls[-1].http_status == 401:
            return StopReason.KEY_REJECTED
        no_answer = step_calls and all(call.http_status is None for call in step_calls)
        if no_answer and all(result.outcome is Outcome.FAILED for result in results):
            return StopReason.UNREACHABLE
        return None
