"""A clean-up policy's request: which sequences to select (the CLI's `select` filters), dry run or not, bounds.

```json
{"select": {"status": "paused", "olderThanDays": 180}, "dryRun": true, "pauseFirst": false, "maxSequences": 10000}
```

plus `"workspace": "sales-eu"` to list and archive with that workspace's key (REPLY_WORKSPACES).

The function sends itself a continuation of the same request (`continuation`: where the listing resumes and
what it selected so far) when the listing does not fit one invocation. Only imported when such a request
arrives, so archive requests do not pay for these models at cold start.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from sequence_archiver.core.archive_request import (
    MAX_CONTINUATION_PARTS,
    MAX_REQUEST_ID_CHARS,
    MAX_SEQUENCE_ID,
    REQUEST_ID_CHARS,
    WORKSPACE_PATTERN,
)
from sequence_archiver.core.exceptions import InvalidRequestError
from sequence_archiver.core.request_report import EventShape, Trigger  # noqa: TC001 - pydantic reads them at runtime
from sequence_archiver.reply.contact_checks import ContactCheck
from sequence_archiver.reply.listing import HEALTH_VALUES, MAX_PAGE_SIZE, STATUSES, SequenceFilter, parse_timestamp

DEFAULT_MAX_SEQUENCES = 10_000
# The most a request may allow: a continuation carries the IDs selected so far, and 20,000 IDs of 10 digits
# still fit one SQS message (256 KiB) with room to spare.
MAX_SEQUENCES_CAP = 20_000
MAX_NAME_CHARS = 200
MAX_OLDER_THAN_DAYS = 36_500
MAX_SKIP = 10_000_000
MAX_SCHEDULE_SELECTION_CHARS = 4_096  # a CloudFormation parameter value is at most 4 KB
MAX_INACTIVE_FOR_DAYS = 3_650
# The keep list's bounds: every ID and name travels in each continuation and in every plan part.
MAX_EXCLUDED_IDS = 10_000
MAX_EXCLUDED_NAMES = 100
MAX_EXCLUDED_FOLDERS = 20  # each is listed (1 call per 1,000 of its sequences) in every invocation of a run
MAX_EXCLUDED_OWNERS = 1_000
# What a continuation's body may take before it is sealed: an SQS message holds 256 KiB, the seal and the
# continuation's own fields take a few hundred bytes.
MAX_CONTINUATION_BYTES = 250_000
_BYTES_PER_ID = 11  # 10 digits and a comma
_CONTINUATION_FIELDS_BYTES = 4_096
FILTER_NAMES = (
    "status",
    "ownerUserId",
    "folderId",
    "name",
    "createdAfter",
    "createdBefore",
    "olderThanDays",
    "health",
    "contactsFinished",
    "inactiveForDays",
)

SequenceIdValue = Annotated[StrictInt, Field(ge=1, le=MAX_SEQUENCE_ID)]
ExcludedName = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_CHARS)]


class Exclusion(BaseModel):
    """`exclude`: a keep list. A sequence it names (by ID, folder, owner or part of its name) is never selected,
    whatever else matches."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    sequence_ids: tuple[SequenceIdValue, ...] = Field(default=(), alias="sequenceIds", max_length=MAX_EXCLUDED_IDS)
    name_contains: tuple[ExcludedName, ...] = Field(default=(), alias="nameContains", max_length=MAX_EXCLUDED_NAMES)
    folder_ids: tuple[uuid.UUID, ...] = Field(default=(), alias="folderIds", max_length=MAX_EXCLUDED_FOLDERS)
    owner_user_ids: tuple[SequenceIdValue, ...] = Field(
        default=(), alias="ownerUserIds", max_length=MAX_EXCLUDED_OWNERS
    )

    @field_validator("folder_ids", mode="before")
    @classmethod
    def _folder_texts(cls, value: object) -> object:
        """Folder IDs are UUIDs written as strings."""
        if isinstance(value, (list, tuple)) and not all(isinstance(item, (str, uuid.UUID)) for item in value):
            raise ValueError("must be folder IDs (UUIDs) as strings")
        return value

    @field_validator("name_contains", mode="after")
    @classmethod
    def _names_not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """A blank part would match every name."""
        if any(not name.strip() for name in value):
            raise ValueError("a name part must not be blank")
        return value

    @property
    def empty(self) -> bool:
        """True when it names nothing."""
        return not (self.sequence_ids or self.name_contains or self.folder_ids or self.owner_user_ids)

    def to_json(self) -> dict[str, Any]:
        """The lists given, camelCase, without the empty ones."""
        return {key: value for key, value in self.model_dump(mode="json", by_alias=True).items() if value}


