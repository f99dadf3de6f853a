"""Continuations are honoured only when the function made them: an HMAC over every field that steers the work."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from sequence_archiver.core.archive_request import ContinuationOf
from sequence_archiver.core.continuations import (
    WARM_BACKOFF_SECONDS,
    ContinuationSeal,
    archive_continuation,
    canonical,
    derive_key,
    matches,
    seal_with,
)
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import ApiKeyUnavailableError

KEY = "reply-key-current"


@dataclass
class FakeKeys:
    """The secret's current value and the values that signed before (a rotation), counting reads."""

    current: str = KEY
    earlier: tuple[str, ...] = ()
    unreadable: bool = False
    earlier_reads: int = 0
    forged: list[None] = field(default_factory=list)

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        if self.unreadable:
            raise ApiKeyUnavailableError("could not read the API key secret (GetParameterError)")
        return SecretStr(self.current)

    def earlier_api_keys(self, *, deadline: Deadline | None = None) -> tuple[SecretStr, ...]:
        self.earlier_reads += 1
        return tuple(SecretStr(value) for value in self.earlier)


def sealed(document: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    return seal_with(document, derive_key(key))


ARCHIVE = archive_continuation([104, 105], ContinuationOf("request-a", 2, 1), pause_first=True)
CLEANUP = {
    "select": {"status": "paused", "olderThanDays": 180},
    "dryRun": False,
    "pauseFirst": False,
    "maxSequences": 10_000,
    "continuation": {
        "requestId": "request-a",
        "part": 3,
        "trigger": "eventbridge",
        "runAt": "2026-12-01T00:00:00Z",
        "skip": 200,
        "pages": 2,
        "selectedIds": [101, 102],
        "failures": 0,
    },
}


def test_the_mac_covers_canonical_json_and_leaves_itself_out() -> None:
    document = sealed(ARCHIVE)

    assert document["continuation"]["mac"].startswith("v1:")
    assert canonical(document) == canonical(ARCHIVE)
    reordered = json.loads(json.dumps(document, sort_keys=True))  # key order is not part of the contract
    assert matches(reordered, derive_key(KEY))


@pytest.mark.parametrize("document", [ARCHIVE, CLEANUP], ids=["archive", "cleanup"])
def test_a_continuation_the_function_made_opens_to_the_body_without_its_mac(document: dict[str, Any]) -> None:
    keys = FakeKeys()
    seal = ContinuationSeal(keys=keys, on_forged=lambda: keys.forged.append(None))

    opened = seal.open(json.loads(seal.seal(document)))

    assert (opened.document, opened.forged, keys.forged, keys.earlier_reads) == (document, None, [], 0)


ALTERATIONS = {
    "requestId": lambda d: d["continuation"].update(requestId="victim-request"),
    "part": lambda d: d["continuation"].update(part=9),
    "failures": lambda d: d["continuation"].update(failures=0),
    "sequenceIds": lambda d: d.update(sequenceIds=[104, 105, 999]),
    "pauseFirst": lambda d: d.update(pauseFirst=False),
    "extra-field": lambda d: d.update(dryRun=False),
}


@pytest.mark.parametrize("alter", ALTERATIONS.values(), ids=ALTERATIONS.keys())
def test_an_altered_field_breaks_the_mac_and_the_continuation_is_dropped(alter: Any) -> None:
    keys = FakeKeys()
    seal = ContinuationSeal(keys=keys, on_forged=lambda: keys.forged.append(None))
    document = sealed(ARCHIVE)
    alter(document)

    opened = seal.open(document)

    assert isinstance(opened.document, dict)
    assert "continuation" not in opened.document  # a new request, under the delivery's own ID
    assert opened.forged is not None
    assert len(keys.forged) == 1


@pytest.mark.parametrize(
    ("name", "alter"),
    [
        ("selectedIds", lambda d: d["continuation"].update(selectedIds=[101, 102, 666])),
        ("selection", lambda d: d["select"].update(status="active")),
        ("dryRun", lambda d: d.update(dryRun=True)),
        ("skip", lambda d: d["continuation"].update(skip=0)),
        ("runAt", lambda d: d["continuation"].update(runAt="2020-01-01T00:00:00Z")),
    ],
)
def test_a_cleanup_continuation_with_altered_progress_lists_again_and_never_keeps_selected_ids(
    name: str, alter: Any
) -> None:
    seal = ContinuationSeal(keys=FakeKeys())
    document = sealed(CLEANUP)
    alter(document)

    opened = seal.open(document)

    assert isinstance(opened.document, dict)
    assert "continuation" not in opened.document, name
    assert "selectedIds" not in json.dumps(opened.document)


def test_a_continuation_made_with_another_key_is_not_honoured() -> None:
    seal = ContinuationSeal(keys=FakeKeys())

    opened = seal.open(sealed(ARCHIVE, key="somebody-elses-key"))

    assert opened.forged is not None


@pytest.mark.parametrize("mac", [None, "", "v1:", "v1:" + "0" * 64, 42, "v1:ünïcode"])
def test_a_missing_or_malformed_mac_is_not_honoured(mac: object) -> None:
    document: dict[str, Any] = {**ARCHIVE, "continuation": {**ARCHIVE["continuation"]}}
    if mac is not None:
        document["continuation"]["mac"] = mac

    opened = ContinuationSeal(keys=FakeKeys()).open(document)

    assert opened.document == {"sequenceIds": [104, 105], "pauseFirst": True}


def test_one_requests_continuation_replayed_under_another_request_id_is_not_honoured() -> None:
    """A producer copies request A's MAC onto a continuation naming request B (say, to mark B complete)."""
    own = sealed(archive_continuation([7], ContinuationOf("request-a", 2), pause_first=False))
    replayed = {**own, "continuation": {**own["continuation"], "requestId": "request-b"}}

    opened = ContinuationSeal(keys=FakeKeys()).open(replayed)

    assert opened.document == {"sequenceIds": [7]}


def test_a_continuation_sealed_before_a_rotation_opens_with_the_previous_key() -> None:
    keys = FakeKeys(current="reply-key-new", earlier=("reply-key-new", KEY))

    opened = ContinuationSeal(keys=keys).open(sealed(ARCHIVE, key=KEY))

    assert (opened.forged, keys.earlier_reads) == (None, 1)


def test_a_continuation_sealed_with_a_retired_key_no_longer_readable_is_a_new_request() -> None:
    keys = FakeKeys(current="reply-key-newest", earlier=("reply-key-newest", "reply-key-new"))

    opened = ContinuationSeal(keys=keys).open(sealed(ARCHIVE, key=KEY))

    assert opened.document == {"sequenceIds": [104, 105], "pauseFirst": True}


def test_documents_without_a_continuation_pass_untouched_even_when_the_secret_is_unreadable() -> None:
    keys = FakeKeys(unreadable=True)
    seal = ContinuationSeal(keys=keys)

    for document in ({"sequenceIds": [1]}, [1, 2], "3", None):
        assert seal.open(document).document == document


def test_an_unreadable_secret_raises_so_the_delivery_is_retried_not_dropped() -> None:
    seal = ContinuationSeal(keys=FakeKeys(unreadable=True))

    with pytest.raises(ApiKeyUnavailableError):
        seal.open(sealed(ARCHIVE))
    with pytest.raises(ApiKeyUnavailableError):
        seal.seal(ARCHIVE)


def test_the_key_is_derived_from_the_secret_not_the_secret_itself() -> None:
    key = derive_key(KEY)

    assert len(key) == 32
    assert key != KEY.encode()
    assert key != derive_key(KEY + "x")


@dataclass
class CountingKeys(FakeKeys):
    """FakeKeys that count reads of the current value and the deadline each was given."""

    reads: list[float | None] = field(default_factory=list)

    def api_key(self, *, refresh: bool = False, deadline: Deadline | None = None) -> SecretStr:
        self.reads.append(deadline.remaining_seconds() if deadline is not None else None)
        return super().api_key(refresh=refresh, deadline=deadline)


def test_warming_the_key_for_a_new_request_takes_half_the_work_time_and_is_not_retried_for_a_minute() -> None:
    # Given a secret that cannot be read (Secrets Manager hangs until the deadline given, then fails)
    now = [100.0]
    keys = CountingKeys(unreadable=True)
    seal = ContinuationSeal(keys=keys, clock=lambda: now[0])
    work = Deadline(expires_at=110.0, clock=lambda: now[0])

    # When records that are not continuations are opened, one after another
    for _ in range(5):
        assert seal.open({"sequenceIds": [101]}, work).forged is None

    # Then only the first tried to warm the cache, within half the work time left: the Reply client's own
    # read has the rest, and its failure is the request-wide key error the results event reports
    assert keys.reads == [pytest.approx(5.0)]
    now[0] += WARM_BACKOFF_SECONDS
    keys.unreadable = False
    seal.open({"sequenceIds": [102]}, Deadline(expires_at=now[0] + 10.0, clock=lambda: now[0]))
    assert len(keys.reads) == 2
