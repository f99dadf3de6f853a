"""The /v3 sequence endpoints: auth, the acting user, their rate limit, faults, then the operation itself."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

from local.stand_ins.reply_simulator import rules
from local.stand_ins.reply_simulator.assumptions import Assumptions
from local.stand_ins.reply_simulator.faults import FaultQueue
from local.stand_ins.reply_simulator.identities import IdentityRefusal
from local.stand_ins.reply_simulator.messages import (
    HttpResponse,
    json_response,
    problem_response,
    sequence_base_json,
    sequence_json,
    too_many_requests_response,
    validation_response,
)
from local.stand_ins.reply_simulator.models import (
    CONTACT_STATE_COLUMNS,
    MAX_SEQUENCE_ID,
    MIN_SEQUENCE_ID,
    SCOPE_OPERATE,
    SCOPE_READ,
    SCOPE_WRITE,
    SEQUENCE_STATUSES,
    RecordedRequest,
    SimulatedContact,
    SimulatedSequence,
    UserCalls,
    key_fingerprint,
)
from local.stand_ins.reply_simulator.rate_limiter import SlidingWindowRateLimiter

if TYPE_CHECKING:
    from local.stand_ins.reply_simulator.identities import ActingUser, Directory, KeyGrant
    from local.stand_ins.reply_simulator.messages import HttpRequest
    from local.stand_ins.reply_simulator.models import Fault, RateLimit
    from local.stand_ins.reply_simulator.rate_limiter import RateDecision
    from local.stand_ins.reply_simulator.store import SequenceStore

logger = logging.getLogger(__name__)

UNAUTHORIZED_DETAIL: Final = "Authentication credentials are missing or invalid."
PATH_ID_ERROR: Final = {"pointer": "id", "detail": "The field id must be between 1 and 2147483647."}
PATH_VALIDATION_DETAIL: Final = "One or more validation errors occurred."
BODY_VALIDATION_DETAIL: Final = "The request body contains validation errors."
INVALID_TYPE: Final = "Value has an invalid type."
DEFAULT_PAGE_SIZE: Final = 25
MAX_PAGE_SIZE: Final = 1000
SORT_FIELDS: Final = ("created", "name", "status")
SORT_DIRECTIONS: Final = ("asc", "desc")
MIN_INT32: Final = -(2**31)
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,20}")
# Faults that let the request run (and change state) and then change how its answer goes out.
_FAULTS_THAT_RUN_THE_REQUEST: Final = frozenset({"delay", "drip", "headers", "body"})
# The body of a 401: "empty" as the spec's description says (the default), or the problem+json seen live.
UNAUTHORIZED_BODIES: Final = ("empty", "problem")
FILTER_ERROR_CODE: Final = "sequence.invalidFilter"
LIST_PAGINATION_ERROR: Final = ("sequence.invalidPagination", "Invalid requested page view.")
# GetSequenceContacts documents no pagination slug: its 400 business example `sequenceContact.invalidInput`.
CONTACTS_PAGINATION_ERROR: Final = ("sequenceContact.invalidInput", "Invalid requested page view.")
CONTACTS_FORBIDDEN: Final = ("sequenceContact.forbidden", "You do not have permission to view this sequence.")
CONTACTS_MANAGE_FORBIDDEN: Final = ("sequenceContact.forbidden", "You do not have permission to modify this sequence.")
UNARCHIVE_FORBIDDEN: Final = (rules.UNARCHIVE_FORBIDDEN.code, rules.UNARCHIVE_FORBIDDEN.detail)
# GET /v3/sequences/{id}/contacts/state: "default 25, max 100".
MAX_STATE_PAGE_SIZE: Final = 100
CONTACT_SORT_FIELDS: Final = ("addingDate", "email", "firstName", "lastName", "company", "statusInSequence")
# POST /v3/sequences/{id}/contact-links/bulk: "up to 10,000 ids per call".
MAX_CONTACT_LINK_IDS: Final = 10_000
ARCHIVED_SEQUENCE_DETAIL: Final = "Sequence is archived."
COMING_SOON_DETAIL: Final = "This endpoint is coming soon."
SETTING_NAMES: Final = ("unauthorized_body", "bulk_max_ids", "latency_seconds", "rate_limit_headers", "assumptions")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Configuration of the /v3 endpoints: 401 body, bulk size limit, latency, rate-limit headers, assumptions."""

    unauthorized_body: str = "empty"
    bulk_max_ids: int = 100
    latency_seconds: float = 0.0
    rate_limit_headers: bool = False
    assumptions: Assumptions = field(default_factory=Assumptions)

    def __post_init__(self) -> None:
        if self.unauthorized_body not in UNAUTHORIZED_BODIES:
            raise ValueError("unauthorized_body must be one of: " + ", ".join(UNAUTHORIZED_BODIES))
        if isinstance(self.bulk_max_ids, bool) or not isinstance(self.bulk_max_ids, int) or self.bulk_max_ids < 1:
            raise ValueError("bulk_max_ids must be an integer of at least 1")
        if (
            isinstance(self.latency_seconds, bool)
            or not isinstance(self.latency_seconds, int | float)
            or not 0 <= self.latency_seconds < math.inf
        ):
            raise ValueError("latency_seconds must be a number of seconds, not negative")
        if not isinstance(self.rate_limit_headers, bool):
            raise ValueError("rate_limit_headers must be true or false")

    def to_json(self) -> dict[str, object]:
        """Return the settings as the admin API shows them."""
        return {
            "unauthorized_body": self.unauthorized_body,
            "bulk_max_ids": self.bulk_max_ids,
            "latency_seconds": self.latency_seconds,
            "rate_limit_headers": self.rate_limit_headers,
            "assumptions": self.assumptions.to_json(),
        }


