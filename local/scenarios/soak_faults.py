"""The soak's faults: the steps armed batch by batch, what stays armed all run, and how often each fired."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from local.scenarios.soak_config import FAULT_STEPS, MAX_ATTEMPTS, READ_TIMEOUT_SECONDS
from local.scenarios.soak_phases import count_statuses
from local.stand_ins.reply_simulator import ALL_SCOPES, Fault

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.fault_proxy import FaultProxy
    from local.stand_ins.reply_simulator import ReplySimulator

logger = logging.getLogger(__name__)

ROTATED_KEY_MARKER = "-rotated-"


@dataclass
class FaultLog:
    """What the plan armed, so the report can tell which faults actually fired."""

    reply_faults: list[tuple[str, Fault]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    rotations: int = 0
    api_keys: list[str] = field(default_factory=list)


class FaultPlan:
    """Injects a fault step before every `every`-th batch, going through the steps `cycles` times."""

    def __init__(
        self,
        *,
        simulator: ReplySimulator,
        proxy: FaultProxy,
        stack: LocalStack,
        api_key: str,
        steps: Sequence[str] = FAULT_STEPS,
        every: int = 2,
        cycles: int = 1,
        throttle_burst: int = 3,
        secret_read_failures: int = 5,
    ) -> None:
        self._simulator = simulator
        self._secret_read_failures = secret_read_failures
        self._proxy = proxy
        self._stack = stack
        self._every = every
        self._cycles = cycles
        self.log = FaultLog(api_keys=[api_key])
        every_step: dict[str, tuple[str, Callable[[], None]]] = {
            "429": (
                "Reply 429 burst with Retry-After",
                lambda: self._reply("429", Fault("status", throttle_burst, 429, retry_after=1)),
            ),
            "5xx": (
                "Reply 500, 502 and 503",
                lambda: self._reply(
                    "5xx", Fault("status", 1, 500), Fault("status", 1, 502), Fault("status", 1, 503, retry_after=0)
                ),
            ),
            "slow": (
                "Reply slower than the read timeout",
                lambda: self._reply("slow", Fault("delay", 2, seconds=READ_TIMEOUT_SECONDS * 3)),
            ),
            "drop": ("Reply drops the connection", lambda: self._reply("drop", Fault("drop", 2))),
            "malformed": ("Reply 200 with a malformed body", lambda: self._reply("malformed", Fault("malformed", 2))),
            "put_events": ("PutEvents entries fail", lambda: self._proxy.fail_put_events(fraction=0.3, calls=4)),
            "rotation": ("API key rotated; Secrets Manager fails reads", self._rotate_key),
            "503_outage": (
                "Reply 503 outlasting the retries",
                lambda: self._reply("503 outage", Fault("status", MAX_ATTEMPTS + 1, 503)),
            ),
            "429_outage": (
                "Reply 429 outlasting the retries",
                lambda: self._reply("429 outage", Fault("status", MAX_ATTEMPTS + 1, 429, retry_after=1)),
            ),
        }
        unknown = set(steps) - set(every_step)
        if unknown or not steps:
            raise ValueError(f"fault steps must be some of {', '.join(every_step)}")
        self._steps = [every_step[key] for key in steps]

    def before_poll(self, batch_number: int) -> None:
        """The event source's hook: arm the step of this batch, if any."""
        step, offset = divmod(batch_number, self._every)
        if offset or step >= len(self._steps) * self._cycles:
            return
        name, action = self._steps[step % len(self._steps)]
        action()
        self.log.steps.append(name)
        logger.info("fault step armed", extra={"batch": batch_number, "step": name})

    def _reply(self, label: str, *faults: Fault) -> None:
        for fault in faults:
            self._simulator.inject(fault)
            self.log.reply_faults.append((label, fault))

    def _rotate_key(self) -> None:
        """A new key in Secrets Manager and at Reply: the old one gets 401; the re-read first fails, then works."""
        self.log.rotations += 1
        new_key = self.log.api_keys[0] + ROTATED_KEY_MARKER + str(self.log.rotations)
        self.log.api_keys.append(new_key)
        # Three failures exhaust the SDK's three attempts (the re-read fails); more are absorbed by its retries.
        self._proxy.fail_secret_reads(times=self._secret_read_failures)
        self._stack.secretsmanager().put_secret_value(
            SecretId=self._stack.secret_arn, SecretString=json.dumps({"apiKey": new_key})
        )
        self._simulator.set_api_keys({new_key: ALL_SCOPES})


def faults_fired(
    log: FaultLog, simulator: ReplySimulator, proxy: FaultProxy, poison_ids: Sequence[int]
) -> dict[str, int]:
    """How often each fault kind fired, from what the simulator recorded and the proxy counted (the poison
    IDs' own 500s are the poison phase's, counted in its table)."""
    statuses = count_statuses(simulator.requests, excluding=set(poison_ids))
    pending = simulator.pending_faults()

    def consumed(label: str) -> int:
        return sum(
            fault.times or 0
            for name, fault in log.reply_faults
            if name == label and not any(fault is other for other in pending)
        )

    counters = proxy.counters
    return {
        "Reply 429 (Retry-After)": statuses[429],
        "Reply 500": statuses[500],
        "Reply 502": statuses[502],
        "Reply 503": statuses[503],
        "Reply slower than the read timeout": consumed("slow"),
        "Reply dropped connection": statuses[0],
        "Reply malformed 200 body": consumed("malformed"),
        "Reply 401 after key rotation": sum(1 for request in simulator.requests if not request.key_accepted),
        "PutEvents entries failed": counters.put_events_entries_failed,
        "Secrets Manager reads failed": counters.secret_reads_failed,
    }


def arm_throughout(
    simulator: ReplySimulator, proxy: FaultProxy, poison: Sequence[Fault], doomed: Sequence[str]
) -> None:
    """Arm what stays armed for the whole run: the poison IDs' 500s (before any other fault, so a call naming
    a poison ID always gets its 500) and the doomed requests' failing results events."""
    for fault in poison:
        simulator.inject(fault)
    proxy.fail_results_of(doomed)
