"""Builds the object graph once per Lambda instance: AWS clients, the Reply clients (the default key's, and one per
named workspace on its first use), the core."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from sequence_archiver.archiving.archiver import SequenceArchiver
from sequence_archiver.archiving.snapshots import SequenceSnapshots, SnapshotPolicy
from sequence_archiver.aws.dead_letters import DeadLetterQueue
from sequence_archiver.aws.idempotency import build_request_idempotency
from sequence_archiver.aws.rate_budget import SharedRateBudget
from sequence_archiver.aws.results_publisher import ResultsPublisher
from sequence_archiver.aws.retry_timing import ContinuationQueue, RecordVisibility, SourceQueues
from sequence_archiver.aws.snapshot_store import S3SnapshotStore, snapshot_key
from sequence_archiver.aws.sqs import SqsSender
from sequence_archiver.core.continuations import ContinuationSeal
from sequence_archiver.observability import MetricsRecorder, NoTracing, PowertoolsTracing
from sequence_archiver.pipeline.effects.apply import Effects
from sequence_archiver.pipeline.selections import Selections
from sequence_archiver.pipeline.service import ArchiveService
from sequence_archiver.pipeline.work import Work
from sequence_archiver.reply.api_key import SecretsManagerApiKey
from sequence_archiver.reply.client import ReplyClient, RetryPolicy, Timeouts
from sequence_archiver.reply.rate_limiter import RateLimiter, budgets_for
from sequence_archiver.settings import ApiKeyKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools import Metrics, Tracer
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from sequence_archiver.archiving.cleanup import CleanupPolicies
    from sequence_archiver.archiving.owners import SequenceOwners
    from sequence_archiver.core.reply_answers import ApiCall
    from sequence_archiver.settings import Settings

# Every AWS service build_service makes a client for, one `session.client(...)` each (a test holds this to the code).
# The built layer ships botocore's models for these alone (tools/finish_build.py): a client for any other service
# could not be made in Lambda.
AWS_SERVICES = ("dynamodb", "events", "s3", "secretsmanager", "sqs")

# Every AWS call is bounded as a whole by the time left (aws/calls.py: call_within). These settings only shape a
# call inside that bound: short socket timeouts (each read, not the call) end an abandoned call's thread
# soon, and the standard retry mode makes 3 attempts in all (`max_attempts` would count retries).
AWS_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 3}, tcp_keepalive=True
)


def build_service(settings: Settings, metrics: Metrics, tracer: Tracer | None = None) -> ArchiveService:
    """Create every collaborator from settings; AWS endpoints follow AWS_ENDPOINT_URL as boto3 does."""
    session = boto3.session.Session()
    tracing = PowertoolsTracing(tracer) if tracer is not None and not tracer.disabled else NoTracing()
    recorder = MetricsRecorder(
        metrics,
        workspaces=frozenset(settings.reply_workspaces),
        workspace_metrics=lambda: EphemeralMetrics(namespace=settings.metrics_namespace, service=settings.service_name),
    )
    dynamodb = cache(lambda: session.client("dynamodb", config=AWS_CLIENT_CONFIG))  # one client for both tables
    secrets = cache(
        lambda: SecretsProvider(boto3_client=session.client("secretsmanager", config=AWS_CLIENT_CONFIG))
    )  # one client for every workspace's secret
    api_key = SecretsManagerApiKey(
        secret_id=settings.reply_api_key_secret_id,
        provider=secrets(),
        max_age_seconds=settings.secret_max_age_seconds,
    )
    # Always the default secret's key, whatever workspace a continuation carries on (docs/security.md).
    seal = ContinuationSeal(keys=api_key, on_forged=recorder.record_forged_continuation)
    shared_budget = shared_rate_budget(settings, dynamodb)  # keyed by each key's fingerprint: one budget per user

    def new_limiter() -> RateLimiter:
        """A Reply user's pacing: its static share, and the shared budget when there is a table."""
        budgets = budgets_for(
            per_minute=settings.rate_limit_per_minute,
            per_hour=settings.rate_limit_per_hour,
            instances=settings.rate_limit_instances,
            time_scale=settings.rate_limit_time_scale,
        )
        return RateLimiter(budgets, instances=settings.rate_limit_instances, shared=shared_budget)

    def reply_client(key: SecretsManagerApiKey, on_api_call: Callable[[ApiCall], None]) -> ReplyClient:
        """A client for one key, with a rate limiter of its own: the rate budget is per Reply user."""
        return ReplyClient(
            base_url=settings.reply_api_base_url,
            api_key_source=key,
            retry_policy=RetryPolicy(
                max_attempts=settings.reply_max_attempts,
                backoff_base_seconds=settings.reply_backoff_base_seconds,
                backoff_max_seconds=settings.reply_backoff_max_seconds,
            ),
            timeouts=Timeouts(
                connect_seconds=settings.reply_connect_timeout_seconds,
                read_seconds=settings.reply_read_timeout_seconds,
            ),
            rate_limiter=new_limiter(),
            user_rate_limiter=new_limiter,  # a Master key: one budget per user acted as
            on_api_call=on_api_call,
            on_unconfirmed=recorder.record_unconfirmed_answer,
            tracing=tracing,
        )

    s3 = cache(lambda: session.client("s3", config=AWS_CLIENT_CONFIG))  # built at the first snapshot stored
    snapshot_store = (
        S3SnapshotStore(s3_client=s3, bucket=settings.snapshot_bucket_name) if settings.snapshot_bucket_name else None
    )

    def snapshots_for(client: ReplyClient, workspace: str | None) -> SequenceSnapshots | None:
        """Each sequence's contacts recorded before its archive call, with the archiving client (its key, budget
        and acting user), when SNAPSHOT_BUCKET_NAME is set and SNAPSHOT_POLICY is not `off`."""
        if snapshot_store is None or not settings.snapshots_enabled:
            return None
        required = settings.snapshot_policy is SnapshotPolicy.REQUIRED
        return SequenceSnapshots(client, snapshot_store, key_of=snapshot_key, required=required, workspace=workspace)

    reply = reply_client(api_key, recorder.record_api_call)
    workspaces = Workspaces(
        settings,
        snapshots_for,
        lambda workspace: reply_client(
            SecretsManagerApiKey(
                secret_id=settings.workspace_secret_ids[workspace],
                provider=secrets(),
                max_age_seconds=settings.secret_max_age_seconds,
            ),
            recorder.api_call_recorder(workspace),
        ),
    )
    publisher = ResultsPublisher(
        events_client=session.client("events", config=AWS_CLIENT_CONFIG),
        event_bus_name=settings.results_event_bus_name,
        source=settings.results_event_source,
        max_attempts=settings.results_publish_max_attempts,
        tracing=tracing,
    )
    sqs = cache(lambda: session.client("sqs", config=AWS_CLIENT_CONFIG))  # only unhappy paths need SQS
    sender = SqsSender(sqs_client=sqs)  # every message the function sends
    dead_letters = (
        DeadLetterQueue(sender=sender, queue_url=settings.dead_letter_queue_url)
        if settings.dead_letter_queue_url
        else None
    )
    idempotency = (
        build_request_idempotency(
            table_name=settings.idempotency_table_name,
            expires_after_seconds=settings.idempotency_expires_after_seconds,
            dynamodb_client=dynamodb(),
            function_name=settings.service_name,
        )
        if settings.idempotency_table_name
        else None
    )
    source_queues = SourceQueues(sqs_client=sqs)

    owners = owners_for(settings, reply)  # a Master key: who owns each sequence

    @cache
    def cleanup() -> CleanupPolicies:
        """Built on the first clean-up request: archive requests never import the selection models."""
        from sequence_archiver.archiving.cleanup import ArchiveQueue, CleanupPolicies  # noqa: PLC0415 - on first use
        from sequence_archiver.reply.listing import SequencePages  # noqa: PLC0415 - on first use

        archive_queue = (
            ArchiveQueue(sender=sender, queue_url=settings.archive_queue_url) if settings.archive_queue_url else None
        )
        return CleanupPolicies(
            # The same client: the key's rate budget and the invocation's deadline. A Master key's archiver learns
            # the owners of what the clean-up lists (the IDs it enqueues often come back to this instance).
            pages=SequencePages(reply, on_items=owners.learn_from if owners is not None else None),
            archive_queue=archive_queue,
            seal=seal,
            records=idempotency,  # enqueueing recorded in the idempotency table, when there is one
            page_size=settings.selection_page_size,
            max_failures=settings.sqs_max_receive_count,
            workspace_pages=lambda workspace: SequencePages(workspaces.client(workspace)),
            # A selection's per-sequence checks (contactsFinished, inactiveForDays) go through the listing's client
            contact_checks=reply,
            workspace_contact_checks=workspaces.client,
        )

    archiver = SequenceArchiver(
        reply,
        mode=settings.archive_mode,
        bulk_max_ids=settings.bulk_max_ids,
        owners=owners,
        snapshots=snapshots_for(reply, None),
    )
    return ArchiveService(
        work=Work(
            archiver=archiver,
            selections=Selections(
                metrics=recorder, cleanup=cleanup, allowed_triggers=settings.cleanup_allowed_triggers
            ),
            idempotency=idempotency,
            seal=seal,
            workspaces=workspaces,
        ),
        effects=Effects(
            publisher=publisher,
            metrics=recorder,
            dead_letters=dead_letters,
            visibility=RecordVisibility(sqs_client=sqs, queues=source_queues),
            continuations=ContinuationQueue(sender=sender, queues=source_queues),
            idempotency=idempotency,
            seal=seal,
            cleanup=cleanup,
        ),
        metrics=recorder,
        max_receive_count=settings.sqs_max_receive_count,
        idempotency=idempotency,
        deadline_safety_margin_seconds=settings.deadline_safety_margin_seconds,
    )


