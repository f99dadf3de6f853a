"""The AWS adapters: SQS sends and visibility, the dead-letter queue, EventBridge results, the idempotency table."""