@dataclass(frozen=True, slots=True)
class _Route:
    operation: str | None
    path_id: str | None = None
    allowed_methods: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _BulkIds:
    ids: tuple[int, ...]
    errors: tuple[dict[str, str], ...]


@dataclass(frozen=True, slots=True)
class _ParsedRequest:
    request: HttpRequest
    route: _Route
    path_id: int | None
    bulk: _BulkIds | None

    @classmethod
    def parse(cls, request: HttpRequest, bulk_max_ids: int) -> _ParsedRequest:
        route = _resolve_route(request.method, request.path)
        path_id = _parse_path_id(route.path_id) if route.path_id is not None else None
        bulk = _parse_bulk_ids(request.body, bulk_max_ids) if route.operation == "bulk" else None
        return cls(request, route, path_id, bulk)

    @property
    def fault_ids(self) -> tuple[int, ...]:
        """Return the ids a sequence-scoped fault can match: the path id, or a bulk call's ids."""
        if self.path_id is not None:
            return (self.path_id,)
        return self.bulk.ids if self.bulk is not None else ()


# Per operation: the scope it needs and the 403 it answers without it.
_SCOPE_RULES: Final = {
    "list": (SCOPE_READ, "sequence.forbidden", "You do not have permission to view sequences."),
    "get": (SCOPE_READ, "sequence.forbidden", "You do not have permission to view this sequence."),
    "pause": (SCOPE_OPERATE, rules.PAUSE_FORBIDDEN.code, rules.PAUSE_FORBIDDEN.detail),
    "archive": (SCOPE_OPERATE, rules.ARCHIVE_FORBIDDEN.code, rules.ARCHIVE_FORBIDDEN.detail),
    "bulk": (SCOPE_WRITE, "sequenceAction.forbidden", "You do not have permission to archive sequences."),
    "contacts": (SCOPE_READ, *CONTACTS_FORBIDDEN),
    "contacts_state": (SCOPE_READ, *CONTACTS_FORBIDDEN),
    "contact_links": (SCOPE_OPERATE, *CONTACTS_MANAGE_FORBIDDEN),
    "unarchive": (SCOPE_OPERATE, *UNARCHIVE_FORBIDDEN),
}


