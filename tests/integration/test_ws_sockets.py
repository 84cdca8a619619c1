"""WebSocket subscriptions through real sockets: the local runtime (``python -m localaws``)
in a subprocess, on this run's Postgres, Redis and SQS (own queues)."""

import json
import os
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from chalicelib.access import keys
from chalicelib.push import subscriptions as subs
from harness.http import get_order, request, submit, wait_for
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
        "WS_CONNECT_BURST": "1000",  # every socket here comes from 127.0.0.1
    }
    folder = tmp_path_factory.mktemp("runtime")
    rt = Runtime(env, data_dir=folder, log_path=folder / "runtime.log", drain_timeout=30)
    try:
        yield rt.start()
    finally:
        rt.stop(30)


def post_order(rt: Runtime) -> str:
    return submit(rt.http, order_body())["orderId"]


def ws(rt: Runtime, url: str, key: str | None = None, headers=None):
    """A WebSocket to ``url`` with the runtime's development key (or ``key``)."""
    headers = {"Authorization": f"Bearer {key or rt.api_key}", **(headers or {})}
    return connect(url, open_timeout=10, additional_headers=headers)


def wait_finished(rt: Runtime, order_id: str) -> dict:
    return wait_for(
        lambda: (d := get_order(rt.http, order_id))["order"]["status"] in TERMINAL and d,
        timeout_s=30,
        what=f"order {order_id} to finish",
    )


# A status recorded reaches its subscribers within this (p99 0.4 s in the bench's load run):
# the only clock the socket tests keep, and it starts once the statuses are in Postgres.
PUSH_GRACE_S = 10


def receive(rt: Runtime, socket, count: int, order_ids, since: int = 0) -> list[dict]:
    """The next ``count`` status events of ``order_ids`` (other messages are kept out).

    It waits on the engine, not on a clock: while the orders' statuses are still being
    recorded it goes on listening, however slow the machine; once they are all recorded
    (or every order ended short of them) their pushes must come within ``PUSH_GRACE_S``."""
    events, deadline = [], None
    while len(events) < count:
        try:
            message = json.loads(socket.recv(timeout=0.5))
        except TimeoutError:
            if deadline is None and _settled(rt, order_ids, since, count):
                deadline = time.monotonic() + PUSH_GRACE_S
            assert deadline is None or time.monotonic() < deadline, (
                f"{PUSH_GRACE_S} s after the statuses were recorded (or the orders ended)"
                f" {len(events)} of {count} were pushed: {flow(events)}"
            )
            continue
        if message.get("type") == "status":
            events.append(message)
    return events


def _settled(rt: Runtime, order_ids, since: int, count: int) -> bool:
    """Whether the ``count`` statuses after ``since`` are recorded, or no more will be."""
    orders = [get_order(rt.http, order_id)["order"] for order_id in order_ids]
    recorded = sum(max(0, order["lastSeq"] - since) for order in orders)
    return recorded >= count or all(order["status"] in TERMINAL for order in orders)


def flow(events, order_id=None) -> list[tuple[int, str]]:
    return [(e["seq"], e["status"]) for e in events if order_id in (None, e["orderId"])]


def test_live_statuses_over_a_real_socket(runtime):
    order_id = post_order(runtime)
    with ws(runtime, f"{runtime.ws}?orderId={order_id}") as socket:
        events = receive(runtime, socket, 5, [order_id])
        assert flow(events) == list(enumerate(FLOW, start=1))
        assert all(e["orderId"] == order_id for e in events)
        socket.send(json.dumps({"action": "ping"}))
        assert json.loads(socket.recv(timeout=5)) == {"type": "pong"}, "no duplicate after the end"


def test_reconnect_after_the_order_finished_with_since(runtime):
    order_id = post_order(runtime)
    detail = wait_finished(runtime, order_id)
    with ws(runtime, f"{runtime.ws}?orderId={order_id}&since=2") as socket:
        events = receive(runtime, socket, 3, [order_id], since=2)
        assert flow(events) == list(enumerate(FLOW, start=1))[2:]
        assert events[-1]["txHash"] == detail["order"]["txHash"]


