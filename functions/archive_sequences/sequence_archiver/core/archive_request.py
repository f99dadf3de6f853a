"""What an archive request is: parsing payloads and message bodies into validated sequence IDs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sequence_archiver.core.exceptions import InvalidRequestError, InvalidSequenceIdError

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_SEQUENCE_ID = 2_147_483_647
MAX_IDS_PER_REQUEST = 1_000
MAX_REQUEST_ID_CHARS = 128
MAX_CONTINUATION_PARTS = 100_000
# What a request ID may be wherever it comes from outside (a message, event or invocation ID, a continuation's
# requestId): printable, without spaces, quotes or formula prefixes, safe in results, logs, tables and CSV.
REQUEST_ID_CHARS = r"[A-Za-z0-9._:-]"
REQUEST_ID_PATTERN = re.compile(f"{REQUEST_ID_CHARS}{{1,{MAX_REQUEST_ID_CHARS}}}")
REQUEST_ID_RULE = f"1 to {MAX_REQUEST_ID_CHARS} characters of A-Z a-z 0-9 . _ : -"
# A Reply workspace a request names (`"workspace": "sales-eu"`): one of REPLY_WORKSPACES, whose own secret holds
# its API key. Lower-case, so one workspace has one spelling in results, metrics' dimension values and logs.
WORKSPACE_FIELD = "workspace"
WORKSPACE_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
WORKSPACE_RULE = "1 to 63 characters of a-z 0-9 -, the first a letter or digit"
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII digits only: str.isdigit() would accept "١٢" or "²"
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+)")  # 5.0, .5, 1e3
_MAX_ENVELOPE_DEPTH = 3
_INPUT_PREVIEW_CHARS = 80


@dataclass(frozen=True, slots=True)
class InvalidSequenceId:
    """A value of a request that is not a sequence ID, with the reason, kept for reporting."""

    input_value: str
    reason: str


@dataclass(frozen=True, slots=True)
class ContinuationOf:
    """Which request a continuation message carries on, and which part of it this is (the original is part 1)."""

    request_id: str
    part: int
    failures: int = 0  # deliveries of this request so far in which an ID really failed (not just waited)

    def next(self, *, failed: bool) -> ContinuationOf:
        """The marker of the continuation that carries this part's unfinished IDs on."""
        return ContinuationOf(self.request_id, self.part + 1, self.failures + failed)

    def to_json(self) -> dict[str, Any]:
        """The `continuation` field of a continuation message body."""
        marker: dict[str, Any] = {"requestId": self.request_id, "part": self.part}
        if self.failures:
            marker["failures"] = self.failures
        return marker


@dataclass(frozen=True, slots=True)
class ArchiveRequest:
    """A request's items in input order: valid IDs (deduplicated) and invalid values."""

    items: tuple[int | InvalidSequenceId, ...]
    pause_first: bool = False  # pause a running sequence and archive it again when Reply says 409
    continuation: ContinuationOf | None = None  # set on the messages the function sends to carry a request on
    workspace: str | None = None  # the Reply workspace whose key archives the IDs; None: the default key

    @property
    def sequence_ids(self) -> tuple[int, ...]:
        """The valid, distinct sequence IDs in input order."""
        return tuple(item for item in self.items if isinstance(item, int))


