"""What one request came to: its trigger, its ID and one result per item, and the detail that reports it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sequence_archiver.core.outcomes import any_failed, count_outcomes

if TYPE_CHECKING:
    from sequence_archiver.core.outcomes import SequenceResult


class EventShape(StrEnum):
    """What the event was, which decides how the invocation answers and which triggers may run clean-ups."""

    SQS = "sqs"
    EVENTBRIDGE = "eventbridge"
    SNS = "sns"
    DIRECT = "direct"


class Trigger(StrEnum):
    """How the function was invoked, as results events report it (an SNS record reports `direct`)."""

    SQS = "sqs"
    EVENTBRIDGE = "eventbridge"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class RequestReport:
    """The results of one request (an SQS record, an EventBridge event or a direct invocation)."""

    request_id: str
    trigger: Trigger
    results: tuple[SequenceResult, ...]
    # A request finished over several deliveries: this delivery's part (1 is the original), and the IDs it
    # carries on to the next part (reported final there, never here).
    continuation: int | None = None
    deferred_ids: tuple[int, ...] = ()
    workspace: str | None = None  # the workspace the request named (REPLY_WORKSPACES); None for the default key

    @property
    def complete(self) -> bool:
        """False when some ID ended `failed` (the request will be retried) or was carried on to a continuation."""
        return not any_failed(self.results) and not self.deferred_ids

    def detail(self) -> dict[str, Any]:
        """The whole results-event detail; also what a direct invocation returns."""
        detail: dict[str, Any] = {
            "requestId": self.request_id,
            **({"workspace": self.workspace} if self.workspace is not None else {}),
            "trigger": self.trigger.value,
            "complete": self.complete,
            "counts": count_outcomes(self.results),
            "results": [result.to_json() for result in self.results],
        }
        if self.continuation is not None:
            detail["continuation"] = self.continuation
        if self.deferred_ids:
            detail["deferredIds"] = list(self.deferred_ids)
        return detail
