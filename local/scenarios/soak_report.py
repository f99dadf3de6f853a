"""The soak's report: what one run measured, what makes it a failure, and the tables printed at the end."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from local.scenarios.lambda_instance import IDEMPOTENCY_VARIABLE
from local.scenarios.soak_ledger import Ledger
from local.scenarios.soak_phases import POISON_STATUS, TIMING_HEADERS, TimingLog, add_drain, poison_rows, timing_rows
from local.stand_ins.aws_stack import queue_settings_from_template
from local.stand_ins.event_source import DrainOutcome, event_source_settings_from_template
from sequence_archiver_cli.output import table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from local.scenarios.soak_config import SoakConfig


@dataclass
class SoakReport:
    """Everything one run measured."""

    label: str
    config: SoakConfig
    ledger: Ledger = field(default_factory=Ledger)
    drain: DrainOutcome = field(default_factory=DrainOutcome)
    faults_fired: dict[str, int] = field(default_factory=dict)
    idempotency_records: int | None = None
    wall_seconds: float = 0.0
    leaks: list[str] = field(default_factory=list)
    skipped: str | None = None
    api_keys: list[str] = field(default_factory=list)
    hang_steps: list[str] = field(default_factory=list)  # the hanging-endpoint steps this run ran
    hang_batches: DrainOutcome = field(default_factory=DrainOutcome)  # the invocations under those steps
    recoveries: list[DrainOutcome] = field(default_factory=list)  # the drain after each step
    timings: TimingLog = field(default_factory=TimingLog)

    @property
    def totals(self) -> DrainOutcome:
        """Every invocation of the run: the main drain, the hanging-endpoint steps and the recoveries."""
        totals = dataclasses.replace(self.drain)
        for more in (self.hang_batches, *self.recoveries):
            add_drain(totals, more)
        return totals

    @property
    def problems(self) -> list[str]:
        """Everything that makes this run a failure."""
        if self.skipped:
            return []
        problems = []
        if self.ledger.lost:
            problems.append(f"{len(self.ledger.lost)} ID(s) lost, e.g. {self.ledger.lost[:5]}")
        problems += [f"wrong outcome: {text}" for text in self.ledger.wrong_outcomes[:10]]
        if self.drain.stopped != "empty":
            problems.append(f"the queue was not drained (stopped: {self.drain.stopped})")
        problems += [
            f"the queue was not drained after {step} (stopped: {recovery.stopped})"
            for step, recovery in zip(self.hang_steps, self.recoveries, strict=False)
            if recovery.stopped != "empty"
        ]
        problems += self.ledger.poison.problems[:10]
        problems += self.timings.problems(self.hang_steps)
        if self.ledger.messages_unsettled:
            problems.append(f"{self.ledger.messages_unsettled} message(s) neither reported complete nor dead-lettered")
        problems += [f"fault never fired: {kind}" for kind, count in self.faults_fired.items() if count == 0]
        problems += self.leaks
        if self.config.idempotency and not self.idempotency_records:
            problems.append(f"{IDEMPOTENCY_VARIABLE} was set but the function wrote no idempotency record")
        return problems


def ledger_rows(reports: Sequence[SoakReport]) -> list[list[object]]:
    """The ledger of each run, one column per run."""
    runs = [report for report in reports if not report.skipped]

    def row(name: str, value: Callable[[SoakReport], object]) -> list[object]:
        return [name, *(value(report) for report in runs)]

    outcome_rows = [
        [f"  final, not archived: {outcome}", *(report.ledger.final_not_archived.get(outcome, 0) for report in runs)]
        for outcome in ("not_found", "forbidden", "conflict", "invalid")
    ]
    return [
        row("messages sent", lambda r: r.ledger.messages_sent),
        row(
            "  poison / doomed / duplicate",
            lambda r: "{} / {} / {}".format(
                r.ledger.shapes["poison"], r.ledger.shapes["doomed"], r.ledger.shapes["duplicate"]
            ),
        ),
        row("IDs in (distinct valid)", lambda r: r.ledger.ids_in),
        row("invalid values sent", lambda r: r.ledger.invalid_values_sent),
        row("archived by the run (Reply state)", lambda r: r.ledger.archived),
        row("  of which paused first (pauseFirst)", lambda r: r.ledger.archived_after_pause),
        row("archived before the run", lambda r: r.ledger.already_archived_before),
        *outcome_rows,
        row("dead-lettered (only there)", lambda r: r.ledger.dead_lettered),
        row("LOST", lambda r: len(r.ledger.lost)),
        row("wrong outcomes", lambda r: len(r.ledger.wrong_outcomes)),
        row(
            "DLQ messages: parked / redriven (continuations)",
            lambda r: (
                f"{r.ledger.dead_letter_parked_by_function} / {r.ledger.dead_letter_redriven} "
                f"({r.ledger.dead_letter_continuations})"
            ),
        ),
        row("IDs inside DLQ messages", lambda r: r.ledger.ids_in_dead_letter_queue),
        row("results events", lambda r: r.ledger.results_events),
        row("requests reported complete", lambda r: r.ledger.complete_requests),
        row("duplicate complete events", lambda r: r.ledger.duplicate_complete_events),
        row("deletes lost on purpose", lambda r: r.totals.lost_deletes),
        row("idempotency records", lambda r: "-" if r.idempotency_records is None else r.idempotency_records),
        row("batches / records", lambda r: f"{r.totals.batches} / {r.totals.records}"),
        row("failed invocations / timeouts", lambda r: f"{r.totals.handler_errors} / {r.totals.timed_out}"),
        row("Reply API calls", lambda r: r.ledger.api_calls),
        row("API calls per ID", lambda r: f"{r.ledger.api_calls_per_id:.3f}"),
        row("wall time", lambda r: f"{r.wall_seconds:.1f} s"),
    ]


def fault_rows(reports: Sequence[SoakReport]) -> list[list[object]]:
    """How often each fault kind fired, one column per run."""
    runs = [report for report in reports if not report.skipped]
    kinds = list(dict.fromkeys(kind for report in runs for kind in report.faults_fired))
    return [[kind, *(report.faults_fired.get(kind, 0) for report in runs)] for kind in kinds]


def describe(config: SoakConfig) -> list[str]:
    """How the run differs from production, with the template's values beside the local ones."""
    source = event_source_settings_from_template()
    queue = queue_settings_from_template()
    batch = config.batch_size or source.batch_size
    return [
        f"  event source: batch {batch} (template {source.batch_size}), window {config.batching_window_seconds:g} s "
        f"(template {source.batching_window_seconds} s), function timeout {config.function_timeout_seconds:g} s "
        f"(template {source.function_timeout_seconds} s)",
        f"  queue: visibility {config.visibility_timeout_seconds} s (template {queue.visibility_timeout_seconds} s), "
        f"maxReceiveCount {queue.max_receive_count} (template)",
        f"  faults: a step before every {config.fault_every} batch(es), {config.fault_cycles} cycle(s) of "
        f"{len(config.fault_steps)} steps; {config.lose_delete_probability:.0%} of deletes lost on purpose; "
        f"{config.doomed_requests} request(s) whose results event always fails",
        f"  poison phase: {config.poison_ids} ID(s) answering {POISON_STATUS} on every call, inside healthy "
        "multi-ID requests of the traffic",
        f"  hanging-endpoint phase: {len(config.hang_steps)} step(s) after the traffic drained (DynamoDB only with "
        f"idempotency), each holding its endpoint for {config.hang_batches} batch(es) of fresh requests; Reply "
        f"drips a byte every {config.hang_drip_seconds:g} s",
    ]


