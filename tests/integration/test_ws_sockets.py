"""WebSocket subscriptions through real sockets: the local runtime (``python -m localaws``)
in a subprocess, on this run's Postgres, Redis and SQS (own queues)."""

import json
import os
import time
import uuid

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib import subscriptions as subs
from harness.http import get_order, submit, wait_for
from harness.orders import FLOW, TERMINAL, order_body
from harness.runtime import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runtime(database, redis_db, sqs, tmp_path_factory):
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "ORDERS_QUEUE_NAME": f"ws-sockets-{tag}",  # its own queues: the tests' driver is
        "ORDERS_DLQ_NAME": f"ws-sockets-dlq-{tag}",  # not competing with its poller
        "PYTHONUNBUFFERED": "1",
    }
    folder = tmp_path_factory.mktemp("runtime")
    rt = Runtime(env, data_dir=folder, log_path=folder / "runtime.log", drain_timeout=30)
    try:
        yield rt.start()
    finally:
        rt.stop(30)


def post_order(rt: Runtime) -> str:
    return submit(rt.http, order_body())["orderId"]


def wait_finished(rt: Runtime, order_id: str) -> dict:
    return wait_for(
        lambda: (d := get_order(rt.http, order_id))["order"]["status"] in TERMINAL and d,
        timeout_s=30,
        what=f"order {order_id} to finish",
    )


def receive(ws, count: int, timeout_s: float = 20) -> list[dict]:
    """The next ``count`` status events (other messages are kept out)."""
    events, deadline = [], time.monotonic() + timeout_s
    while len(events) < count:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message.get("type") == "status":
            events.append(message)
    return events


def flow(events, order_id=None) -> list[tuple[int, str]]:
    return [(e["seq"], e["status"]) for e in events if order_id in (None, e["orderId"])]


def test_live_statuses_over_a_real_socket(runtime):
    order_id = post_order(runtime)
    with connect(f"{runtime.ws}?orderId={order_id}", open_timeout=10) as ws:
        events = receive(ws, 5)
        assert flow(events) == list(enumerate(FLOW, start=1))
        assert all(e["orderId"] == order_id for e in events)
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}, "no duplicate after the end"


def test_reconnect_after_the_order_finished_with_since(runtime):
    order_id = post_order(runtime)
    detail = wait_finished(runtime, order_id)
    with connect(f"{runtime.ws}?orderId={order_id}&since=2", open_timeout=10) as ws:
        events = receive(ws, 3)
        assert flow(events) == list(enumerate(FLOW, start=1))[2:]
        assert events[-1]["txHash"] == detail["order"]["txHash"]


def test_one_socket_five_orders_and_a_second_client(runtime):
    with connect(runtime.ws, open_timeout=10) as ws:
        orders = [post_order(runtime) for _ in range(5)]
        with connect(f"{runtime.ws}?orderId={orders[0]}", open_timeout=10) as other:
            for order_id in orders:
                ws.send(json.dumps({"action": "subscribe", "orderId": order_id, "since": 0}))
            events = receive(ws, 25)
            for order_id in orders:
                assert flow(events, order_id) == list(enumerate(FLOW, start=1))
            assert flow(receive(other, 5)) == list(enumerate(FLOW, start=1))


def test_a_client_that_vanishes_mid_stream(runtime):
    order_id = post_order(runtime)
    with connect(f"{runtime.ws}?orderId={order_id}", open_timeout=10) as stays:
        with connect(f"{runtime.ws}?orderId={order_id}", open_timeout=10) as vanishing:
            receive(vanishing, 1)
            vanishing.close_socket()  # no close handshake: the TCP connection just drops
        events = receive(stays, 5)
        assert flow(events) == list(enumerate(FLOW, start=1))
    assert wait_finished(runtime, order_id)["order"]["status"] == "confirmed"
    assert subs.connections(order_id) == []


def test_unknown_order_is_refused_at_the_handshake(runtime):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{runtime.ws}?orderId={uuid.uuid4()}", open_timeout=10)
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body)["error"]["code"] == "order_not_found"


def test_bad_messages_get_errors_and_the_socket_stays_usable(runtime):
    with connect(runtime.ws, open_timeout=10) as ws:
        ws.send("{nope")
        error = json.loads(ws.recv(timeout=5))
        assert error["type"] == "error" and error["error"]["code"] == "malformed_json"
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
