"""The AWS side of the local stack: a moto server on 127.0.0.1 and the function's resources on it."""

from __future__ import annotations

import base64
import functools
import gzip
import json
import logging
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3

from local.stand_ins.background import BackgroundService
from sequence_archiver.core.results_contract import RESULTS_DETAIL_TYPE, RESULTS_EVENT_SOURCE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from moto.server import ThreadedMotoServer
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageTypeDef,
    )

DEFAULT_REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - moto accepts any credentials; this one is public
TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
QUEUE_LOGICAL_ID = "ArchiveRequestsQueue"
# template.yaml's ResultsLogGroup is /aws/events/${AWS::StackName}/sequence-archive-results; the local stack
# puts its name prefix where the stack name goes. Its rule takes every event of the function's source.
RESULTS_LOG_GROUP_SUFFIX = "sequence-archive-results"

# Used when template.yaml is missing or does not state a plain value. 2100 s is the AWS guidance of six
# times the function timeout (300 s) plus the largest batching window; 5 receives is the minimum AWS
# recommends before dead-lettering, so one throttled batch does not send good messages to the DLQ.
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 2100
DEFAULT_MAX_RECEIVE_COUNT = 5

# Variables that must not be set while the function runs against the local stack: a profile or
# session token would mix real credentials in, and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS would make the
# SDK ignore AWS_ENDPOINT_URL. Service-specific AWS_ENDPOINT_URL_<SERVICE> variables go too.
UNSET_FUNCTION_VARIABLES = (
    "POWERTOOLS_DEV",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)

SecretFormat = Literal["json", "bare"]
# The template's QueueType=fifo: FIFO queues whose deduplication ID SQS derives from the body.
_FIFO_QUEUE_ATTRIBUTES: dict[QueueAttributeNameType, str] = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
DEFAULT_MESSAGE_GROUP_ID = "archive-requests"
_NAME_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")
_LAMBDA_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    # Present only for FIFO queues, traced messages or redriven messages, as in real Lambda events.
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
)


class LocalStackError(RuntimeError):
    """The local AWS stack could not be started or provisioned."""


class AtomicDynamoDB:
    """WSGI middleware giving moto's DynamoDB the atomicity of AWS's: one DynamoDB request at a time.

    moto evaluates a ConditionExpression and then applies the write as separate steps, with no lock between them,
    so two concurrent conditional writes to one item can both succeed (seen here: six threads making optimistic
    `SET v = :next IF v = :read` writes on a loaded host lost increments). DynamoDB checks and writes atomically;
    the shared rate budget and the idempotency records rely on that. Other services pass through untouched.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))  # the whole answer, computed under the lock


class MotoServer(BackgroundService):
    """A moto server in a daemon thread on 127.0.0.1; use stop() or a with block to shut it down."""

    def __init__(self, *, port: int = 0, quiet: bool = True) -> None:
        self._port = port
        self._quiet = quiet
        self._server: ThreadedMotoServer | None = None
        self._endpoint_url: str | None = None

    @property
    def endpoint_url(self) -> str:
        """Base URL every boto3 client of the local stack points at."""
        if self._endpoint_url is None:
            raise LocalStackError("the moto server is not running; call start() first")
        return self._endpoint_url

    def start(self) -> MotoServer:
        """Start serving; port 0 lets the OS pick a free port, so parallel runs never collide."""
        if self._server is not None:
            return self
        from moto.server import ThreadedMotoServer

        if self._quiet:
            # werkzeug logs one line per request to stderr, which would drown the demo's output.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self._port:
            _ensure_port_free(self._port)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        inner = server._server  # the werkzeug server ThreadedMotoServer runs: no request yet, nobody knows its port
        if inner is not None:
            inner.app = AtomicDynamoDB(inner.app)
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Shut the server down and release its socket; safe to call twice."""
        server, self._server, self._endpoint_url = self._server, None, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() leaves the listening socket open; close it to avoid a ResourceWarning.
        inner = getattr(server, "_server", None)
        if inner is not None:
            inner.server_close()