class Workspaces:
    """The named workspaces (REPLY_WORKSPACES): each one's client (its key, its rate limiter) and archiver, built on
    the workspace's first request and kept for the instance, so a deployment pays only for the workspaces it meets.
    """

    def __init__(
        self,
        settings: Settings,
        snapshots_for: Callable[[ReplyClient, str | None], SequenceSnapshots | None],
        client_for: Callable[[str], ReplyClient],
    ) -> None:
        self._settings = settings
        self._snapshots_for = snapshots_for
        self._client_for = client_for
        self._clients: dict[str, ReplyClient] = {}
        self._archivers: dict[str, SequenceArchiver] = {}

    @property
    def names(self) -> frozenset[str]:
        """The workspaces a request may name."""
        return frozenset(self._settings.reply_workspaces)

    def client(self, workspace: str) -> ReplyClient:
        """The workspace's Reply client; KeyError for a workspace that is not served (requests are checked first)."""
        if workspace not in self._clients:
            self._clients[workspace] = self._client_for(workspace)
        return self._clients[workspace]

    def archiver(self, workspace: str) -> SequenceArchiver:
        """The workspace's archiver: its own memory of Reply's bulk size and of a bulk endpoint refused to its key."""
        if workspace not in self._archivers:
            settings = self._settings
            client = self.client(workspace)
            self._archivers[workspace] = SequenceArchiver(
                client,
                mode=settings.archive_mode,
                bulk_max_ids=settings.bulk_max_ids,
                owners=owners_for(settings, client),  # REPLY_API_KEY_KIND holds for every workspace's key
                snapshots=self._snapshots_for(client, workspace),  # in the bucket's folder of the workspace
            )
        return self._archivers[workspace]


def shared_rate_budget(settings: Settings, dynamodb: Callable[[], DynamoDBClient]) -> SharedRateBudget | None:
    """The budget every instance draws on, when RATE_BUDGET_TABLE_NAME names its table; else None (static shares)."""
    if not settings.rate_budget_table_name:
        return None
    return SharedRateBudget.for_limits(
        dynamodb_client=dynamodb(),
        table_name=settings.rate_budget_table_name,
        per_minute=settings.rate_limit_per_minute,
        per_hour=settings.rate_limit_per_hour,
        time_scale=settings.rate_limit_time_scale,
    )


def owners_for(settings: Settings, reply: ReplyClient) -> SequenceOwners | None:
    """With a Master key, where each sequence's owner comes from (each is archived as its owner); else None."""
    if settings.api_key_kind is not ApiKeyKind.MASTER:
        return None
    from sequence_archiver.archiving.owners import SequenceOwners  # noqa: PLC0415 - only a master key needs it
    from sequence_archiver.reply.listing import SequencePages  # noqa: PLC0415 - on first use

    return SequenceOwners(reply, SequencePages(reply))
