"""One soak run: provision, send the traffic, drain it under faults and hanging endpoints, then reconcile."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from local.scenarios.lambda_instance import IDEMPOTENCY_VARIABLE
from local.scenarios.soak_config import TIME_SCALE, function_overrides, idempotency_supported
from local.scenarios.soak_faults import FaultPlan, arm_throughout, faults_fired
from local.scenarios.soak_ledger import find_leaks, reconcile
from local.scenarios.soak_phases import HangPhase, Stage, add_batch, poison_faults, steps_for_run
from local.scenarios.soak_report import SoakReport
from local.scenarios.soak_traffic import (
    FIRST_ID,
    HANG_ID_OFFSET,
    PlannedMessage,
    Traffic,
    plan_traffic,
    seed_simulator,
    send_planned,
)
from local.stand_ins.aws_stack import (
    QueueSettings,
    create_idempotency_table,
    drain_queue,
    function_environment,
    provision,
    queue_settings_from_template,
    read_results_events,
    unique_name_prefix,
)
from local.stand_ins.event_source import EventSourceMapping
from local.stand_ins.fault_proxy import FaultProxy
from local.stand_ins.reply_simulator import ALL_SCOPES, DEFAULT_RATE_LIMIT, ReplySimulator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from local.scenarios.lambda_instance import LambdaInstance
    from local.scenarios.soak_config import SoakConfig
    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.event_source import BatchOutcome, DrainOutcome
    from local.stand_ins.reply_simulator import Fault


def _scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table (the idempotency records), to search them for the API key."""
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"TableName": table}
    while True:
        page = dynamodb.scan(**arguments)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _run_hang_phase(
    report: SoakReport,
    traffic: Traffic,
    sent: list[tuple[str, PlannedMessage]],
    *,
    simulator: ReplySimulator,
    proxy: FaultProxy,
    stack: LocalStack,
    mapping: EventSourceMapping,
    kept_faults: Sequence[Fault],
    doomed: Sequence[str],
    api_keys: list[str],
    after_batch: Callable[[int, BatchOutcome], None],
    progress: Callable[[str], None] | None,
) -> None:
    """Run the report's hanging-endpoint steps, wired to this run's traffic, ledger and timings."""
    config = report.config
    if progress is not None:
        progress(f"  [{report.label}] hanging endpoints: {', '.join(report.hang_steps)}")

    def new_ids(count: int, category: str) -> list[int]:
        first = FIRST_ID + HANG_ID_OFFSET + len(traffic.categories)
        ids = list(range(first, first + count))
        traffic.categories.update(dict.fromkeys(ids, category))
        seed_simulator(simulator, dict.fromkeys(ids, category))
        return ids

    def send(bodies: Sequence[str], shape: str) -> None:
        sent.extend(send_planned(stack, [PlannedMessage(body, shape) for body in bodies]))

    def recover() -> DrainOutcome:
        return mapping.drain(
            until_empty_for=config.until_empty_for, max_seconds=config.max_seconds, after_batch=after_batch
        )

    stage = Stage(
        simulator=simulator,
        proxy=proxy,
        stack=stack,
        mapping=mapping,
        send=send,
        new_ids=new_ids,
        recover=recover,
        rearm=lambda: arm_throughout(simulator, proxy, kept_faults, doomed),
        timings=report.timings,
        api_keys=api_keys,
        on_batch=lambda outcome: add_batch(report.hang_batches, outcome),
    )
    phase = HangPhase(stage, batches=config.hang_batches, drip_seconds=config.hang_drip_seconds)
    phase.run(report.hang_steps)
    report.recoveries = phase.recoveries


