"""Public value types of the Reply simulator: rate limits, faults, sequences, their contacts, recorded requests and
call counts."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

SCOPE_READ: Final = "sequences:read"
SCOPE_OPERATE: Final = "sequences:operate"
SCOPE_WRITE: Final = "sequences:write"
ALL_SCOPES: Final = frozenset({SCOPE_READ, SCOPE_OPERATE, SCOPE_WRITE})
DEFAULT_API_KEY: Final = "local-dev-key"

# The default workspace's owner: its legacy keys (ReplySimulator's `api_keys`) act as this user, and the default
# seed's sequences are theirs (but 501-505: user 2's).
KEY_OWNER_USER_ID: Final = 1
DEFAULT_WORKSPACE_ID: Final = 1
MIN_SEQUENCE_ID: Final = 1
MAX_SEQUENCE_ID: Final = 2_147_483_647
SEQUENCE_STATUSES: Final = ("new", "active", "paused")
# statusInSequence of a Sequence Contact (GetSequenceContacts, openapi/contacts-excerpt.yaml).
CONTACT_STATUSES: Final = ("active", "paused", "finished", "inactive", "outOfOffice")
# A sequence's `health` (SequenceBase, openapi/openapi-excerpt.yaml).
SEQUENCE_HEALTHS: Final = ("healthy", "stalled", "degraded", "blocked")
FAULT_KINDS: Final = ("status", "delay", "drop", "malformed", "drip", "headers", "body", "echo")
DRIP_PARTS: Final = ("headers", "body")
# Headers the simulator writes itself: a fault that set them would break the HTTP framing.
_FRAMING_HEADERS: Final = frozenset({"content-length", "transfer-encoding", "connection"})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Per-user request budget over a sliding minute window and a sliding hour window (every key acting for a
    user spends that user's budget, as Reply documents)."""

    per_minute: int | None = 100
    per_hour: int | None = 3000
    minute_seconds: float = 60.0
    hour_seconds: float = 3600.0
    # Reply does not say whether its windows slide or are fixed (counts reset at each whole minute and hour).
    # False: sliding (the stricter for a client); True: fixed windows aligned on the clock.
    fixed_windows: bool = False

    def __post_init__(self) -> None:
        for limit in (self.per_minute, self.per_hour):
            if limit is not None and limit < 1:
                raise ValueError("rate limits must be at least 1 request (or None for no limit)")
        for seconds in (self.minute_seconds, self.hour_seconds):
            if not math.isfinite(seconds) or seconds <= 0:
                raise ValueError("rate-limit window durations must be positive seconds")


DEFAULT_RATE_LIMIT: Final = RateLimit()


@dataclass(frozen=True, slots=True)
class Fault:
    """A misbehaviour the simulator shows to the next `times` matching /v3 requests.

    Kinds:
    - ``status``: answer `status` (400-599) with a problem body, nothing changes; a 429 carries Retry-After.
    - ``delay``: wait `seconds`, then run the request normally.
    - ``drop``: close the connection without answering.
    - ``malformed``: answer 200 with a cut-off JSON document, nothing changes.
    - ``drip``: run the request, then send its answer one byte every `seconds`, from the status line
      (`part` "headers", the default) or from the body on (`part` "body"); the connection closes after.
    - ``headers``: run the request and answer normally, with `headers` added.
    - ``body``: run the request, then answer with `body` (raw text, sent as UTF-8) instead of its JSON,
      and with `status` instead of its status when given (e.g. a 200 holding a 5,000-digit number).
    - ``echo``: answer `status` (default 400, 400-599) with a problem whose title, detail and code
      contain the request's Authorization header, as a careless server might; nothing changes.

    `headers` (name/value pairs) are added to any kind's answer (except drop), replacing headers of
    the same name: e.g. a 429 status fault with a `Retry-After` of 400 digits.
    """

    kind: str
    times: int | None = 1
    status: int | None = None
    retry_after: int | None = None
    seconds: float | None = None
    sequence_id: int | None = None
    path_prefix: str | None = None
    part: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError("fault kind must be one of: " + ", ".join(FAULT_KINDS))
        if self.times is not None and self.times < 1:
            raise ValueError("fault times must be at least 1 (or None until cleared)")
        if self.kind == "status" and (self.status is None or not 400 <= self.status <= 599):
            raise ValueError("a status fault needs a status between 400 and 599")
        if self.kind in {"delay", "drip"} and (
            self.seconds is None or not math.isfinite(self.seconds) or self.seconds <= 0
        ):
            raise ValueError("a " + self.kind + " fault needs seconds > 0")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.part is not None and (self.kind != "drip" or self.part not in DRIP_PARTS):
            raise ValueError("part is for drip faults only: one of " + ", ".join(DRIP_PARTS))
        if self.kind == "headers" and not self.headers:
            raise ValueError("a headers fault needs headers")
        if (self.kind == "body") != (self.body is not None):
            raise ValueError("a body fault needs a body, and only a body fault takes one")
        if self.kind == "body" and self.status is not None and not 200 <= self.status <= 599:
            raise ValueError("a body fault's status must be between 200 and 599")
        if self.kind == "echo" and self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("an echo fault's status must be between 400 and 599")
        object.__setattr__(self, "headers", tuple((name, value) for name, value in self.headers))
        for name, value in self.headers:
            _check_header(name, value)

    @classmethod
    def from_json(cls, payload: Mapping[str, object]) -> Fault:
        """Build a fault from admin JSON (snake_case field names, camelCase accepted too)."""
        kind = _json_field(payload, "kind", "kind")
        if not isinstance(kind, str):
            raise ValueError("'kind' must be a string")
        times = _json_field(payload, "times", "times", default=1)
        return cls(
            kind=kind,
            times=_optional_int(times, "times"),
            status=_optional_int(_json_field(payload, "status", "status"), "status"),
            retry_after=_optional_int(_json_field(payload, "retry_after", "retryAfter"), "retry_after"),
            seconds=_optional_float(_json_field(payload, "seconds", "seconds"), "seconds"),
            sequence_id=_optional_int(_json_field(payload, "sequence_id", "sequenceId"), "sequence_id"),
            path_prefix=_optional_str(_json_field(payload, "path_prefix", "pathPrefix"), "path_prefix"),
            part=_optional_str(_json_field(payload, "part", "part"), "part"),
            headers=_header_pairs(_json_field(payload, "headers", "headers")),
            body=_optional_str(_json_field(payload, "body", "body"), "body"),
        )

    def to_json(self) -> dict[str, object]:
        """Return the fault's fields as JSON-ready snake_case keys."""
        return {
            "kind": self.kind,
            "times": self.times,
            "status": self.status,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "sequence_id": self.sequence_id,
            "path_prefix": self.path_prefix,
            "part": self.part,
            "headers": [list(pair) for pair in self.headers],
            "body": self.body,
        }


