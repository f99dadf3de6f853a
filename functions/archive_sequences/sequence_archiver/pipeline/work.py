"""The work of an invocation's deliveries, recorded as facts on them: claim, parse, list, archive.

Each step works on deliveries one by one, so what one delivery's content does (a payload that cannot be parsed,
an ID Reply keeps failing) becomes that delivery's facts and nothing else's; only the archive step spans the
batch, so bulk calls span an SQS batch. Nothing here decides a delivery's fate (verdicts.py) or has an effect
beyond Reply and the claims (effects/). Reply work stops at the work deadline.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from sequence_archiver.core.exceptions import UnknownWorkspaceError
from sequence_archiver.observability import correlation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sequence_archiver.archiving.archiver import SequenceArchiver
    from sequence_archiver.aws.idempotency import RequestIdempotency
    from sequence_archiver.core.archive_request import ArchiveRequest
    from sequence_archiver.core.continuations import ContinuationSeal
    from sequence_archiver.core.deadline import Deadline, InvocationDeadlines
    from sequence_archiver.pipeline.deliveries import Delivery, Invocation
    from sequence_archiver.pipeline.selections import Selections

logger = logging.getLogger(__name__)

CLAIMS_SHARE = 0.25  # of the work time: the most that claiming (DynamoDB) may take before archiving
SELECTION_SHARE = 0.5  # of the work time: what listing clean-up selections may take when IDs are archived too


class WorkspaceArchivers(Protocol):
    """The named workspaces this function serves (REPLY_WORKSPACES), each archiving with its own key and client."""

    @property
    def names(self) -> frozenset[str]:
        """The workspaces a request may name."""
        ...

    def archiver(self, workspace: str) -> SequenceArchiver:
        """The archiver of one served workspace (built on its first use, then kept)."""
        ...


class Work:
    """Claims, parses, lists and archives an invocation's deliveries; created once per Lambda instance."""

    def __init__(
        self,
        *,
        archiver: SequenceArchiver,
        selections: Selections,
        idempotency: RequestIdempotency | None = None,
        seal: ContinuationSeal | None = None,
        workspaces: WorkspaceArchivers | None = None,
    ) -> None:
        self._archiver = archiver  # the default key's: requests that name no workspace
        self._workspaces = workspaces  # without it, a request naming a workspace is rejected
        self._idempotency = idempotency
        self._seal = seal  # opens the continuations received; without it none is honoured
        self._selections = selections  # the clean-up requests' listing

    def prepare(self, invocation: Invocation, deadlines: InvocationDeadlines) -> list[Delivery]:
        """Claim, parse and list every delivery; the ones this invocation works on (not done, not held)."""
        # A hanging idempotency table may take a quarter of the work time, never the Reply work itself.
        claims = deadlines.work.share(CLAIMS_SHARE)
        served = self._workspaces.names if self._workspaces is not None else frozenset()
        for delivery in invocation.deliveries:
            with correlation(delivery.delivery_id):
                if self._idempotency is not None and delivery.claimable:  # completed ones are acknowledged untouched
                    delivery.claim = self._idempotency.claim(delivery.delivery_id, deadline=claims)
                if delivery.ours:  # continuations are checked with the secret the Reply work reads anyway
                    delivery.parse(invocation.shape, self._seal, deadlines.work, workspaces=served)
        active = [delivery for delivery in invocation.deliveries if delivery.ours]
        selections = [delivery for delivery in active if delivery.cleanup is not None]
        if selections:
            # Listing may not starve the archive requests of the same batch: it gets half the work time then.
            archiving_too = any(delivery.request is not None for delivery in active)
            listing = deadlines.work.share(SELECTION_SHARE) if archiving_too else deadlines.work
            self._selections.list(selections, listing, arrival=invocation.shape)
        return active

    def archive(self, deliveries: Sequence[Delivery], deadline: Deadline) -> None:
        """Archive the IDs of every parsed request together, workspace by workspace (bulk calls span a workspace's
        requests, never two keys); Reply's answers become each delivery's results."""
        parsed = [
            (delivery, delivery.request)
            for delivery in deliveries
            if delivery.request is not None and delivery.held is None
        ]
        if not parsed:
            return
        logger.info("archive batch received", extra={"records": len(deliveries), "requests": len(parsed)})
        by_workspace: dict[str | None, list[tuple[Delivery, ArchiveRequest]]] = {}
        for delivery, request in parsed:  # in the order they came: the default key's first only when it came first
            by_workspace.setdefault(request.workspace, []).append((delivery, request))
        for workspace, group in by_workspace.items():
            self._archive_with(workspace, group, deadline)

    def _archive_with(
        self, workspace: str | None, group: Sequence[tuple[Delivery, ArchiveRequest]], deadline: Deadline
    ) -> None:
        """Archive one workspace's requests with its archiver (its key, its client, its rate budget)."""
        try:
            archiver = self._archiver_of(workspace)
            per_request = archiver.archive_all(
                [request for _, request in group],
                deadline,
                request_ids=[delivery.request_id for delivery, _ in group],
            )
        except Exception as exc:  # the archiver contains per-ID errors; anything else is ours, and retried
            logger.exception(
                "archiving failed unexpectedly", extra={"error": type(exc).__name__, "workspace": workspace}
            )
            for delivery, _ in group:
                delivery.hold(f"archiving failed unexpectedly ({type(exc).__name__})")
            return
        for (delivery, _), results in zip(group, per_request, strict=True):
            delivery.results = tuple(results)

    def _archiver_of(self, workspace: str | None) -> SequenceArchiver:
        if workspace is None:
            return self._archiver
        if self._workspaces is None:  # parse rejects such a request first: a bug if it gets here
            raise UnknownWorkspaceError(f'workspace "{workspace}" is not served by this function')
        return self._workspaces.archiver(workspace)
