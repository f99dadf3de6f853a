"""The package's public API: what the command line (and any other tool) may use; nothing else is promised.

The Lambda function never imports this module (its handler imports only what it runs), so listing the public
names here costs the function's cold start nothing. tests/cli/test_public_api_use.py checks that the command
line imports from here only.
"""

from __future__ import annotations

from sequence_archiver.archiving.archiver import ArchiveMode, SequenceArchiver
from sequence_archiver.archiving.selection import Selection, is_cleanup_request, parse_cleanup_request
from sequence_archiver.archiving.snapshots import SNAPSHOT_SCHEMA_VERSION, SequenceSnapshots, SnapshotPolicy
from sequence_archiver.aws.rate_budget import SharedRateBudget
from sequence_archiver.aws.snapshot_store import S3SnapshotStore, snapshot_body, snapshot_key
from sequence_archiver.aws.sqs import (
    MAX_ENTRIES_PER_CALL,
    MAX_PAYLOAD_BYTES,
    OutgoingMessage,
    batch_entry,
    deduplication_id,
    is_fifo_queue,
    is_message_group_id,
)
from sequence_archiver.core.archive_request import (
    MAX_IDS_PER_REQUEST,
    ArchiveRequest,
    archive_request_body,
    parse_archive_request,
    parse_sequence_id,
    preview,
)
from sequence_archiver.core.batching import chunk_by_count_and_size
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import (
    ApiKeyError,
    ApiKeyMalformedError,
    DeadlineExceededError,
    InvalidRequestError,
    InvalidSequenceIdError,
    RateBudgetExhaustedError,
    ReplyApiError,
    ReplyAuthenticationError,
    ReplyPausedError,
    ReplyRefusedError,
    RetryableReplyError,
    SequenceArchiverError,
    SnapshotStoreError,
)
from sequence_archiver.core.outcomes import Outcome, SequenceResult, count_outcomes
from sequence_archiver.core.reply_answers import ApiCall, Problem, ReplyResponse, ReplyWait, WaitReason
from sequence_archiver.core.results_contract import (
    PLAN_DETAIL_TYPE,
    RESULTS_DETAIL_TYPE,
    RESULTS_EVENT_SOURCE,
    PlanOutcome,
)
from sequence_archiver.reply.api_key import ApiKeySource, SecretsManagerApiKey, parse_secret_string
from sequence_archiver.reply.client import ListAnswer, ReplyClient, RetryPolicy, Timeouts
from sequence_archiver.reply.contact_checks import ContactCheck, SequenceCheck, check_sequence
from sequence_archiver.reply.contact_links import (
    ALREADY_IN_SEQUENCE,
    MAX_CONTACTS_PER_CALL,
    ContactLinksAnswer,
    NotProcessedContact,
    contact_links_body,
    contact_links_parser,
)
from sequence_archiver.reply.contacts import CONTACT_STATUSES, UNFINISHED_STATUSES
from sequence_archiver.reply.listing import (
    DEFAULT_PAGE_SIZE,
    HEALTH_VALUES,
    MAX_PAGE_SIZE,
    STATUSES,
    SequenceFilter,
    SequenceItem,
    SequenceListClient,
    list_sequences,
    parse_timestamp,
)
from sequence_archiver.reply.rate_limiter import RateLimiter, budgets_for
from sequence_archiver.settings import Settings, is_loopback_host, validate_reply_base_url

__all__ = [
    "ALREADY_IN_SEQUENCE",
    "CONTACT_STATUSES",
    "DEFAULT_PAGE_SIZE",
    "HEALTH_VALUES",
    "MAX_CONTACTS_PER_CALL",
    "MAX_ENTRIES_PER_CALL",
    "MAX_IDS_PER_REQUEST",
    "MAX_PAGE_SIZE",
    "MAX_PAYLOAD_BYTES",
    "PLAN_DETAIL_TYPE",
    "RESULTS_DETAIL_TYPE",
    "RESULTS_EVENT_SOURCE",
    "SNAPSHOT_SCHEMA_VERSION",
    "STATUSES",
    "UNFINISHED_STATUSES",
    "ApiCall",
    "ApiKeyError",
    "ApiKeyMalformedError",
    "ApiKeySource",
    "ArchiveMode",
    "ArchiveRequest",
    "ContactCheck",
    "ContactLinksAnswer",
    "Deadline",
    "DeadlineExceededError",
    "InvalidRequestError",
    "InvalidSequenceIdError",
    "ListAnswer",
    "NotProcessedContact",
    "Outcome",
    "OutgoingMessage",
    "PlanOutcome",
    "Problem",
    "RateBudgetExhaustedError",
    "RateLimiter",
    "ReplyApiError",
    "ReplyAuthenticationError",
    "ReplyClient",
    "ReplyPausedError",
    "ReplyRefusedError",
    "ReplyResponse",
    "ReplyWait",
    "RetryPolicy",
    "RetryableReplyError",
    "S3SnapshotStore",
    "SecretsManagerApiKey",
    "Selection",
    "SequenceArchiver",
    "SequenceArchiverError",
    "SequenceCheck",
    "SequenceFilter",
    "SequenceItem",
    "SequenceListClient",
    "SequenceResult",
    "SequenceSnapshots",
    "Settings",
    "SharedRateBudget",
    "SnapshotPolicy",
    "SnapshotStoreError",
    "Timeouts",
    "WaitReason",
    "archive_request_body",
    "batch_entry",
    "budgets_for",
    "check_sequence",
    "chunk_by_count_and_size",
    "contact_links_body",
    "contact_links_parser",
    "count_outcomes",
    "deduplication_id",
    "is_cleanup_request",
    "is_fifo_queue",
    "is_loopback_host",
    "is_message_group_id",
    "list_sequences",
    "parse_archive_request",
    "parse_cleanup_request",
    "parse_secret_string",
    "parse_sequence_id",
    "parse_timestamp",
    "preview",
    "snapshot_body",
    "snapshot_key",
    "validate_reply_base_url",
]