class ReplyApi:
    """Answers /v3 requests like Reply API v3, as the user each key acts as, and records each one (never the key)."""

    def __init__(
        self,
        store: SequenceStore,
        settings: ApiSettings,
        rate_limit: RateLimit | None,
        directory: Directory,
    ) -> None:
        self._store = store
        self._settings = settings
        self._limiter = SlidingWindowRateLimiter(rate_limit)
        self.faults = FaultQueue()
        self._directory = directory
        self._record_lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._api_calls = 0

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the recorded requests, oldest first."""
        with self._record_lock:
            return list(self._requests)

    @property
    def api_calls(self) -> int:
        """Return how many /v3 requests arrived."""
        with self._record_lock:
            return self._api_calls

    def user_calls(self) -> dict[int, UserCalls]:
        """Return, by user id, the recorded calls that acted as each user (only users who were acted as)."""
        counts: dict[int, UserCalls] = {}
        for record in self.requests:
            user_id, workspace_id = record.acting_user_id, record.workspace_id
            if user_id is None or workspace_id is None:
                continue
            counted = counts.get(user_id) or UserCalls(
                user_id, workspace_id, calls=0, too_many_requests=0, over_quota=0
            )
            counts[user_id] = replace(
                counted,
                calls=counted.calls + 1,
                too_many_requests=counted.too_many_requests + int(record.status == HTTPStatus.TOO_MANY_REQUESTS),
                over_quota=counted.over_quota + int(record.over_quota),
            )
        return counts

    @property
    def settings(self) -> ApiSettings:
        """Return the settings requests are answered with now."""
        return self._settings

    def configure(self, changes: Mapping[str, object]) -> ApiSettings:
        """Change some settings (validated, all or nothing) for the requests that arrive from now on.

        `assumptions` may be an Assumptions, or a mapping of switch names to booleans (changing only those).
        """
        current = self._settings
        updates: dict[str, Any] = dict(changes)
        unknown = sorted(set(updates) - set(SETTING_NAMES))
        if unknown:
            raise ValueError("unknown setting(s): " + ", ".join(unknown) + "; known: " + ", ".join(SETTING_NAMES))
        assumptions = updates.get("assumptions", current.assumptions)
        if isinstance(assumptions, Mapping):
            updates["assumptions"] = current.assumptions.updated(assumptions)
        elif not isinstance(assumptions, Assumptions):
            raise ValueError("'assumptions' must be an object of switch names to true/false")
        self._settings = replace(current, **updates)
        return self._settings

    def reset(self) -> None:
        """Forget faults, recorded requests and rate-limit counters."""
        self.faults.clear()
        self._limiter.reset()
        with self._record_lock:
            self._requests.clear()
            self._api_calls = 0

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one /v3 request."""
        received_at = time.monotonic()
        settings = self._settings  # one request is answered under one set of settings
        with self._record_lock:
            self._api_calls += 1
        parsed = _ParsedRequest.parse(request, settings.bulk_max_ids)
        api_key = _bearer_token(request.authorization)
        grant = (
            self._directory.resolve(api_key, request.user_id_header, request.user_email_header, settings.assumptions)
            if api_key is not None
            else None
        )
        acting_user = grant.acting_user if grant is not None and not isinstance(grant, IdentityRefusal) else None
        over_quota = False
        if grant is None:
            response = _unauthorized(settings)
        elif isinstance(grant, IdentityRefusal):  # an accepted key acting as nobody: no user's quota to spend
            response = problem_response(grant.status, grant.detail, code=grant.code)
        else:
            decision = self._limiter.acquire(grant.acting_user.user_id)
            if decision.allowed:
                response = self._after_rate_limit(parsed, grant, settings.assumptions)
            else:
                over_quota = True
                response = too_many_requests_response(decision.retry_after_seconds)
            if settings.rate_limit_headers:
                # A fault's own x-rate-limit-* headers win over the real ones.
                response.set_headers(_rate_limit_headers(decision), replace=False)

        if settings.latency_seconds > 0:
            time.sleep(settings.latency_seconds)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            status=0 if response.drop_connection else response.status,
            sequence_id=parsed.path_id,
            key_accepted=grant is not None,
            at=received_at,
            sequence_ids=parsed.bulk.ids if parsed.bulk is not None else (),
            acting_user_id=acting_user.user_id if acting_user is not None else None,
            workspace_id=acting_user.workspace_id if acting_user is not None else None,
            via_master_key=acting_user is not None and acting_user.via_master_key,
            over_quota=over_quota,
            key_fingerprint=key_fingerprint(api_key) if api_key is not None else None,
            operation=parsed.route.operation,
        )
        with self._record_lock:
            self._requests.append(record)
        logger.debug(
            "reply simulator answered",
            extra={
                "method": request.method,
                "path": request.path,
                "status": record.status,
                "acting_user_id": record.acting_user_id,
            },
        )
        return response

    def _after_rate_limit(self, parsed: _ParsedRequest, grant: KeyGrant, assumptions: Assumptions) -> HttpResponse:
        fault = self.faults.take(parsed.request.path, parsed.fault_ids)
        if fault is None:
            return self._operation(parsed, grant, assumptions)
        if fault.kind not in _FAULTS_THAT_RUN_THE_REQUEST:
            return _with_fault_headers(fault, _fault_response(fault, parsed))
        if fault.kind == "delay":
            # A delayed request still runs: a client that times out may find the sequence archived.
            time.sleep(fault.seconds or 0.0)
        response = self._operation(parsed, grant, assumptions)
        if fault.kind == "body":
            assert fault.body is not None
            response.body = fault.body.encode()
            response.status = fault.status or response.status
        if fault.kind == "drip":
            response.drip_seconds = fault.seconds
            response.drip_from_body = fault.part == "body"
        return _with_fault_headers(fault, response)

    def _operation(self, parsed: _ParsedRequest, grant: KeyGrant, assumptions: Assumptions) -> HttpResponse:
        coming_soon = parsed.route.operation == "unarchive" and assumptions.unarchive_coming_soon
        operation = None if coming_soon else parsed.route.operation
        if operation is None:
            return (
                _coming_soon(parsed.request, assumptions)
                if coming_soon
                else _no_such_operation(parsed.request, parsed.route)
            )
        required_scope, forbidden_code, forbidden_detail = _SCOPE_RULES[operation]
        if required_scope not in grant.scopes:
            return problem_response(403, forbidden_detail, code=forbidden_code)
        acting_user = grant.acting_user
        if operation == "list":
            return self._list(parsed.request.query, assumptions, acting_user)
        if parsed.bulk is not None:
            return self._bulk_archive(parsed.bulk, assumptions, acting_user)
        if parsed.path_id is None:
            return validation_response(PATH_VALIDATION_DETAIL, [PATH_ID_ERROR])
        return self._sequence_operation(operation, parsed.path_id, parsed.request, assumptions, acting_user)

    def _sequence_operation(
        self,
        operation: str,
        sequence_id: int,
        request: HttpRequest,
        assumptions: Assumptions,
        acting_user: ActingUser,
    ) -> HttpResponse:
        if operation in ("contacts", "contacts_state", "contact_links"):
            return self._contacts_operation(operation, sequence_id, request, assumptions, acting_user)
        if operation == "get":
            return self._get(sequence_id, assumptions, acting_user)
        actions = {"archive": rules.archive, "pause": rules.pause, "unarchive": rules.unarchive}
        action = actions[operation]
        result = self._store.apply(sequence_id, partial(action, assumptions=assumptions, acting_user=acting_user))
        if isinstance(result, SimulatedSequence):
            return json_response(200, sequence_json(result))
        return problem_response(result.status, result.detail, code=result.code)

    def _get(self, sequence_id: int, assumptions: Assumptions, acting_user: ActingUser) -> HttpResponse:
        sequence = self._store.get(sequence_id)
        if sequence is None or not acting_user.finds(sequence):
            detail = "Sequence with ID " + str(sequence_id) + " is not found."
            return problem_response(404, detail, code="sequence.notFound")
        if not acting_user.sees(sequence, assumptions):
            detail = "You do not have permission to view this sequence."
            return problem_response(403, detail, code="sequence.forbidden")
        return json_response(200, sequence_json(sequence))

    def _contacts_operation(
        self,
        operation: str,
        sequence_id: int,
        request: HttpRequest,
        assumptions: Assumptions,
        acting_user: ActingUser,
    ) -> HttpResponse:
        """The Sequence Contacts operations: the sequence must exist for the acting user (else 404
        `sequenceContact.sequenceNotFound`) and be one they see (else 403 `sequenceContact.forbidden`)."""
        sequence = self._store.get(sequence_id)
        if sequence is None or not acting_user.finds(sequence):
            detail = "Sequence " + str(sequence_id) + " not found."
            return problem_response(404, detail, code="sequenceContact.sequenceNotFound")
        if not acting_user.sees(sequence, assumptions):
            code, detail = CONTACTS_MANAGE_FORBIDDEN if operation == "contact_links" else CONTACTS_FORBIDDEN
            return problem_response(403, detail, code=code)
        if operation == "contact_links":
            return self._link_contacts(sequence_id, request.body, assumptions)
        try:
            if operation == "contacts":
                return self._contacts(sequence_id, _ContactsQuery.parse(request.query))
            return self._contacts_state(sequence_id, _ContactsStateQuery.parse(request.query, assumptions))
        except _ListQueryError as exc:
            return problem_response(400, exc.detail, code=exc.code)

    def _contacts(self, sequence_id: int, listing: _ContactsQuery) -> HttpResponse:
        """GET /v3/sequences/{id}/contacts (GetSequenceContacts): one page, most recently added first by default."""
        contacts = sorted(self._store.contacts(sequence_id), key=listing.sort_key, reverse=listing.descending)
        page = contacts[listing.skip : listing.skip + listing.top]
        return json_response(
            200,
            {"items": [contact.to_json() for contact in page], "hasMore": listing.skip + listing.top < len(contacts)},
        )

    def _contacts_state(self, sequence_id: int, listing: _ContactsStateQuery) -> HttpResponse:
        """GET /v3/sequences/{id}/contacts/state (GetSequenceContactsState): one page of the base fields and the
        columns asked for, most recently added first (the spec names no order)."""
        contacts = sorted(self._store.contacts(sequence_id), key=_added_order, reverse=True)
        page = contacts[listing.skip : listing.skip + listing.top]
        items = [contact.to_state_json(listing.columns) for contact in page]
        return json_response(200, {"items": items, "hasMore": listing.skip + listing.top < len(contacts)})

    def _link_contacts(self, sequence_id: int, body: bytes, assumptions: Assumptions) -> HttpResponse:
        """POST /v3/sequences/{id}/contact-links/bulk (BulkAddContactsToSequence): `added` ids, and `notProcessed`
        keyed by contact id; refused as a whole (400) for a body that fails validation or an archived sequence."""
        links = _ContactLinksBody.parse(body)
        if links.errors:
            return validation_response(BODY_VALIDATION_DETAIL, links.errors)
        result = self._store.link_contacts(
            sequence_id,
            links.contact_ids,
            adding_date=datetime.now(UTC),
            remove_from_existing=links.remove_from_existing,
        )
        if result is None:  # archived (a sequence is never deleted, so it exists)
            code = "sequenceContact.sequenceArchived" if assumptions.contact_links_archived_sequence else None
            return problem_response(400, ARCHIVED_SEQUENCE_DETAIL, code=code)
        not_processed = {
            str(contact_id): {"error": slug, "errorDetails": _CONTACT_LINK_DETAILS[slug]}
            for contact_id, slug in result.not_processed
        }
        return json_response(200, {"added": list(result.added), "notProcessed": not_processed})

    def _bulk_archive(self, bulk: _BulkIds, assumptions: Assumptions, acting_user: ActingUser) -> HttpResponse:
        if bulk.errors:
            return validation_response(BODY_VALIDATION_DETAIL, bulk.errors)
        item_rule = partial(rules.bulk_archive_item, assumptions=assumptions, acting_user=acting_user)
        failures = self._store.apply_many(bulk.ids, item_rule)
        if isinstance(failures, rules.ActionFailure):  # refused as a whole (documented answers only)
            return problem_response(failures.status, failures.detail, code=failures.code)
        payload = {str(sequence_id): _bulk_item_json(failure) for sequence_id, failure in failures.items()}
        return json_response(200, payload)

    def _list(self, query: str, assumptions: Assumptions, acting_user: ActingUser) -> HttpResponse:
        try:
            listing = _ListQuery.parse(query)
        except _ListQueryError as exc:
            assumed = exc.code != FILTER_ERROR_CODE or assumptions.list_invalid_filter
            return problem_response(400, exc.detail, code=exc.code if assumed else None)
        matching = [
            sequence
            for sequence in self._store.all()
            if acting_user.finds(sequence) and acting_user.sees(sequence, assumptions) and listing.matches(sequence)
        ]
        matching.sort(key=listing.sort_key, reverse=listing.descending)
        page = matching[listing.skip : listing.skip + listing.top]
        payload = {
            "items": [sequence_base_json(sequence) for sequence in page],
            "hasMore": listing.skip + listing.top < len(matching),
        }
        return json_response(200, payload)