def preview(value: object) -> str:
    """A short JSON rendering of a rejected value, safe to put in logs and events (and to encode as UTF-8)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=_type_placeholder)
    except (TypeError, ValueError, RecursionError):
        # Integers past Python's 4,300-digit limit, structures nested past the recursion limit: say what it is.
        text = _type_placeholder(value)
    if len(text) > _INPUT_PREVIEW_CHARS:
        text = text[: _INPUT_PREVIEW_CHARS - 1] + "…"
    return encodable(text)


def archive_request_body(
    sequence_ids: Sequence[int], *, pause_first: bool = False, workspace: str | None = None
) -> str:
    """The message body `parse_archive_request` reads: `{"sequenceIds": [...]}`, plus `"pauseFirst": true` and
    `"workspace"` when given (compact JSON). The CLI's `enqueue` and a clean-up's archive requests write it."""
    document: dict[str, Any] = {"sequenceIds": list(sequence_ids)}
    if pause_first:
        document["pauseFirst"] = True
    if workspace is not None:
        document[WORKSPACE_FIELD] = workspace
    return json.dumps(document, separators=(",", ":"))


def parse_workspace(document: object) -> str | None:
    """The `workspace` a request document names; None when it names none (the default key).

    InvalidRequestError for anything but a workspace name (a null, a number, upper case, spaces): a request is
    never archived with another workspace's key, nor with the default one, because its name was misspelt.
    """
    if not isinstance(document, dict) or WORKSPACE_FIELD not in document:
        return None
    value = document[WORKSPACE_FIELD]
    if not isinstance(value, str) or not WORKSPACE_PATTERN.fullmatch(value):
        raise InvalidRequestError(
            f'"workspace" must be a workspace name ({WORKSPACE_RULE}); leave it out for the default workspace'
        )
    return value


def encodable(text: str, limit: int | None = None) -> str:
    """Text from an event, at most `limit` characters, that always encodes as UTF-8: a lone surrogate
    ("\\ud800" in JSON that SQS accepted) is kept as a visible escape instead of breaking the encoding."""
    return text[:limit].encode("utf-8", errors="backslashreplace").decode("utf-8")


def _type_placeholder(value: object) -> str:
    return f"<{type(value).__name__}>"


def parse_sequence_id(value: object) -> int:
    """Validate one sequence ID: an integer (or ASCII digit string) in 1..2147483647; nothing else.

    A rejected value gets a reason that says what is wrong with it (and never quotes it: callers show a preview).
    """
    if isinstance(value, bool):
        raise InvalidSequenceIdError("a boolean is not a sequence ID")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise InvalidSequenceIdError(_string_reason(value))
        number = int(value)
    elif isinstance(value, float):
        raise InvalidSequenceIdError("a sequence ID must be an integer, not a number with a fraction or exponent")
    else:
        raise InvalidSequenceIdError(f"a sequence ID must be an integer, not {type(value).__name__}")
    if number < 1:
        raise InvalidSequenceIdError(f"a sequence ID must be a positive whole number (1 to {MAX_SEQUENCE_ID})")
    if number > MAX_SEQUENCE_ID:
        raise InvalidSequenceIdError(f"a sequence ID must be at most {MAX_SEQUENCE_ID}")
    return number


def _string_reason(text: str) -> str:
    """Why a string that is not 1 to 10 ASCII digits is not a sequence ID, in the terms of what it holds."""
    sign, rest = text[:1], text[1:]
    signed = sign in ("+", "-") and rest.isascii() and rest.isdigit()
    positive = f"a sequence ID must be a positive whole number (1 to {MAX_SEQUENCE_ID})"
    rules: tuple[tuple[bool, str], ...] = (
        (not text, "an empty string is not a sequence ID"),
        (not text.strip(), "a blank string is not a sequence ID"),
        (text.strip() != text, "a sequence ID string must be digits only, without spaces around them"),
        (signed and sign == "+", "a sequence ID string must be digits only, without a + sign"),
        (signed and bool(rest.strip("0")), positive + ", not negative"),
        (signed, positive),  # -0
        # More than 10 digits: never converted (int() of 5,000 digits raises).
        (
            text.isascii() and text.isdigit(),
            f"a sequence ID string must be at most 10 digits, not {len(text):,} (the largest is {MAX_SEQUENCE_ID})",
        ),
        (bool(_DECIMAL.fullmatch(text)), "a sequence ID must be a whole number, without a decimal point or exponent"),
        (all(char.isdigit() for char in text), "a sequence ID string must use the ASCII digits 0-9"),
    )
    return next((reason for applies, reason in rules if applies), "a sequence ID string must be 1 to 10 ASCII digits")


def parse_archive_request(payload: object) -> ArchiveRequest:
    """Turn `{"sequenceIds": [...]}`, `{"sequenceId": n}` or a bare ID (plus optional `pauseFirst` and `workspace`)
    into a request."""
    values = _request_values(payload)
    pause_first = payload.get("pauseFirst", False) if isinstance(payload, dict) else False
    if not isinstance(pause_first, bool):
        raise InvalidRequestError('"pauseFirst" must be true or false')
    continuation = _continuation(payload.get("continuation")) if isinstance(payload, dict) else None
    workspace = parse_workspace(payload)
    if len(values) > MAX_IDS_PER_REQUEST:
        raise InvalidRequestError(
            f"a request may hold at most {MAX_IDS_PER_REQUEST} sequence IDs; this one has {len(values)}"
        )
    items: list[int | InvalidSequenceId] = []
    seen: set[int] = set()
    for value in values:
        try:
            sequence_id = parse_sequence_id(value)
        except InvalidSequenceIdError as exc:
            items.append(InvalidSequenceId(input_value=preview(value), reason=str(exc)))
            continue
        if sequence_id not in seen:
            seen.add(sequence_id)
            items.append(sequence_id)
    return ArchiveRequest(items=tuple(items), pause_first=pause_first, continuation=continuation, workspace=workspace)


def _continuation(value: object) -> ContinuationOf | None:
    """The `continuation` marker of a message the function sent itself; None when absent."""
    if value is None:
        return None
    request_id = value.get("requestId") if isinstance(value, dict) else None
    part = value.get("part") if isinstance(value, dict) else None
    if not isinstance(request_id, str) or not REQUEST_ID_PATTERN.fullmatch(request_id):
        raise InvalidRequestError(f'"continuation" must hold the original "requestId" ({REQUEST_ID_RULE})')
    if isinstance(part, bool) or not isinstance(part, int) or not 2 <= part <= MAX_CONTINUATION_PARTS:
        raise InvalidRequestError(f'"continuation" must hold a "part" between 2 and {MAX_CONTINUATION_PARTS}')
    failures = value.get("failures", 0) if isinstance(value, dict) else 0
    if isinstance(failures, bool) or not isinstance(failures, int) or not 0 <= failures < part:
        raise InvalidRequestError('"continuation" "failures" must be a count below "part"')
    return ContinuationOf(request_id, part, failures)


def _request_values(payload: object) -> list[Any]:
    """The raw ID values of a payload, or InvalidRequestError when it is not a request."""
    if isinstance(payload, (int, str)) and not isinstance(payload, bool):
        return [payload]
    if not isinstance(payload, dict):
        raise InvalidRequestError(f'expected an object like {{"sequenceIds": [1, 2]}}, got {type(payload).__name__}')
    has_many, has_one = "sequenceIds" in payload, "sequenceId" in payload
    if has_many and has_one:
        raise InvalidRequestError('give either "sequenceIds" or "sequenceId", not both')
    if has_one:
        return [payload["sequenceId"]]
    if not has_many:
        raise InvalidRequestError('the request has no "sequenceIds" (a list) or "sequenceId"')
    values = payload["sequenceIds"]
    if not isinstance(values, list):
        raise InvalidRequestError(f'"sequenceIds" must be a list, got {type(values).__name__}')
    if not values:
        raise InvalidRequestError('"sequenceIds" is empty')
    return values


def parse_message_body(body: str) -> ArchiveRequest:
    """Parse an SQS message body: a request, a bare ID, or an EventBridge event / SNS notification wrapping one."""
    return parse_archive_request(message_body_document(body))


def message_body_document(body: str) -> object:
    """The request document of an SQS message body, unwrapped from an EventBridge event or SNS notification."""
    payload = _json_document(body, "the message")
    for _ in range(_MAX_ENVELOPE_DEPTH):
        unwrapped = _unwrap_envelope(payload)
        if unwrapped is None:
            break
        payload = unwrapped
    return payload


def _unwrap_envelope(payload: object) -> object | None:
    """The request inside an EventBridge event or SNS notification envelope; None if it is not one."""
    if not isinstance(payload, dict):
        return None
    if {"detail-type", "source", "detail"} <= payload.keys():
        detail: object = payload["detail"]
        # EventBridge Scheduler and some PutEvents callers send the detail as a JSON string.
        return _json_document(detail, "the event's detail (a string)") if isinstance(detail, str) else detail
    if payload.get("Type") == "Notification" and "TopicArn" in payload and "Message" in payload:
        message = payload["Message"]
        if not isinstance(message, str):
            raise InvalidRequestError("the SNS notification's Message is not a string")
        return _json_document(message, "the message")
    return None


def notification_document(message: object) -> object:
    """The request document of an SNS → Lambda record's Message (JSON text)."""
    if not isinstance(message, str):
        raise InvalidRequestError(f"the SNS Message must be a string, got {type(message).__name__}")
    return _json_document(message, "the message")


def event_detail_document(detail: object) -> object:
    """The request document of an EventBridge event's detail (an object, or the same object as JSON text)."""
    if isinstance(detail, str):
        return _json_document(detail, "the event's detail (a string)")
    return detail


def _json_document(text: str, what: str) -> object:
    """Parse JSON text; InvalidRequestError for anything json.loads refuses or cannot finish."""
    try:
        document: object = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and integers past Python's 4,300-digit limit
        reason = "is not JSON" if isinstance(exc, json.JSONDecodeError) else "holds a number too large to read"
        raise InvalidRequestError(f"{what} {reason}") from None
    except RecursionError:
        raise InvalidRequestError(f"{what} is nested too deeply to read") from None
    return document
