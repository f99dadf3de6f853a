"""boto3 clients with the standard configuration chain, plus `--profile`, `--region` and `--endpoint-url`.

The region is decided as aws-cli v2 decides it: `--region`, then AWS_REGION (the command line puts it in
`AwsOptions.region`: boto3 itself reads only AWS_DEFAULT_REGION), then AWS_DEFAULT_REGION, then the profile's.
A configuration boto3 refuses (an unknown profile, a malformed region, an unreadable config file) is an
UnavailableError of one line, raised here, where the clients are made, never a traceback.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConfigParseError,
    CredentialRetrievalError,
    InvalidConfigError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from sequence_archiver.public import is_loopback_host
from sequence_archiver_cli.errors import UnavailableError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# Short connect timeouts and the SDK's standard retries (throttling and transient errors are retried there).
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})
LOCAL_DEFAULT_REGION = "us-east-1"
REGION_SOURCES = "--region, AWS_REGION, AWS_DEFAULT_REGION or the profile"
NO_REGION = "no AWS region configured: pass --region or set AWS_REGION (or a region in the profile)"
_QUEUE_URL_REGION = re.compile(r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d+)\.(?:queue\.)?amazonaws\.com(?:\.cn)?$")


@dataclass(frozen=True, slots=True)
class AwsOptions:
    """What the command line says about AWS; None means "as boto3 would decide"."""

    region: str | None = None  # --region, else AWS_REGION
    endpoint_url: str | None = None
    profile: str | None = None  # --profile; None leaves AWS_PROFILE / AWS_DEFAULT_PROFILE to boto3


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


@contextmanager
def _configuration(service: str, options: AwsOptions) -> Iterator[None]:
    """boto3's refusals of the configuration (profile, region, config files) as one-line UnavailableErrors."""
    try:
        yield
    except BotoCoreError as exc:
        raise UnavailableError(describe_aws_error(service, exc, options=options)) from None


def _session(options: AwsOptions, *, hint_url: str | None = None) -> boto3.session.Session:
    session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
    if session.region_name:
        return session
    region = region_from_queue_url(hint_url) if hint_url else None
    if region is None and ((hint_url and is_loopback_url(hint_url)) or options.endpoint_url):
        region = LOCAL_DEFAULT_REGION
    if region is None:
        raise UnavailableError(NO_REGION)
    return boto3.session.Session(profile_name=options.profile, region_name=region)


def sqs_client(options: AwsOptions, *, queue_url: str) -> SQSClient:
    """An SQS client for this queue; a queue URL on localhost is reached there unless an endpoint is set."""
    with _configuration("SQS", options):
        session = _session(options, hint_url=queue_url)
        client = session.client("sqs", endpoint_url=options.endpoint_url, config=CLIENT_CONFIG)
        local_queue = is_loopback_url(queue_url) and not is_loopback_url(client.meta.endpoint_url)
        if options.endpoint_url is None and local_queue:
            # SQS's JSON protocol posts to the client's endpoint, not the queue URL's host: keep local traffic local.
            client = session.client("sqs", endpoint_url=_origin(queue_url), config=CLIENT_CONFIG)
        return client


def secretsmanager_client(options: AwsOptions) -> SecretsManagerClient:
    """A Secrets Manager client (region and endpoint from the options or boto3's configuration)."""
    with _configuration("Secrets Manager", options):
        return _session(options).client("secretsmanager", endpoint_url=options.endpoint_url, config=CLIENT_CONFIG)


def dynamodb_client(options: AwsOptions) -> DynamoDBClient:
    """A DynamoDB client (region and endpoint from the options or boto3's configuration)."""
    with _configuration("DynamoDB", options):
        return _session(options).client("dynamodb", endpoint_url=options.endpoint_url, config=CLIENT_CONFIG)


def logs_client(options: AwsOptions) -> CloudWatchLogsClient:
    """A CloudWatch Logs client (region and endpoint from the options or boto3's configuration)."""
    with _configuration("CloudWatch Logs", options):
        return _session(options).client("logs", endpoint_url=options.endpoint_url, config=CLIENT_CONFIG)


def s3_client(options: AwsOptions) -> object:
    """An S3 client (region and endpoint from the options or boto3's configuration); typed by what its caller uses
    of it (the S3 stubs are not among the dev dependencies)."""
    with _configuration("S3", options):
        client: object = _session(options).client("s3", endpoint_url=options.endpoint_url, config=CLIENT_CONFIG)
        return client


def describe_aws_error(service: str, exc: Exception, *, options: AwsOptions | None = None) -> str:
    """One line about an AWS failure: never a stack trace, never credentials."""
    configuration = _describe_configuration_error(service, exc, options)
    if configuration is not None:
        return configuration
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


def _describe_configuration_error(service: str, exc: Exception, options: AwsOptions | None) -> str | None:
    """The profile, region, credentials or config file boto3 refused, in one line; None for any other error."""
    if isinstance(exc, ProfileNotFound):
        where = "--profile" if options is not None and options.profile else "AWS_PROFILE"
        return (
            f"AWS profile {exc.kwargs.get('profile')!r} (from {where}) is not in the AWS config or credentials "
            "file (~/.aws/config and ~/.aws/credentials, or $AWS_CONFIG_FILE and $AWS_SHARED_CREDENTIALS_FILE)"
        )
    if isinstance(exc, InvalidRegionError):
        return f"AWS region {exc.kwargs.get('region_name')!r} is not a region name (from {REGION_SOURCES})"
    if isinstance(exc, ConfigParseError | InvalidConfigError):
        return f"AWS configuration: {exc}"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        detail = "" if isinstance(exc, NoCredentialsError) else f" ({exc})"
        return (
            f"{service}: no usable AWS credentials{detail}: configure a profile (--profile, AWS_PROFILE) or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, NoRegionError):
        return f"{service}: {NO_REGION}"
    return None
