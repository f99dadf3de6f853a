"""Injected faults, fired in injection order: each matching request consumes one of a fault's `times`."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection

    from local.stand_ins.reply_simulator.models import Fault


@dataclass(slots=True)
class _ArmedFault:
    fault: Fault
    remaining: int | None


class FaultQueue:
    """Thread-safe queue of armed faults; at most one fault fires per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_ArmedFault] = []

    def inject(self, fault: Fault) -> None:
        """Arm a fault behind those already armed."""
        with self._lock:
            self._armed.append(_ArmedFault(fault, fault.times))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()

    def pending(self) -> list[Fault]:
        """Return the armed faults in firing order."""
        with self._lock:
            return [armed.fault for armed in self._armed]

    def take(self, path: str, sequence_ids: Collection[int]) -> Fault | None:
        """Fire the first armed fault that matches this request, consuming one of its times."""
        with self._lock:
            for index, armed in enumerate(self._armed):
                if not _matches(armed.fault, path, sequence_ids):
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining == 0:
                        del self._armed[index]
                return armed.fault
        return None


def _matches(fault: Fault, path: str, sequence_ids: Collection[int]) -> bool:
    if fault.path_prefix is not None and not path.startswith(fault.path_prefix):
        return False
    return fault.sequence_id is None or fault.sequence_id in sequence_ids
