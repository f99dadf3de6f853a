"""A FIFO batch, in order within each message group, with Powertools' `skip_group_on_error` semantics.

At the first record of a group that must be retried, it and the group's later records go back unprocessed, so
nothing overtakes it; the other groups go on. Continuations are not used (one would join the back of its
group). A rejected record, or one given up at its last receive (verdicts.decide), leaves its place in the
group only once parked, so it is parked here, before the records behind it are archived.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sequence_archiver.pipeline.effects.settlement import Settlement
from sequence_archiver.pipeline.verdicts import decide

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.pipeline.deliveries import Delivery
    from sequence_archiver.pipeline.effects.apply import Effects
    from sequence_archiver.pipeline.verdicts import Rules
    from sequence_archiver.pipeline.work import Work


def archive_in_order(
    deliveries: Sequence[Delivery], work: Work, effects: Effects, rules: Rules, deadline: Deadline
) -> dict[int, Settlement]:
    """Archive, decide and (when rejected) park each record in turn; the settlements by delivery identity."""
    stopped_by: dict[str | None, str] = {}  # message group -> the record that stopped it
    settled: dict[int, Settlement] = {}
    for delivery in deliveries:
        group = delivery.receipt.message_group_id if delivery.receipt is not None else None
        delivery.behind = stopped_by.get(group)
        if delivery.behind is None:
            work.archive([delivery], deadline)
        settlement = Settlement(delivery, decide(delivery, rules))
        effects.park([settlement], deadline)
        if settlement.verdict.retried and delivery.behind is None:
            stopped_by[group] = delivery.delivery_id
        settled[id(delivery)] = settlement
    return settled