def _ensure_port_free(port: int) -> None:
    """Fail fast on a taken port: ThreadedMotoServer.start() would wait forever for a server that failed to bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds, so TIME_WAIT is no obstacle
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise LocalStackError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None


def start_moto_server(*, port: int = 0, quiet: bool = True) -> MotoServer:
    """Start a moto server on 127.0.0.1 (a free port unless one is given) and return it running."""
    return MotoServer(port=port, quiet=quiet).start()


@functools.cache
def boto3_session(region: str) -> boto3.session.Session:
    """One boto3 session per region with dummy credentials, whatever the environment says."""
    return boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        region_name=region,
    )


def sqs_client(endpoint_url: str, region: str = DEFAULT_REGION) -> SQSClient:
    """An SQS client talking to the local endpoint."""
    return boto3_session(region).client("sqs", endpoint_url=endpoint_url)


def events_client(endpoint_url: str, region: str = DEFAULT_REGION) -> EventBridgeClient:
    """An EventBridge client talking to the local endpoint."""
    return boto3_session(region).client("events", endpoint_url=endpoint_url)


def logs_client(endpoint_url: str, region: str = DEFAULT_REGION) -> CloudWatchLogsClient:
    """A CloudWatch Logs client talking to the local endpoint."""
    return boto3_session(region).client("logs", endpoint_url=endpoint_url)


def secretsmanager_client(endpoint_url: str, region: str = DEFAULT_REGION) -> SecretsManagerClient:
    """A Secrets Manager client talking to the local endpoint."""
    return boto3_session(region).client("secretsmanager", endpoint_url=endpoint_url)


@dataclass(frozen=True)
class QueueSettings:
    """Visibility timeout and redrive threshold of ArchiveRequestsQueue, and where they were read from."""

    visibility_timeout_seconds: int
    max_receive_count: int
    source: str


def load_cloudformation_yaml(text: str) -> Any:
    """Parse a CloudFormation/SAM template, turning short-form tags (!Ref, !GetAtt...) into long form."""
    import yaml

    loader_class: Any = type("CloudFormationLoader", (yaml.SafeLoader,), {})

    def construct_intrinsic(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        """Build {"Ref": ...} or {"Fn::Name": ...} from a short-form intrinsic function tag."""
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    loader_class.add_multi_constructor("!", construct_intrinsic)
    loader = loader_class(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def resolve_int(value: Any, parameters: Mapping[str, Any]) -> int | None:
    """An integer from a literal or a !Ref to a template parameter's Default; None if not resolvable."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = parameters.get(str(value["Ref"]))
        value = parameter.get("Default") if isinstance(parameter, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def resolve_branches(value: Any, document: Mapping[str, Any]) -> Any:
    """A value with every `Fn::If` resolved as the template deploys with its parameters' defaults."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        chosen = when_true if _condition_holds({"Fn::Condition": name}, document) else when_false
        return resolve_branches(chosen, document)
    return value


def _condition_holds(expression: Any, document: Mapping[str, Any]) -> bool:
    """Evaluate a condition (Equals, And, Or, Not, Condition) with the parameters' defaults."""
    if not isinstance(expression, dict) or len(expression) != 1:
        raise LocalStackError(f"cannot evaluate the condition {expression!r}")
    [(function, arguments)] = expression.items()
    if function == "Fn::Condition":
        return _condition_holds((document.get("Conditions") or {})[arguments], document)
    if function == "Fn::Equals":
        left, right = (_default_of(argument, document) for argument in arguments)
        return str(left) == str(right)
    if function == "Fn::Not":
        return not _condition_holds(arguments[0], document)
    if function == "Fn::And":
        return all(_condition_holds(argument, document) for argument in arguments)
    if function == "Fn::Or":
        return any(_condition_holds(argument, document) for argument in arguments)
    raise LocalStackError(f"cannot evaluate the condition function {function}")


def _default_of(value: Any, document: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = (document.get("Parameters") or {}).get(str(value["Ref"]))
        return parameter.get("Default") if isinstance(parameter, dict) else None
    return value


def queue_settings_from_template(path: Path = TEMPLATE_PATH) -> QueueSettings:
    """Read ArchiveRequestsQueue's VisibilityTimeout and maxReceiveCount from template.yaml, else defaults."""
    defaults = QueueSettings(DEFAULT_VISIBILITY_TIMEOUT_SECONDS, DEFAULT_MAX_RECEIVE_COUNT, "")
    if not path.is_file():
        return QueueSettings(
            defaults.visibility_timeout_seconds,
            defaults.max_receive_count,
            f"defaults ({path.name} not found)",
        )
    document = load_cloudformation_yaml(path.read_text(encoding="utf-8"))
    document = document if isinstance(document, dict) else {}
    resources = document.get("Resources") or {}
    parameters = document.get("Parameters") or {}
    queue = resources.get(QUEUE_LOGICAL_ID) if isinstance(resources, dict) else None
    properties = queue.get("Properties") if isinstance(queue, dict) else None
    if not isinstance(properties, dict):
        return QueueSettings(
            defaults.visibility_timeout_seconds,
            defaults.max_receive_count,
            f"defaults ({path.name} has no {QUEUE_LOGICAL_ID} properties)",
        )
    redrive = properties.get("RedrivePolicy") or {}
    if isinstance(redrive, str):
        redrive = json.loads(redrive)
    visibility = resolve_int(properties.get("VisibilityTimeout"), parameters)
    max_receives = resolve_int(redrive.get("maxReceiveCount") if isinstance(redrive, dict) else None, parameters)
    missing = [
        name for name, found in (("VisibilityTimeout", visibility), ("maxReceiveCount", max_receives)) if found is None
    ]
    source = path.name if not missing else f"{path.name}, defaults for {', '.join(missing)}"
    return QueueSettings(
        visibility if visibility is not None else defaults.visibility_timeout_seconds,
        max_receives if max_receives is not None else defaults.max_receive_count,
        source,
    )


@dataclass(frozen=True)
class LocalStack:
    """Names, URLs and ARNs of the resources provision() created on the local endpoint."""

    endpoint_url: str
    region: str
    secret_arn: str
    secret_name: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    results_bus_name: str
    results_bus_arn: str
    results_sink_queue_url: str
    dead_letter_queue_arn: str
    results_rule_name: str
    results_sink_queue_arn: str
    queue_settings: QueueSettings
    fifo: bool = False  # the request queue and its DLQ are FIFO queues (the template's QueueType=fifo)
    # The template's ResultsLogGroup and the rule that sends every event of the function's source to it.
    results_log_group_name: str = ""
    results_log_group_arn: str = ""
    results_log_rule_name: str = ""

    def sqs(self) -> SQSClient:
        """An SQS client for this stack."""
        return sqs_client(self.endpoint_url, self.region)

    def events(self) -> EventBridgeClient:
        """An EventBridge client for this stack."""
        return events_client(self.endpoint_url, self.region)

    def secretsmanager(self) -> SecretsManagerClient:
        """A Secrets Manager client for this stack."""
        return secretsmanager_client(self.endpoint_url, self.region)

    def logs(self) -> CloudWatchLogsClient:
        """A CloudWatch Logs client for this stack."""
        return logs_client(self.endpoint_url, self.region)


def unique_name_prefix(base: str = "rsa") -> str:
    """A resource-name prefix no other test or run shares."""
    return f"{base}-{uuid.uuid4().hex[:12]}"


def _queue_arn(sqs: SQSClient, queue_url: str) -> str:
    """The ARN of a queue, as SQS reports it."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    return attributes["QueueArn"]


def provision(
    endpoint_url: str,
    *,
    api_key: str,
    name_prefix: str,
    region: str = DEFAULT_REGION,
    secret_format: SecretFormat = "json",  # noqa: S107 - a format name, not a password
    queue_settings: QueueSettings | None = None,
    fifo: bool = False,
) -> LocalStack:
    """Create the secret, request queue + DLQ, results bus, and rules routing results to a sink queue and a log group.

    The log group and its rule are the template's (ResultsLogGroup, every event of the function's source);
    the sink queue is local only: `sequence-archiver report --queue-url` and read_results_events() drain it.

    `fifo=True` makes the request queue and its DLQ FIFO queues with content-based deduplication, as the
    template's `QueueType=fifo` does (names end in `.fifo`); send to them with a message group ID.
    """
    if not _NAME_PREFIX.fullmatch(name_prefix):
        raise ValueError("name_prefix must be 1-40 letters, digits or hyphens, starting with a letter or digit")
    if secret_format not in ("json", "bare"):
        raise ValueError("secret_format must be 'json' or 'bare'")
    settings = queue_settings or queue_settings_from_template()

    secret_name = f"{name_prefix}/reply-api-key"
    secret_string = api_key if secret_format == "bare" else json.dumps({"apiKey": api_key})  # noqa: S105
    secret_arn = secretsmanager_client(endpoint_url, region).create_secret(
        Name=secret_name, SecretString=secret_string
    )["ARN"]

    sqs = sqs_client(endpoint_url, region)
    suffix = ".fifo" if fifo else ""
    fifo_attributes = _FIFO_QUEUE_ATTRIBUTES if fifo else {}
    dead_letter_queue_url = sqs.create_queue(
        QueueName=f"{name_prefix}-ArchiveRequestsDLQ{suffix}",
        Attributes={"MessageRetentionPeriod": "1209600", **fifo_attributes},
    )["QueueUrl"]
    dead_letter_queue_arn = _queue_arn(sqs, dead_letter_queue_url)
    redrive_policy = {
        "deadLetterTargetArn": dead_letter_queue_arn,
        "maxReceiveCount": settings.max_receive_count,
    }
    queue_url = sqs.create_queue(
        QueueName=f"{name_prefix}-{QUEUE_LOGICAL_ID}{suffix}",
        Attributes={
            "VisibilityTimeout": str(settings.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive_policy),
            **fifo_attributes,
        },
    )["QueueUrl"]
    sink_url = sqs.create_queue(QueueName=f"{name_prefix}-results-sink")["QueueUrl"]
    sink_arn = _queue_arn(sqs, sink_url)

    events = events_client(endpoint_url, region)
    bus_name = f"{name_prefix}-results"
    bus_arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    rule_name = f"{name_prefix}-results-to-sink"
    rule_arn = events.put_rule(
        Name=rule_name,
        EventBusName=bus_name,
        EventPattern=json.dumps({"source": [RESULTS_EVENT_SOURCE], "detail-type": [RESULTS_DETAIL_TYPE]}),
        State="ENABLED",
    )["RuleArn"]
    # Real EventBridge needs this resource policy to deliver to SQS; moto does not check it.
    sink_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": sink_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=sink_url, Attributes={"Policy": json.dumps(sink_policy)})
    targets = events.put_targets(
        Rule=rule_name, EventBusName=bus_name, Targets=[{"Id": "results-sink", "Arn": sink_arn}]
    )
    if targets.get("FailedEntryCount"):
        raise LocalStackError(f"could not attach the results sink: {targets.get('FailedEntries')}")
    log_group_name, log_group_arn, log_rule_name = _provision_results_log(events, stack_name=name_prefix, bus=bus_name)

    return LocalStack(
        endpoint_url=endpoint_url,
        region=region,
        secret_arn=secret_arn,
        secret_name=secret_name,
        queue_url=queue_url,
        queue_arn=_queue_arn(sqs, queue_url),
        dead_letter_queue_url=dead_letter_queue_url,
        results_bus_name=bus_name,
        results_bus_arn=bus_arn,
        results_sink_queue_url=sink_url,
        dead_letter_queue_arn=dead_letter_queue_arn,
        results_rule_name=rule_name,
        results_sink_queue_arn=sink_arn,
        queue_settings=settings,
        fifo=fifo,
        results_log_group_name=log_group_name,
        results_log_group_arn=log_group_arn,
        results_log_rule_name=log_rule_name,
    )


def results_log_group_name(stack_name: str) -> str:
    """The results log group of a stack, named as template.yaml names ResultsLogGroup."""
    return f"/aws/events/{stack_name}/{RESULTS_LOG_GROUP_SUFFIX}"


def _provision_results_log(events: EventBridgeClient, *, stack_name: str, bus: str) -> tuple[str, str, str]:
    """The results log group and a rule on the bus sending it every event of the function's source."""
    logs = logs_client(events.meta.endpoint_url, events.meta.region_name)
    name = results_log_group_name(stack_name)
    logs.create_log_group(logGroupName=name)
    [group] = [
        group
        for group in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        if group["logGroupName"] == name
    ]
    # DescribeLogGroups (like !GetAtt ...Arn) ends the ARN in ":*", its log streams; the target names the group.
    arn = group["arn"].removesuffix(":*")
    rule_name = f"{stack_name}-results-to-log"
    events.put_rule(
        Name=rule_name,
        EventBusName=bus,
        EventPattern=json.dumps({"source": [RESULTS_EVENT_SOURCE]}),
        State="ENABLED",
    )
    # Real EventBridge also needs a CloudWatch Logs resource policy allowing events.amazonaws.com; moto does not.
    targets = events.put_targets(Rule=rule_name, EventBusName=bus, Targets=[{"Id": "results-log-group", "Arn": arn}])
    if targets.get("FailedEntryCount"):
        raise LocalStackError(f"could not attach the results log group: {targets.get('FailedEntries')}")
    return name, arn, rule_name


def function_environment(stack: LocalStack, *, reply_base_url: str, **overrides: str) -> dict[str, str]:
    """The environment the function needs to run against this stack; keyword overrides win."""
    environment = {
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "AWS_DEFAULT_REGION": stack.region,
        "AWS_REGION": stack.region,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "REPLY_API_KEY_SECRET_ID": stack.secret_arn,
        "REPLY_API_BASE_URL": reply_base_url,
        "RESULTS_EVENT_BUS_NAME": stack.results_bus_name,
        "RESULTS_EVENT_SOURCE": RESULTS_EVENT_SOURCE,
        "DEAD_LETTER_QUEUE_URL": stack.dead_letter_queue_url,
        "SQS_MAX_RECEIVE_COUNT": str(stack.queue_settings.max_receive_count),  # as the template passes it
        "POWERTOOLS_SERVICE_NAME": "sequence-archiver",
        "POWERTOOLS_METRICS_NAMESPACE": "ReplySequenceArchiver",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as the template sets it
    }
    environment.update(overrides)
    return environment


def variables_to_unset(environ: Mapping[str, str]) -> list[str]:
    """Names in environ that must be removed before the function runs against the local stack."""
    return sorted(name for name in environ if name in UNSET_FUNCTION_VARIABLES or name.startswith("AWS_ENDPOINT_URL_"))


def _receive(
    sqs: SQSClient, queue_url: str, *, wait_seconds: int, visibility_timeout: int, max_messages: int = 10
) -> list[MessageTypeDef]:
    """One ReceiveMessage call asking for everything: system attributes and message attributes."""
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        WaitTimeSeconds=wait_seconds,
        VisibilityTimeout=visibility_timeout,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


def _delete(sqs: SQSClient, queue_url: str, messages: Sequence[MessageTypeDef]) -> None:
    """Delete received messages in batches of ten; a failed delete is an error in a test stack."""
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        response = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise LocalStackError(f"could not delete messages: {response['Failed']}")


def read_results_events(stack: LocalStack, *, expected: int, timeout_seconds: float = 10.0) -> list[dict[str, Any]]:
    """Drain the results sink until `expected` events arrived (or the timeout); return their envelopes."""
    sqs = stack.sqs()
    deadline = time.monotonic() + timeout_seconds
    envelopes: list[dict[str, Any]] = []
    while True:
        remaining = deadline - time.monotonic()
        enough = len(envelopes) >= expected
        # Once enough arrived, one more non-waiting receive picks up any surplus, so callers can assert ==.
        wait = 1 if not enough and remaining >= 1 else 0
        messages = _receive(sqs, stack.results_sink_queue_url, wait_seconds=wait, visibility_timeout=30)
        _delete(sqs, stack.results_sink_queue_url, messages)
        envelopes.extend(json.loads(message["Body"]) for message in messages)
        if not messages:
            if enough or remaining <= 0:
                return envelopes
            if wait == 0:
                time.sleep(0.05)


@dataclass(frozen=True)
class LoggedEvent:
    """One event the results rule wrote to the results log group: where it is, when, and its envelope."""

    log_stream_name: str
    event_id: str
    timestamp_ms: int  # whole milliseconds (moto stores fractions; StartTime takes an integer)
    envelope: dict[str, Any]


def read_results_log(
    stack: LocalStack, *, expected: int = 0, timeout_seconds: float = 0.0, start_time_ms: int | None = None
) -> list[LoggedEvent]:
    """Every event in the results log group (from start_time_ms on), oldest first; waits for `expected` of them.

    Reading leaves the log as it is (unlike read_results_events, which drains the sink queue).
    """
    logs = stack.logs()
    deadline = time.monotonic() + timeout_seconds
    while True:
        found: list[LoggedEvent] = []
        arguments: dict[str, Any] = {"logGroupName": stack.results_log_group_name}
        if start_time_ms is not None:
            arguments["startTime"] = start_time_ms
        while True:
            page = logs.filter_log_events(**arguments)
            found.extend(
                LoggedEvent(
                    item.get("logStreamName", ""), item["eventId"], int(item["timestamp"]), json.loads(item["message"])
                )
                for item in page.get("events", [])
                if "eventId" in item and "timestamp" in item and "message" in item
            )
            token = page.get("nextToken")
            if not token:
                break
            arguments["nextToken"] = token
        if len(found) >= expected or time.monotonic() >= deadline:
            return sorted(found, key=lambda event: event.timestamp_ms)
        time.sleep(0.1)


def drain_queue(
    queue_url: str,
    *,
    endpoint_url: str,
    region: str = DEFAULT_REGION,
    delete: bool = True,
    wait_seconds: int = 0,
) -> list[MessageTypeDef]:
    """Read every visible message of a queue with all attributes; delete them, or make them visible again."""
    sqs = sqs_client(endpoint_url, region)
    messages: list[MessageTypeDef] = []
    wait = wait_seconds
    while batch := _receive(sqs, queue_url, wait_seconds=wait, visibility_timeout=60):
        messages.extend(batch)
        wait = 0
    if delete:
        _delete(sqs, queue_url, messages)
    else:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )
    return messages