def test_one_socket_five_orders_and_a_second_client(runtime):
    with ws(runtime, runtime.ws) as socket:
        orders = [post_order(runtime) for _ in range(5)]
        with ws(runtime, f"{runtime.ws}?orderId={orders[0]}") as other:
            for order_id in orders:
                socket.send(json.dumps({"action": "subscribe", "orderId": order_id, "since": 0}))
            events = receive(runtime, socket, 25, orders)
            for order_id in orders:
                assert flow(events, order_id) == list(enumerate(FLOW, start=1))
            assert flow(receive(runtime, other, 5, orders[:1])) == list(enumerate(FLOW, start=1))


def test_a_client_that_vanishes_mid_stream(runtime):
    order_id = post_order(runtime)
    with ws(runtime, f"{runtime.ws}?orderId={order_id}") as stays:
        with ws(runtime, f"{runtime.ws}?orderId={order_id}") as vanishing:
            receive(runtime, vanishing, 1, [order_id])
            vanishing.close_socket()  # no close handshake: the TCP connection just drops
        events = receive(runtime, stays, 5, [order_id])
        assert flow(events) == list(enumerate(FLOW, start=1))
    assert wait_finished(runtime, order_id)["order"]["status"] == "confirmed"
    assert subs.connections(order_id) == []


def test_unknown_order_is_refused_at_the_handshake(runtime):
    with pytest.raises(InvalidStatus) as refused:
        ws(runtime, f"{runtime.ws}?orderId={uuid.uuid4()}")
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body)["error"]["code"] == "order_not_found"


def test_bad_messages_get_errors_and_the_socket_stays_usable(runtime):
    with ws(runtime, runtime.ws) as socket:
        socket.send("{nope")
        error = json.loads(socket.recv(timeout=5))
        assert error["type"] == "error" and error["error"]["code"] == "malformed_json"
        socket.send(json.dumps({"action": "ping"}))
        assert json.loads(socket.recv(timeout=5)) == {"type": "pong"}


# -- clients -------------------------------------------------------------------------------------


def refused(runtime, url: str, key: str | None = None, headers=None) -> tuple[int, dict]:
    with pytest.raises(InvalidStatus) as refusal:
        ws(runtime, url, key, headers)
    return refusal.value.response.status_code, json.loads(refusal.value.response.body)


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_client_b_cannot_subscribe_to_client_a_orders(runtime):
    b_key = keys.create(f"ws-b-{uuid.uuid4().hex[:8]}").key
    a_order = post_order(runtime)
    status, body = refused(runtime, f"{runtime.ws}?orderId={a_order}", b_key)
    assert (status, body["error"]["code"]) == (404, "order_not_found")
    with ws(runtime, runtime.ws, b_key) as socket:
        socket.send(json.dumps({"action": "subscribe", "orderId": a_order, "since": 0}))
        answer = json.loads(socket.recv(timeout=5))
        assert answer["type"] == "error" and answer["error"]["code"] == "order_not_found"
        socket.send(json.dumps({"action": "ping"}))
        assert json.loads(socket.recv(timeout=5)) == {"type": "pong"}, "no status of A's order"
    url = f"{runtime.http}/api/orders/{a_order}"
    assert request("GET", url, headers=auth(b_key))[0] == 404
    assert wait_finished(runtime, a_order)["order"]["status"] == "confirmed"