class Selection(BaseModel):
    """The `select` object: the CLI's `select` filters, combined with AND; archived sequences are never selected."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    status: str | None = Field(default=None, description="new, active or paused (any case)")
    owner_user_id: StrictInt | None = Field(default=None, alias="ownerUserId", ge=1, le=MAX_SEQUENCE_ID)
    folder_id: uuid.UUID | None = Field(default=None, alias="folderId")
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    created_after: datetime | None = Field(default=None, alias="createdAfter")
    created_before: datetime | None = Field(default=None, alias="createdBefore")
    older_than_days: StrictInt | None = Field(default=None, alias="olderThanDays", ge=0, le=MAX_OLDER_THAN_DAYS)
    health: tuple[str, ...] | None = Field(default=None, description="healthy, stalled, degraded, blocked (any case)")
    exclude: Exclusion | None = None
    contacts_finished: StrictBool | None = Field(default=None, alias="contactsFinished")
    inactive_for_days: StrictInt | None = Field(default=None, alias="inactiveForDays", ge=1, le=MAX_INACTIVE_FOR_DAYS)

    @field_validator("health", mode="before")
    @classmethod
    def _known_health(cls, value: object) -> object:
        """One of Reply's health values or a list of them (a comma-separated string too), case-insensitive."""
        if value is None:
            return None
        values = value.split(",") if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not values or len(values) > len(HEALTH_VALUES):
            raise ValueError(f"must be one of {', '.join(HEALTH_VALUES)}, or a list of them")
        folded = set()
        for item in values:
            if not isinstance(item, str) or item.strip().lower() not in HEALTH_VALUES:
                raise ValueError(f"must be one of {', '.join(HEALTH_VALUES)}, or a list of them")
            folded.add(item.strip().lower())
        return tuple(health for health in HEALTH_VALUES if health in folded)

    @field_validator("contacts_finished", mode="after")
    @classmethod
    def _only_true(cls, value: bool | None) -> bool | None:
        """`contactsFinished: false` would read as "unfinished only": leave the key out instead."""
        if value is False:
            raise ValueError("takes true (only sequences whose contacts are all finished); leave it out otherwise")
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _known_status(cls, value: object) -> object:
        """One of Reply's statuses, compared case-insensitively."""
        if value is None:
            return None
        if not isinstance(value, str) or value.strip().lower() not in STATUSES:
            raise ValueError(f"must be one of {', '.join(STATUSES)}")
        return value.strip().lower()

    @field_validator("folder_id", mode="before")
    @classmethod
    def _folder_text(cls, value: object) -> object:
        """A folder ID is a UUID written as a string."""
        if value is not None and not isinstance(value, str):
            raise ValueError("must be a folder ID (a UUID) as a string")
        return value

    @field_validator("created_after", "created_before", mode="before")
    @classmethod
    def _timestamp(cls, value: object) -> object:
        """An ISO 8601 date or date-time string; UTC when it has no offset (as the CLI reads it)."""
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError("must be an ISO 8601 date or date-time string")
        try:
            return parse_timestamp(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date or date-time string") from None

    @model_validator(mode="after")
    def _one_filter_and_an_order(self) -> Selection:
        """At least one filter; createdAfter before createdBefore."""
        if all(getattr(self, name) is None for name in type(self).model_fields if name != "exclude"):
            raise ValueError(f"give at least one filter ({', '.join(FILTER_NAMES)}); exclude alone selects everything")
        if self.created_after and self.created_before and self.created_after >= self.created_before:
            raise ValueError("createdAfter must be earlier than createdBefore")
        return self

    def cutoff(self, run_at: datetime) -> datetime | None:
        """The effective createdBefore: the earlier of createdBefore and `run_at` minus olderThanDays."""
        bounds = [bound for bound in (self.created_before, self._older_than(run_at)) if bound is not None]
        return min(bounds) if bounds else None

    def _older_than(self, run_at: datetime) -> datetime | None:
        return run_at - timedelta(days=self.older_than_days) if self.older_than_days is not None else None

    def sequence_filter(self, run_at: datetime) -> SequenceFilter:
        """The listing filter for a run at `run_at` (olderThanDays is relative to it); never archived ones."""
        return SequenceFilter(
            status=self.status,
            owner_user_id=self.owner_user_id,
            folder_id=self.folder_id,
            name=self.name,
            created_after=self.created_after,
            created_before=self.cutoff(run_at),
            is_archived=False,
            health=frozenset(self.health) if self.health is not None else None,
            exclude_ids=frozenset(self.exclude.sequence_ids) if self.exclude else frozenset(),
            exclude_names=tuple(name.strip().casefold() for name in self.exclude.name_contains) if self.exclude else (),
            exclude_owner_ids=frozenset(self.exclude.owner_user_ids) if self.exclude else frozenset(),
        )

    @property
    def checks(self) -> tuple[ContactCheck, ...]:
        """The per-sequence checks, cheapest first: each is one Reply call (or more) per remaining candidate."""
        checks = []
        if self.contacts_finished:
            checks.append(ContactCheck.CONTACTS_FINISHED)
        if self.inactive_for_days is not None:
            checks.append(ContactCheck.INACTIVE_FOR_DAYS)
        return tuple(checks)

    def active_since(self, run_at: datetime) -> datetime | None:
        """inactiveForDays as a moment: a step completed at or after it makes a sequence active."""
        return run_at - timedelta(days=self.inactive_for_days) if self.inactive_for_days is not None else None

    @property
    def excluded_folders(self) -> tuple[uuid.UUID, ...]:
        """The folders whose sequences are kept out and must be listed to be known (listed items name no folder).
        None to list when the selection is one folder: a sequence is in one folder, so only that one matters."""
        folders = self.exclude.folder_ids if self.exclude is not None else ()
        if self.folder_id is not None:
            return (self.folder_id,) if self.folder_id in folders else ()
        return folders

    def applied_keys(self) -> list[dict[str, str]]:
        """The keys given, in the order they are applied (cheapest first), each with how: a query parameter of
        the listing, a field of the listed items, or a per-sequence check (Reply calls per candidate)."""
        given = self.to_json()
        listed = [key for key in ("status", "ownerUserId", "folderId", "name", "createdAfter") if key in given]
        fields = [key for key in ("createdBefore", "olderThanDays", "health", "exclude") if key in given]
        keys = [{"key": key, "appliedAs": "listFilter"} for key in listed]
        keys += [{"key": key, "appliedAs": "listedField"} for key in fields]
        keys += [{"key": check.value, "appliedAs": "perSequenceCheck"} for check in self.checks]
        return keys

    def to_json(self) -> dict[str, Any]:
        """The filters as given (normalised), camelCase, without the ones not set (nor an empty exclude)."""
        document = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"exclude"})
        if self.health is not None:
            document["health"] = list(self.health)
        if self.exclude is not None and not self.exclude.empty:
            document["exclude"] = self.exclude.to_json()
        return document

    def continuation_bytes(self, max_sequences: int) -> int:
        """The most a continuation of a request with this selection may take: the selection, every ID it may
        select, a page of candidates still to check, and the continuation's own fields."""
        pending = MAX_PAGE_SIZE if self.checks else 0
        selection = len(json.dumps(self.to_json(), separators=(",", ":")))
        return selection + (max_sequences + 1 + pending) * _BYTES_PER_ID + _CONTINUATION_FIELDS_BYTES


