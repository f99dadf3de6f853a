"""Archive Reply sequences: request parsing, the Reply API client, the archiving core and result publishing.

The names in `__all__` are the package's public API (what the command line uses). They load on first use
(PEP 562), so importing the package, as every `sequence_archiver.<module>` import on the handler's path
does, loads none of the modules behind them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sequence_archiver.api_key import ApiKeySource, SecretsManagerApiKey, parse_secret_string
    from sequence_archiver.archive_request import (
        MAX_IDS_PER_REQUEST,
        ArchiveRequest,
        archive_request_body,
        parse_archive_request,
        parse_sequence_id,
        preview,
    )
    from sequence_archiver.archiver import ArchiveMode, SequenceArchiver
    from sequence_archiver.batching import chunk_by_count_and_size
    from sequence_archiver.deadline import Deadline
    from sequence_archiver.exceptions import (
        ApiKeyError,
        ApiKeyMalformedError,
        InvalidRequestError,
        InvalidSequenceIdError,
        ReplyApiError,
        ReplyAuthenticationError,
        ReplyRefusedError,
        RetryableReplyError,
        SequenceArchiverError,
    )
    from sequence_archiver.outcomes import Outcome, SequenceResult, count_outcomes
    from sequence_archiver.rate_limiter import RateLimiter, budgets_for
    from sequence_archiver.reply_answers import ApiCall, ReplyWait, WaitReason
    from sequence_archiver.reply_client import ReplyClient, RetryPolicy, Timeouts
    from sequence_archiver.results_contract import (
        PLAN_DETAIL_TYPE,
        RESULTS_DETAIL_TYPE,
        RESULTS_EVENT_SOURCE,
        PlanOutcome,
    )
    from sequence_archiver.selection import Selection, is_cleanup_request, parse_cleanup_request
    from sequence_archiver.sequence_listing import (
        DEFAULT_PAGE_SIZE,
        MAX_PAGE_SIZE,
        STATUSES,
        SequenceFilter,
        SequenceItem,
        SequenceListClient,
        list_sequences,
        parse_timestamp,
    )
    from sequence_archiver.settings import Settings, is_loopback_host, validate_reply_base_url
    from sequence_archiver.sqs_sender import (
        MAX_ENTRIES_PER_CALL,
        MAX_PAYLOAD_BYTES,
        OutgoingMessage,
        batch_entry,
        deduplication_id,
        is_fifo_queue,
        is_message_group_id,
    )

# Each public name and the module (of this package) that defines it.
_MODULE_OF: dict[str, str] = {
    "ApiKeySource": "api_key",
    "SecretsManagerApiKey": "api_key",
    "parse_secret_string": "api_key",
    "MAX_IDS_PER_REQUEST": "archive_request",
    "ArchiveRequest": "archive_request",
    "archive_request_body": "archive_request",
    "parse_archive_request": "archive_request",
    "parse_sequence_id": "archive_request",
    "preview": "archive_request",
    "ArchiveMode": "archiver",
    "SequenceArchiver": "archiver",
    "chunk_by_count_and_size": "batching",
    "Deadline": "deadline",
    "ApiKeyError": "exceptions",
    "ApiKeyMalformedError": "exceptions",
    "InvalidRequestError": "exceptions",
    "InvalidSequenceIdError": "exceptions",
    "ReplyApiError": "exceptions",
    "ReplyAuthenticationError": "exceptions",
    "ReplyRefusedError": "exceptions",
    "RetryableReplyError": "exceptions",
    "SequenceArchiverError": "exceptions",
    "Outcome": "outcomes",
    "SequenceResult": "outcomes",
    "count_outcomes": "outcomes",
    "RateLimiter": "rate_limiter",
    "budgets_for": "rate_limiter",
    "ApiCall": "reply_answers",
    "ReplyWait": "reply_answers",
    "WaitReason": "reply_answers",
    "ReplyClient": "reply_client",
    "RetryPolicy": "reply_client",
    "Timeouts": "reply_client",
    "RESULTS_DETAIL_TYPE": "results_contract",
    "RESULTS_EVENT_SOURCE": "results_contract",
    "PLAN_DETAIL_TYPE": "results_contract",
    "PlanOutcome": "results_contract",
    "Selection": "selection",
    "is_cleanup_request": "selection",
    "parse_cleanup_request": "selection",
    "DEFAULT_PAGE_SIZE": "sequence_listing",
    "MAX_PAGE_SIZE": "sequence_listing",
    "STATUSES": "sequence_listing",
    "SequenceFilter": "sequence_listing",
    "SequenceItem": "sequence_listing",
    "SequenceListClient": "sequence_listing",
    "list_sequences": "sequence_listing",
    "parse_timestamp": "sequence_listing",
    "Settings": "settings",
    "is_loopback_host": "settings",
    "validate_reply_base_url": "settings",
    "MAX_ENTRIES_PER_CALL": "sqs_sender",
    "MAX_PAYLOAD_BYTES": "sqs_sender",
    "OutgoingMessage": "sqs_sender",
    "batch_entry": "sqs_sender",
    "deduplication_id": "sqs_sender",
    "is_fifo_queue": "sqs_sender",
    "is_message_group_id": "sqs_sender",
}

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_ENTRIES_PER_CALL",
    "MAX_IDS_PER_REQUEST",
    "MAX_PAGE_SIZE",
    "MAX_PAYLOAD_BYTES",
    "PLAN_DETAIL_TYPE",
    "RESULTS_DETAIL_TYPE",
    "RESULTS_EVENT_SOURCE",
    "STATUSES",
    "ApiCall",
    "ApiKeyError",
    "ApiKeyMalformedError",
    "ApiKeySource",
    "ArchiveMode",
    "ArchiveRequest",
    "Deadline",
    "InvalidRequestError",
    "InvalidSequenceIdError",
    "Outcome",
    "OutgoingMessage",
    "PlanOutcome",
    "RateLimiter",
    "ReplyApiError",
    "ReplyAuthenticationError",
    "ReplyClient",
    "ReplyRefusedError",
    "ReplyWait",
    "RetryPolicy",
    "RetryableReplyError",
    "SecretsManagerApiKey",
    "Selection",
    "SequenceArchiver",
    "SequenceArchiverError",
    "SequenceFilter",
    "SequenceItem",
    "SequenceListClient",
    "SequenceResult",
    "Settings",
    "Timeouts",
    "WaitReason",
    "archive_request_body",
    "batch_entry",
    "budgets_for",
    "chunk_by_count_and_size",
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
    "validate_reply_base_url",
]

if not TYPE_CHECKING:  # mypy sees the imports above; a module-level __getattr__ would hide misspelt names from it

    def __getattr__(name: str) -> object:
        """Import a public name's module on first use and keep the name here."""
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        """The module's own names and the public ones not loaded yet."""
        return sorted({*globals(), *__all__})
