"""HTTP request/response values and the JSON bodies Reply sends: sequences and problem details."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from local.stand_ins.reply_simulator.models import SimulatedSequence

JSON_CONTENT_TYPE: Final = "application/json"
PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
VALIDATION_TITLE: Final = "Validation failed"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The parts of an HTTP request the simulator looks at (the X-User-Id and X-User-Email headers: None if absent)."""

    method: str
    path: str
    query: str
    authorization: str | None
    body: bytes
    user_id_header: str | None = None
    user_email_header: str | None = None


@dataclass(slots=True)
class HttpResponse:
    """What to send back; `drop_connection` closes the socket without sending anything.

    With `drip_seconds`, the answer goes out one byte every `drip_seconds` (from the body on when
    `drip_from_body`, else from the status line), and the connection closes after it.
    """

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop_connection: bool = False
    drip_seconds: float | None = None
    drip_from_body: bool = False

    def set_headers(self, headers: Iterable[tuple[str, str]], *, replace: bool = True) -> None:
        """Add headers; one whose name is already present replaces it (`replace`) or is skipped."""
        for name, value in headers:
            present = any(existing.lower() == name.lower() for existing, _ in self.headers)
            if present and not replace:
                continue
            self.headers = [(existing, old) for existing, old in self.headers if existing.lower() != name.lower()]
            self.headers.append((name, value))


def json_response(status: int, payload: object, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    """Return an application/json response."""
    return HttpResponse(
        status=status,
        body=_encode(payload),
        headers=[("Content-Type", JSON_CONTENT_TYPE), *headers],
    )


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    code: str | None = None,
    errors: Sequence[dict[str, str]] | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> HttpResponse:
    """Return an RFC 9457 problem+json response (base fields, plus `code` or `errors` if given)."""
    payload: dict[str, object] = {
        "title": title if title is not None else HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if code is not None:
        payload["code"] = code
    if errors is not None:
        payload["errors"] = list(errors)
    return HttpResponse(
        status=status,
        body=_encode(payload),
        headers=[("Content-Type", PROBLEM_CONTENT_TYPE), *headers],
    )


def validation_response(detail: str, errors: Sequence[dict[str, str]]) -> HttpResponse:
    """Return a 400 validation problem with its field errors."""
    return problem_response(400, detail, title=VALIDATION_TITLE, errors=errors)


def too_many_requests_response(retry_after_seconds: int) -> HttpResponse:
    """Return Reply's 429 with a Retry-After header and the matching problem body."""
    return problem_response(
        429,
        "Rate limit exceeded. Retry after " + str(retry_after_seconds) + " seconds.",
        headers=[("Retry-After", str(retry_after_seconds))],
    )


def sequence_base_json(sequence: SimulatedSequence) -> dict[str, object]:
    """Return a list item (SequenceBase) for a sequence."""
    return {
        "id": sequence.id,
        "ownerUserId": sequence.owner_user_id,
        "name": sequence.name,
        "created": sequence.created.isoformat(timespec="seconds"),
        "status": sequence.status,
        "isArchived": sequence.is_archived,
        "health": sequence.health,
    }


def sequence_json(sequence: SimulatedSequence) -> dict[str, object]:
    """Return the full Sequence (the spec's ref_193 shape) for a sequence."""
    payload = sequence_base_json(sequence)
    payload.update(_SEQUENCE_DETAILS)
    return payload


# The parts of a Sequence the simulator does not model: shaped like the spec's example (ref_193).
_SEQUENCE_DETAILS: Final[dict[str, object]] = {
    "scheduleId": 1,
    "emailAccounts": [
        {"id": 1, "email": "sales@example.com"},
        {"id": 2, "email": "outreach@example.com"},
    ],
    "linkedInAccounts": [
        {
            "id": 42,
            "name": "Sam Sender",
            "profileUrl": "https://www.linkedin.com/in/sam-sender",
            "status": "enabled",
        }
    ],
    "settings": {
        "emailsCountPerDay": 50,
        "daysToFinishProspect": 14,
        "emailSendingDelaySeconds": 30,
        "dailyThrottling": 200,
        "disableOpensTracking": False,
        "repliesHandlingType": "markAsFinished",
        "enableLinksTracking": True,
    },
    "steps": [
        {
            "id": 1323,
            "type": "email",
            "delayInMinutes": 0,
            "executionMode": "automatic",
            "variants": [
                {"id": 1, "subject": "Quick question about {{companyName}}", "message": "<p>Hi {{firstName}},</p>"}
            ],
        },
        {
            "id": 43432,
            "type": "linkedIn",
            "actionType": "message",
            "delayInMinutes": 2880,
            "executionMode": "automatic",
            "variants": [{"id": 2, "message": "Hi {{firstName}}, would love to connect!", "isEnabled": True}],
        },
    ],
}


def _encode(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
