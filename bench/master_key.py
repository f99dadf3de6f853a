"""N owners under a Master key against N times one user's ceiling: each sequence archived as its owner.

`python -m bench.master_key [--owners 5] [--ids-per-owner 120] [--limit 60] [--window 10] [--instances 2]`
prints one JSON object. One simulated workspace: its owner (user 1) and `--owners` members who own the
sequences; the function's secret holds the workspace's Master key; Reply allows every user `--limit` calls per
`--window` seconds. The IDs of every owner are mixed in the messages, which `--instances` worker processes
(the real handler on SQS events, bench/worker.py) archive in single mode with the shared rate budget table.

`users_ceiling` = N x (the ideal time of one owner's calls) / (the time from the first call to the last), where
an owner's ideal is floor((calls - 1) / limit) windows: how many users' ceilings the run reached together.
The issue's goal for 5 owners: >= 4 (>= 0.9 x N is the aim). Also reported: 429s per user, and whether every
sequence was archived as its owner.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.run import API_KEY, provision_bench_stack, run_workers, split
from local.stand_ins.aws_stack import create_rate_budget_table, function_environment, start_moto_server
from local.stand_ins.reply_simulator import (
    Assumptions,
    RateLimit,
    ReplySimulator,
    SimulatedUser,
    SimulatedWorkspace,
)

FIRST_ID = 4_000_000
WORKSPACE_OWNER = 1
IDS_PER_MESSAGE = 10
BATCH_SIZE = 10


def run(*, owners: int, ids_per_owner: int, limit: int, window: float, instances: int, endpoint: str) -> dict[str, Any]:
    """Archive every owner's IDs under the Master key; what Reply saw."""
    members = [100 + index for index in range(owners)]
    users = (
        SimulatedUser(WORKSPACE_OWNER, "owner@example.com", role="owner"),
        *(SimulatedUser(user, f"user{user}@example.com") for user in members),
    )
    workspace = SimulatedWorkspace(id=1, users=users, master_key=API_KEY)
    owner_of: dict[int, int] = {}
    with (
        ReplySimulator(
            api_keys={},
            workspaces=[workspace],
            rate_limit=RateLimit(per_minute=limit, per_hour=None, minute_seconds=window),
            latency_seconds=0.005,
            # Reply does not say whether the workspace owner sees its members' sequences; the Master key's owner
            # lookup needs it to (docs/rate-limits-and-backlog.md).
            assumptions=Assumptions(only_owner_sees_sequences=False),
            seed=False,
        ) as simulator,
        tempfile.TemporaryDirectory() as directory,
    ):
        for index, user in enumerate(members):
            first = FIRST_ID + index * ids_per_owner
            simulator.add_sequences(range(first, first + ids_per_owner), owner_user_id=user)
            owner_of.update(dict.fromkeys(range(first, first + ids_per_owner), user))
        stack = provision_bench_stack(endpoint, "master")
        table = stack.queue_url.rsplit("/", 1)[-1] + "-rate-budget"
        create_rate_budget_table(stack, table)
        environment = function_environment(
            stack,
            reply_base_url=simulator.base_url,
            REPLY_API_KEY_KIND="master",
            REPLY_ARCHIVE_MODE="single",
            REPLY_RATE_LIMIT_PER_MINUTE=str(limit),
            REPLY_RATE_LIMIT_PER_HOUR="0",
            REPLY_RATE_LIMIT_INSTANCES=str(max(2, instances)),
            REPLY_RATE_LIMIT_TIME_SCALE=str(window / 60.0),
            RATE_BUDGET_TABLE_NAME=table,
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        ids = list(owner_of)
        random.Random(7).shuffle(ids)  # every message holds IDs of several owners
        bodies = [
            json.dumps({"sequenceIds": ids[start : start + IDS_PER_MESSAGE]})
            for start in range(0, len(ids), IDS_PER_MESSAGE)
        ]
        workers = run_workers(environment, split(bodies, instances), BATCH_SIZE, Path(directory))
        archives = [r for r in simulator.requests if r.path.endswith("/archive") and r.method == "POST"]
        calls = simulator.user_calls()
        as_owner = 0
        archived = 0
        for sequence_id, owner in owner_of.items():
            sequence = simulator.sequence(sequence_id)
            if sequence is not None and sequence.is_archived:
                archived += 1
                as_owner += sequence.archived_by_user_id == owner
    accepted = sorted(r.at for r in archives if r.status == 200)
    timeline: dict[str, list[int]] = {}
    for request in archives:
        if request.status == 200 and accepted:
            row = timeline.setdefault(str(request.acting_user_id), [0] * (int((accepted[-1] - accepted[0]) / 5) + 1))
            row[int((request.at - accepted[0]) / 5)] += 1
    elapsed = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    ideal_per_owner = ((ids_per_owner - 1) // limit) * window
    return {
        "owners": owners,
        "instances": instances,
        "ids": len(owner_of),
        "archived": archived,
        "archived_as_owner": as_owner,
        "failed_records": sum(worker["failed_records"] for worker in workers),
        "archive_calls": len(archives),
        "http_429": {str(user): calls[user].too_many_requests for user in calls},
        "lookup_calls": calls[WORKSPACE_OWNER].calls if WORKSPACE_OWNER in calls else 0,
        "seconds": round(elapsed, 2),
        "ideal_seconds_per_owner": ideal_per_owner,
        "calls_per_5s_by_owner": timeline,
        "users_ceiling": round(owners * ideal_per_owner / elapsed, 2) if elapsed > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.master_key", description=__doc__.splitlines()[0])
    parser.add_argument("--owners", type=int, default=5)
    parser.add_argument("--ids-per-owner", type=int, default=120)
    parser.add_argument("--limit", type=int, default=60, help="calls each user may make per window (default 60)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of Reply's 'minute' (default 10)")
    parser.add_argument("--instances", type=int, default=2)
    arguments = parser.parse_args(argv)
    server = start_moto_server()
    try:
        result = run(
            owners=arguments.owners,
            ids_per_owner=arguments.ids_per_owner,
            limit=arguments.limit,
            window=arguments.window,
            instances=arguments.instances,
            endpoint=server.endpoint_url,
        )
    finally:
        server.stop()
    print(json.dumps(result, indent=2))
    return 0 if sum(result["http_429"].values()) == 0 and result["archived_as_owner"] == result["ids"] else 1


if __name__ == "__main__":
    sys.exit(main())
