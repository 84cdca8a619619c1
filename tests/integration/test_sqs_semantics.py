"""The SQS semantics the engine relies on, against the run's SQS: moto's server (``make test``)
or LocalStack in host mode (``make test-localstack``), each held to what AWS does. Where the two
answer differently, ``DIFFERENCES`` names it, a test holds each emulator to its own answer (so a
new release that changes one is noticed), and another shows the engine works with both."""

import json
import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

# The emulator under test; None for a TEST_AWS_ENDPOINT_URL of unknown kind.
KIND = None if os.environ.get("TEST_AWS_ENDPOINT_URL") else os.environ.get("LOCALAWS_SQS", "moto")

# What each one answers ("ok", or the error code) where they differ; AWS answers as moto does,
# except where AWS is named. Seen with moto 5 and LocalStack 4.13.1.
DIFFERENCES = {
    # AWS: InvalidParameterValue. The engine never asks for more than 900 s (send_order).
    "a delay over 900 s": {"moto": "InvalidParameterValue", "localstack": "ok"},
    # AWS: InvalidParameterValue. The engine hides for at most 12 h (retry_later).
    "a visibility timeout over 12 h": {"moto": "InvalidParameterValue", "localstack": "ok"},
    # AWS: InvalidParameterValue ("Message does not exist or is not available for visibility
    # timeout change"). The engine takes any of the three as "no longer in flight".
    "hiding a deleted message": {
        "moto": "ReceiptHandleIsInvalid",
        "localstack": "InvalidParameterValue",
    },
    # AWS: a second purge within 60 s is refused. The engine never purges; the tests make
    # fresh queues instead.
    "a second purge within a minute": {
        "moto": "AWS.SimpleQueueService.PurgeQueueInProgress",
        "localstack": "ok",
    },
}


@pytest.fixture
def sqs_client(sqs):  # noqa: F811 - the run's SQS, started by the fixture
    from chalicelib.backends.aws import sqs_client

    return sqs_client()


@pytest.fixture
def pair(sqs_client):
    """A queue with a 1 s visibility timeout whose messages move to a DLQ on their third
    receive (maxReceiveCount 2): (queue URL, DLQ URL)."""
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs_client.create_queue(QueueName=f"semantics-dlq-{suffix}")["QueueUrl"]
    arn = sqs_client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    policy = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": "2"}
    queue = sqs_client.create_queue(
        QueueName=f"semantics-{suffix}",
        Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(policy)},
    )["QueueUrl"]
    yield queue, dlq
    for url in (queue, dlq):
        sqs_client.delete_queue(QueueUrl=url)


def receive(sqs_client, url: str, wait_s: int = 3) -> list[dict]:
    return sqs_client.receive_message(
        QueueUrl=url, WaitTimeSeconds=wait_s, AttributeNames=["All"],
        MessageAttributeNames=["All"], MaxNumberOfMessages=10,
    ).get("Messages", [])  # fmt: skip


def answer(call) -> str:
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return "ok"


def test_a_message_not_deleted_comes_back_after_its_visibility_timeout_counted(sqs_client, pair):
    queue, _ = pair
    sqs_client.send_message(QueueUrl=queue, MessageBody="a")
    first = receive(sqs_client, queue)
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in first] == ["1"]
    assert receive(sqs_client, queue, wait_s=0) == []  # hidden while in flight
    again = receive(sqs_client, queue)
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [("a", "2")]
    assert again[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]


def test_past_max_receive_count_a_message_moves_to_the_dlq_whole(sqs_client, pair):
    queue, dlq = pair
    attributes = {"reason": {"DataType": "String", "StringValue": "why"}}
    sqs_client.send_message(QueueUrl=queue, MessageBody="a", MessageAttributes=attributes)
    counts = [[m["Attributes"]["ApproximateReceiveCount"] for m in receive(sqs_client, queue)]
              for _ in range(3)]  # fmt: skip
    assert counts == [["1"], ["2"], []]  # the third receive moved it
    moved = receive(sqs_client, dlq)
    assert [m["Body"] for m in moved] == ["a"]
    assert moved[0]["MessageAttributes"]["reason"]["StringValue"] == "why"


def test_a_delayed_message_is_hidden_until_its_delay_ends(sqs_client, pair):
    queue, _ = pair
    sent = time.monotonic()
    sqs_client.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=2)
    assert receive(sqs_client, queue, wait_s=1) == []
    got = receive(sqs_client, queue, wait_s=5)
    assert [m["Body"] for m in got] == ["later"] and time.monotonic() - sent >= 1.9