class _ListQueryError(Exception):
    """A GET /v3/sequences query Reply rejects with a 400 business problem."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _ListQuery:
    top: int = DEFAULT_PAGE_SIZE
    skip: int = 0
    status: str | None = None
    owner_user_id: int | None = None
    is_archived: bool | None = None
    name: str | None = None
    created_after: datetime | None = None
    folder_id: uuid.UUID | None = None
    sort_by: str = "created"
    descending: bool = True

    @classmethod
    def parse(cls, query: str) -> _ListQuery:
        params = _query_params(query)
        top = _page_number(params.get("top"), DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
        skip = _page_number(params.get("skip"), 0, minimum=0, maximum=None)
        sort_by = params.get("sortby")
        sort_direction = params.get("sortdirection")
        if sort_by is not None and sort_by not in SORT_FIELDS:
            raise _ListQueryError(
                "sequence.invalidSort",
                "Invalid sortBy value '" + sort_by + "'. Allowed values: " + ", ".join(SORT_FIELDS) + ".",
            )
        if sort_direction is not None:
            if sort_by is None:
                raise _ListQueryError("sequence.invalidSort", "sortDirection requires sortBy.")
            if sort_direction not in SORT_DIRECTIONS:
                raise _ListQueryError(
                    "sequence.invalidSort",
                    "Invalid sortDirection value '" + sort_direction + "'. Allowed values: asc, desc.",
                )
        effective_sort = sort_by or "created"
        default_descending = effective_sort == "created"
        descending = default_descending if sort_direction is None else sort_direction == "desc"
        return cls(
            top=top,
            skip=skip,
            status=_status_filter(params.get("status")),
            owner_user_id=_int_filter(params.get("owneruserid"), "ownerUserId"),
            is_archived=_bool_filter(params.get("isarchived")),
            name=params.get("name"),
            created_after=_datetime_filter(params.get("createdafter")),
            folder_id=_uuid_filter(params.get("folderid")),
            sort_by=effective_sort,
            descending=descending,
        )

    def matches(self, sequence: SimulatedSequence) -> bool:
        """Return whether a sequence the acting user sees passes every filter."""
        return (
            self.folder_id is None  # simulated sequences are in no folder
            and (self.status is None or sequence.status == self.status)
            and (self.owner_user_id is None or sequence.owner_user_id == self.owner_user_id)
            and (self.is_archived is None or sequence.is_archived == self.is_archived)
            and (self.name is None or self.name.casefold() in sequence.name.casefold())
            and (self.created_after is None or sequence.created > self.created_after)
        )

    def sort_key(self, sequence: SimulatedSequence) -> tuple[str, int] | tuple[datetime, int]:
        """Return the ordering key for the requested sortBy, ties broken by id."""
        if self.sort_by == "name":
            return (sequence.name.casefold(), sequence.id)
        if self.sort_by == "status":
            return (sequence.status, sequence.id)
        return (sequence.created, sequence.id)


def _added_order(contact: SimulatedContact) -> tuple[datetime, int]:
    return (contact.adding_date, contact.contact_id)


_CONTACT_LINK_DETAILS: Final = {
    "contactNotFound": "Contact does not exist.",
    "contactAlreadyInSequence": "Contact is already enrolled.",
}


@dataclass(frozen=True, slots=True)
class _ContactsQuery:
    """GET /v3/sequences/{id}/contacts's query: top (1..1000, default 25), skip, sort_by and sort_direction."""

    top: int = DEFAULT_PAGE_SIZE
    skip: int = 0
    sort_by: str = "addingDate"
    descending: bool = True

    @classmethod
    def parse(cls, query: str) -> _ContactsQuery:
        params = _query_params(query)
        top = _page_number(
            params.get("top"), DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE, error=CONTACTS_PAGINATION_ERROR
        )
        skip = _page_number(params.get("skip"), 0, minimum=0, maximum=None, error=CONTACTS_PAGINATION_ERROR)
        sort_by = params.get("sort_by")
        if sort_by is not None and sort_by not in CONTACT_SORT_FIELDS:
            raise _ListQueryError(
                "sequenceContact.invalidSort",
                "Invalid sort_by value '" + sort_by + "'. Allowed values: " + ", ".join(CONTACT_SORT_FIELDS),
            )
        sort_direction = params.get("sort_direction")
        if sort_direction is not None and sort_direction not in SORT_DIRECTIONS:
            raise _ListQueryError(
                "sequenceContact.invalidSort",
                "Invalid sort_direction value '" + sort_direction + "'. Allowed values: asc, desc",
            )
        # "Defaults to desc when sort_by is provided"; without sort_by: most-recently-added first.
        return cls(top, skip, sort_by or "addingDate", sort_direction != "asc")

    def sort_key(self, contact: SimulatedContact) -> tuple[str, datetime, int]:
        """Order by the field asked for (a missing value first), then by when the contact was added."""
        if self.sort_by == "addingDate":
            return ("", contact.adding_date, contact.contact_id)
        values = {
            "email": contact.email,
            "firstName": contact.first_name,
            "lastName": contact.last_name,
            "company": contact.company,
            "statusInSequence": contact.status_in_sequence,
        }
        return ((values[self.sort_by] or "").lower(), contact.adding_date, contact.contact_id)


