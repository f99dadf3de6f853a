"""What one request came to: its trigger, its ID and one result per item, and the detail that reports it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sequence_archiver.outcomes import any_failed, count_outcomes

if TYPE_CHECKING:
    from sequence_archiver.outcomes import SequenceResult


class Trigger(StrEnum):
    """How the function was invoked."""

    SQS = "sqs"
    EVENTBRIDGE = "eventbridge"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class RequestReport:
    """The results of one request (an SQS record, an EventBridge event or a direct invocation)."""

    request_id: str
    trigger: Trigger
    results: tuple[SequenceResult, ...]

    @property
    def complete(self) -> bool:
        """False when some ID ended `failed` and the request will be retried."""
        return not any_failed(self.results)

    def detail(self) -> dict[str, Any]:
        """The whole results-event detail; also what a direct invocation returns."""
        return {
            "requestId": self.request_id,
            "trigger": self.trigger.value,
            "complete": self.complete,
            "counts": count_outcomes(self.results),
            "results": [result.to_json() for result in self.results],
        }
