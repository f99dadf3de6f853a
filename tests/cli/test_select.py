"""`select` against the Reply simulator: paging, filters, pacing without a 429, errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.reply_simulator import Fault, RateLimit
from tests.cli.test_enqueue import closed_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.stand_ins.aws_stack import LocalStack
    from local.stand_ins.reply_simulator import ReplySimulator
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]
SEEDED_PAUSED = [*range(101, 121), 601, 701, 702]  # of the key's user, not archived
LIST_PATH = "/v3/sequences"


def list_calls(simulator: ReplySimulator) -> int:
    return sum(1 for request in simulator.requests if request.path == LIST_PATH)


def test_paging_over_many_pages_prints_each_id_once(cli: Callable[..., Run], reply_simulator: ReplySimulator) -> None:
    reply_simulator.add_sequences(range(20_001, 20_061), status="paused")

    run = cli("select", "--base-url", reply_simulator.base_url, "--status", "paused", "--page-size", "7")

    assert run.code == 0, run.err
    ids = [int(line) for line in run.lines]
    assert sorted(ids) == sorted([*SEEDED_PAUSED, *range(20_001, 20_061)])
    assert len(ids) == len(set(ids))
    assert list_calls(reply_simulator) == 12  # 83 sequences, 7 a page


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--status", "new"], list(range(201, 206))),
        (["--status", "ACTIVE", "--name", "seed 30"], list(range(301, 306))),
        (["--archived"], list(range(401, 406))),
        (["--include-archived", "--name", "(archived)"], list(range(401, 406))),
        (["--owner", "2"], []),  # the list shows only the key's user's sequences
        (["--folder", "6f1c3f5e-3a55-4ad3-9f77-0a4c1d2b9e10"], []),
        # Seeded creation times are 2024-01-01T00:00Z plus the ID in minutes.
        (["--status", "paused", "--created-after", "2024-01-01T01:55:00Z"], [*range(116, 121), 601, 701, 702]),
        (["--status", "paused", "--created-before", "2024-01-01T01:45:00+00:00"], [101, 102, 103, 104]),
        (["--created-after", "2024-01-01T03:20", "--created-before", "2024-01-01T03:23"], [201, 202]),
    ],
)
def test_filters(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, filters: list[str], expected: list[int]
) -> None:
    run = cli("select", "--base-url", reply_simulator.base_url, *filters)

    assert run.code == 0, run.err
    assert sorted(int(line) for line in run.lines) == expected


def test_created_before_stops_paging_at_the_bound(cli: Callable[..., Run], reply_simulator: ReplySimulator) -> None:
    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    for number in range(40):
        reply_simulator.add_sequence(30_000 + number, created=epoch + timedelta(days=number))

    run = cli(
        "select", "--base-url", reply_simulator.base_url, "--created-before", "2020-01-06", "--page-size", "5",
    )  # fmt: skip

    assert [int(line) for line in run.lines] == [30_000, 30_001, 30_002, 30_003, 30_004]
    assert list_calls(reply_simulator) == 2  # oldest first: the second page reaches the bound


@pytest.mark.parametrize("output", ["ids", "jsonl", "table"])
def test_the_order_is_oldest_first_with_or_without_created_before(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, output: str
) -> None:
    # Given sequences whose IDs do not follow their creation order
    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    for number, sequence_id in enumerate([40_005, 40_001, 40_004, 40_002, 40_003]):
        reply_simulator.add_sequence(
            sequence_id, status="paused", name="order test", created=epoch + timedelta(days=number)
        )
    base = ("select", "--base-url", reply_simulator.base_url, "--name", "order test", "--page-size", "2")

    # When they are listed without a date bound, and with one that excludes none of them
    unbounded = cli(*base, "--output", output)
    bounded = cli(*base, "--created-before", "2021-01-01", "--output", output)

    # Then both list them in creation order, oldest first
    assert unbounded.code == bounded.code == 0, unbounded.err + bounded.err
    assert unbounded.out == bounded.out
    shown = unbounded.lines[2:-1] if output == "table" else unbounded.lines
    ids = [int(json.loads(line)["id"]) if output == "jsonl" else int(line.split()[0]) for line in shown]
    assert ids == [40_005, 40_001, 40_004, 40_002, 40_003]


def test_every_output_format_and_limit(cli: Callable[..., Run], reply_simulator: ReplySimulator) -> None:
    base = ("select", "--base-url", reply_simulator.base_url, "--status", "new")
    table = cli(*base, "--format", "table")  # --format: the old spelling, an alias of --output
    lines = cli(*base, "--output", "jsonl", "--limit", "2")
    document = cli(*base, "--output", "json", "--limit", "2")
    spreadsheet = cli(*base, "--output", "csv")
    ids = cli(*base, "--output", "ids")

    assert table.lines[0].split() == ["id", "status", "archived", "created", "(UTC)", "owner", "name"]
    assert table.lines[2].split()[:5] == ["201", "new", "no", "2024-01-01", "03:21"]  # oldest first
    assert table.lines[-1] == "5 sequences"
    items = [json.loads(line) for line in lines.lines]
    assert [item["id"] for item in items] == [201, 202]
    assert items[0]["name"] == "Seed 201 (new)"
    assert json.loads(document.out) == {"count": 2, "sequences": items}
    rows = list(csv.DictReader(io.StringIO(spreadsheet.out)))
    assert [row["id"] for row in rows] == list(ids.lines)
    assert rows[0]["name"] == "Seed 201 (new)"
    assert len(ids.lines) == 5


def test_a_table_fits_the_terminal_width(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")

    run = cli("select", "--base-url", reply_simulator.base_url, "--status", "new", "--output", "table")

    assert max(len(line) for line in run.lines) <= 60
    assert "…" in run.lines[2]


def test_pacing_under_a_tiny_rate_limit_sees_no_429(
    cli: Callable[..., Run], start_reply_simulator: Callable[..., ReplySimulator]
) -> None:
    # 4 calls a second at the simulator; the CLI gets the same budget with its minute shrunk to a second.
    simulator = start_reply_simulator(rate_limit=RateLimit(per_minute=4, per_hour=None, minute_seconds=1.0))

    run = cli(
        "select", "--base-url", simulator.base_url, "--include-archived", "--page-size", "5",
        "--rate-limit-per-minute", "4", "--rate-limit-per-hour", "0", "--rate-limit-time-scale", str(1 / 60),
    )  # fmt: skip

    assert run.code == 0, run.err
    assert len(run.lines) == 38  # every seeded sequence of the key's user
    statuses = [request.status for request in simulator.requests]
    assert len(statuses) == 8
    assert 429 not in statuses
    assert simulator.requests[4].at - simulator.requests[0].at >= 1.0  # the fifth call waited for the window


def test_a_429_waits_for_retry_after_and_goes_on(
    cli: Callable[..., Run], start_reply_simulator: Callable[..., ReplySimulator]
) -> None:
    # No pacing on our side: the simulator's 2-a-second limit answers 429 with Retry-After: 1.
    simulator = start_reply_simulator(rate_limit=RateLimit(per_minute=2, per_hour=None, minute_seconds=1.0))

    run = cli(
        "select", "--base-url", simulator.base_url, "--status", "paused", "--page-size", "8",
        "--rate-limit-per-minute", "0", "--rate-limit-per-hour", "0",
    )  # fmt: skip

    assert run.code == 0, run.err
    assert sorted(int(line) for line in run.lines) == SEEDED_PAUSED
    assert [r.status for r in simulator.requests].count(429) >= 1


def test_the_key_can_come_from_secrets_manager(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, aws_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPLY_API_KEY")

    run = cli("select", "--base-url", reply_simulator.base_url, "--status", "new", "--secret-id", aws_stack.secret_arn)
    missing = cli("select", "--base-url", reply_simulator.base_url, "--secret-id", "no-such-secret")

    assert run.code == 0
    assert len(run.lines) == 5
    assert missing.code == 3
    assert "cannot read the API key secret: Secrets Manager refused the call: ResourceNotFoundException" in missing.err


def test_a_rejected_key_a_missing_scope_and_an_unreachable_reply_are_exit_3(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRONG_KEY", "rk_wrong")
    reply_simulator.set_api_keys({"rk_read_nothing": frozenset()})

    rejected = cli("select", "--base-url", reply_simulator.base_url, "--api-key-env", "WRONG_KEY")
    monkeypatch.setenv("WRONG_KEY", "rk_read_nothing")
    no_scope = cli("select", "--base-url", reply_simulator.base_url, "--api-key-env", "WRONG_KEY")

    assert rejected.code == no_scope.code == 3
    assert rejected.err.strip() == "sequence-archiver select: error: Reply rejected the API key from $WRONG_KEY (401)"
    assert "(403)" in no_scope.err
    assert "needs the sequences:read scope" in no_scope.err
    nowhere = f"http://127.0.0.1:{closed_port()}"
    unreachable = cli("select", "--base-url", nowhere, "--max-attempts", "2")
    assert unreachable.code == 3
    assert unreachable.err.strip() == (
        f"sequence-archiver select: error: cannot reach Reply at {nowhere} after retries: no answer from Reply "
        "(NewConnectionError)"
    )


def test_a_400_from_reply_is_exit_2_and_transient_failures_are_retried(
    cli: Callable[..., Run], reply_simulator: ReplySimulator
) -> None:
    reply_simulator.inject(Fault(kind="status", status=503, times=1, path_prefix=LIST_PATH))
    reply_simulator.inject(Fault(kind="malformed", times=1, path_prefix=LIST_PATH))

    retried = cli("select", "--base-url", reply_simulator.base_url + "/", "--status", "new", "--page-size", "1000")
    reply_simulator.inject(Fault(kind="status", status=400, times=1, path_prefix=LIST_PATH))
    refused = cli("select", "--base-url", reply_simulator.base_url, "--status", "new")

    assert retried.code == 0
    assert len(retried.lines) == 5
    assert refused.code == 2
    assert refused.err.startswith("sequence-archiver select: error: Reply rejected the filters (400): Injected fault")


def test_a_key_from_a_secret_that_reply_rejects_names_the_secret(
    cli: Callable[..., Run], reply_simulator: ReplySimulator, aws_stack: LocalStack
) -> None:
    reply_simulator.set_api_keys({"rk_rotated": frozenset({"sequences:read"})})  # the secret's key is revoked

    run = cli(
        "select", "--base-url", reply_simulator.base_url, "--status", "paused", "--secret-id", aws_stack.secret_arn
    )

    assert run.code == 3
    assert run.out == ""
    assert run.err.strip() == (
        f"sequence-archiver select: error: Reply rejected the API key from the secret {aws_stack.secret_arn} (401), "
        "even after re-reading it"
    )