def send_messages(
    stack: LocalStack,
    bodies: Iterable[str],
    *,
    message_attributes: Mapping[str, str] | None = None,
    message_group_id: str | None = None,
) -> list[str]:
    """Send each body to the request queue (optional String message attributes); return the message IDs.

    On a FIFO stack every message goes to `message_group_id` (default "archive-requests"), in order; SQS
    derives the deduplication ID from the body, so send distinct bodies. A standard queue takes no group ID.
    """
    if message_group_id is not None and not stack.fifo:
        raise ValueError("message_group_id is for a FIFO stack (provision(..., fifo=True))")
    sqs = stack.sqs()
    options: dict[str, Any] = {}
    if message_attributes:
        options["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in message_attributes.items()
        }
    if stack.fifo:
        options["MessageGroupId"] = message_group_id or DEFAULT_MESSAGE_GROUP_ID
    ids = []
    for body in bodies:
        response = sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body, **options)
        ids.append(response["MessageId"])
    return ids


def receive_batch(stack: LocalStack, *, max_messages: int = 10, timeout_seconds: float = 5.0) -> list[MessageTypeDef]:
    """Receive up to max_messages from the request queue like Lambda's poller, with every attribute."""
    sqs = stack.sqs()
    deadline = time.monotonic() + timeout_seconds
    messages: list[MessageTypeDef] = []
    while len(messages) < max_messages:
        # Long-poll until the first message arrives, then take only what is already there.
        wait = 1 if not messages and deadline - time.monotonic() >= 1 else 0
        batch = _receive(
            sqs,
            stack.queue_url,
            wait_seconds=wait,
            visibility_timeout=stack.queue_settings.visibility_timeout_seconds,
            max_messages=min(10, max_messages - len(messages)),
        )
        if not batch and (messages or wait == 0):
            break
        messages.extend(batch)
    return messages


