"""Any event in, deliveries out: one unit of work per SQS record, EventBridge event, SNS record or direct payload.

Reading an event never fails because of its content. A record that is not what its trigger promises (an
SQS record without a string body, an SNS record without a Message) becomes a delivery that is already
rejected, with the reason, so it fails only itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sequence_archiver.aws.idempotency import Claim
from sequence_archiver.core.archive_request import (
    REQUEST_ID_PATTERN,
    REQUEST_ID_RULE,
    event_detail_document,
    message_body_document,
    notification_document,
    parse_archive_request,
)
from sequence_archiver.core.continuations import open_continuation
from sequence_archiver.core.exceptions import (
    ApiKeyError,
    InvalidRequestError,
    UnknownWorkspaceError,
    UnsupportedEventError,
)
from sequence_archiver.core.request_report import EventShape, Trigger

if TYPE_CHECKING:
    from collections.abc import Collection

    from sequence_archiver.archiving.cleanup import SelectionRun
    from sequence_archiver.archiving.selection import CleanupRequest
    from sequence_archiver.core.archive_request import ArchiveRequest
    from sequence_archiver.core.continuations import ContinuationSeal
    from sequence_archiver.core.deadline import Deadline
    from sequence_archiver.core.outcomes import SequenceResult

_STAND_IN_DIGITS = 16  # of the SHA-256 that names a delivery whose own ID is not a valid request ID
_WORKSPACES_LISTED = 10  # served workspaces an unknown workspace's rejection names


@dataclass(frozen=True, slots=True)
class SqsReceipt:
    """What an SQS record needs to be postponed or named in batchItemFailures."""

    event_source_arn: str
    receipt_handle: str
    message_group_id: str | None = None  # FIFO queues only
    receive_count: int | None = None  # ApproximateReceiveCount: this receive's number (1 the first time)


@dataclass
class Delivery:
    """One unit of work and what its work found: who claimed it, what it asked, what Reply answered.

    The facts only: what the delivery comes to (done, rejected, deferred, retried...) is decided from them, in
    one place (verdicts.decide), and applied once (effects). Its errors are only its own.
    """

    delivery_id: str
    trigger: Trigger
    payload: object  # an SQS body (str), an SNS Message, an EventBridge detail or a direct payload
    receipt: SqsReceipt | None = None
    claimable: bool = True  # False for deliveries with no stable ID of their own (direct, malformed records)
    claim: Claim | None = None
    request: ArchiveRequest | None = None
    rejection: str | None = None
    # A rejection that is a final answer, not a message to repair (a clean-up on a trigger not allowed to run
    # one): the record is acknowledged, never parked in the dead-letter queue, never retried.
    refused: bool = False
    held: str | None = None  # why its work could not be done now, so it must come again (the first reason)
    behind: str | None = None  # FIFO: the record of its message group that must be retried first
    results: tuple[SequenceResult, ...] | None = None  # what Reply's answers came to, one per ID
    cleanup: CleanupRequest | None = None  # a clean-up policy's request (a selection) instead of IDs
    selection_run: SelectionRun | None = None  # this invocation's part of the clean-up request
    # The workspace its request names (REPLY_WORKSPACES): whose key its Reply calls use; None for the default key.
    # Also kept when the request is rejected because this deployment does not serve that workspace.
    workspace: str | None = None

    @property
    def request_id(self) -> str:
        """The ID its results are reported under: the original request's for a continuation, else its own."""
        if self.request is not None and self.request.continuation is not None:
            return self.request.continuation.request_id
        if self.cleanup is not None and self.cleanup.continuation is not None:
            return self.cleanup.continuation.request_id
        return self.delivery_id

    @property
    def ours(self) -> bool:
        """Not already done and not held by another invocation: this invocation does its work."""
        return self.claim not in (Claim.COMPLETED, Claim.IN_PROGRESS)

    def reject(self, reason: str) -> None:
        """Not a request at all: reported as one `invalid` item (SQS records are also dead-lettered)."""
        self.rejection = reason

    def refuse(self, reason: str) -> None:
        """A well-formed request this trigger may not make: reported as rejected and acknowledged, not parked."""
        self.rejection = reason
        self.refused = True

    def hold(self, reason: str) -> None:
        """Its work could not be done in this invocation: it must come again (the first reason is kept)."""
        if self.held is None:
            self.held = reason

    def at_last_receive(self, max_receive_count: int) -> bool:
        """True when a queue whose redrive policy allows `max_receive_count` receives moves this record to the
        DLQ if it comes back (its ApproximateReceiveCount has reached it)."""
        count = self.receipt.receive_count if self.receipt is not None else None
        return count is not None and count >= max_receive_count

    def parse(
        self,
        shape: EventShape,
        seal: ContinuationSeal | None,
        deadline: Deadline | None = None,
        *,
        workspaces: Collection[str] = (),
    ) -> None:
        """Turn the payload into a request, or into a rejection saying why; nothing raised escapes.

        A continuation is honoured only when `seal` opens it (the function made it); any other is read as a new
        request under this delivery's own ID. A secret that cannot be read to check it retries the delivery. A
        request naming a workspace that `workspaces` (REPLY_WORKSPACES) does not hold is rejected.
        """
        if self.rejection is not None:
            return
        try:
            if shape is EventShape.SQS:
                document = message_body_document(str(self.payload))
            elif shape is EventShape.SNS:
                document = notification_document(self.payload)
            elif shape is EventShape.EVENTBRIDGE:
                document = event_detail_document(self.payload)
            else:
                document = self.payload
            if isinstance(document, dict) and "schedule" in document:  # never continued: a continuation is refused
                from sequence_archiver.archiving.selection import parse_scheduled_run  # noqa: PLC0415 - only clean-up requests

                self.cleanup = parse_scheduled_run(document)  # the schedule's input: select, dryRun, maxSequences
                return
            document = open_continuation(document, seal, deadline)
            if isinstance(document, dict) and "select" in document:
                from sequence_archiver.archiving.selection import parse_cleanup_request  # noqa: PLC0415 - only clean-up requests

                cleanup = parse_cleanup_request(document)
                self._serve(cleanup.workspace, workspaces)
                self.cleanup = cleanup
            else:
                request = parse_archive_request(document)
                self._serve(request.workspace, workspaces)
                self.request = request
        except InvalidRequestError as exc:
            self.reject(str(exc))
        except ApiKeyError as exc:  # the secret the continuation's key comes from: a passing condition
            self.hold(f"the continuation could not be checked: {exc}")
        except Exception as exc:
            self.reject(f"the request could not be read ({type(exc).__name__})")

    def _serve(self, workspace: str | None, workspaces: Collection[str]) -> None:
        """Note the workspace the request names; UnknownWorkspaceError when this deployment does not serve it."""
        self.workspace = workspace
        if workspace is None or workspace in workspaces:
            return
        served = sorted(workspaces)
        listed = ", ".join(served[:_WORKSPACES_LISTED]) + (", ..." if len(served) > _WORKSPACES_LISTED else "")
        raise UnknownWorkspaceError(
            f'unknown workspace "{workspace}": '
            + (f"this function serves {listed} (REPLY_WORKSPACES)" if served else "REPLY_WORKSPACES names none")
            + '; leave "workspace" out for the default workspace'
        )