@dataclass(frozen=True, slots=True)
class _ContactsStateQuery:
    """GET /v3/sequences/{id}/contacts/state's query: top (1..100, default 25), skip and additionalColumns."""

    top: int
    skip: int
    columns: frozenset[str]

    @classmethod
    def parse(cls, query: str, assumptions: Assumptions) -> _ContactsStateQuery:
        params = _query_params(query)
        top = _page_number(
            params.get("top"),
            DEFAULT_PAGE_SIZE,
            minimum=1,
            maximum=MAX_STATE_PAGE_SIZE,
            error=CONTACTS_PAGINATION_ERROR,
        )
        skip = _page_number(params.get("skip"), 0, minimum=0, maximum=None, error=CONTACTS_PAGINATION_ERROR)
        spelling = {column.lower(): column for column in CONTACT_STATE_COLUMNS}
        columns: set[str] = set()
        for text in (params.get("additionalcolumns") or "").split(","):
            name = text.strip()
            if not name:
                continue
            column = name if name in CONTACT_STATE_COLUMNS else None
            if column is None and not assumptions.contacts_state_columns_exact_case:
                column = spelling.get(name.lower())
            if column is None:
                allowed = ", ".join(CONTACT_STATE_COLUMNS)
                detail = "Invalid additionalColumns value '" + name + "'. Allowed values: " + allowed
                raise _ListQueryError("sequenceContact.invalidInput", detail)
            columns.add(column)
        return cls(top, skip, frozenset(columns))


