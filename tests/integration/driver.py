"""Drive the SQS handlers from the real (moto) queue, as Lambda's event source mapping does."""

import time
from collections.abc import Callable

from chalicelib import queue
from chalicelib.aws import sqs_client

# The happy path's statuses, and an order that takes it.
FLOW = ["pending", "routing", "building", "submitted", "confirmed"]
ORDER = {
    "type": "market",
    "tokenIn": "SOL",
    "tokenOut": "USDC",
    "amount": "1.5",
    "slippageBps": 100,
}


def lambda_record(message: dict, queue_arn: str) -> dict:
    """An SQS message as Lambda hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
            for k, v in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def poll_once(handler, queue_url: str, wait_s: int = 0) -> int:
    """One receive -> invoke -> delete round; returns how many messages it handled."""
    sqs = sqs_client()
    got = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_s,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not got:
        return 0
    arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[-1]}"
    result = handler({"Records": [lambda_record(m, arn) for m in got]}, None) or {}
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    for m in got:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return len(got)


def run_until(app_module, done: Callable[[], bool], timeout_s: float = 30) -> None:
    """Run the orders worker until ``done()`` (or fail the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not finish in time")
        poll_once(app_module.process_orders, queue.queue_url(), wait_s=1)
