"""`enqueue` against the local stack: real SendMessageBatch calls on moto, bodies the function parses."""

from __future__ import annotations

import json
import os
import socket
from typing import TYPE_CHECKING

import pytest

from local.stand_ins.aws_stack import provision, unique_name_prefix
from sequence_archiver.core.archive_request import parse_message_body
from sequence_archiver.public import deduplication_id
from tests.cli.terminal import run_without_terminal

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from local.stand_ins.aws_stack import LocalStack, MotoServer
    from tests.cli.conftest import Run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]


def sent_ids(bodies: list[str]) -> list[int]:
    return sorted(sequence_id for body in bodies for sequence_id in parse_message_body(body).sequence_ids)


def test_ids_from_every_source_are_sent_many_per_message(
    cli: Callable[..., Run], aws_stack: LocalStack, queue_bodies: Callable[[], list[str]], tmp_path: Path
) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# campaign 7\n" + "\n".join(str(i) for i in range(1000, 1250)) + "\n", encoding="utf-8")
    export = tmp_path / "export.csv"
    export.write_text("name,id\na,2000\nb,2001\n", encoding="utf-8")

    run = cli(
        "enqueue", "--queue-url", aws_stack.queue_url, "--file", str(ids_file), "--csv", str(export),
        "--column", "id", "--ids-per-message", "25", "--yes", "5", "-", stdin="6\n7\n",
    )  # fmt: skip

    assert run.code == 0, run.err
    assert run.lines == [f"sent 11 messages (255 IDs) to {aws_stack.queue_url} in 2 SendMessageBatch calls"]
    bodies = queue_bodies()
    assert len(bodies) == 11
    assert sent_ids(bodies) == [5, 6, 7, *range(1000, 1250), 2000, 2001]
    assert all(len(json.loads(body)["sequenceIds"]) <= 25 for body in bodies)


def test_pause_first_goes_into_every_body(
    cli: Callable[..., Run], aws_stack: LocalStack, queue_bodies: Callable[[], list[str]]
) -> None:
    run = cli("enqueue", "--queue-url", aws_stack.queue_url, "--pause-first", "--ids-per-message", "1", "301", "302")

    assert run.code == 0
    assert sorted(queue_bodies()) == [
        '{"sequenceIds":[301],"pauseFirst":true}',
        '{"sequenceIds":[302],"pauseFirst":true}',
    ]


def test_rejected_values_are_listed_with_their_reason_and_the_rest_is_sent(
    cli: Callable[..., Run], aws_stack: LocalStack, queue_bodies: Callable[[], list[str]]
) -> None:
    values = ["101", "abc", "101", "0", "1e3", *(f"x{i}" for i in range(25)), "102"]

    run = cli("enqueue", "--queue-url", aws_stack.queue_url, "--format", "json", *values)

    assert run.code == 1
    summary = json.loads(run.out)
    assert summary["ids"] == {"read": 31, "valid": 2, "duplicates": 1, "rejected": 28, "sent": 2}
    assert summary["rejected"][:2] == [
        {"where": "argument 2", "input": '"abc"', "reason": "a sequence ID string must be 1 to 10 ASCII digits"},
        {
            "where": "argument 4",
            "input": '"0"',
            "reason": "a sequence ID must be a positive whole number (1 to 2147483647)",
        },
    ]
    assert summary["error"] is None
    assert sent_ids(queue_bodies()) == [101, 102]
    text = cli("enqueue", "--queue-url", aws_stack.queue_url, *values)
    assert "rejected 28 input values (not sequence IDs, not sent):" in text.out
    assert "  … and 8 more" in text.out  # the list is capped; the count is not