@dataclass(frozen=True, slots=True)
class _ContactLinksBody:
    """POST /v3/sequences/{id}/contact-links/bulk's body: contactIds (1..10,000 integers, duplicates once),
    removeFromExisting, and startStepId / ignoreStepDelay / startFrom (validated, then not simulated)."""

    contact_ids: tuple[int, ...]
    remove_from_existing: bool
    errors: tuple[dict[str, str], ...]

    @classmethod
    def parse(cls, body: bytes) -> _ContactLinksBody:
        size_detail = "'contactIds' must contain between 1 and " + str(MAX_CONTACT_LINK_IDS) + " items."
        try:
            payload = _json_body(body)
        except _BulkBodyError as exc:
            return cls((), False, (exc.error,))
        raw_ids = payload.get("contactIds")
        errors: list[dict[str, str]] = []
        if not isinstance(raw_ids, list):
            detail = "'contactIds' must not be empty." if raw_ids is None else INVALID_TYPE
            return cls((), False, ({"pointer": "/contactIds", "detail": detail},))
        if not raw_ids:
            errors.append({"pointer": "/contactIds", "detail": "'contactIds' must not be empty."})
        elif len(raw_ids) > MAX_CONTACT_LINK_IDS:
            errors.append({"pointer": "/contactIds", "detail": size_detail})
        ids: dict[int, None] = {}  # ordered set: a duplicate id is processed once
        for index, item in enumerate(raw_ids):
            if isinstance(item, bool) or not isinstance(item, int) or not MIN_INT32 <= item <= MAX_SEQUENCE_ID:
                errors.append({"pointer": "/contactIds/" + str(index), "detail": INVALID_TYPE})
            else:
                ids[item] = None
        checks = (("removeFromExisting", bool), ("ignoreStepDelay", bool), ("startStepId", int), ("startFrom", str))
        for name, kind in checks:
            value = payload.get(name)
            if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                errors.append({"pointer": "/" + name, "detail": INVALID_TYPE})
        start_from = payload.get("startFrom")
        if isinstance(start_from, str) and _datetime_or_none(start_from) is None:
            errors.append({"pointer": "/startFrom", "detail": INVALID_TYPE})
        return cls(tuple(ids), payload.get("removeFromExisting") is True, tuple(errors))


