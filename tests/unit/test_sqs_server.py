"""The embedded SQS server: moto's SQS alone, with a cheaper clock, one call at a time, and SQS's
semantics intact."""

import socket
import threading
import time

import boto3
import pytest

from localaws.servers import free_port
from localaws.sqs_server import serve

# A server thread that fails while stopping (a socket closed under its select) fails the test.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture(scope="module")
def sqs():
    port = free_port()
    server = serve(port)
    yield boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    server.shutdown()


def _queue(sqs, name: str, **attributes: str) -> str:
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def _receive(sqs, url: str, **kw) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **kw).get("Messages", [])


def test_the_clock_is_the_epoch_clock():
    import moto.sqs.models as models

    assert abs(models.unix_time() - time.time()) < 1
    assert abs(models.unix_time_millis() - time.time() * 1000) < 1000


def test_delay_and_visibility_hide_a_message_until_they_end(sqs):
    url = _queue(sqs, "delay")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert _receive(sqs, url) == []
    time.sleep(1.1)
    (message,) = _receive(sqs, url, VisibilityTimeout=1)
    assert message["Body"] == "later"
    assert _receive(sqs, url) == []  # in flight
    time.sleep(1.1)
    (again,) = _receive(sqs, url, AttributeNames=["ApproximateReceiveCount"])
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_message_past_its_retention_is_never_delivered(sqs):
    url = _queue(sqs, "retention", MessageRetentionPeriod="60")
    sqs.send_message(QueueUrl=url, MessageBody="old")
    import moto.sqs.models as models

    # The message was sent 61 s ago by the server's clock.
    for queue in models.sqs_backends["123456789012"]["us-east-1"].queues.values():
        for message in queue._messages:
            message.sent_timestamp -= 61_000
    assert _receive(sqs, url) == []
    sqs.send_message(QueueUrl=url, MessageBody="new")
    assert [m["Body"] for m in _receive(sqs, url)] == ["new"]


def test_counts_and_redrive_still_work(sqs):
    dlq = _queue(sqs, "dead")
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = _queue(
        sqs, "live", RedrivePolicy=f'{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"1"}}'
    )
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "3"
    assert len(_receive(sqs, url, VisibilityTimeout=0)) == 3
    assert _receive(sqs, url) == []  # received once already: moved to the DLQ
    assert sorted(m["Body"] for m in _receive(sqs, dlq)) == ["0", "1", "2"]


def test_concurrent_sends_receives_and_deletes_lose_no_message(sqs):
    """moto alone loses messages here: DeleteMessage rebuilds the queue's list while a send
    appends to it (about one in ten of 2,400 in this test), and concurrent receives fail."""
    import moto.sqs.models as models

    backend = models.sqs_backends["123456789012"]["us-east-1"]
    backend.create_queue("race")
    sent = [f"{s}-{i}" for s in range(6) for i in range(400)]
    received, errors, senders_done = set(), [], threading.Event()

    def send(bodies):
        for body in bodies:
            backend.send_message("race", body)

    def receive_and_delete():
        try:
            while True:
                messages = backend.receive_message("race", 10, 0, 30)
                if not messages and senders_done.is_set():
                    return
                for message in messages:
                    received.add(message.body)
                    backend.delete_message("race", message.receipt_handle)
        except Exception as e:  # noqa: BLE001 - any error is the finding
            errors.append(e)

    senders = [threading.Thread(target=send, args=(sent[s::6],)) for s in range(6)]
    receivers = [threading.Thread(target=receive_and_delete) for _ in range(4)]
    for thread in receivers + senders:
        thread.start()
    for thread in senders:
        thread.join()
    senders_done.set()
    for thread in receivers:
        thread.join(30)
    assert errors == []
    assert received == set(sent)


def test_a_long_poll_returns_a_message_sent_while_it_waits(sqs):
    url = _queue(sqs, "long-poll")
    threading.Timer(0.3, lambda: sqs.send_message(QueueUrl=url, MessageBody="late")).start()
    (message,) = _receive(sqs, url, WaitTimeSeconds=5)
    assert message["Body"] == "late"


def test_shutdown_closes_open_connections_and_frees_the_port(monkeypatch):
    failures = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    port = free_port()
    server = serve(port)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)  # a kept-alive one
    client.sendall(b"GET / HTTP/1.1\r\nHost: sqs\r\n\r\n")
    assert client.recv(100).startswith(b"HTTP/1.1 ")
    server.shutdown()
    assert not server._thread.is_alive()  # it does not wait for the client to hang up
    while client.recv(4096):  # the rest of the answer, then the end: closed by the server
        pass
    client.close()
    server.shutdown()  # again: nothing left to stop, nothing raised
    assert failures == []  # e.g. OSError(EBADF): a socket closed under the loop's select
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_calls_are_counted_by_kind_and_served_as_json(sqs):
    import json
    import urllib.request

    url = _queue(sqs, "counted")
    endpoint = sqs.meta.endpoint_url

    def calls() -> dict[str, int]:
        with urllib.request.urlopen(f"{endpoint}/_calls", timeout=5) as answer:
            return json.load(answer)

    before = calls()
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(3)]
    )
    sqs.send_message(QueueUrl=url, MessageBody="y")
    got = _receive(sqs, url)
    assert _receive(sqs, url) == []  # all 4 in flight
    after = calls()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert len(got) == 4
    assert delta["send_message_batch"] == 1  # a batch is one call
    assert delta["send_message"] == 1
    assert delta["receive_message"] == 1
    assert delta["receive_message_empty"] == 1
