"""Lambda's event sources, locally: the SQS event source mapping and the schedule.

``SqsPoller`` plays the event source mapping of one ``@app.on_sqs_message`` handler with
``ReportBatchItemFailures``: ``concurrency`` invocations at once (Lambda's maximum
concurrency), each a loop of long-polled ``ReceiveMessage`` (up to the batch size), one
invocation with Lambda's SQS event, then ``DeleteMessage`` for every record the handler did
not list in ``batchItemFailures``. A handler that raises, or answers an invalid failure
list, fails the whole batch: nothing is deleted. The queue does the rest, as in AWS: an
undeleted message comes back after its visibility timeout, and goes to the DLQ after
``maxReceiveCount`` receives.

``Schedule`` invokes an ``@app.schedule`` handler with a scheduled event at a fixed
interval (the rate in the decorator is for AWS; locally a shorter one is more useful).
"""

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from localaws.functions import Functions

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"


def lambda_record(message: dict, queue_arn: str, region: str) -> dict:
    """One SQS message as Lambda hands it to the function."""
    attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": (
                base64.b64encode(value["BinaryValue"]).decode() if "BinaryValue" in value else None
            ),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [
                base64.b64encode(v).decode() for v in value.get("BinaryListValues", [])
            ],
            "dataType": value["DataType"],
        }
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_ids(answer: Any, message_ids: list[str]) -> set[str]:
    """The records to keep, from the handler's answer (Lambda's ReportBatchItemFailures).

    No answer, or an empty list, is success. An identifier that is missing or not in the
    batch makes the whole batch a failure, as in Lambda.
    """
    if not isinstance(answer, dict) or not answer.get("batchItemFailures"):
        return set()
    failures = answer["batchItemFailures"]
    ids = set()
    for failure in failures if isinstance(failures, list) else [None]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in message_ids:
            log.warning("invalid batchItemFailures %r: the whole batch failed", failures)
            return set(message_ids)
        ids.add(identifier)
    return ids


class SqsPoller:
    def __init__(
        self,
        functions: Functions,
        name: str,
        sqs,
        queue_url: str,
        *,
        batch_size: int,
        concurrency: int,
        wait_s: int,
        region: str,
        invoke: Callable[[str, dict], Any] | None = None,
    ):
        self.name = name
        self.queue_url = queue_url
        self._invoke_handler = invoke or functions.call  # a worker pool's, in the runtime
        self._sqs = sqs
        self._batch_size = batch_size
        self._wait_s = wait_s
        self._region = region
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
            for i in range(concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """No new receives; invocations under way finish."""
        self._stopping.set()

    def join(self, timeout_s: float) -> bool:
        """Wait for the invocations under way; False when some are still running."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self._batch_size,
                    WaitTimeSeconds=self._wait_s,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception as e:
                log.warning("%s: receiving from %s failed: %r", self.name, self.queue_url, e)
                self._stopping.wait(1)
                continue
            if not messages:
                continue
            if self._stopping.is_set():
                self._release(messages)
                return
            self._invoke(messages)

    def _invoke(self, messages: list[dict]) -> None:
        records = [lambda_record(m, self._queue_arn, self._region) for m in messages]
        ids = [m["MessageId"] for m in messages]
        try:
            answer = self._invoke_handler(self.name, {"Records": records})
        except Exception:
            log.exception(
                "%s failed: its %d message(s) come back after the visibility timeout",
                self.name,
                len(messages),
            )
            return
        failed = failed_ids(answer, ids)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._delete(done)

    def _delete(self, messages: list[dict]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        try:
            answer = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as e:
            log.warning("%s: deleting %d message(s) failed: %r", self.name, len(entries), e)
            return
        for failure in answer.get("Failed", []):
            log.warning("%s: deleting a message failed: %s", self.name, failure)

    def _release(self, messages: list[dict]) -> None:
        """Received while shutting down: make them visible again at once for the next run."""
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ]
        try:
            self._sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as e:  # they come back after the visibility timeout anyway
            log.warning("%s: releasing %d message(s) failed: %r", self.name, len(entries), e)


class Schedule:
    def __init__(
        self,
        functions: Functions,
        name: str,
        interval_s: float,
        region: str,
        invoke: Callable[[str, dict], Any] | None = None,
    ):
        self.name = name
        self._functions = functions
        self._invoke_handler = invoke or functions.call
        self._interval_s = interval_s
        self._region = region
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _event(self) -> dict:
        rule = f"{self._functions.app.app_name}-{self._functions.stage}-{self.name}"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [f"arn:aws:events:{self._region}:{ACCOUNT_ID}:rule/{rule}"],
            "detail": {},
        }

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self._invoke_handler(self.name, self._event())
            except Exception:
                log.exception("scheduled %s failed", self.name)
