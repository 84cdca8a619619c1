"""The ``chalice deploy`` path: what chalice does not do, done with boto3 and your credentials.

``chalice deploy`` creates the functions, APIs and SQS event sources but not the queues, and
it cannot set ``ReportBatchItemFailures`` on an event source. The CloudFormation path
(``make package``) does both in the template; these two steps do them around a
``chalice deploy``:

    python -m infra create-queues --stage dev           # before the first chalice deploy
    chalice deploy --stage dev
    python -m infra configure-event-source --stage dev  # after it
"""

from chalicelib.queue_setup import QueueUrls, create_or_update
from infra import render


def create_queues(sqs, stage: str = "dev") -> QueueUrls:
    """The stage's orders queue and DLQ, from ``chalicelib/queue_setup.py`` (idempotent)."""
    return create_or_update(sqs, render.stage_settings(stage))


def configure_event_source(sqs, lambda_client, stage: str = "dev") -> list[str]:
    """Batch-failure reporting and bounded concurrency on the orders queue's event source.

    Returns the UUIDs of the mappings updated; raises when there is none (deploy first).
    """
    settings = render.stage_settings(stage)
    url = sqs.get_queue_url(QueueName=settings.orders_queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    mappings = lambda_client.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    if not mappings:
        raise RuntimeError(f"no event source reads {arn}: run `chalice deploy --stage {stage}`")
    for mapping in mappings:
        lambda_client.update_event_source_mapping(
            UUID=mapping["UUID"],
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": render.WORKER_MAX_CONCURRENCY},
        )
    return [m["UUID"] for m in mappings]
