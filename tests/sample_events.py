"""Sample events shared by the test tiers: the files under events/, and archive requests wrapped as the SQS bodies
that an EventBridge rule or an SNS subscription (without raw message delivery) puts on the request queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> Any:
    """A sample event from events/."""
    return json.loads((EVENTS_DIR / name).read_text())


def eventbridge_envelope(detail: object) -> str:
    """An EventBridge event as an SQS body (an EventBridge rule targeting the queue)."""
    return json.dumps(
        {
            "version": "0",
            "id": "0d079340-135a-c8c6-95c2-41fb8f496c53",
            "detail-type": "Archive Sequences",
            "source": "reply.sequence-archiver.requests",
            "account": "123456789012",
            "time": "2026-11-29T09:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def sns_envelope(message: object) -> str:
    """An SNS notification as an SQS body (a topic subscription without raw message delivery)."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:archive-requests",
            "Message": json.dumps(message),
            "Timestamp": "2026-11-29T09:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    )
