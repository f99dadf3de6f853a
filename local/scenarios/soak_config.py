"""The soak's settings: the size, timing and fault knobs of a run, and the function's fast settings for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from local.scenarios.lambda_instance import FUNCTION_DIR, IDEMPOTENCY_VARIABLE
from local.scenarios.soak_phases import HANG_STEPS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

TIME_SCALE = 1 / 60  # Reply's minute becomes one second, its hour one minute (function and simulator alike)
MAX_ATTEMPTS = 4
READ_TIMEOUT_SECONDS = 0.4
# Fault steps in the order soak_faults.FaultPlan arms them; the two outages fail whole batches more than once.
FAULT_STEPS = ("429", "5xx", "slow", "drop", "malformed", "put_events", "rotation", "503_outage", "429_outage")


@dataclass(frozen=True)
class SoakConfig:
    """Size, timing and fault settings of one soak run."""

    ids: int = 2000
    seed: int = 20261129
    batch_size: int | None = 10
    batching_window_seconds: float = 0.2
    function_timeout_seconds: float = 8.0
    visibility_timeout_seconds: int = 8
    lose_delete_probability: float = 0.03
    duplicate_fraction: float = 0.05
    doomed_requests: int = 2
    fault_steps: tuple[str, ...] = FAULT_STEPS
    throttle_burst: int = 3
    secret_read_failures: int = 5
    fault_every: int = 2
    fault_cycles: int = 3
    max_seconds: float = 420.0
    max_batches: int = 5000
    until_empty_for: float = 1.0
    idempotency: bool = False
    # Poison phase: IDs on which Reply answers 500 on every call, planted inside healthy multi-ID requests.
    poison_ids: int = 3
    # Hanging-endpoint phase (after the main traffic drained): each step holds one endpoint for this many
    # batches of fresh requests; Reply drips one byte per `hang_drip_seconds` (under the read timeout).
    hang_steps: tuple[str, ...] = HANG_STEPS
    hang_batches: int = 2
    hang_drip_seconds: float = 0.1


def idempotency_supported(function_dir: Path = FUNCTION_DIR) -> bool:
    """True when the function's code reads IDEMPOTENCY_TABLE_NAME (the lead's idempotency change is in)."""
    return any(IDEMPOTENCY_VARIABLE in path.read_text(encoding="utf-8") for path in function_dir.rglob("*.py"))


def function_overrides(config: SoakConfig, proxy_endpoints: Mapping[str, str], table: str | None) -> dict[str, str]:
    """Fast settings for the function, and the AWS_ENDPOINT_URL_<SERVICE> variables pointing every service it
    calls (EventBridge, Secrets Manager, SQS, DynamoDB) at the fault proxy (`FaultProxy.endpoint_variables()`)."""
    overrides = {
        **proxy_endpoints,
        "REPLY_CONNECT_TIMEOUT_SECONDS": "0.5",
        "REPLY_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS),
        "REPLY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "REPLY_BACKOFF_BASE_SECONDS": "0.02",
        "REPLY_BACKOFF_MAX_SECONDS": "0.2",
        "REPLY_RATE_LIMIT_TIME_SCALE": repr(TIME_SCALE),
        "DEADLINE_SAFETY_MARGIN_SECONDS": "0.5",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if table:
        overrides[IDEMPOTENCY_VARIABLE] = table
    return overrides
