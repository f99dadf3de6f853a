"""The backlog soak, scaled down: campaigns several times the hourly budget end with nothing dead-lettered but
the poison ID, every ID archived and reported once, and almost no call spent on an ID already archived."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from local.scenarios.soak_backlog import BacklogConfig, aws_call_seconds, ledger_table, run_backlog
from local.stand_ins.aws_stack import variables_to_unset

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.scenarios.lambda_instance import LambdaInstance
    from local.stand_ins.aws_stack import MotoServer

pytestmark = pytest.mark.integration

# Reply's hour lasts 3 s, invocations 1.5 s (on an idle machine: both grow in proportion on a loaded one, see
# BacklogConfig.paced_for); maxReceiveCount 3 here (5 in `make soak-backlog`) to keep it short.
SINGLE = BacklogConfig(
    "single", "single", hourly_calls=10, hour_seconds=3.0, messages=3, ids_per_message=10, max_receive_count=3
)
BULK = BacklogConfig(
    "bulk", "bulk", hourly_calls=4, hour_seconds=3.0, messages=6, ids_per_message=10, bulk_max_ids=5, poison_ids=0
)


@pytest.mark.parametrize("config", [SINGLE, BULK], ids=lambda config: config.label)
def test_a_campaign_several_times_the_hourly_budget_loses_nothing_and_redoes_almost_nothing(
    config: BacklogConfig,
    moto_server: MotoServer,
    load_handler: Callable[[], LambdaInstance],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def apply_environment(environment: dict[str, str]) -> None:
        for name in variables_to_unset(os.environ):
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)

    config = config.paced_for(aws_call_seconds(moto_server.endpoint_url))
    ledger = run_backlog(
        config, moto_endpoint=moto_server.endpoint_url, load_handler=load_handler, apply_environment=apply_environment
    )

    assert config.ids / config.ids_per_hour >= 3
    assert ledger.problems() == [], ledger_table([ledger])
    assert ledger.deferrals > 0  # the budget really ran out, and waiting was deferred, not failed
    assert ledger.healthy_messages_dead_lettered == 0