class SelectionProgress(BaseModel):
    """The `continuation` of a clean-up request the function sent itself: where the listing resumes."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    request_id: str = Field(
        alias="requestId", min_length=1, max_length=MAX_REQUEST_ID_CHARS, pattern=f"^{REQUEST_ID_CHARS}+$"
    )
    part: StrictInt = Field(ge=2, le=MAX_CONTINUATION_PARTS)
    trigger: Trigger
    run_at: datetime = Field(alias="runAt")
    skip: StrictInt = Field(ge=0, le=MAX_SKIP)
    pages: StrictInt = Field(ge=0, le=MAX_SKIP)
    selected_ids: list[SequenceIdValue] = Field(alias="selectedIds", max_length=MAX_SEQUENCES_CAP + 1)
    failures: StrictInt = Field(default=0, ge=0, le=MAX_CONTINUATION_PARTS)
    # The per-sequence checks (issue 22), absent from continuations of selections without them: the listed
    # candidates not decided yet (in order, the first one being checked), which check and contact offset the
    # first is at, whether the listing has reached its last page, and the counts the plan reports.
    pending: list[SequenceIdValue] = Field(default_factory=list, max_length=MAX_PAGE_SIZE)
    check_stage: StrictInt = Field(default=0, alias="checkStage", ge=0, le=len(ContactCheck))
    check_skip: StrictInt = Field(default=0, alias="checkSkip", ge=0, le=MAX_SKIP)
    check_contacts: StrictInt = Field(default=0, alias="checkContacts", ge=0, le=MAX_SKIP)
    listed_all: StrictBool = Field(default=False, alias="listedAll")
    listing_calls: StrictInt = Field(default=0, alias="listingCalls", ge=0, le=MAX_SKIP)
    check_calls: StrictInt = Field(default=0, alias="checkCalls", ge=0, le=MAX_SKIP)
    contact_pages: StrictInt = Field(default=0, alias="contactPages", ge=0, le=MAX_SKIP)
    left_out: dict[StrictStr, Annotated[StrictInt, Field(ge=0, le=MAX_SKIP)]] = Field(
        default_factory=dict, alias="leftOut", max_length=16
    )
    # The trigger the original request arrived on, which CLEANUP_ALLOWED_TRIGGERS is checked against (an SNS
    # request reports trigger "direct", so it is kept apart). Continuations sent before it existed lack it:
    # their trigger stands in.
    origin: EventShape

    def to_json(self) -> dict[str, Any]:
        """The continuation as sent: the check fields only when they say something (a selection without checks
        sends what it sent before they existed)."""
        document = self.model_dump(mode="json", by_alias=True)
        for name in _CHECK_PROGRESS_FIELDS:
            if not document[name]:
                del document[name]
        return document

    @model_validator(mode="before")
    @classmethod
    def _origin_from_trigger(cls, data: object) -> object:
        if isinstance(data, dict) and "origin" not in data and isinstance(data.get("trigger"), str):
            return {**data, "origin": data["trigger"]}
        return data

    @field_validator("run_at", mode="before")
    @classmethod
    def _run_at(cls, value: object) -> object:
        """An ISO 8601 date-time (UTC when it has no offset), as the function wrote it."""
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError("must be an ISO 8601 date-time string")
        try:
            return parse_timestamp(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time string") from None


_CHECK_PROGRESS_FIELDS = (
    "pending",
    "checkStage",
    "checkSkip",
    "checkContacts",
    "listedAll",
    "listingCalls",
    "checkCalls",
    "contactPages",
    "leftOut",
)


class CleanupRequest(BaseModel):
    """A clean-up request: a selection, dryRun (true unless said otherwise), pauseFirst, maxSequences and the
    workspace whose key lists and archives (the default key when none)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    select: Selection
    dry_run: StrictBool = Field(default=True, alias="dryRun")
    pause_first: StrictBool = Field(default=False, alias="pauseFirst")
    max_sequences: StrictInt = Field(default=DEFAULT_MAX_SEQUENCES, alias="maxSequences", ge=1, le=MAX_SEQUENCES_CAP)
    continuation: SelectionProgress | None = None
    workspace: StrictStr | None = Field(default=None, pattern=f"^{WORKSPACE_PATTERN.pattern}$")

    @field_validator("workspace", mode="before")
    @classmethod
    def _named_when_given(cls, value: object) -> object:
        """A `"workspace": null` is not the default workspace: leave the field out for that."""
        if value is None:
            raise ValueError("must be a workspace name; leave it out for the default workspace")
        return value

    @model_validator(mode="after")
    def _continuation_fits(self) -> CleanupRequest:
        """A long listing is carried on in an SQS message holding the selection and every ID selected so far."""
        size = self.select.continuation_bytes(self.max_sequences)
        if size > MAX_CONTINUATION_BYTES:
            raise ValueError(
                f"the selection with maxSequences {self.max_sequences} could not be carried on in a continuation "
                f"(about {size} bytes, at most {MAX_CONTINUATION_BYTES}): shorten the exclude lists or lower "
                "maxSequences"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _select_is_an_object(cls, data: object) -> object:
        if isinstance(data, dict) and not isinstance(data.get("select"), (dict, Selection)):
            raise ValueError('"select" must be an object of filters, e.g. {"status": "paused"}')
        return data

    def to_json(self, continuation: SelectionProgress | None = None) -> dict[str, Any]:
        """The request as a message body (with `continuation` to carry it on)."""
        body: dict[str, Any] = {
            "select": self.select.to_json(),
            "dryRun": self.dry_run,
            "pauseFirst": self.pause_first,
            "maxSequences": self.max_sequences,
        }
        if self.workspace is not None:
            body["workspace"] = self.workspace
        if continuation is not None:
            body["continuation"] = continuation.to_json()
        return body


class ScheduleInput(BaseModel):
    """What the schedule may set, and nothing else: the selection, dryRun and maxSequences.

    template.yaml's CleanupPolicySchedule builds its Input with Fn::ToJsonString, so each stack parameter is
    one JSON value: CleanupSelection arrives as JSON text (an object is taken too), CleanupDryRun and
    CleanupMaxSequences as strings or as JSON values. A selection that tries to set anything else
    (`pauseFirst`, a `continuation`) is rejected here, not obeyed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    select: Selection
    dry_run: StrictBool = Field(default=True, alias="dryRun")
    max_sequences: StrictInt = Field(default=DEFAULT_MAX_SEQUENCES, alias="maxSequences", ge=1, le=MAX_SEQUENCES_CAP)
    # CleanupExclude: the keep list as JSON text ("" for none), put into the selection as its `exclude`.
    exclude: Exclusion | None = None

    @field_validator("exclude", mode="before")
    @classmethod
    def _exclusion_text(cls, value: object) -> object:
        """CleanupExclude as the template passes it: "" (none) or the JSON text of an exclude object."""
        if isinstance(value, str):
            if not value.strip():
                return None
            if len(value) > MAX_SCHEDULE_SELECTION_CHARS:
                raise ValueError(f"must be at most {MAX_SCHEDULE_SELECTION_CHARS} characters of JSON")
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError('must be a JSON object, e.g. {"sequenceIds": [101]}') from None
        if value is not None and not isinstance(value, dict):
            raise ValueError('must be a JSON object, e.g. {"sequenceIds": [101]}')
        return value

    @model_validator(mode="after")
    def _one_exclude(self) -> ScheduleInput:
        """The keep list comes from CleanupExclude or from the selection, not both (neither would win silently)."""
        if self.exclude is not None and not self.exclude.empty and self.select.exclude is not None:
            raise ValueError("give the exclude list in CleanupExclude or in CleanupSelection, not both")
        return self

    def selection(self) -> Selection:
        """The selection with CleanupExclude put in as its `exclude`."""
        if self.exclude is None or self.exclude.empty:
            return self.select
        return self.select.model_copy(update={"exclude": self.exclude})

    @field_validator("select", mode="before")
    @classmethod
    def _selection_text(cls, value: object) -> object:
        """CleanupSelection as the template passes it: the JSON text of an object of filters."""
        if isinstance(value, str):
            if len(value) > MAX_SCHEDULE_SELECTION_CHARS:
                raise ValueError(f"must be at most {MAX_SCHEDULE_SELECTION_CHARS} characters of JSON")
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError('must be a JSON object of filters, e.g. {"status": "paused"}') from None
        if not isinstance(value, dict):
            raise ValueError('must be a JSON object of filters, e.g. {"status": "paused"}')
        return value

    @field_validator("dry_run", mode="before")
    @classmethod
    def _flag_text(cls, value: object) -> object:
        """CleanupDryRun: true or false, as a JSON boolean or the parameter's text."""
        return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value

    @field_validator("max_sequences", mode="before")
    @classmethod
    def _number_text(cls, value: object) -> object:
        """CleanupMaxSequences: a whole number, as a JSON integer or the parameter's digits."""
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
            return int(value)
        return value


class ScheduledRun(BaseModel):
    """A direct invoke by the clean-up schedule: `{"schedule": {...}}` and nothing beside it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: ScheduleInput

    def to_request(self) -> CleanupRequest:
        """The clean-up request the schedule asks for: never pauseFirst, never a continuation."""
        return CleanupRequest(
            select=self.schedule.selection(),
            dry_run=self.schedule.dry_run,
            max_sequences=self.schedule.max_sequences,
        )


def is_cleanup_request(document: object) -> bool:
    """True for a payload that asks for a selection (it has `select`) rather than a list of IDs."""
    return isinstance(document, dict) and "select" in document


def parse_cleanup_request(document: object) -> CleanupRequest:
    """Validate a clean-up request; InvalidRequestError saying what is wrong (never quoting the values)."""
    if isinstance(document, dict) and ("sequenceIds" in document or "sequenceId" in document):
        raise InvalidRequestError('give either "select" or sequence IDs, not both')
    try:
        return CleanupRequest.model_validate(document)
    except ValidationError as exc:
        raise InvalidRequestError("not a valid clean-up request: " + _problems(exc)) from None


def parse_scheduled_run(document: object) -> CleanupRequest:
    """Validate the schedule's input (`{"schedule": {...}}`); InvalidRequestError saying what is wrong."""
    try:
        return ScheduledRun.model_validate(document).to_request()
    except ValidationError as exc:
        raise InvalidRequestError("not a valid scheduled clean-up: " + _problems(exc)) from None


def _problems(exc: ValidationError) -> str:
    """The first few validation problems, each with where it is, never quoting the values."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "request"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def utc_now() -> datetime:
    """The wall-clock time of a run, in UTC."""
    return datetime.now(UTC)