def test_dry_run_sends_nothing(
    cli: Callable[..., Run], aws_stack: LocalStack, queue_bodies: Callable[[], list[str]]
) -> None:
    run = cli("enqueue", "--queue-url", aws_stack.queue_url, "--dry-run", "101", "102")

    assert run.code == 0
    assert run.lines[0].startswith("dry run: would send 1 message (2 IDs)")
    assert queue_bodies() == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_queue_is_exit_3_with_a_clear_message(
    cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # a queue URL on localhost is reached at its own host and port
    port = closed_port()

    run = cli("enqueue", "--queue-url", f"http://127.0.0.1:{port}/123456789012/requests", "101", "102")
    explicit = cli("enqueue", "--queue-url", "https://sqs.us-east-1.amazonaws.com/123456789012/requests",
                   "--endpoint-url", f"http://127.0.0.1:{port}", "101")  # fmt: skip

    for result, count in ((run, 2), (explicit, 1)):
        assert result.code == 3
        assert "Traceback" not in result.err
        [line] = result.err.splitlines()
        assert line.startswith(
            f"sequence-archiver enqueue: error: sent 0 of {count} ID{'s' if count > 1 else ''}: the first "
            "SendMessageBatch call failed, "
            f"{count} ID{'s' if count > 1 else ''} not sent: cannot reach SQS: Could not connect to the endpoint URL"
        )
    assert run.lines[0].startswith("NOT ALL SENT: sent 0 of 1 message (0 of 2 IDs) to http://127.0.0.1:")
    assert run.lines[1].startswith("  message 1: 2 IDs (101 … 102) not sent: cannot reach SQS")


def test_a_queue_that_does_not_exist_is_exit_3(cli: Callable[..., Run], aws_stack: LocalStack) -> None:
    run = cli("enqueue", "--queue-url", aws_stack.queue_url + "-nope", "101")

    assert run.code == 3
    assert "SQS refused the call" in run.err
    assert "does not exist" in run.err


def test_no_aws_credentials_says_the_send_failed_and_lists_every_id_not_sent(aws_stack: LocalStack) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": aws_stack.endpoint_url}  # fmt: skip
    ids = "".join(f"{sequence_id}\n" for sequence_id in range(10_000, 12_500)).encode()
    args = ["enqueue", "--queue-url", aws_stack.queue_url, "--yes", "-"]

    summary = run_without_terminal(args, env=environment, stdin=ids)
    not_sent = run_without_terminal([*args, "--output", "ids"], env=environment, stdin=ids)

    assert summary.returncode == not_sent.returncode == 3
    assert summary.stderr.splitlines()[-1] == (
        "sequence-archiver enqueue: error: sent 0 of 2,500 IDs: the first SendMessageBatch call failed, 2,500 IDs not "
        "sent: SQS: no usable AWS credentials: configure a profile (--profile, AWS_PROFILE) or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    )
    assert summary.stdout.startswith(f"NOT ALL SENT: sent 0 of 25 messages (0 of 2,500 IDs) to {aws_stack.queue_url}")
    assert "sent 0 messages" not in summary.stdout
    assert [int(line) for line in not_sent.stdout.splitlines()] == list(range(10_000, 12_500))
    assert (
        aws_stack.sqs().get_queue_attributes(
            QueueUrl=aws_stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )


def test_a_send_that_fails_halfway_names_exactly_the_ids_not_sent(
    cli: Callable[..., Run], aws_stack: LocalStack
) -> None:
    # A queue that takes messages of at most 1,024 bytes: the first batch's bodies fit, the second batch's do not.
    sqs = aws_stack.sqs()
    queue_url = sqs.create_queue(
        QueueName=f"{unique_name_prefix('small')}-requests", Attributes={"MaximumMessageSize": "1024"}
    )["QueueUrl"]
    small, large = list(range(1, 1001)), list(range(2_000_000_000, 2_000_001_000))
    ids = [str(sequence_id) for sequence_id in small + large]

    text = cli("enqueue", "--queue-url", queue_url, "--yes", "--output", "text", *ids)  # text: the old word for table
    again = cli("enqueue", "--queue-url", queue_url, "--yes", "--output", "ids", *ids)
    lines = cli("enqueue", "--queue-url", queue_url, "--yes", "--output", "jsonl", *ids)

    assert text.code == again.code == lines.code == 3
    assert text.lines[0] == (
        f"NOT ALL SENT: sent 10 of 20 messages (1,000 of 2,000 IDs) to {queue_url}; 1,000 IDs not sent"
    )
    assert text.lines[1].startswith("  message 11: 100 IDs (2000000000 … 2000000099) not sent: SQS refused the call")
    assert text.err.strip().startswith(
        "sequence-archiver enqueue: error: sent 1,000 of 2,000 IDs: SendMessageBatch call 2 of 2 failed, "
        "1,000 IDs not sent: SQS refused the call: InvalidParameterValue"
    )
    assert [int(line) for line in again.lines] == large
    records = [json.loads(line) for line in lines.lines]
    assert [record["status"] for record in records] == ["sent"] * 10 + ["not_sent"] * 10
    assert [i for record in records if record["status"] == "not_sent" for i in record["sequenceIds"]] == large
    bodies = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies.extend(message["Body"] for message in batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    assert sent_ids(bodies) == sorted(small * 3)  # each of the three runs sent the small IDs, and only them


def test_the_summary_per_message_as_csv_and_the_old_format_word(
    cli: Callable[..., Run], aws_stack: LocalStack, queue_bodies: Callable[[], list[str]]
) -> None:
    spreadsheet = cli("enqueue", "--queue-url", aws_stack.queue_url, "--ids-per-message", "2", "--output", "csv",
                      "101", "102", "103")  # fmt: skip
    old_word = cli("enqueue", "--queue-url", aws_stack.queue_url, "--format", "text", "104")

    assert spreadsheet.code == old_word.code == 0
    assert spreadsheet.lines == [
        "message,status,ids,firstSequenceId,lastSequenceId,bytes,error",
        "1,sent,2,101,102,25,",
        "2,sent,1,103,103,21,",
    ]
    assert old_word.lines == [f"sent 1 message (1 ID) to {aws_stack.queue_url} in 1 SendMessageBatch call"]
    assert sent_ids(queue_bodies()) == [101, 102, 103, 104]


# ------------------------------------------------------------------ FIFO queues


@pytest.fixture
def fifo_stack(moto_server: MotoServer, api_key: str) -> LocalStack:
    """A stack whose request queue is a FIFO queue with content-based deduplication (QueueType=fifo)."""
    return provision(moto_server.endpoint_url, api_key=api_key, name_prefix=unique_name_prefix("cli"), fifo=True)


def fifo_messages(stack: LocalStack) -> list[MessageTypeDef]:
    """Every message of the FIFO queue in queue order, deleted as read (a group's next messages stay hidden while
    earlier ones are in flight)."""
    sqs = stack.sqs()
    messages: list[MessageTypeDef] = []
    while batch := sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", []):
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=stack.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return messages


def test_a_fifo_queue_gets_every_message_in_order_in_one_group_with_deduplication_ids(
    cli: Callable[..., Run], fifo_stack: LocalStack
) -> None:
    ids = [str(sequence_id) for sequence_id in range(1000, 1025)]

    run = cli("enqueue", "--queue-url", fifo_stack.queue_url, "--message-group-id", "campaign-7",
              "--ids-per-message", "2", *ids)  # fmt: skip

    assert run.code == 0, run.err
    assert run.lines == [
        f"sent 13 messages (25 IDs) to {fifo_stack.queue_url} (message group campaign-7) in 2 SendMessageBatch calls"
    ]
    messages = fifo_messages(fifo_stack)
    assert [json.loads(m["Body"])["sequenceIds"] for m in messages] == [
        [int(a) for a in ids[i : i + 2]] for i in range(0, 25, 2)
    ]  # the input's order, across both SendMessageBatch calls
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"campaign-7"}
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == [
        deduplication_id("campaign-7", m["Body"]) for m in messages
    ]


def test_the_same_ids_resent_to_the_same_group_are_not_queued_twice(
    cli: Callable[..., Run], fifo_stack: LocalStack
) -> None:
    # Within SQS's 5-minute deduplication window a re-run (or a retried entry SQS had taken) adds nothing.
    args = ["enqueue", "--queue-url", fifo_stack.queue_url, "--message-group-id", "campaign-7", "101", "102"]

    first, second = cli(*args), cli(*args)
    other_group = cli("enqueue", "--queue-url", fifo_stack.queue_url, "--message-group-id", "campaign-8", "101", "102")

    assert (first.code, second.code, other_group.code) == (0, 0, 0)
    messages = fifo_messages(fifo_stack)
    assert [(m["Attributes"]["MessageGroupId"], m["Body"]) for m in messages] == [
        ("campaign-7", '{"sequenceIds":[101,102]}'),
        ("campaign-8", '{"sequenceIds":[101,102]}'),
    ]


def test_the_json_summary_names_the_message_group(cli: Callable[..., Run], fifo_stack: LocalStack) -> None:
    run = cli("enqueue", "--queue-url", fifo_stack.queue_url, "--message-group-id", "g1", "--format", "json", "101")

    assert run.code == 0
    assert json.loads(run.out)["messageGroupId"] == "g1"
    assert len(fifo_messages(fifo_stack)) == 1


@pytest.mark.parametrize(
    ("queue", "group", "message"),
    [
        ("fifo", None, "the queue is a FIFO queue (its name ends in .fifo): give --message-group-id"),
        ("standard", "campaign-7", "--message-group-id is for FIFO queues (a queue URL ending in .fifo)"),
        ("fifo", "campaign 7", "argument --message-group-id: must be 1 to 128 ASCII letters"),
        ("fifo", "x" * 129, "argument --message-group-id: must be 1 to 128 ASCII letters"),
    ],
)
def test_a_message_group_id_is_required_for_a_fifo_queue_and_only_there(
    cli: Callable[..., Run], fifo_stack: LocalStack, aws_stack: LocalStack, queue: str, group: str | None, message: str
) -> None:
    stack = fifo_stack if queue == "fifo" else aws_stack
    options = [] if group is None else ["--message-group-id", group]

    run = cli("enqueue", "--queue-url", stack.queue_url, *options, "101", "--dry-run")

    assert run.code == 2
    assert run.out == ""
    [line] = run.err.splitlines()
    assert message in line
    assert fifo_messages(fifo_stack) == []