def print_report(reports: Sequence[SoakReport], output_leaks: Sequence[str], log_lines: int, out: TextIO) -> None:
    """The ledger, faults, poison and timing tables of the runs, then what leaked and what was redriven."""
    runs = [report for report in reports if not report.skipped]
    headers = ["", *(report.label for report in runs)]
    print("\nLedger", file=out)
    print(table(headers, ledger_rows(runs), indent="  "), file=out)
    print("\nFaults fired (main phase)", file=out)
    print(table(headers, fault_rows(runs), indent="  "), file=out)
    print("\nPoison IDs (main phase)", file=out)
    print(table(headers, poison_rows([report.ledger.poison for report in runs]), indent="  "), file=out)
    for report in runs:
        print(f"\nTime used against time had, per invocation [{report.label}]", file=out)
        print(table(TIMING_HEADERS, timing_rows(report.timings, report.hang_steps), indent="  "), file=out)
    found = "found in " + ", ".join(output_leaks) if output_leaks else "found nowhere"
    print(f"\n  function output: {log_lines} lines; API keys {found}", file=out)
    for report in reports:
        if report.skipped:
            print(f"  note: {report.skipped}", file=out)
        for explanation in [] if report.skipped else report.ledger.unplanned_redrives:
            print(f"  [{report.label}] redriven to the DLQ after repeated failures: {explanation}", file=out)
