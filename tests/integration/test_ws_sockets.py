"""WebSocket subscriptions through real sockets: the local runtime (``python -m
localaws``) in a subprocess, on this run's Postgres, Redis and SQS (own queues)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib import subscriptions as subs

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
FLOW = ["pending", "routing", "building", "submitted", "confirmed"]
ORDER = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.25"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime:
    def __init__(self, port: int):
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/api/orders/execute"

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.http + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def post_order(self) -> str:
        status, body = self.request("POST", "/api/orders/execute", ORDER)
        assert status == 202, body
        return body["orderId"]

    def wait_finished(self, order_id: str, timeout_s: float = 30) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _, body = self.request("GET", f"/api/orders/{order_id}")
            if body.get("order", {}).get("status") in ("confirmed", "failed"):
                return body
            time.sleep(0.1)
        raise AssertionError(f"order {order_id} did not finish")


@pytest.fixture(scope="module")
def runtime(database, redis_db, sqs, tmp_path_factory):
    port = _free_port()
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "ORDERS_QUEUE_NAME": f"ws-sockets-{tag}",  # its own queues: the tests' driver is
        "ORDERS_DLQ_NAME": f"ws-sockets-dlq-{tag}",  # not competing with its poller
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path_factory.mktemp("runtime") / "runtime.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localaws", "--port", str(port), "--poll-wait", "1"]
            + ["--data-dir", str(log_path.parent), "--log-level", "INFO"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    rt = Runtime(port)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the runtime exited:\n{log_path.read_text()}")
            try:
                if rt.request("GET", "/api/health")[0] == 200:
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the runtime did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield rt
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    order_id = runtime.post_order()
    with connect(f"{runtime.ws}?orderId={order_id}", open_timeout=10) as ws:
        events = receive(ws, 5)
        assert flow(events) == list(enumerate(FLOW, start=1))
        assert all(e["orderId"] == order_id for e in events)
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}, "no duplicate after the end"


def test_reconnect_after_the_order_finished_with_since(runtime):
    order_id = runtime.post_order()
    detail = runtime.wait_finished(order_id)
    with connect(f"{runtime.ws}?orderId={order_id}&since=2", open_timeout=10) as ws:
        events = receive(ws, 3)
        assert flow(events) == list(enumerate(FLOW, start=1))[2:]
        assert events[-1]["txHash"] == detail["order"]["txHash"]


def test_one_socket_five_orders_and_a_second_client(runtime):
    with connect(runtime.ws, open_timeout=10) as ws:
        orders = [runtime.post_order() for _ in range(5)]
        with connect(f"{runtime.ws}?orderId={orders[0]}", open_timeout=10) as other:
            for order_id in orders:
                ws.send(json.dumps({"action": "subscribe", "orderId": order_id, "since": 0}))
            events = receive(ws, 25)
            for order_id in orders:
                assert flow(events, order_id) == list(enumerate(FLOW, start=1))
            assert flow(receive(other, 5)) == list(enumerate(FLOW, start=1))


def test_a_client_that_vanishes_mid_stream(runtime):
    order_id = runtime.post_order()
    with connect(f"{runtime.ws}?orderId={order_id}", open_timeout=10) as stays:
        with connect(f"{runtime.ws}?orderId={order_id}", open_timeout=10) as vanishing:
            receive(vanishing, 1)
            vanishing.close_socket()  # no close handshake: the TCP connection just drops
        events = receive(stays, 5)
        assert flow(events) == list(enumerate(FLOW, start=1))
    assert runtime.wait_finished(order_id)["order"]["status"] == "confirmed"
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
