"""The ``chalice deploy`` path: what chalice does not do, done with boto3 and your credentials.

``chalice deploy`` creates the functions, APIs and SQS event sources (with their
``MaximumConcurrency``) but not the queues, and it cannot set ``ReportBatchItemFailures`` on an
event source. The CloudFormation path
(``make package``) does both in the template; these two steps do them around a
``chalice deploy``:

    python -m infra create-queues --stage dev           # before the first chalice deploy
    chalice deploy --stage dev
    python -m infra configure-event-source --stage dev  # after it
"""

import time
from collections.abc import Callable

from chalicelib.backends.queue_setup import QueueUrls, create_or_update
from infra import render

# An event source mapping in one of these states refuses updates (ResourceInUseException).
SETTLING_STATES = {"Creating", "Enabling", "Updating", "Disabling"}
SETTLE_TIMEOUT_S = 300.0  # AWS: a new mapping usually settles within a minute
POLL_S = 2.0


def create_queues(sqs, stage: str = "dev") -> QueueUrls:
    """The stage's orders queue and DLQ, from ``backends/queue_setup.py`` (idempotent)."""
    return create_or_update(sqs, render.stage_settings(stage))


def configure_event_source(
    sqs,
    lambda_client,
    stage: str = "dev",
    timeout_s: float = SETTLE_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Batch-failure reporting on the orders queue's event source (``MaximumConcurrency``
    comes from the decorator: chalice deploy sets it).

    Waits for each mapping to leave Creating/Updating before and after the update. Returns the
    UUIDs of the mappings updated; raises when there is none (deploy first) and
    ``TimeoutError`` when a mapping has not settled within ``timeout_s``.
    """
    settings = render.stage_settings(stage)
    url = sqs.get_queue_url(QueueName=settings.queue.orders_queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    mappings = lambda_client.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    if not mappings:
        raise RuntimeError(f"no event source reads {arn}: run `chalice deploy --stage {stage}`")
    for mapping in mappings:
        deadline = time.monotonic() + timeout_s
        while True:
            wait_until_settled(lambda_client, mapping["UUID"], deadline, sleep)
            try:
                lambda_client.update_event_source_mapping(
                    UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"]
                )
                break
            except lambda_client.exceptions.ResourceInUseException:
                pass  # another change started in between: wait for it too
        wait_until_settled(lambda_client, mapping["UUID"], deadline, sleep)
    return [m["UUID"] for m in mappings]


def wait_until_settled(
    lambda_client, uuid: str, deadline: float, sleep: Callable[[float], None] = time.sleep
) -> str:
    """Poll the mapping until its state is not a transition; returns that state."""
    while True:
        state = lambda_client.get_event_source_mapping(UUID=uuid)["State"]
        if state not in SETTLING_STATES:
            return state
        if time.monotonic() >= deadline:
            raise TimeoutError(f"event source mapping {uuid} is still {state}")
        sleep(POLL_S)
