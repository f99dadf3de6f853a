"""Configuration: the environment is read once, at cold start, into a validated model."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sequence_archiver.archiving.archiver import ArchiveMode
from sequence_archiver.archiving.snapshots import SnapshotPolicy
from sequence_archiver.core.archive_request import WORKSPACE_PATTERN, WORKSPACE_RULE
from sequence_archiver.core.exceptions import ConfigurationError
from sequence_archiver.core.request_report import EventShape
from sequence_archiver.core.results_contract import RESULTS_EVENT_SOURCE

if TYPE_CHECKING:
    from collections.abc import Mapping

PositiveSeconds = Annotated[float, Field(gt=0, le=900)]

# A Secrets Manager secret's ARN as the template's parameters allow it: no wildcard (* or ?) can widen the
# GetSecretValue grant the ARN becomes (secret names are letters, digits and /_+=.@-; the ARN adds -XXXXXX).
SECRET_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+")
# Named workspaces at most: every one adds a secret ARN to the environment (4 KB in all) and to the role's policy,
# and its own custom metrics (docs/configuration.md, Several Reply workspaces).
MAX_WORKSPACES = 20
# An S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit.
BUCKET_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class ApiKeyKind(StrEnum):
    """Which kind of Reply API key the secret holds."""

    USER = "user"
    MASTER = "master"


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses, the only hosts allowed over plain http."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_reply_base_url(value: str) -> str:
    """The Reply base URL without a trailing slash; ValueError (never quoting the URL) when it is unsafe."""
    text = value.strip()
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.scheme not in {"https", "http"} or not host:
        raise ValueError("must be an absolute https:// URL such as https://api.reply.io")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ValueError("plain http is only allowed to a loopback host (local testing); use https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials; the API key comes from Secrets Manager")
    # urlsplit reports an empty query or fragment ("...v3?", "...io#") as no query at all: look at the text.
    if "?" in text or "#" in text:
        raise ValueError("must not have a query string or fragment")
    _check_port(parts)
    return text.rstrip("/")


def _check_port(parts: SplitResult) -> None:
    """ValueError unless the URL has no port or one in 1..65535 (urlsplit's own error would quote it)."""
    try:
        port = parts.port
    except ValueError:
        port = -1  # out of range or not a number; raised below, outside this handler, chaining nothing
    explicit = parts.netloc.rpartition("]")[2].rpartition("@")[2].count(":") > 0
    if port is None and explicit:
        port = -1  # "host:" with nothing after the colon
    if port is not None and not 1 <= port <= 65_535:
        raise ValueError("has an invalid port: it must be a number from 1 to 65535")


class Settings(BaseModel):
    """Every tunable of the function; field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    reply_api_key_secret_id: str = Field(alias="REPLY_API_KEY_SECRET_ID", min_length=1)
    reply_api_base_url: str = Field(default="https://api.reply.io", alias="REPLY_API_BASE_URL")
    results_event_bus_name: str = Field(default="default", alias="RESULTS_EVENT_BUS_NAME", min_length=1)
    results_event_source: str = Field(
        default=RESULTS_EVENT_SOURCE, alias="RESULTS_EVENT_SOURCE", min_length=1, max_length=256
    )
    service_name: str = Field(default="sequence-archiver", alias="POWERTOOLS_SERVICE_NAME", min_length=1)
    metrics_namespace: str = Field(default="ReplySequenceArchiver", alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)
    dead_letter_queue_url: str | None = Field(default=None, alias="DEAD_LETTER_QUEUE_URL")
    # Where clean-up policies send the IDs they select (and the continuations of a long listing): the request
    # queue. Optional: without it, dry runs that fit one invocation still work; a live run is rejected.
    archive_queue_url: str | None = Field(default=None, alias="ARCHIVE_QUEUE_URL", max_length=1024)
    # Sequences per GET /v3/sequences page for clean-up policies: each page costs one call of the rate budget.
    selection_page_size: int = Field(default=1000, ge=1, le=1000, alias="SELECTION_PAGE_SIZE")
    reply_connect_timeout_seconds: PositiveSeconds = Field(default=3.0, alias="REPLY_CONNECT_TIMEOUT_SECONDS")
    reply_read_timeout_seconds: PositiveSeconds = Field(default=10.0, alias="REPLY_READ_TIMEOUT_SECONDS")
    reply_max_attempts: int = Field(default=4, ge=1, le=10, alias="REPLY_MAX_ATTEMPTS")
    reply_backoff_base_seconds: PositiveSeconds = Field(default=0.5, alias="REPLY_BACKOFF_BASE_SECONDS")
    reply_backoff_max_seconds: PositiveSeconds = Field(default=20.0, alias="REPLY_BACKOFF_MAX_SECONDS")
    # Reply work stops this long before Lambda's timeout (at most a quarter of the time at the start, see
    # deadline.py): the time kept for publishing results, parking rejected records and settling the batch,
    # AWS calls that are each bounded by the time left until just before Lambda's own deadline.
    deadline_safety_margin_seconds: float = Field(default=10.0, ge=0, le=120, alias="DEADLINE_SAFETY_MARGIN_SECONDS")
    secret_max_age_seconds: int = Field(default=300, ge=0, le=86_400, alias="SECRET_MAX_AGE_SECONDS")
    results_publish_max_attempts: int = Field(default=3, ge=1, le=10, alias="RESULTS_PUBLISH_MAX_ATTEMPTS")
    rate_limit_per_minute: int = Field(default=100, ge=0, le=100_000, alias="REPLY_RATE_LIMIT_PER_MINUTE")
    rate_limit_per_hour: int = Field(default=3000, ge=0, le=1_000_000, alias="REPLY_RATE_LIMIT_PER_HOUR")
    rate_limit_instances: int = Field(default=1, ge=1, le=1000, alias="REPLY_RATE_LIMIT_INSTANCES")
    rate_limit_time_scale: float = Field(default=1.0, gt=0, le=1.0, alias="REPLY_RATE_LIMIT_TIME_SCALE")
    # The shared rate budget (aws/rate_budget.py): every instance draws on one budget per Reply user in this
    # DynamoDB table. Unset: each instance keeps to its static share (the budget / REPLY_RATE_LIMIT_INSTANCES).
    rate_budget_table_name: str | None = Field(default=None, alias="RATE_BUDGET_TABLE_NAME", max_length=255)
    # What REPLY_API_KEY_SECRET_ID holds: a user's key (calls act as that user, on one budget) or the workspace's
    # Master key (each sequence is archived as its owner, X-User-Id, on the owner's budget; archiving/owners.py).
    api_key_kind: ApiKeyKind = Field(default=ApiKeyKind.USER, alias="REPLY_API_KEY_KIND")
    archive_mode: ArchiveMode = Field(default=ArchiveMode.AUTO, alias="REPLY_ARCHIVE_MODE")
    bulk_max_ids: int = Field(default=100, ge=1, le=1000, alias="REPLY_BULK_MAX_IDS")
    # The request queue's redrive maxReceiveCount: how many deliveries with a real failure a request carried on
    # by continuations may have before its record is left to SQS's retries and redrive policy.
    sqs_max_receive_count: int = Field(default=5, ge=1, le=1000, alias="SQS_MAX_RECEIVE_COUNT")
    # Tracing follows Powertools' own rule: on in Lambda (LAMBDA_TASK_ROOT set, not `sam local`) unless
    # POWERTOOLS_TRACE_DISABLED. Decided here so the X-Ray SDK (over 100 ms to import) is never loaded when off.
    trace_disabled: bool = Field(default=False, alias="POWERTOOLS_TRACE_DISABLED")
    lambda_task_root: str | None = Field(default=None, alias="LAMBDA_TASK_ROOT")
    sam_local: bool = Field(default=False, alias="AWS_SAM_LOCAL")
    idempotency_table_name: str | None = Field(default=None, alias="IDEMPOTENCY_TABLE_NAME")
    idempotency_expires_after_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, alias="IDEMPOTENCY_EXPIRES_AFTER_SECONDS"
    )
    # The triggers a clean-up request (`select`) may arrive on. `direct` alone (the default): the schedule and
    # other direct invokes, which IAM already limits to the principals allowed lambda:InvokeFunction. A producer
    # trusted to send a few IDs on the queue, a rule or a topic cannot run a workspace-wide clean-up.
    cleanup_allowed_triggers: frozenset[EventShape] = Field(
        default=frozenset({EventShape.DIRECT}), alias="CLEANUP_ALLOWED_TRIGGERS"
    )
    # Named Reply workspaces and the secrets holding their API keys, comma-separated lists in the same order
    # (template parameters ReplyWorkspaceNames, ReplyWorkspaceSecretArns). A request naming one (`"workspace"`)
    # uses only that secret's key, with its own client and rate limiter; a request naming none uses
    # REPLY_API_KEY_SECRET_ID, as without workspaces. Both empty (the default): no named workspaces.
    reply_workspaces: tuple[str, ...] = Field(default=(), alias="REPLY_WORKSPACES")
    reply_workspace_secret_ids: tuple[str, ...] = Field(default=(), alias="REPLY_WORKSPACE_SECRET_IDS")
    # Snapshots before archiving (archiving/snapshots.py): the bucket the sequence's contacts are written to before
    # its archive call, and what happens when that fails. Unset bucket: no snapshots are taken (local runs).
    snapshot_bucket_name: str | None = Field(default=None, alias="SNAPSHOT_BUCKET_NAME")
    snapshot_policy: SnapshotPolicy = Field(default=SnapshotPolicy.REQUIRED, alias="SNAPSHOT_POLICY")
    # botocore, boto3, urllib3 and s3transfer log at WARNING and above only, whatever the root logger's level:
    # their DEBUG lines include response bodies, GetSecretValue's (the API key) among them. `true` lets their
    # debug lines through for local troubleshooting; Secrets Manager response bodies are still withheld.
    sdk_debug_logging: bool = Field(default=False, alias="SDK_DEBUG_LOGGING")

    @field_validator("cleanup_allowed_triggers", mode="before")
    @classmethod
    def _trigger_names(cls, value: object) -> object:
        """A comma-separated list of trigger names (any case, spaces allowed); at least one, none unknown."""
        if not isinstance(value, str):
            return value
        names = {name.strip().lower() for name in value.split(",") if name.strip()}
        known = [shape.value for shape in EventShape]
        unknown = sorted(names - set(known))
        if unknown:
            shown = ", ".join(name[:20] for name in unknown[:4])
            raise ValueError(f"unknown trigger name(s) {shown}: give a comma-separated list of {', '.join(known)}")
        if not names:
            raise ValueError(f"must name at least one trigger: a comma-separated list of {', '.join(known)}")
        return frozenset(EventShape(name) for name in names)

    @field_validator("reply_api_base_url")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        """Reject anything but https (plain http only to a loopback host), credentials, query or fragment."""
        return validate_reply_base_url(value)

    @field_validator("reply_workspaces", mode="before")
    @classmethod
    def _workspace_names(cls, value: object) -> object:
        """A comma-separated list of workspace names (spaces around them allowed); empty for none."""
        if not isinstance(value, str):
            return value
        names = _comma_list(value)
        for position, name in enumerate(names, start=1):
            if not WORKSPACE_PATTERN.fullmatch(name):
                raise ValueError(f"item {position} is not a workspace name ({WORKSPACE_RULE})")
        return tuple(names)

    @field_validator("reply_workspace_secret_ids", mode="before")
    @classmethod
    def _workspace_secret_arns(cls, value: object) -> object:
        """A comma-separated list of Secrets Manager secret ARNs (no wildcards); empty for none."""
        if not isinstance(value, str):
            return value
        arns = _comma_list(value)
        for position, arn in enumerate(arns, start=1):
            if not SECRET_ARN_PATTERN.fullmatch(arn):
                raise ValueError(
                    f"item {position} is not a Secrets Manager secret ARN "
                    "(arn:aws:secretsmanager:<region>:<account>:secret:<name>, without wildcards)"
                )
        return tuple(arns)

    @model_validator(mode="after")
    def _one_secret_per_workspace(self) -> Settings:
        """As many secrets as workspaces, no name twice, no secret twice (not even the default one)."""
        names, arns = self.reply_workspaces, self.reply_workspace_secret_ids
        if len(names) != len(arns):
            raise ValueError(
                f"REPLY_WORKSPACES names {len(names)} workspace(s) and REPLY_WORKSPACE_SECRET_IDS holds {len(arns)} "
                "secret ARN(s): give one secret per workspace, in the same order"
            )
        if len(names) > MAX_WORKSPACES:
            raise ValueError(f"REPLY_WORKSPACES names {len(names)} workspaces; at most {MAX_WORKSPACES} are served")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"REPLY_WORKSPACES names {', '.join(repeated)} more than once")
        # One key in two places would be two rate limiters (and two clients) for one Reply user.
        shared = sorted({position for position, arn in enumerate(arns, start=1) if arns.count(arn) > 1})
        if shared or self.reply_api_key_secret_id in arns:
            raise ValueError(
                "REPLY_WORKSPACE_SECRET_IDS names a secret more than once, or the default REPLY_API_KEY_SECRET_ID: "
                "each workspace needs a secret of its own"
            )
        return self

    @property
    def workspace_secret_ids(self) -> dict[str, str]:
        """Each named workspace's API key secret (ARN), in the configured order."""
        return dict(zip(self.reply_workspaces, self.reply_workspace_secret_ids, strict=True))

    @property
    def tracing_enabled(self) -> bool:
        """Whether X-Ray tracing runs in this environment."""
        return not self.trace_disabled and bool(self.lambda_task_root) and not self.sam_local

    @field_validator("snapshot_bucket_name")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        """Empty means no snapshots; anything else must be an S3 bucket name."""
        if not value:
            return None
        if not BUCKET_NAME_PATTERN.fullmatch(value):
            raise ValueError("must be an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)")
        return value

    @property
    def snapshots_enabled(self) -> bool:
        """Whether each sequence's contacts are stored before it is archived."""
        return self.snapshot_bucket_name is not None and self.snapshot_policy is not SnapshotPolicy.OFF

    @field_validator("archive_mode", "api_key_kind", "snapshot_policy", mode="before")
    @classmethod
    def _mode_case_insensitive(cls, value: object) -> object:
        """Accept AUTO/Single/bulk (and USER/Master) alike."""
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("dead_letter_queue_url", "idempotency_table_name", "archive_queue_url", "rate_budget_table_name")
    @classmethod
    def _empty_means_unset(cls, value: str | None) -> str | None:
        """Treat an empty DEAD_LETTER_QUEUE_URL, IDEMPOTENCY_TABLE_NAME, ARCHIVE_QUEUE_URL or RATE_BUDGET_TABLE_NAME
        as not configured."""
        return value or None

    @field_validator("archive_queue_url")
    @classmethod
    def _queue_url(cls, value: str | None) -> str | None:
        """An SQS queue URL: http(s), a host and a path."""
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in {"https", "http"} or not parts.hostname or len(parts.path) < 2:
            raise ValueError("must be an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/name")
        return value.strip()


def _comma_list(value: str) -> list[str]:
    """The items of a comma-separated list, stripped; none for an empty (or blank) value, ValueError for an empty
    item (`a,,b`: CloudFormation passes an empty list item through)."""
    if not value.strip():
        return []
    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise ValueError("has an empty item: give a comma-separated list without empty items, or nothing")
    return items


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; a bad value raises ConfigurationError naming the variable."""
    problems = []
    try:
        return Settings.model_validate(dict(environ))
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            variable = ".".join(str(part) for part in error["loc"]) or "environment"
            problems.append(f"{variable}: {error['msg']}")
    # Raised here, not in the handler: the ValidationError quotes the values, and would stay as __context__.
    raise ConfigurationError("invalid configuration: " + "; ".join(problems))