def test_hiding_a_received_message_again_delays_its_return(sqs_client, pair):
    queue, _ = pair
    sqs_client.send_message(QueueUrl=queue, MessageBody="a")
    (message,) = receive(sqs_client, queue)
    sqs_client.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=3
    )
    assert receive(sqs_client, queue, wait_s=2) == []  # past the queue's 1 s
    assert [m["Body"] for m in receive(sqs_client, queue, wait_s=5)] == ["a"]


def test_a_batch_delete_reports_each_failure_on_its_own(sqs_client, pair):
    queue, _ = pair
    sqs_client.send_message(QueueUrl=queue, MessageBody="a")
    (message,) = receive(sqs_client, queue)
    answered = sqs_client.delete_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "good", "ReceiptHandle": message["ReceiptHandle"]},
            {"Id": "bad", "ReceiptHandle": "not-a-receipt-handle"},
        ],
    )
    assert [e["Id"] for e in answered.get("Successful", [])] == ["good"]
    assert [e["Id"] for e in answered.get("Failed", [])] == ["bad"]
    assert receive(sqs_client, queue, wait_s=2) == []  # the good one is gone for good


def test_creating_a_queue_again_is_idempotent_but_not_with_other_attributes(sqs_client):
    """Why ``queue_setup`` creates the orders queue bare and sets its attributes after."""
    name = f"semantics-{uuid.uuid4().hex[:8]}"
    url = sqs_client.create_queue(QueueName=name, Attributes={"DelaySeconds": "0"})["QueueUrl"]
    try:
        again = sqs_client.create_queue(QueueName=name, Attributes={"DelaySeconds": "0"})
        assert again["QueueUrl"] == url
        other = {"DelaySeconds": "5"}
        assert answer(lambda: sqs_client.create_queue(QueueName=name, Attributes=other)) == (
            "QueueAlreadyExists"
        )
    finally:
        sqs_client.delete_queue(QueueUrl=url)


@pytest.mark.skipif(KIND is None, reason="an SQS endpoint of unknown kind")
@pytest.mark.parametrize("difference", sorted(DIFFERENCES))
def test_where_moto_and_localstack_differ(sqs_client, pair, difference):
    queue, _ = pair

    def received() -> str:
        sqs_client.send_message(QueueUrl=queue, MessageBody="x")
        return receive(sqs_client, queue)[0]["ReceiptHandle"]

    def deleted() -> str:
        handle = received()
        sqs_client.delete_message(QueueUrl=queue, ReceiptHandle=handle)
        return handle

    calls = {
        "a delay over 900 s": lambda: sqs_client.send_message(
            QueueUrl=queue, MessageBody="x", DelaySeconds=901
        ),
        "a visibility timeout over 12 h": lambda: sqs_client.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=received(), VisibilityTimeout=43_201
        ),
        "hiding a deleted message": lambda: sqs_client.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=deleted(), VisibilityTimeout=5
        ),
        "a second purge within a minute": lambda: [
            sqs_client.purge_queue(QueueUrl=queue) for _ in range(2)
        ],
    }
    assert answer(calls[difference]) == DIFFERENCES[difference][KIND]


def test_the_engine_delays_and_hides_within_the_limits_on_either(sqs_client, queues):
    """A retry or a wait longer than SQS allows is clipped to its limit, never refused."""
    from chalicelib.backends import queue

    queue.send_order("00000000-0000-0000-0000-000000000001", delay_s=5_000)
    sqs_client.send_message(QueueUrl=queues.queue, MessageBody="x")
    (message,) = receive(sqs_client, queues.queue)
    assert message["Body"] == "x"  # the delayed order stays hidden
    queue.retry_later(message["ReceiptHandle"], 100_000)
    assert receive(sqs_client, queues.queue, wait_s=1) == []


def test_hiding_a_message_no_longer_in_flight_is_not_an_outage(sqs_client, queues):
    """The retry of a delivery whose message is gone (deleted by another delivery, or moved
    to the DLQ) has nothing to hide, whichever way the queue says so."""
    from chalicelib.backends import queue

    sqs_client.send_message(QueueUrl=queues.queue, MessageBody="x")
    (message,) = receive(sqs_client, queues.queue)
    sqs_client.delete_message(QueueUrl=queues.queue, ReceiptHandle=message["ReceiptHandle"])

    queue.retry_later(message["ReceiptHandle"], 5)  # no DependencyUnavailable


def test_a_queue_that_is_gone_is_still_an_outage(sqs_client, queues):
    from chalicelib.backends import queue
    from chalicelib.errors import DependencyUnavailable

    sqs_client.delete_queue(QueueUrl=queues.queue)
    with pytest.raises(DependencyUnavailable):
        queue.retry_later("AQEB-a-receipt-handle", 5)