def test_a_revoked_key_is_refused_on_rest_and_at_the_next_connect(runtime):
    new = keys.create(f"ws-revoked-{uuid.uuid4().hex[:8]}")
    with ws(runtime, runtime.ws, new.key):
        pass
    orders = f"{runtime.http}/api/orders"
    assert request("GET", orders, headers=auth(new.key))[0] == 200
    assert keys.revoke(new.prefix)
    assert request("GET", orders, headers=auth(new.key))[0] == 403
    status, body = refused(runtime, runtime.ws, new.key)
    assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_a_revoked_key_cannot_subscribe_on_its_open_socket_and_is_closed(runtime):
    new = keys.create(f"ws-revoked-open-{uuid.uuid4().hex[:8]}")
    with ws(runtime, runtime.ws, new.key) as socket:
        socket.send(json.dumps({"action": "ping"}))
        assert json.loads(socket.recv(timeout=5)) == {"type": "pong"}
        status, _, answer = request(
            "POST", f"{runtime.http}/api/orders/execute", order_body(), headers=auth(new.key)
        )
        assert status == 202, answer
        order_id = json.loads(answer)["orderId"]
        assert keys.revoke(new.prefix)
        socket.send(json.dumps({"action": "subscribe", "orderId": order_id, "since": 0}))
        answer = json.loads(socket.recv(timeout=5))
        assert answer["type"] == "error" and answer["error"]["code"] == "key_revoked"
        with pytest.raises(ConnectionClosed):
            while True:  # nothing but the close: no status of the order
                assert json.loads(socket.recv(timeout=5))["type"] != "status"
    assert subs.connections(order_id) == []


def test_connect_takes_the_key_as_a_query_parameter_and_needs_one(runtime):
    with connect(f"{runtime.ws}?apiKey={runtime.api_key}", open_timeout=10) as socket:
        socket.send(json.dumps({"action": "ping"}))
        assert json.loads(socket.recv(timeout=5)) == {"type": "pong"}
    with pytest.raises(InvalidStatus) as refusal:
        connect(runtime.ws, open_timeout=10)
    assert refusal.value.response.status_code == 401


def test_connect_from_a_foreign_origin_is_refused(runtime):
    status, body = refused(runtime, runtime.ws, headers={"Origin": "https://evil.example"})
    assert (status, body["error"]["code"]) == (403, "origin_not_allowed")


def test_a_huge_action_is_not_echoed_whole(runtime):
    with ws(runtime, runtime.ws) as socket:
        socket.send(json.dumps({"action": "x" * 120_000}))
        answer = json.loads(socket.recv(timeout=5))
        assert answer["error"]["code"] == "unknown_action"
        assert len(answer["error"]["message"]) < 150


@pytest.mark.parametrize("frame", ["[" * 3000 + "]" * 3000, '{"a":' * 1500 + "1" + "}" * 1500])
def test_a_deeply_nested_frame_is_refused_as_invalid(runtime, frame):
    with ws(runtime, runtime.ws) as socket:
        socket.send(frame)
        answer = json.loads(socket.recv(timeout=5))
        assert answer["error"]["code"] == "invalid_frame", answer
        socket.send(json.dumps({"action": "ping"}))
        assert json.loads(socket.recv(timeout=5)) == {"type": "pong"}
    assert "RecursionError" not in runtime.log()


def test_a_connect_flood_from_one_address_is_refused_before_its_keys_are_read(
    database, redis_db, sqs, tmp_path
):
    """Over the local gateway: its ``$connect`` events carry the source address."""
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "ORDERS_QUEUE_NAME": f"ws-flood-{tag}",
        "ORDERS_DLQ_NAME": f"ws-flood-dlq-{tag}",
        "PYTHONUNBUFFERED": "1",
        "WS_CONNECT_RATE_PER_S": "0.1",
        "WS_CONNECT_BURST": "3",
    }
    rt = Runtime(env, data_dir=tmp_path, log_path=tmp_path / "runtime.log", drain_timeout=5)
    try:
        rt.start()
        redis_db.delete("ratelimit:connect:127.0.0.1")
        statuses = []
        for _ in range(5):
            with pytest.raises(InvalidStatus) as refused:
                ws(rt, f"{rt.ws_base}/ws", key="ok_fake_key").close()
            response = refused.value.response
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429, 429]
        assert json.loads(response.body)["error"]["code"] == "connect_rate_limited"
    finally:
        rt.stop(30)
