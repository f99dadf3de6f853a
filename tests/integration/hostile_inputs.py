"""A corpus of hostile inputs: SQS bodies (text SQS accepts) and direct payloads (what an invoker can send).

None of them names a sequence that exists in the simulator, so any Reply call they cause is visible as a
call for an ID they do not hold. Each entry has a short name, used as its test id.
"""

from __future__ import annotations

import json
from typing import Any

HUGE_DIGITS = "9" * 5_000  # past Python's 4,300-digit limit for int(str)


def _nested_list(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


def _nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _envelope(detail_json: str) -> str:
    return '{"detail-type":"Archive","source":"crm","id":"e-1","detail":' + detail_json + "}"


def _sns_notification(message_json_string: str) -> str:
    return '{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:1:t","MessageId":"n","Message":' + (
        message_json_string + "}"
    )


HOSTILE_SQS_BODIES: dict[str, str] = {
    "huge-int-in-list": '{"sequenceIds": [' + HUGE_DIGITS + "]}",
    "bare-huge-int": HUGE_DIGITS,
    "negative-huge-int": "-" + HUGE_DIGITS,
    "huge-int-sequenceId": '{"sequenceId": ' + HUGE_DIGITS + "}",
    "huge-int-pauseFirst": '{"sequenceIds": [404], "pauseFirst": ' + HUGE_DIGITS + "}",
    "huge-exponent": '{"sequenceIds": [1e99999]}',
    "bare-huge-exponent": "1e5000",
    "deep-list-5000": _nested_list(5_000),
    "deep-list-50000": _nested_list(50_000),
    "deep-object-3000": _nested_object(3_000),
    "deep-inside-ids-900": '{"sequenceIds": [' + _nested_list(900) + "]}",
    "deep-inside-ids-5000": '{"sequenceIds": [' + _nested_list(5_000) + "]}",
    "lone-high-surrogate": '{"sequenceIds": ["\\ud800"]}',
    "lone-low-surrogate": '{"sequenceIds": ["\\udfff"]}',
    "reversed-surrogates": '{"sequenceIds": ["\\udfff\\ud800"]}',
    "surrogate-sequenceId": '{"sequenceId": "\\ud83d"}',
    "bare-surrogate": '"\\ud800"',
    "surrogate-key": '{"\\ud800": 1}',
    "surrogate-in-many-items": '{"sequenceIds": [' + ",".join(['"\\ud800x"'] * 300) + "]}",
    "control-characters": '{"sequenceIds": ["\\u0000", "\\u001b[31m", "\\u2028"]}',
    "nan": '{"sequenceIds": [NaN]}',
    "infinities": '{"sequenceIds": [Infinity, -Infinity]}',
    "bare-nan": "NaN",
    "bare-infinity": "Infinity",
    "empty": "",
    "blank": "   \t\r\n",
    "null": "null",
    "true": "true",
    "empty-list": "[]",
    "list-of-ids": "[1, 2]",
    "empty-object": "{}",
    "ids-null": '{"sequenceIds": null}',
    "ids-object": '{"sequenceIds": {}}',
    "ids-string": '{"sequenceIds": "101"}',
    "ids-empty": '{"sequenceIds": []}',
    "too-many-ids": '{"sequenceIds": [' + ",".join(["3"] * 1_001) + "]}",
    "booleans-and-nulls": '{"sequenceIds": [true, false, null]}',
    "nested-lists": '{"sequenceIds": [[1], [2]]}',
    "objects-as-ids": '{"sequenceIds": [{"id": 1}]}',
    "out-of-range": '{"sequenceIds": [0, -1, 2147483648, -0]}',
    "not-ascii-digits": '{"sequenceIds": ["1.5", "0x10", " 12", "\\u0661\\u0662", "\\u00b2", "00000000003"]}',
    "fractions": '{"sequenceIds": [1.5, 1e3, 3.0]}',
    "both-keys": '{"sequenceId": 3, "sequenceIds": [4]}',
    "pauseFirst-not-bool": '{"sequenceIds": [404], "pauseFirst": "yes"}',
    "long-string-id": '{"sequenceIds": ["' + "a" * 200_000 + '"]}',
    "thousand-invalid-items": '{"sequenceIds": [' + ",".join([f'"{"x" * 150}"'] * 1_000) + "]}",
    "duplicate-keys": '{"sequenceIds": [2], "sequenceIds": ["x"]}',
    "byte-order-mark": '\ufeff{"sequenceIds": [3]}',
    "trailing-garbage": '{"sequenceIds": [3]} and more',
    "truncated": '{"sequenceIds": [3',
    "xml": "<sequenceIds><id>3</id></sequenceIds>",
    "single-quotes": "{'sequenceIds': [3]}",
    "long-plain-text": "x" * 250_000,
    "envelope-huge-int": _envelope('{"sequenceIds": [' + HUGE_DIGITS + "]}"),
    "envelope-deep-detail": _envelope(_nested_list(5_000)),
    "envelope-detail-string": _envelope('"abc"'),
    "envelope-detail-null": _envelope("null"),
    "envelope-in-envelope-x4": _envelope(_envelope(_envelope(_envelope('{"sequenceIds": [3]}')))),
    "sns-message-huge-int": _sns_notification(json.dumps(HUGE_DIGITS)),
    "sns-message-deep": _sns_notification(json.dumps(_nested_list(50_000))),
    "sns-message-not-json": _sns_notification('"hello world"'),
    "sns-message-number": _sns_notification("5"),
    "sns-message-surrogate": _sns_notification('"{\\"sequenceIds\\": [\\"\\\\ud800\\"]}"'),
    "sns-message-envelope-huge": _sns_notification(json.dumps(_envelope("[" + HUGE_DIGITS + "]"))),
    "fake-sqs-event-as-body": '{"Records": [{"eventSource": "aws:sqs"}]}',
    "fake-sns-event-as-body": '{"Records": [{"EventSource": "aws:sns"}]}',
}


def _deep(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for _ in range(depth):
        value = [value]
    return value


def _sqs_record(message_id: object = "m-1", body: object = "0", **extra: object) -> dict[str, Any]:
    return {"eventSource": "aws:sqs", "messageId": message_id, "body": body, **extra}


def _sns_record(notification: object) -> dict[str, Any]:
    return {"EventSource": "aws:sns", "Sns": notification}


def _event(detail: object, event_id: object = "e-1") -> dict[str, Any]:
    return {"detail-type": "Archive", "source": "crm", "detail": detail, "id": event_id}


def huge_int() -> int:
    """An integer Python cannot turn into a string with the default digit limit."""
    return 10**5_000


HOSTILE_DIRECT_PAYLOADS: dict[str, Any] = {
    "sns-record-without-sns": {"Records": [{"EventSource": "aws:sns"}]},
    "sns-record-sns-null": {"Records": [_sns_record(None)]},
    "sns-record-without-message-id": {"Records": [_sns_record({"Message": "3"})]},
    "sns-message-huge-int-text": {"Records": [_sns_record({"MessageId": "n-1", "Message": HUGE_DIGITS})]},
    "sns-message-deep-text": {"Records": [_sns_record({"MessageId": "n-2", "Message": _nested_list(50_000)})]},
    "sns-message-int": {"Records": [_sns_record({"MessageId": "n-3", "Message": 5})]},
    "sns-message-null": {"Records": [_sns_record({"MessageId": "n-4", "Message": None})]},
    "sns-message-surrogate": {"Records": [_sns_record({"MessageId": "n-5", "Message": "\ud800"})]},
    "records-of-integers": {"Records": [1, 2, 3]},
    "records-of-strings": {"Records": ["a"]},
    "records-empty": {"Records": []},
    "records-null": {"Records": None},
    "records-string": {"Records": "x"},
    "sqs-record-without-message-id": {"Records": [{"eventSource": "aws:sqs", "body": "0"}]},
    "sqs-record-without-body": {"Records": [{"eventSource": "aws:sqs", "messageId": "m-2"}]},
    "sqs-record-message-id-int": {"Records": [_sqs_record(message_id=5)]},
    "sqs-record-body-int": {"Records": [_sqs_record(body=5)]},
    "sqs-record-body-object": {"Records": [_sqs_record(body={"sequenceIds": [3]})]},
    "sqs-record-receipt-null": {"Records": [_sqs_record(receiptHandle=None, eventSourceARN=None)]},
    "sqs-record-huge-message-id": {"Records": [_sqs_record(message_id="m" * 100_000)]},
    "sqs-records-mixed-with-integers": {"Records": [_sqs_record(), 7]},
    "deep-payload-950": _deep(950),
    "deep-payload-5000": _deep(5_000),
    "deep-ids-950": {"sequenceIds": [_deep(950)]},
    "deep-ids-5000": {"sequenceIds": [_deep(5_000)]},
    "deep-sequenceId": {"sequenceId": _deep(2_000)},
    "huge-int": huge_int(),
    "huge-int-ids": {"sequenceIds": [huge_int()]},
    "huge-int-sequenceId": {"sequenceId": huge_int()},
    "huge-int-pauseFirst": {"sequenceIds": [0], "pauseFirst": huge_int()},
    "surrogate-ids": {"sequenceIds": ["\ud800", "\udfff"]},
    "surrogate-key": {"\ud800": 1},
    "nan-and-infinity": {"sequenceIds": [float("nan"), float("inf"), float("-inf")]},
    "none": None,
    "empty-list": [],
    "list": [1, 2],
    "text": "hello",
    "float": 3.5,
    "boolean": True,
    "zero": 0,
    "empty-object": {},
    "too-many-ids": {"sequenceIds": [3] * 1_001},
    "long-string-id": {"sequenceIds": ["1" * 100_000]},
    "nested-sequenceId": {"sequenceId": {"nested": "x"}},
    "only-pauseFirst": {"pauseFirst": True},
    "event-detail-null": _event(None),
    "event-detail-huge-int": _event({"sequenceIds": [huge_int()]}),
    "event-detail-deep": _event(_deep(5_000)),
    "event-id-int": _event({"sequenceIds": [0]}, event_id=5),
    "event-id-huge": _event({"sequenceIds": [0]}, event_id="e" * 100_000),
    "event-id-surrogate": _event({"sequenceIds": [0]}, event_id="\ud800"),
}