@dataclass(frozen=True, slots=True)
class SimulatedSequence:
    """A snapshot of one simulated sequence (never changes; the simulator stores a new one instead)."""

    id: int
    name: str
    status: str
    is_archived: bool
    owner_user_id: int
    sales_agent: bool
    created: datetime
    team_member_removed: bool = False
    workspace_id: int = DEFAULT_WORKSPACE_ID
    archived_by_user_id: int | None = None  # the user the archiving call acted as (None: seeded archived, or not)
    health: str = "healthy"  # one of SEQUENCE_HEALTHS

    def to_json(self) -> dict[str, object]:
        """Return the snapshot as JSON-ready snake_case keys (the admin API's shape)."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "is_archived": self.is_archived,
            "health": self.health,
            "owner_user_id": self.owner_user_id,
            "sales_agent": self.sales_agent,
            "team_member_removed": self.team_member_removed,
            "created": self.created.isoformat(timespec="seconds"),
            "workspace_id": self.workspace_id,
            "archived_by_user_id": self.archived_by_user_id,
        }


@dataclass(frozen=True, slots=True)
class WorkspaceContact:
    """A contact of a workspace, in no sequence or in some: what POST /v3/sequences/{id}/contact-links/bulk can
    enrol (by contactId) in a sequence of the same workspace."""

    contact_id: int
    workspace_id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    is_opted_out: bool = False

    def to_json(self) -> dict[str, object]:
        """Return the contact as JSON-ready snake_case keys (the admin API's shape)."""
        return {
            "contact_id": self.contact_id,
            "workspace_id": self.workspace_id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "company": self.company,
            "title": self.title,
            "is_opted_out": self.is_opted_out,
        }


@dataclass(frozen=True, slots=True)
class SimulatedContact:
    """A snapshot of one contact in one sequence: a Sequence Contact of GET /v3/sequences/{id}/contacts."""

    contact_id: int
    sequence_id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    status_in_sequence: str
    is_opted_out: bool
    adding_date: datetime
    current_step_id: int | None = None
    current_step_name: str | None = "Finished"
    current_step_number: int = 0  # the step's position (1, 2, ...); 0 when the contact is on no step
    last_step_completed_at: datetime | None = None

    def to_json(self) -> dict[str, object]:
        """Return the contact as the spec's Sequence Contact item (camelCase)."""
        return {
            "contactId": self.contact_id,
            "sequenceId": self.sequence_id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "company": self.company,
            "title": self.title,
            "statusInSequence": self.status_in_sequence,
            "isOptedOut": self.is_opted_out,
            "callStatus": "none",
            "meetingStatus": "none",
            "emailDisposition": None,  # no email sent to this contact yet in this sequence
            "currentStep": {"stepId": self.current_step_id, "displayName": self.current_step_name},
            "addingDate": self.adding_date.isoformat(timespec="seconds"),
            "emailAccountId": None,
            "linkedInAccountId": None,
        }

    def to_state_json(self, columns: frozenset[str]) -> dict[str, object]:
        """Return the contact as an item of GET /v3/sequences/{id}/contacts/state: the base fields, and the
        additional columns asked for (CurrentStep, LastStepCompletedAt, Status: CONTACT_STATE_COLUMNS)."""
        item: dict[str, object] = {
            "contactId": self.contact_id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "title": self.title,
            "addedAt": self.adding_date.isoformat(timespec="seconds"),
        }
        if "CurrentStep" in columns:
            item["currentStep"] = {
                "stepId": self.current_step_id,
                "displayStepNumber": self.current_step_name,
                "stepNumber": self.current_step_number,
            }
        if "LastStepCompletedAt" in columns:
            completed = self.last_step_completed_at
            item["lastStepCompletedAt"] = completed.isoformat(timespec="seconds") if completed is not None else None
        if "Status" in columns:
            status = self.status_in_sequence
            item["status"] = {
                "status": status[:1].upper() + status[1:],  # as the spec's example: Active, Paused, Finished...
                "replied": False,
                "delivered": False,
                "bounced": False,
                "opened": False,
                "clicked": False,
            }
        return item


# The additionalColumns of GET /v3/sequences/{id}/contacts/state, spelt as the spec lists them.
CONTACT_STATE_COLUMNS: Final = ("CurrentStep", "LastStepCompletedAt", "Status")


def key_fingerprint(api_key: str) -> str:
    """How the request log names a bearer key: the first 16 hex digits of its SHA-256 (never the key itself).
    A test compares `RecordedRequest.key_fingerprint` with `key_fingerprint(the key it expects)`."""
    return hashlib.sha256(api_key.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One /v3 request as the simulator saw it; holds whether the key was accepted and the key's fingerprint
    (which key a call used, when several are accepted), never the key.

    `acting_user_id` and `workspace_id` say whom an accepted key acted as (None when it acted as nobody: a
    refused X-User-Id or X-User-Email, or no accepted key); `via_master_key` whether a Master API key made the
    call; `over_quota` whether that user's quota refused it (a 429 the simulator gave, not an injected one).
    """

    method: str
    path: str
    status: int  # 0 when a drop fault closed the connection without a response
    sequence_id: int | None
    key_accepted: bool
    at: float  # time.monotonic() when the request arrived
    sequence_ids: tuple[int, ...] = ()  # the distinct valid ids a bulk call named, in request order (even if refused)
    acting_user_id: int | None = None
    workspace_id: int | None = None
    via_master_key: bool = False
    over_quota: bool = False
    key_fingerprint: str | None = None  # key_fingerprint() of the bearer key sent, accepted or not; None: no key
    # The operation the method and path name: list, get, pause, archive, bulk (archive), unarchive, contacts,
    # contacts_state, contact_links; None when they name none.
    operation: str | None = None

    def to_json(self) -> dict[str, object]:
        """Return the record as JSON-ready snake_case keys."""
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "sequence_id": self.sequence_id,
            "sequence_ids": list(self.sequence_ids),
            "key_accepted": self.key_accepted,
            "acting_user_id": self.acting_user_id,
            "workspace_id": self.workspace_id,
            "via_master_key": self.via_master_key,
            "over_quota": self.over_quota,
            "key_fingerprint": self.key_fingerprint,
            "operation": self.operation,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class UserCalls:
    """The /v3 calls that acted as one user (through any of their keys or a master key) since the last reset.

    `too_many_requests` counts every 429 those calls were answered (injected faults too); `over_quota` only the
    ones the user's own quota refused.
    """

    user_id: int
    workspace_id: int
    calls: int
    too_many_requests: int
    over_quota: int

    def to_json(self) -> dict[str, object]:
        """Return the counts as JSON-ready snake_case keys."""
        return {
            "user_id": self.user_id,
            "workspace_id": self.workspace_id,
            "calls": self.calls,
            "too_many_requests": self.too_many_requests,
            "over_quota": self.over_quota,
        }


def _json_field(payload: Mapping[str, object], snake: str, camel: str, default: object = None) -> object:
    if snake in payload:
        return payload[snake]
    return payload.get(camel, default)


def _optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("'" + name + "' must be an integer or null")
    return value


def _optional_float(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("'" + name + "' must be a number or null")
    return float(value)


def _optional_str(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("'" + name + "' must be a string or null")
    return value


def _check_header(name: object, value: object) -> None:
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise ValueError("a fault header name must be an HTTP token")
    if name.lower() in _FRAMING_HEADERS:
        raise ValueError("a fault cannot set " + name + " (the simulator frames each answer itself)")
    if not isinstance(value, str) or any(char in value for char in "\r\n\0"):
        raise ValueError("a fault header value must be a string without CR, LF or NUL")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("a fault header value must be Latin-1 text") from None


def _header_pairs(value: object) -> tuple[tuple[str, str], ...]:
    """Headers from admin JSON: an object of name to value, or a list of [name, value] pairs."""
    if value is None:
        return ()
    if isinstance(value, dict):
        items: list[object] = list(value.items())
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError("'headers' must be an object or a list of [name, value] pairs")
    pairs: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ValueError("'headers' must be an object or a list of [name, value] pairs")
        name, header_value = item
        if not isinstance(name, str) or not isinstance(header_value, str):
            raise ValueError("fault header names and values must be strings")
        pairs.append((name, header_value))
    return tuple(pairs)