def run_soak(
    config: SoakConfig,
    *,
    api_key: str,
    moto_endpoint: str,
    load_handler: Callable[[], LambdaInstance],
    apply_environment: Callable[[dict[str, str]], None],
    progress: Callable[[str], None] | None = None,
    label: str = "",
) -> SoakReport:
    """Provision, send the traffic, drain it under faults, and reconcile the ledger; nothing is left running."""
    report = SoakReport(label=label or ("idempotent" if config.idempotency else "plain"), config=config)
    if config.idempotency and not idempotency_supported():
        report.skipped = (
            f"the function does not read {IDEMPOTENCY_VARIABLE} yet (Powertools idempotency not in place); "
            "the idempotent run is skipped"
        )
        return report
    started = time.monotonic()
    traffic = plan_traffic(config)
    template = queue_settings_from_template()
    # Reply's own limits (the simulator's defaults), on the same compressed clock as the function's pacing.
    rate_limit = dataclasses.replace(
        DEFAULT_RATE_LIMIT,
        minute_seconds=DEFAULT_RATE_LIMIT.minute_seconds * TIME_SCALE,
        hour_seconds=DEFAULT_RATE_LIMIT.hour_seconds * TIME_SCALE,
    )
    with (
        ReplySimulator(api_keys={api_key: ALL_SCOPES}, rate_limit=rate_limit, seed=False) as simulator,
        FaultProxy(moto_endpoint, seed=config.seed) as proxy,
    ):
        name_prefix = unique_name_prefix("soak")
        stack = provision(
            moto_endpoint,
            api_key=api_key,
            name_prefix=name_prefix,
            # Short visibility so retries and the redrive happen in seconds; maxReceiveCount stays the template's.
            queue_settings=QueueSettings(
                config.visibility_timeout_seconds,
                template.max_receive_count,
                f"soak: visibility {config.visibility_timeout_seconds} s; maxReceiveCount from {template.source}",
            ),
        )
        seed_simulator(simulator, traffic.categories)
        table = f"{name_prefix}-idempotency" if config.idempotency else None
        dynamodb = create_idempotency_table(stack, table) if table else None
        overrides = function_overrides(config, proxy.endpoint_variables(), table)
        apply_environment(function_environment(stack, reply_base_url=simulator.base_url, **overrides))
        app = load_handler()
        sent = send_planned(stack, traffic.messages)
        doomed = [message_id for message_id, message in sent if message.doomed]
        kept_faults = poison_faults(traffic.poison_ids)
        arm_throughout(simulator, proxy, kept_faults, doomed)
        plan = FaultPlan(
            simulator=simulator,
            proxy=proxy,
            stack=stack,
            api_key=api_key,
            steps=config.fault_steps,
            every=config.fault_every,
            cycles=config.fault_cycles,
            throttle_burst=config.throttle_burst,
            secret_read_failures=config.secret_read_failures,
        )
        mapping = EventSourceMapping(
            stack,
            app.lambda_handler,
            batch_size=config.batch_size,
            batching_window_seconds=config.batching_window_seconds,
            function_timeout_seconds=config.function_timeout_seconds,
            lose_delete_probability=config.lose_delete_probability,
            rng=random.Random(config.seed),
        )
        last_progress = [time.monotonic()]

        def after_batch(number: int, outcome: BatchOutcome) -> None:
            report.timings.record(outcome)
            if progress is not None and time.monotonic() - last_progress[0] >= 5:
                last_progress[0] = time.monotonic()
                visible, in_flight = mapping.queue_depth()
                progress(
                    f"  [{report.label}] batch {number + 1}: {visible} visible, {in_flight} in flight, "
                    f"{len(simulator.requests)} Reply calls, {time.monotonic() - started:.0f} s"
                )

        report.drain = mapping.drain(
            until_empty_for=config.until_empty_for,
            max_seconds=config.max_seconds,
            max_batches=config.max_batches,
            before_poll=plan.before_poll,
            after_batch=after_batch,
        )
        # Counted before the hanging-endpoint phase, which clears the faults the main phase left armed.
        report.faults_fired = faults_fired(plan.log, simulator, proxy, traffic.poison_ids)
        report.hang_steps = steps_for_run(config.hang_steps, idempotency=config.idempotency)
        if report.hang_steps:
            _run_hang_phase(
                report,
                traffic,
                sent,
                simulator=simulator,
                proxy=proxy,
                stack=stack,
                mapping=mapping,
                kept_faults=kept_faults,
                doomed=doomed,
                api_keys=plan.log.api_keys,
                after_batch=after_batch,
                progress=progress,
            )
        envelopes = read_results_events(stack, expected=0, timeout_seconds=10)
        dead_letters = drain_queue(stack.dead_letter_queue_url, endpoint_url=stack.endpoint_url)
        archived = {sequence.id for sequence in simulator.sequences() if sequence.is_archived}
        reply_requests = simulator.requests
        statuses = Counter(request.status for request in reply_requests)
        records = _scan_all(dynamodb, table) if dynamodb is not None and table else []
        report.idempotency_records = len(records) if table else None
        report.api_keys = list(plan.log.api_keys)

    details = [envelope.get("detail", {}) for envelope in envelopes]
    report.ledger = reconcile(
        sent=sent,
        categories=traffic.categories,
        details=details,
        dead_letters=dead_letters,
        archived_in_reply=archived,
        reply_statuses=statuses,
        reply_requests=reply_requests,
    )
    places = {
        "results events": json.dumps(envelopes),
        "dead-letter messages": json.dumps(dead_letters, default=str),
        "idempotency records": json.dumps(records, default=str),
    }
    report.leaks = find_leaks(report.api_keys, places)
    report.wall_seconds = time.monotonic() - started
    return report
