"""A hanging or dripping AWS endpoint costs an adapter no more than the time it was given, plus 0.3 s.

Each AWS service the function calls (EventBridge, Secrets Manager, SQS, DynamoDB) is reached through the
local fault proxy in front of the moto server, with the function's own client configuration. The proxy
holds the call: `hang` never answers, `drip` answers one byte at a time, slower than nothing but faster
than botocore's read timeout, so only a bound on the whole call ends it. The adapter must return within
its deadline (plus the issue's 0.3 s) and keep its failure contract; once the endpoint is healthy again,
the same adapter works.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from local.stand_ins.aws_stack import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, RESULTS_EVENT_SOURCE
from local.stand_ins.fault_proxy import FaultProxy
from local.stand_ins.lambda_context import LocalLambdaContext
from sequence_archiver.aws.dead_letters import DeadLetterQueue
from sequence_archiver.aws.idempotency import Claim, build_request_idempotency
from sequence_archiver.aws.results_publisher import ResultsPublisher
from sequence_archiver.aws.retry_timing import Postponement, RecordVisibility
from sequence_archiver.aws.sqs import SqsSender
from sequence_archiver.core.deadline import Deadline
from sequence_archiver.core.exceptions import ApiKeyUnavailableError
from sequence_archiver.core.outcomes import Outcome, SequenceResult
from sequence_archiver.core.request_report import RequestReport, Trigger
from sequence_archiver.observability import SDK_LOGGERS, hold_sdk_loggers_at_warning
from sequence_archiver.reply.api_key import SecretsManagerApiKey
from sequence_archiver.wiring import AWS_CLIENT_CONFIG

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from local.stand_ins.aws_stack import LocalStack, MotoServer

pytestmark = pytest.mark.integration

TIME_GIVEN_SECONDS = 2.0
ALLOWED_OVERRUN_SECONDS = 0.3  # the bound: time used <= time left + 0.3 s
DRIP_INTERVAL_SECONDS = 0.5  # well under the client's 3 s read timeout: the socket never times out


@pytest.fixture(scope="module")
def module_proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """One fault proxy in front of the session's moto server for this module; stopping it releases held calls."""
    with FaultProxy(moto_server.endpoint_url) as started:
        yield started


@pytest.fixture
def proxy(module_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The module's proxy, every fault disarmed (and every held call released) after each test."""
    yield module_proxy
    module_proxy.clear()


@dataclass
class Adapters:
    """The function's AWS adapters, every client pointed at the proxy with the function's configuration."""

    publisher: ResultsPublisher
    api_key: SecretsManagerApiKey
    dead_letters: DeadLetterQueue
    visibility: RecordVisibility
    idempotency: Any


@pytest.fixture
def adapters(aws_stack: LocalStack, proxy: FaultProxy) -> Adapters:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        region_name=aws_stack.region,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=proxy.endpoint_url, config=AWS_CLIENT_CONFIG)  # type: ignore[call-overload]

    dynamodb = client("dynamodb")
    table = aws_stack.queue_url.rsplit("/", 1)[-1] + "-idempotency"
    boto3.client("dynamodb", endpoint_url=aws_stack.endpoint_url, region_name=aws_stack.region).create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = client("sqs")
    idempotency = build_request_idempotency(
        table_name=table, expires_after_seconds=3600, dynamodb_client=dynamodb, function_name="sequence-archiver"
    )
    idempotency.start_invocation(LocalLambdaContext(timeout_seconds=60))
    return Adapters(
        publisher=ResultsPublisher(
            events_client=client("events"), event_bus_name=aws_stack.results_bus_name, source=RESULTS_EVENT_SOURCE
        ),
        api_key=SecretsManagerApiKey(
            secret_id=aws_stack.secret_arn,
            provider=SecretsProvider(boto3_client=client("secretsmanager")),
            max_age_seconds=0,  # every call reads the secret
        ),
        dead_letters=DeadLetterQueue(
            sender=SqsSender(sqs_client=lambda: sqs), queue_url=aws_stack.dead_letter_queue_url
        ),
        visibility=RecordVisibility(sqs_client=lambda: sqs),
        idempotency=idempotency,
    )


def a_report(request_id: str) -> RequestReport:
    return RequestReport(request_id, Trigger.SQS, (SequenceResult(1, Outcome.ARCHIVED, 200),))


def publish(adapters: Adapters, stack: LocalStack, deadline: Deadline, healthy: bool) -> None:
    failed = adapters.publisher.publish([a_report("req-1")], deadline)
    assert failed == (set() if healthy else {"req-1"})


def read_key(adapters: Adapters, stack: LocalStack, deadline: Deadline, healthy: bool) -> None:
    if healthy:
        assert adapters.api_key.api_key(deadline=deadline).get_secret_value()
        return
    with pytest.raises(ApiKeyUnavailableError):
        adapters.api_key.api_key(deadline=deadline)


def park(adapters: Adapters, stack: LocalStack, deadline: Deadline, healthy: bool) -> None:
    parked = adapters.dead_letters.park(body="not json", reason="unparseable", message_id="m-1", deadline=deadline)
    assert parked is healthy


