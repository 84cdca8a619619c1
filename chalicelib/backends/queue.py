"""SQS: what the HTTP function and the WebSocket handlers put on the orders queue.

Messages are JSON: ``{"kind": "order", "orderId"}`` to execute an order (``"slice": k``
added: place slice k of a TWAP or DCA parent), and
``{"kind": "replay", "connectionId", "orderId", "since"}`` to send a new subscriber the
history it missed (API Gateway refuses posts to a connection until ``$connect`` returned).
"""

import json
import logging
from functools import lru_cache

from botocore.exceptions import ClientError

from chalicelib.backends.aws import sqs_client
from chalicelib.backends.drivers import unavailable_as
from chalicelib.config import get_settings

log = logging.getLogger(__name__)

# SQS's limits: AWS and moto refuse more, LocalStack takes more (test_sqs_semantics.py).
MAX_DELAY_S = 900
MAX_VISIBILITY_S = 43_200
# A message no longer in flight (deleted, moved to the DLQ, or its visibility ended and another
# delivery holds it): AWS answers MessageNotInflight, ReceiptHandleIsInvalid, or for a deleted
# one InvalidParameterValue; moto the second, LocalStack the third (or nothing at all).
_NOT_IN_FLIGHT = {"MessageNotInflight", "ReceiptHandleIsInvalid", "InvalidParameterValue"}


@lru_cache
def queue_url() -> str:
    settings = get_settings()
    return settings.queue.orders_queue_url or _url_of(settings.queue.orders_queue_name)


@lru_cache
def dlq_url() -> str:
    return _url_of(get_settings().queue.orders_dlq_name)


def _url_of(name: str) -> str:
    with unavailable_as("queue"):
        return sqs_client().get_queue_url(QueueName=name)["QueueUrl"]


def _send(body: dict, delay_s: int = 0) -> None:
    url = queue_url()
    with unavailable_as("queue"):
        sqs_client().send_message(QueueUrl=url, MessageBody=json.dumps(body), DelaySeconds=delay_s)


def send_order(order_id, delay_s: int = 0, slice_index: int | None = None) -> None:
    """Work on the order (``delay_s`` later: at most ``MAX_DELAY_S``; a later time comes
    by sending again). ``slice_index``: a parent order's slice to place."""
    body = {"kind": "order", "orderId": str(order_id)}
    if slice_index is not None:
        body["slice"] = slice_index
    _send(body, min(delay_s, MAX_DELAY_S))


def send_replay(connection_id: str, order_id, since: int) -> None:
    _send(
        {"kind": "replay", "connectionId": connection_id, "orderId": str(order_id), "since": since}
    )


def retry_later(receipt_handle: str, delay_s: int) -> None:
    """Hide a received message for ``delay_s`` (at most 12 h): the queue's redelivery is the
    retry clock. One no longer in flight has nothing to hide: not an outage of the queue."""
    url = queue_url()
    with unavailable_as("queue"):
        try:
            sqs_client().change_message_visibility(
                QueueUrl=url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=min(delay_s, MAX_VISIBILITY_S),
            )
        except ClientError as e:
            if e.response["Error"].get("Code") not in _NOT_IN_FLIGHT:
                raise
            log.info("message no longer in flight, not hidden: %s", e)


def dead_letter(body: str, reason: str) -> None:
    """Move a message the worker cannot process at all to the DLQ, with the reason."""
    url = dlq_url()
    with unavailable_as("queue"):
        sqs_client().send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000]}},
        )


def ping() -> None:
    url = queue_url()
    with unavailable_as("queue"):
        sqs_client().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