def _datetime_or_none(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _query_params(query: str) -> dict[str, str]:
    # ASP.NET binds query parameters case-insensitively; the first value wins.
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name.lower(), value)
    return params


def _page_number(
    text: str | None,
    default: int,
    *,
    minimum: int,
    maximum: int | None,
    error: tuple[str, str] = LIST_PAGINATION_ERROR,
) -> int:
    if text is None:
        return default
    value = _parse_int(text)
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise _ListQueryError(*error)
    return value


def _invalid_filter(parameter: str, text: str) -> _ListQueryError:
    # An assumed code (Assumptions.list_invalid_filter): _list answers the documented one when it is off.
    return _ListQueryError(FILTER_ERROR_CODE, "Invalid " + parameter + " value '" + text + "'.")


def _status_filter(text: str | None) -> str | None:
    if text is None:
        return None
    status = text.lower()
    if status not in SEQUENCE_STATUSES:
        raise _invalid_filter("status", text)
    return status


def _int_filter(text: str | None, parameter: str) -> int | None:
    if text is None:
        return None
    value = _parse_int(text)
    if value is None:
        raise _invalid_filter(parameter, text)
    return value


def _bool_filter(text: str | None) -> bool | None:
    if text is None:
        return None
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise _invalid_filter("isArchived", text)
    return lowered == "true"