def postpone(adapters: Adapters, stack: LocalStack, deadline: Deadline, healthy: bool) -> None:
    # A receipt handle moto does not know: even healthy, nothing is changed; the call must still end in time.
    changed = adapters.visibility.postpone([Postponement(stack.queue_arn, "unknown-receipt", 30)], deadline)
    assert changed == 0


def claim(adapters: Adapters, stack: LocalStack, deadline: Deadline, healthy: bool) -> None:
    outcome = adapters.idempotency.claim(f"req-{time.monotonic_ns()}", deadline)
    assert outcome is (Claim.NEW if healthy else Claim.UNAVAILABLE)


def complete(adapters: Adapters, stack: LocalStack, deadline: Deadline, healthy: bool) -> None:
    assert adapters.idempotency.complete(f"req-{time.monotonic_ns()}", {"archived": 1}, deadline) is None


CASES: list[tuple[str, str, Callable[[Adapters, LocalStack, Deadline, bool], None]]] = [
    ("events", "hang", publish),
    ("events", "drip", publish),
    ("secretsmanager", "hang", read_key),
    ("secretsmanager", "drip", read_key),
    ("sqs", "hang", park),
    ("sqs", "drip", postpone),
    ("dynamodb", "hang", claim),
    ("dynamodb", "drip", complete),
]


@pytest.mark.parametrize(
    ("service", "mode", "call"), CASES, ids=[f"{service}-{mode}-{call.__name__}" for service, mode, call in CASES]
)
def test_a_stalled_endpoint_costs_no_more_than_the_time_left(
    service: str,
    mode: str,
    call: Callable[[Adapters, LocalStack, Deadline, bool], None],
    adapters: Adapters,
    aws_stack: LocalStack,
    proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given: the service's endpoint hangs or drips
    if mode == "hang":
        proxy.hang(service)
    else:
        proxy.drip(service, interval_seconds=DRIP_INTERVAL_SECONDS)
    stalled_before = proxy.counters.stalled_calls
    deadline = Deadline(expires_at=time.monotonic() + TIME_GIVEN_SECONDS)

    # When: the adapter calls it with the time it has
    with caplog.at_level(logging.WARNING, logger="sequence_archiver"):
        time_left = deadline.remaining_seconds()
        started = time.monotonic()
        call(adapters, aws_stack, deadline, False)
        used = time.monotonic() - started

    # Then: it returned (its failure contract asserted by `call`) within the time left
    assert proxy.counters.stalled_calls > stalled_before, "the call did not reach the stalled endpoint"
    assert used <= time_left + ALLOWED_OVERRUN_SECONDS
    assert any(record.levelno >= logging.WARNING for record in caplog.records) or service == "secretsmanager"

    # And: once the endpoint is healthy again, the same adapter works
    proxy.clear()
    call(adapters, aws_stack, Deadline(expires_at=time.monotonic() + 10), True)


def test_the_proxy_routes_every_service_through_the_standard_endpoint_variables(proxy: FaultProxy) -> None:
    variables = proxy.endpoint_variables()

    assert set(variables) == {
        "AWS_ENDPOINT_URL_EVENTBRIDGE",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_DYNAMODB",
    }
    assert set(variables.values()) == {proxy.endpoint_url}
    with pytest.raises(ValueError, match="service must be one of"):
        proxy.hang("lambda")


def test_only_the_chosen_operations_are_held(adapters: Adapters, aws_stack: LocalStack, proxy: FaultProxy) -> None:
    proxy.hang("sqs", operations={"ChangeMessageVisibilityBatch"})
    stalled_before = proxy.counters.stalled_calls

    # SendMessage passes; the proxy holds nothing
    assert adapters.dead_letters.park(body="x", reason="r", message_id="m", deadline=Deadline(time.monotonic() + 10))
    assert proxy.counters.stalled_calls == stalled_before


@pytest.fixture
def sdk_loggers_restored() -> Iterator[None]:
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in SDK_LOGGERS]
    yield
    for each, level in saved:
        each.setLevel(level)


@pytest.mark.usefixtures("sdk_loggers_restored")
def test_with_root_at_debug_reading_the_secret_from_the_local_stack_logs_no_key(
    aws_stack: LocalStack, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    import boto3

    client = boto3.client(
        "secretsmanager",
        endpoint_url=aws_stack.endpoint_url,
        region_name=aws_stack.region,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        config=AWS_CLIENT_CONFIG,
    )
    source = SecretsManagerApiKey(
        secret_id=aws_stack.secret_arn, provider=SecretsProvider(boto3_client=client), max_age_seconds=300
    )
    # The hazard, shown first: with the SDK loggers following a root logger at DEBUG, botocore prints the key.
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    with caplog.at_level(logging.DEBUG):
        assert source.api_key().get_secret_value() == api_key
    assert api_key in caplog.text
    caplog.clear()

    # Held at WARNING (the function's default, SDK_DEBUG_LOGGING unset), the same read prints nothing of it.
    hold_sdk_loggers_at_warning(opt_in=False)
    with caplog.at_level(logging.DEBUG):
        assert source.api_key(refresh=True).get_secret_value() == api_key

    assert api_key not in caplog.text
    assert not [record for record in caplog.records if record.name.split(".")[0] in SDK_LOGGERS]