@dataclass
class Invocation:
    """The deliveries of one event and the shape that decides the response."""

    shape: EventShape
    deliveries: list[Delivery]

    @property
    def fifo(self) -> bool:
        """Records from a FIFO queue: they must be processed in order, and the first retry stops the batch."""
        return self.shape is EventShape.SQS and any(
            delivery.receipt is not None and delivery.receipt.event_source_arn.endswith(".fifo")
            for delivery in self.deliveries
        )


def read_event(event: object, *, invocation_id: str) -> Invocation:
    """Split an event into deliveries; `invocation_id` names a direct payload (Lambda's request ID).

    UnsupportedEventError for records of a source this function does not serve (S3, DynamoDB or Kinesis
    streams...): a mapping attached by mistake must fail loudly, not consume its records quietly.
    """
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and records:
            first = records[0]
            source = _record_source(first)
            if source is not None and source not in SERVED_SOURCES:
                raise UnsupportedEventError(
                    f"records from {source} are not archive requests; this function serves "
                    "SQS, SNS, EventBridge and direct invocations"
                )
            if isinstance(first, dict) and first.get("eventSource") == "aws:sqs":
                return Invocation(
                    EventShape.SQS, [_sqs_delivery(record, index) for index, record in enumerate(records)]
                )
            if all(isinstance(record, dict) and record.get("EventSource") == "aws:sns" for record in records):
                return Invocation(
                    EventShape.SNS, [_sns_delivery(record, index) for index, record in enumerate(records)]
                )
        if {"detail-type", "source", "detail", "id"} <= event.keys():
            delivery = _named(event["id"], Trigger.EVENTBRIDGE, event["detail"], "the event's id")
            return Invocation(EventShape.EVENTBRIDGE, [delivery])
    direct = _named(invocation_id, Trigger.DIRECT, event, "the invocation's request ID", claimable=False)
    return Invocation(EventShape.DIRECT, [direct])


