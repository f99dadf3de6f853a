"""The bulk add's answer (POST /v3/sequences/{id}/contact-links/bulk): added, not processed and why, and what it
leaves unsaid; the request body within Reply's bound."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from sequence_archiver.core.exceptions import ReplyMalformedResponseError
from sequence_archiver.reply.contact_links import (
    MAX_CONTACTS_PER_CALL,
    NotProcessedContact,
    contact_links_body,
    contact_links_parser,
    read_contact_links_answer,
)

if TYPE_CHECKING:
    from sequence_archiver.reply.contact_links import ContactLinksAnswer

KEY = "rk_live_secret_0123456789"


def answer(document: object, sent: tuple[int, ...] = (1, 2, 3)) -> ContactLinksAnswer:
    return read_contact_links_answer(json.dumps(document).encode(), requested=sent, secret=KEY)


def test_the_spec_s_answer_names_what_was_added_and_why_the_rest_was_not() -> None:
    # Given the 200 the spec documents
    document = {
        "added": [1],
        "notProcessed": {
            "2": {"error": "contactAlreadyInSequence", "errorDetails": "Contact is already enrolled"},
            "3": {"error": "contactNotFound", "errorDetails": None},
        },
    }

    # When it is read against the contacts sent
    read = read_contact_links_answer(json.dumps(document).encode(), requested=[1, 2, 3], secret=KEY)

    # Then each contact sent has its answer
    assert read.added == frozenset({1})
    assert read.not_processed == {
        2: NotProcessedContact("contactAlreadyInSequence", "Contact is already enrolled"),
        3: NotProcessedContact("contactNotFound", None),
    }
    assert read.unconfirmed == frozenset()
    assert read.not_processed[3].short_reason() == "contactNotFound"


@pytest.mark.parametrize(
    ("document", "added", "unconfirmed", "foreign"),
    [
        ({"added": [1, 2, 3]}, {1, 2, 3}, set(), 0),
        ({"added": [1]}, {1}, {2, 3}, 0),  # left unsaid: not taken as added
        ({}, set(), {1, 2, 3}, 0),
        ({"added": [1, 2, 3, 99]}, {1, 2, 3}, set(), 1),  # not sent: counted, left out
        ({"added": [1, True, "2", -3]}, {1}, {2, 3}, 3),
        ({"added": [1, 2, 3], "notProcessed": {"2": {"error": "forbidden"}}}, {1, 3}, {2}, 0),  # both ways
        ({"added": [], "notProcessed": {"01": {}, " 2": {}, "9" * 5000: {}}}, set(), {1, 2, 3}, 3),
        ({"added": "all", "notProcessed": []}, set(), {1, 2, 3}, 0),
    ],
    ids=["all", "some unsaid", "empty", "not sent", "not ids", "contradicted", "bad keys", "wrong shapes"],
)
def test_an_answer_is_believed_only_about_the_contacts_it_names(
    document: object, added: set[int], unconfirmed: set[int], foreign: int
) -> None:
    read = answer(document)

    assert read.added == frozenset(added)
    assert read.unconfirmed == frozenset(unconfirmed)
    assert read.foreign_keys == foreign


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b"1" * 5000, b"[" * 100_000])
def test_a_body_that_is_not_a_json_object_is_malformed_so_the_client_retries_it(body: bytes) -> None:
    with pytest.raises(ReplyMalformedResponseError):
        read_contact_links_answer(body, requested=[1], secret=KEY)


def test_reply_s_text_is_bounded_and_the_key_never_kept() -> None:
    document = {"notProcessed": {"1": {"error": "invalidInput", "errorDetails": f"key {KEY} " + "x" * 5000}}}

    read = contact_links_parser([1])(json.dumps(document).encode(), KEY)

    details = read.not_processed[1].details
    assert details is not None
    assert KEY not in details
    assert len(details) <= 200


def test_an_item_without_an_error_still_says_it_was_not_processed() -> None:
    read = answer({"notProcessed": {"1": "nope"}}, sent=(1,))

    assert read.not_processed[1].short_reason() == "not processed, without a reason"


@pytest.mark.parametrize("count", [0, MAX_CONTACTS_PER_CALL + 1])
def test_a_body_holds_1_to_10000_contacts_and_nothing_but_them(count: int) -> None:
    assert contact_links_body([7, 8]) == {"contactIds": [7, 8]}  # Reply's defaults: no removeFromExisting
    assert len(contact_links_body(list(range(1, MAX_CONTACTS_PER_CALL + 1)))["contactIds"]) == 10_000  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1 to 10000"):
        contact_links_body(list(range(1, count + 1)))
