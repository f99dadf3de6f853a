"""boto3 clients with the standard configuration chain, plus `--region` and `--endpoint-url`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from sequence_archiver import is_loopback_host
from sequence_archiver_cli.errors import UnavailableError

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# Short connect timeouts and the SDK's standard retries (throttling and transient errors are retried there).
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})
LOCAL_DEFAULT_REGION = "us-east-1"
_QUEUE_URL_REGION = re.compile(r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d+)\.(?:queue\.)?amazonaws\.com(?:\.cn)?$")


@dataclass(frozen=True, slots=True)
class AwsOptions:
    """What the command line says about AWS; None means "as boto3 would decide"."""

    region: str | None = None
    endpoint_url: str | None = None


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs whose host is localhost or a loopback address."""
    return is_loopback_host(urlsplit(url).hostname or "")


def region_from_queue_url(queue_url: str) -> str | None:
    """The region in an SQS queue URL (`https://sqs.eu-west-1.amazonaws.com/...`), if it names one."""
    match = _QUEUE_URL_REGION.match(urlsplit(queue_url).hostname or "")
    return match.group(1) if match else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _session(options: AwsOptions, *, hint_url: str | None = None) -> boto3.session.Session:
    session = boto3.session.Session(region_name=options.region) if options.region else boto3.session.Session()
    if session.region_name:
        return session
    region = region_from_queue_url(hint_url) if hint_url else None
    if region is None and ((hint_url and is_loopback_url(hint_url)) or options.endpoint_url):
        region = LOCAL_DEFAULT_REGION
    if region is None:
        raise UnavailableError("no AWS region configured: pass --region or set AWS_REGION")
    return boto3.session.Session(region_name=region)


def sqs_client(options: AwsOptions, *, queue_url: str) -> SQSClient:
    """An SQS client for this queue; a queue URL on localhost is reached there unless an endpoint is set."""
    session = _session(options, hint_url=queue_url)
    client = session.client("sqs", endpoint_url=options.endpoint_url, config=CLIENT_CONFIG)
    if options.endpoint_url is None and is_loopback_url(queue_url) and not is_loopback_url(client.meta.endpoint_url):
        # SQS's JSON protocol posts to the client's endpoint, not the queue URL's host: keep local traffic local.
        client = session.client("sqs", endpoint_url=_origin(queue_url), config=CLIENT_CONFIG)
    return client


def secretsmanager_client(options: AwsOptions) -> SecretsManagerClient:
    """A Secrets Manager client (region and endpoint from the options or boto3's configuration)."""
    return _session(options).client("secretsmanager", endpoint_url=options.endpoint_url, config=CLIENT_CONFIG)


def logs_client(options: AwsOptions) -> CloudWatchLogsClient:
    """A CloudWatch Logs client (region and endpoint from the options or boto3's configuration)."""
    return _session(options).client("logs", endpoint_url=options.endpoint_url, config=CLIENT_CONFIG)


def describe_aws_error(service: str, exc: Exception) -> str:
    """One line about an AWS failure: never a stack trace, never credentials."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return f"{service}: no usable AWS credentials (configure a profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, NoRegionError):
        return f"{service}: no AWS region configured: pass --region or set AWS_REGION"
    if isinstance(exc, BotoConnectionError):
        return f"cannot reach {service}: {exc}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        message = error.get("Message") or ""
        return f"{service} refused the call: {code}" + (f": {message}" if message else "")
    if isinstance(exc, BotoCoreError):
        return f"{service}: {exc}"
    return f"{service}: {type(exc).__name__}: {exc}"
