"""What counts as a sequence ID and as a request, in every shape a trigger can deliver."""

from __future__ import annotations

import json

import pytest

from sequence_archiver.core.archive_request import (
    MAX_IDS_PER_REQUEST,
    InvalidSequenceId,
    parse_archive_request,
    parse_message_body,
    parse_sequence_id,
)
from sequence_archiver.core.exceptions import InvalidRequestError, InvalidSequenceIdError


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (42, 42), ("42", 42), ("0042", 42), (2_147_483_647, 2_147_483_647), ("2147483647", 2_147_483_647)],
)
def test_accepts_integers_and_ascii_digit_strings_in_range(value: object, expected: int) -> None:
    assert parse_sequence_id(value) == expected


POSITIVE = "a sequence ID must be a positive whole number (1 to 2147483647)"
WHOLE = "a sequence ID must be a whole number, without a decimal point or exponent"
ASCII_DIGITS = "a sequence ID string must be 1 to 10 ASCII digits"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "a boolean is not a sequence ID"),
        (False, "a boolean is not a sequence ID"),
        (0, POSITIVE),
        (-3, POSITIVE),
        (2_147_483_648, "a sequence ID must be at most 2147483647"),
        (1.5, "a sequence ID must be an integer, not a number with a fraction or exponent"),
        (3.0, "a sequence ID must be an integer, not a number with a fraction or exponent"),
        (1e3, "a sequence ID must be an integer, not a number with a fraction or exponent"),
        ("1e3", WHOLE),
        ("5.0", WHOLE),
        ("-1.5", WHOLE),
        ("", "an empty string is not a sequence ID"),
        ("   ", "a blank string is not a sequence ID"),
        (" 42", "a sequence ID string must be digits only, without spaces around them"),
        ("42 ", "a sequence ID string must be digits only, without spaces around them"),
        ("+42", "a sequence ID string must be digits only, without a + sign"),
        ("-1", POSITIVE + ", not negative"),
        ("-5", POSITIVE + ", not negative"),
        ("0", POSITIVE),
        ("-0", POSITIVE),
        ("2147483648", "a sequence ID must be at most 2147483647"),
        ("12345678901", "a sequence ID string must be at most 10 digits, not 11 (the largest is 2147483647)"),
        ("9" * 5000, "a sequence ID string must be at most 10 digits, not 5,000 (the largest is 2147483647)"),
        ("abc", ASCII_DIGITS),
        ("1/../../users", ASCII_DIGITS),
        ("1?x=2", ASCII_DIGITS),
        ("1#x", ASCII_DIGITS),
        ("-", ASCII_DIGITS),
        ("١٢", "a sequence ID string must use the ASCII digits 0-9"),  # Arabic-Indic digits
        ("²", "a sequence ID string must use the ASCII digits 0-9"),
        (None, "a sequence ID must be an integer, not NoneType"),
        ([1], "a sequence ID must be an integer, not list"),
        ({"id": 1}, "a sequence ID must be an integer, not dict"),
    ],
)
def test_rejects_everything_else_saying_what_is_wrong(value: object, reason: str) -> None:
    with pytest.raises(InvalidSequenceIdError) as excinfo:
        parse_sequence_id(value)
    assert str(excinfo.value) == reason


def test_request_keeps_input_order_reports_invalid_values_and_deduplicates() -> None:
    request = parse_archive_request({"sequenceIds": [5, "7", 5, True, "5", 0, 7, "x"]})

    assert request.sequence_ids == (5, 7)
    assert [item if isinstance(item, int) else item.input_value for item in request.items] == [
        5,
        7,
        "true",
        "0",
        '"x"',
    ]
    assert all(item.reason for item in request.items if isinstance(item, InvalidSequenceId))


@pytest.mark.parametrize(
    ("payload", "ids"),
    [({"sequenceId": 9}, (9,)), ({"sequenceId": "9"}, (9,)), (9, (9,)), ({"sequenceIds": [1, 2], "note": "x"}, (1, 2))],
)
def test_request_shapes(payload: object, ids: tuple[int, ...]) -> None:
    assert parse_archive_request(payload).sequence_ids == ids


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, 'no "sequenceIds"'),
        ({"sequenceIds": [1], "sequenceId": 2}, "not both"),
        ({"sequenceIds": "1,2"}, "must be a list"),
        ({"sequenceIds": []}, "is empty"),
        ([1, 2], "expected an object"),
        (None, "expected an object"),
        ({"sequenceIds": list(range(1, MAX_IDS_PER_REQUEST + 2))}, "at most 1000"),
    ],
)
def test_payloads_that_are_not_requests_are_rejected_with_a_specific_reason(payload: object, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_archive_request(payload)


def test_exactly_one_thousand_ids_is_allowed() -> None:
    assert len(parse_archive_request({"sequenceIds": list(range(1, 1001))}).sequence_ids) == 1000


def test_a_bool_sequence_id_field_is_an_invalid_value_not_a_crash() -> None:
    request = parse_archive_request({"sequenceId": True})
    assert request.sequence_ids == ()
    assert len(request.items) == 1


def _eventbridge(detail: object) -> dict[str, object]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Archive Sequences",
        "source": "reply.sequence-archiver.requests",
        "account": "123456789012",
        "time": "2026-11-29T09:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def _sns(message: str) -> dict[str, object]:
    return {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:archive-requests",
        "Message": message,
        "Timestamp": "2026-11-29T09:00:00.000Z",
        "SignatureVersion": "1",
    }


@pytest.mark.parametrize(
    "body",
    [
        '{"sequenceIds": [11, 12]}',
        json.dumps(_eventbridge({"sequenceIds": [11, 12]})),
        json.dumps(_sns('{"sequenceIds": [11, 12]}')),
        json.dumps(_sns(json.dumps(_eventbridge({"sequenceIds": [11, "12"]})))),
    ],
    ids=["plain", "eventbridge-envelope", "sns-envelope", "eventbridge-inside-sns"],
)
def test_message_bodies_are_unwrapped_to_the_request_inside(body: str) -> None:
    assert parse_message_body(body).sequence_ids == (11, 12)


def test_a_bare_integer_body_is_one_id() -> None:
    assert parse_message_body("123").sequence_ids == (123,)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json at all", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "expected an object"),
        (json.dumps(_sns("not json")), "the message is not JSON"),
        ('{"Type": "Notification", "TopicArn": "arn", "Message": 5}', "not a string"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"sequenceIds": [' + "9" * 5000 + "]}", "number too large"),
        ("9" * 5000, "number too large"),
        (json.dumps(_sns("9" * 5000)), "number too large"),
        (json.dumps(_sns("[" * 50_000 + "]" * 50_000)), "nested too deeply"),
    ],
)
def test_unparseable_bodies_raise_invalid_request(body: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_message_body(body)


@pytest.mark.parametrize(
    ("payload", "expected"), [({"sequenceId": 1}, False), ({"sequenceId": 1, "pauseFirst": True}, True), (5, False)]
)
def test_pause_first_is_read_from_the_request(payload: object, expected: bool) -> None:
    assert parse_archive_request(payload).pause_first is expected


@pytest.mark.parametrize("flag", ["true", 1, None])
def test_pause_first_must_be_a_boolean(flag: object) -> None:
    with pytest.raises(InvalidRequestError, match="pauseFirst"):
        parse_archive_request({"sequenceIds": [1], "pauseFirst": flag})