def delete_messages(stack: LocalStack, messages: Sequence[MessageTypeDef]) -> None:
    """Delete received messages from the request queue, as Lambda does for a batch's successes."""
    _delete(stack.sqs(), stack.queue_url, messages)


def _lambda_message_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    """One message attribute in Lambda's event shape (camelCase keys, binaries base64-encoded)."""
    shaped: dict[str, Any] = {}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    shaped["stringListValues"] = list(value.get("StringListValues", []))
    shaped["binaryListValues"] = [base64.b64encode(item).decode("ascii") for item in value.get("BinaryListValues", [])]
    shaped["dataType"] = value["DataType"]
    return shaped


def sqs_event_from_messages(messages: Sequence[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller would deliver for these messages (received with all attributes)."""
    records = []
    for message in messages:
        received = message.get("Attributes", {})
        attributes = {name: received[name] for name in _LAMBDA_RECORD_ATTRIBUTES if name in received}
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": attributes,
                "messageAttributes": {
                    name: _lambda_message_attribute(value)
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def create_idempotency_table(stack: LocalStack, name: str) -> Any:
    """A DynamoDB table as Powertools idempotency expects it: partition key `id`, TTL on `expiration`."""
    return _create_table(stack, name, partition_key="id", ttl_attribute="expiration")


def create_rate_budget_table(stack: LocalStack, name: str) -> Any:
    """The shared rate budget table as template.yaml's RateBudgetTable: partition key `pk`, TTL on `expires_at`."""
    return _create_table(stack, name, partition_key="pk", ttl_attribute="expires_at")


def _create_table(stack: LocalStack, name: str, *, partition_key: str, ttl_attribute: str) -> Any:
    """An on-demand table with a string partition key and a TTL attribute; the client that made it."""
    dynamodb: Any = boto3_session(stack.region).client("dynamodb", endpoint_url=stack.endpoint_url)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": partition_key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": partition_key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
    )
    return dynamodb


def create_snapshot_bucket(stack: LocalStack, name: str) -> Any:
    """The snapshot bucket as template.yaml's SnapshotBucket (SSE-S3, public access blocked); the S3 client that
    made it. Pass its name to the function as SNAPSHOT_BUCKET_NAME: function_environment() leaves snapshots off."""
    s3: Any = boto3_session(stack.region).client("s3", endpoint_url=stack.endpoint_url)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration=dict.fromkeys(
            ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
        ),
    )
    return s3


def read_snapshot(s3: Any, uri: str) -> dict[str, Any]:
    """The snapshot object an `s3://bucket/key` URI names, gunzipped and parsed."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    document: dict[str, Any] = json.loads(gzip.decompress(body))
    return document
