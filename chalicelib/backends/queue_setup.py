"""The orders queue and its dead-letter queue, defined once.

The CloudFormation resources ``infra/`` renders and the queues ``startup.ensure_queues``
creates (LocalStack, moto, or AWS with ``python -m infra create-queues``) both come from
``queue_definitions``, so local and cloud cannot drift apart.
"""

import json
from dataclasses import dataclass

from chalicelib.config import Settings


@dataclass(frozen=True)
class QueueUrls:
    queue: str
    dlq: str


def queue_definitions(settings: Settings) -> dict[str, dict[str, str]]:
    """Queue name -> SQS attributes (the DLQ first: the main queue's redrive names it)."""
    return {
        settings.queue.orders_dlq_name: {"MessageRetentionPeriod": str(14 * 24 * 3600)},
        settings.queue.orders_queue_name: {
            "VisibilityTimeout": str(settings.queue.visibility_timeout_s),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
            "ReceiveMessageWaitTimeSeconds": "20",
            # RedrivePolicy's deadLetterTargetArn is filled in where the DLQ's ARN is known.
        },
    }


def redrive_policy(dlq_arn: str, settings: Settings) -> str:
    return json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.queue.max_receive_count)}
    )


def create_or_update(sqs, settings: Settings) -> QueueUrls:
    """Create (or update) both queues through an SQS client; idempotent."""
    defs = queue_definitions(settings)
    dlq_url = sqs.create_queue(
        QueueName=settings.queue.orders_dlq_name, Attributes=defs[settings.queue.orders_dlq_name]
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        **defs[settings.queue.orders_queue_name],
        "RedrivePolicy": redrive_policy(dlq_arn, settings),
    }
    queue_url = sqs.create_queue(QueueName=settings.queue.orders_queue_name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    return QueueUrls(queue=queue_url, dlq=dlq_url)
