"""Drive the SQS handlers from the real (moto) queue, as Lambda's event source mapping does."""

import time
from collections.abc import Callable

from chalicelib.backends import queue
from chalicelib.backends.aws import sqs_client
from chalicelib.dex import Faults
from harness.orders import FLOW, order_body
from localaws.poller import lambda_record

__all__ = ["FLOW", "ORDER", "fail_attempts", "poll_once", "run_until"]
ORDER = order_body(0)  # an order that takes the happy path


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
    records = [lambda_record(m, arn, "us-east-1") for m in got]
    result = handler({"Records": records}, None) or {}
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


def fail_attempts(monkeypatch, failures: int) -> None:
    """Blockhash expiry on the first ``failures`` attempts of every order."""
    real = Faults.for_attempt

    def for_attempt(seed, order_id, attempt, settings, **keys):
        faults = real(seed, order_id, attempt, settings, **keys)
        if attempt <= failures:
            monkeypatch.setattr(faults, "blockhash_expires", lambda: True)
        return faults

    monkeypatch.setattr(Faults, "for_attempt", staticmethod(for_attempt))