def _datetime_filter(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        # A literal "+" in an unencoded query string arrives as a space: read it back as the offset sign.
        moment = datetime.fromisoformat(text.replace(" ", "+"))
    except ValueError:
        raise _invalid_filter("createdAfter", text) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _uuid_filter(text: str | None) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise _invalid_filter("folderId", text) from None


def _resolve_route(method: str, path: str) -> _Route:
    segments = path.strip("/").split("/")
    if segments[:2] != ["v3", "sequences"]:
        return _Route(None)
    rest = segments[2:]
    path_id: str | None = None
    if not rest:
        operations = {"GET": "list"}
    elif rest == ["archive"]:
        operations = {"POST": "bulk"}
    elif len(rest) == 1:
        operations, path_id = {"GET": "get"}, rest[0]
    elif len(rest) == 2 and rest[1] in ("pause", "archive", "unarchive"):
        operations, path_id = {"POST": rest[1]}, rest[0]
    elif rest[1:] == ["contacts"]:
        operations, path_id = {"GET": "contacts"}, rest[0]
    elif rest[1:] == ["contacts", "state"]:
        operations, path_id = {"GET": "contacts_state"}, rest[0]
    elif rest[1:] == ["contact-links", "bulk"]:
        operations, path_id = {"POST": "contact_links"}, rest[0]
    else:
        return _Route(None)
    return _Route(operations.get(method), path_id, tuple(operations))


def _parse_int(text: str) -> int | None:
    if not _INTEGER_TEXT.fullmatch(text.strip()):
        return None
    return int(text)


def _parse_path_id(text: str) -> int | None:
    value = _parse_int(text)
    if value is None or not MIN_SEQUENCE_ID <= value <= MAX_SEQUENCE_ID:
        return None
    return value


class _BulkBodyError(Exception):
    """A bulk body that fails validation before its items are looked at."""

    def __init__(self, pointer: str, detail: str) -> None:
        super().__init__(detail)
        self.error = {"pointer": pointer, "detail": detail}


def _parse_bulk_ids(body: bytes, max_ids: int) -> _BulkIds:
    size_error = {"pointer": "/ids", "detail": "'ids' must contain between 1 and " + str(max_ids) + " items."}
    try:
        raw_ids = _raw_bulk_ids(body, size_error["detail"])
    except _BulkBodyError as exc:
        return _BulkIds((), (exc.error,))
    errors: list[dict[str, str]] = []
    if not 1 <= len(raw_ids) <= max_ids:
        errors.append(size_error)
    ids: dict[int, None] = {}  # ordered set: a duplicate id is processed once
    for index, item in enumerate(raw_ids):
        if isinstance(item, bool) or not isinstance(item, int) or not MIN_INT32 <= item <= MAX_SEQUENCE_ID:
            errors.append({"pointer": "/ids/" + str(index), "detail": INVALID_TYPE})
        else:
            ids[item] = None
    # The ids are kept even when the call is refused (the record shows what was sent); errors win in _bulk_archive.
    return _BulkIds(tuple(ids), tuple(errors))


def _json_body(body: bytes) -> dict[str, object]:
    """A request body that must be a JSON object; _BulkBodyError (pointer "") if it is not."""
    if not body.strip():
        raise _BulkBodyError("", "The request body is required and cannot be empty.")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _BulkBodyError("", "Request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise _BulkBodyError("", INVALID_TYPE)
    return payload


def _raw_bulk_ids(body: bytes, size_detail: str) -> list[object]:
    payload = _json_body(body)
    raw_ids = payload.get("ids")
    if raw_ids is None:
        raise _BulkBodyError("/ids", size_detail)
    if not isinstance(raw_ids, list):
        raise _BulkBodyError("/ids", INVALID_TYPE)
    return raw_ids


def _no_such_operation(request: HttpRequest, route: _Route) -> HttpResponse:
    if route.allowed_methods:
        return problem_response(
            405,
            "Method " + request.method + " is not allowed on " + request.path + ".",
            headers=[("Allow", ", ".join(route.allowed_methods))],
        )
    return problem_response(404, "No API operation matches " + request.path + ".")


def _coming_soon(request: HttpRequest, assumptions: Assumptions) -> HttpResponse:
    """An endpoint the spec announces as coming soon: 404 like any path no operation matches, or 501."""
    if assumptions.unarchive_coming_soon_as_404:
        return _no_such_operation(request, _Route(None))
    return problem_response(501, COMING_SOON_DETAIL)


def _bulk_item_json(failure: rules.ActionFailure) -> dict[str, str]:
    """A NotProcessedItemResult: `error` (a bare variant) only when the spec documents one for the refusal."""
    item = {"error": failure.slug} if failure.slug is not None else {}
    item["errorDetails"] = failure.detail
    return item


def _unauthorized(settings: ApiSettings) -> HttpResponse:
    """A 401: no body by default ("The response body is empty; check WWW-Authenticate"), or the live problem."""
    headers = [("WWW-Authenticate", "Bearer")]
    if settings.unauthorized_body == "empty":
        return HttpResponse(status=401, headers=headers)
    return problem_response(401, UNAUTHORIZED_DETAIL, headers=headers)


def _bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _with_fault_headers(fault: Fault, response: HttpResponse) -> HttpResponse:
    if fault.headers and not response.drop_connection:
        response.set_headers(fault.headers)
    return response


def _fault_response(fault: Fault, parsed: _ParsedRequest) -> HttpResponse:
    if fault.kind == "drop":
        return HttpResponse(status=0, drop_connection=True)
    if fault.kind == "malformed":
        # Cut off mid-document: not JSON, and nothing changed on the server.
        broken = '{"id":' + str(parsed.path_id or 0) + ',"name":"Seed","status":"pau'
        return HttpResponse(status=200, body=broken.encode(), headers=[("Content-Type", "application/json")])
    if fault.kind == "echo":
        # A careless server repeating the request's credentials back in its problem text.
        echoed = "Authorization: " + (parsed.request.authorization or "")
        return problem_response(
            fault.status or 400,
            "The request was rejected. " + echoed,
            title="Rejected (" + echoed + ")",
            code="request.rejected " + echoed,
        )
    assert fault.status is not None
    if fault.status == 429:
        return too_many_requests_response(max(1, fault.retry_after or 1))
    headers = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
    phrase = _status_phrase(fault.status)
    return problem_response(
        fault.status, "Injected fault: the simulator answered " + phrase + ".", title=phrase, headers=headers
    )


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error " + str(status)


def _rate_limit_headers(decision: RateDecision) -> list[tuple[str, str]]:
    report = decision.report
    if report is None:
        return []
    reset_at = datetime.now(UTC) + timedelta(seconds=report.reset_in_seconds)
    return [
        ("x-rate-limit-limit", report.label),
        ("x-rate-limit-remaining", str(report.remaining)),
        ("x-rate-limit-reset", reset_at.isoformat(timespec="seconds")),
    ]
