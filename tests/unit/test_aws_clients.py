"""One set of AWS clients per process (backends.aws, push.notify): handler threads that
need a client at the same moment share one, and every session reads the service models
through one loader. Each extra copy is megabytes that a burst leaves behind for good."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from botocore.config import Config
from chalice.app import WebsocketAPI

from chalicelib.backends import aws
from chalicelib.push.notify import Delivery, Notifier
from localaws.workers import _start_all

THREADS = 8


def _all_at_once(call) -> list:
    """``call()`` from ``THREADS`` threads released together."""
    start = threading.Barrier(THREADS)

    def run():
        start.wait()
        return call()

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda _: run(), range(THREADS)))


class SlowSession:
    """Counts the clients made; making one takes a while, as loading a model does."""

    def __init__(self):
        self.made = 0
        self.posted: list[str] = []

    def client(self, service_name, **kwargs):
        self.made += 1
        time.sleep(0.05)
        return SimpleNamespace(
            post_to_connection=lambda ConnectionId, Data: self.posted.append(ConnectionId),
            exceptions=SimpleNamespace(GoneException=LookupError),
        )


def test_first_pushes_from_many_threads_make_one_management_client():
    session = SlowSession()
    api = WebsocketAPI(env={"AWS_REGION": "us-east-1"})
    api.session = session
    api.configure("abc.execute-api.us-east-1.amazonaws.com", "api")
    notifier = Notifier(api)

    outcomes = _all_at_once(lambda: notifier.send("c1", "{}"))

    assert outcomes == [Delivery.SENT] * THREADS
    assert len(session.posted) == THREADS
    assert session.made == 1


def test_sqs_client_made_once_when_threads_ask_together(monkeypatch):
    session = SlowSession()
    monkeypatch.setattr(aws, "aws_session", lambda: session)
    aws._new_sqs_client.cache_clear()
    try:
        clients = _all_at_once(aws.sqs_client)
    finally:
        aws._new_sqs_client.cache_clear()
    assert session.made == 1
    assert all(c is clients[0] for c in clients)


def test_sessions_read_models_through_one_loader():
    queue = aws.EndpointSession("http://127.0.0.1:9", "us-east-1", Config())
    management = aws.ConfiguredSession(Config(), region_name="us-east-1")

    def loader(session):
        return session._session.get_component("data_loader")

    assert loader(queue) is loader(management)


def test_worker_threads_all_started_before_the_first_invocation():
    pool = ThreadPoolExecutor(5)
    try:
        _start_all(pool, 5)
        assert len(pool._threads) == 5
    finally:
        pool.shutdown()