SERVED_SOURCES = frozenset({"aws:sqs", "aws:sns"})
_MAX_SOURCE_CHARS = 64


def _record_source(record: object) -> str | None:
    """The event source a record names (`eventSource`, or SNS's `EventSource`), bounded and printable (anything
    but visible ASCII escaped); None if none."""
    if not isinstance(record, dict):
        return None
    source = record.get("eventSource", record.get("EventSource"))
    if not isinstance(source, str):
        return None
    bounded = source[:_MAX_SOURCE_CHARS]
    return bounded if bounded.isascii() and bounded.isprintable() else ascii(bounded)


def _sqs_delivery(record: object, index: int) -> Delivery:
    if not isinstance(record, dict):
        return _malformed(f"record-{index}", Trigger.SQS, f"SQS record {index} is not an object")
    message_id, body = record.get("messageId"), record.get("body")
    if not isinstance(message_id, str) or not message_id:
        return _malformed(f"record-{index}", Trigger.SQS, f"SQS record {index} has no messageId")
    arn, receipt_handle = record.get("eventSourceARN"), record.get("receiptHandle")
    attributes = record.get("attributes")
    group = attributes.get("MessageGroupId") if isinstance(attributes, dict) else None
    count = attributes.get("ApproximateReceiveCount") if isinstance(attributes, dict) else None
    receipt = (
        SqsReceipt(arn, receipt_handle, group if isinstance(group, str) else None, _receive_count(count))
        if isinstance(arn, str) and isinstance(receipt_handle, str)
        else None
    )
    delivery = _named(message_id, Trigger.SQS, body, "the record's messageId", receipt=receipt)
    if not isinstance(body, str):
        delivery.reject("the SQS record's body is not a string")
    return delivery


def _sns_delivery(record: dict[str, Any], index: int) -> Delivery:
    notification = record.get("Sns")
    if not isinstance(notification, dict):
        return _malformed(f"record-{index}", Trigger.DIRECT, f"SNS record {index} has no Sns object")
    message_id = notification.get("MessageId")
    if not isinstance(message_id, str) or not message_id:
        return _malformed(f"record-{index}", Trigger.DIRECT, f"SNS record {index} has no MessageId")
    return _named(message_id, Trigger.DIRECT, notification.get("Message"), "the notification's MessageId")


def _malformed(delivery_id: str, trigger: Trigger, reason: str) -> Delivery:
    delivery = Delivery(delivery_id, trigger, None, claimable=False)
    delivery.reject(reason)
    return delivery


def _receive_count(value: object) -> int | None:
    """ApproximateReceiveCount as SQS sends it (a string of digits); None when absent or not a count."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


def _named(value: object, trigger: Trigger, payload: object, what: str, **options: Any) -> Delivery:
    """A delivery named by the ID its source gave it; one that is not a valid request ID (1 to 128 of
    A-Z a-z 0-9 . _ : -) never reaches results, logs or the CLI: the delivery is named by a stand-in made from
    its hash (the same on every redelivery) and rejected, saying why."""
    if isinstance(value, str) and REQUEST_ID_PATTERN.fullmatch(value):
        return Delivery(value, trigger, payload, **options)
    text = value if isinstance(value, str) else type(value).__name__
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:_STAND_IN_DIGITS]
    delivery = Delivery(f"invalid-id-{digest}", trigger, payload, **options)
    delivery.reject(f"{what} is not a valid request ID ({REQUEST_ID_RULE})")
    return delivery
