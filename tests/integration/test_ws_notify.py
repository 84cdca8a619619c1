"""Catch-up delivery (chalicelib.push.notify) and the WebSocket handlers (chalicelib.push.handlers).

The WebSocket API and the store are fakes here; Redis is the real one (conftest's ``redis_db``).
"""

import contextlib
import json
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from chalice import WebsocketDisconnectedError
from chalice.app import WebsocketEvent

from chalicelib.access import keys, ratelimit
from chalicelib.backends import queue
from chalicelib.orders import store
from chalicelib.orders.lifecycle import OrderStatus
from chalicelib.orders.records import HistoryRecord
from chalicelib.push import handlers as ws
from chalicelib.push import messages
from chalicelib.push import subscriptions as subs
from chalicelib.push.notify import Notifier
from harness.orders import FLOW
from tests.helpers import subscribed_orders


class FakeWebsocketAPI:
    """Records what ``chalice.WebsocketAPI.send`` would post, per connection."""

    def __init__(self, delay_s: float = 0.0):
        self._endpoint = None
        self.configured = []
        self.sent = defaultdict(list)
        self.gone: set[str] = set()
        self.failing: set[str] = set()
        self.attempts = defaultdict(int)
        self.closed: list[str] = []
        self.delay_s = delay_s

    def configure(self, domain_name, stage):
        self.configured.append(("domain", domain_name, stage))
        self._endpoint = self._endpoint or f"https://{domain_name}/{stage}"

    def configure_from_api_id(self, api_id, stage):
        self.configured.append(("apiId", api_id, stage))
        self._endpoint = self._endpoint or f"https://{api_id}.execute-api/{stage}"

    def send(self, connection_id, message):
        self.attempts[connection_id] += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if connection_id in self.gone:
            raise WebsocketDisconnectedError(connection_id)
        if connection_id in self.failing:
            raise RuntimeError("TooManyRequestsException")
        self.sent[connection_id].append(json.loads(message))

    def close(self, connection_id):
        self.closed.append(connection_id)

    def seqs(self, connection_id, order_id=None):
        return [
            m["seq"]
            for m in self.sent[connection_id]
            if m.get("type") == "status" and (order_id is None or m["orderId"] == order_id)
        ]

    def of_type(self, connection_id, kind):
        return [m for m in self.sent[connection_id] if m.get("type") == kind]


class FakeStore:
    """Orders and their history as ``chalicelib.orders.store`` returns them."""

    def __init__(self):
        self.orders: dict[str, dict] = {}
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.lock = threading.Lock()

    def new_order(self) -> str:
        order_id = str(uuid.uuid4())
        self.orders[order_id] = {"id": uuid.UUID(order_id), "status": "pending", "last_seq": 0}
        self.record(order_id, "pending", {"tokenIn": "SOL"})
        return order_id

    def record(self, order_id: str, status: str, payload: dict | None = None) -> int:
        with self.lock:
            order = self.orders[order_id]
            order["last_seq"] += 1
            order["status"] = status
            self.rows[order_id].append(
                {
                    "seq": order["last_seq"],
                    "status": status,
                    "payload": payload or {},
                    "created_at": datetime.now(UTC),
                }
            )
            return order["last_seq"]

    def run(self, order_id: str, final: str = "confirmed") -> None:
        for status in FLOW[1:-1]:
            self.record(order_id, status)
        self.record(order_id, final, {"txHash": "5x" * 44} if final == "confirmed" else {})

    def get_order(self, order_id, client_id=None):
        if client_id not in (None, CLIENT):
            return None
        try:
            key = str(uuid.UUID(str(order_id)))
        except ValueError:
            return None
        order = self.orders.get(key)
        if order is None:
            return None
        return SimpleNamespace(
            id=order["id"],
            status=OrderStatus(order["status"]),
            last_seq=order["last_seq"],
            watched=True,
        )

    def history(self, order_id, since=0):
        with self.lock:
            rows = [r for r in self.rows.get(str(order_id), []) if r["seq"] > since]
        return [
            HistoryRecord(r["seq"], OrderStatus(r["status"]), r["payload"], r["created_at"])
            for r in rows
        ]


CLIENT = uuid.UUID("6a4c8f9e-0000-4000-8000-000000000001")
KEY = "oe_00000000_" + "k" * 43


@pytest.fixture
def fake_store(monkeypatch, redis_db):
    """Orders of CLIENT, whose key is KEY; every connection was opened with it."""
    fake = FakeStore()
    monkeypatch.setattr(store, "get_order", fake.get_order)
    monkeypatch.setattr(store, "history", fake.history)
    monkeypatch.setattr(keys, "client_of", lambda key: CLIENT if key == KEY else None)
    monkeypatch.setattr(subs, "owner", lambda connection_id: (CLIENT, KEY[:11]))
    monkeypatch.setattr(keys, "active", lambda prefix: prefix == KEY[:11])
    return fake


@pytest.fixture
def replays(monkeypatch):
    sent = []
    monkeypatch.setattr(
        queue, "send_replay", lambda conn, order, since: sent.append((conn, order, since))
    )
    return sent


@pytest.fixture
def api():
    return FakeWebsocketAPI()


def conn_id() -> str:
    return uuid.uuid4().hex[:14] + "="  # shaped like API Gateway's, e.g. "L0SM9cOFvHcCIhw="


def make_old(connection_id: str) -> None:
    """A connection that has been open for a while (past the $connect grace period)."""
    redis_db_client = subs.redis_client()
    redis_db_client.set(f"ws:born:{connection_id}", str(time.time() - 3600))


def ws_event(
    route: str, connection_id: str, body=None, query=None, headers=None, source_ip=None
) -> WebsocketEvent:
    """An API Gateway WebSocket event; from an address of its own unless ``source_ip``."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    event = {
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "apiId": "abc123defg",
            "stage": "api",
            "domainName": "abc123defg.execute-api.us-east-1.amazonaws.com",
            "requestId": uuid.uuid4().hex,
            "connectedAt": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip or f"2001:db8::{uuid.uuid4().hex[:4]}"},
        },
        "isBase64Encoded": False,
    }
    if route == "$connect":
        event["headers"] = {"Authorization": f"Bearer {KEY}"} if headers is None else headers
    if query is not None:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return WebsocketEvent(event, None)


# -- the event shape --------------------------------------------------------------------------


def test_status_message_is_the_contract_shape():
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    payload = {"txHash": "abc", "seq": 99, "orderId": "evil", "amountOut": "123"}
    entry = HistoryRecord(5, OrderStatus.CONFIRMED, payload, created)
    event = json.loads(messages.status_message("o-1", entry))
    assert event == {
        "type": "status",
        "orderId": "o-1",
        "seq": 5,
        "status": "confirmed",
        "txHash": "abc",
        "amountOut": "123",
        "createdAt": created.isoformat(),
    }
    assert list(event)[:4] == ["type", "orderId", "seq", "status"]


# -- catch-up ----------------------------------------------------------------------------------


def test_subscriber_gets_history_then_live_statuses_once(api, fake_store):
    order = fake_store.new_order()
    c = conn_id()
    subs.add(c, order, 0)
    Notifier(api).publish(order)
    assert api.seqs(c) == [1]
    Notifier(api).publish(order)  # nothing new: nothing sent
    assert api.seqs(c) == [1]
    fake_store.record(order, "routing")
    fake_store.record(order, "building")
    Notifier(api).publish(order)
    assert api.seqs(c) == [1, 2, 3]
    assert [m["status"] for m in api.sent[c]] == FLOW[:3]


def test_since_skips_what_the_client_has(api, fake_store):
    order = fake_store.new_order()
    fake_store.record(order, "routing")
    fake_store.record(order, "building")
    c = conn_id()
    subs.add(c, order, 2)
    assert Notifier(api).replay(order, c) is True
    assert api.seqs(c) == [3]


def test_terminal_status_ends_the_subscription_not_the_socket(api, fake_store):
    done, other = fake_store.new_order(), fake_store.new_order()
    c = conn_id()
    subs.add(c, done, 0)
    subs.add(c, other, 0)
    fake_store.run(done)
    Notifier(api).publish(done)
    assert api.seqs(c, done) == [1, 2, 3, 4, 5]
    assert subscribed_orders(c) == [other]
    assert subs.connections(done) == []
    assert api.closed == []
    Notifier(api).publish(other)
    assert api.seqs(c, other) == [1]


def test_two_connections_on_one_order_each_get_everything_once(api, fake_store):
    order = fake_store.new_order()
    early, late = conn_id(), conn_id()
    subs.add(early, order, 0)
    fake_store.record(order, "routing")
    Notifier(api).publish(order)
    subs.add(late, order, 0)
    fake_store.record(order, "building")
    Notifier(api).publish(order)
    assert api.seqs(early) == [1, 2, 3]
    assert api.seqs(late) == [1, 2, 3]


def test_gone_connection_is_dropped_everywhere_and_never_retried(api, fake_store):
    a, b = fake_store.new_order(), fake_store.new_order()
    c, ok = conn_id(), conn_id()
    make_old(c)
    subs.add(c, a, 0)
    subs.add(c, b, 0)
    subs.add(ok, a, 0)
    api.gone.add(c)
    Notifier(api).publish(a)
    assert api.attempts[c] == 1
    assert subscribed_orders(c) == []
    assert subs.connections(a) == [ok] and subs.connections(b) == []
    fake_store.record(a, "routing")
    Notifier(api).publish(a)
    Notifier(api).publish(b)
    assert api.attempts[c] == 1
    assert api.seqs(ok) == [1, 2]


def test_connection_still_connecting_keeps_its_subscription(api, fake_store):
    """API Gateway says Gone until $connect returned: the replay retries, nothing is lost."""
    order = fake_store.new_order()
    c = conn_id()
    subs.seen(c)
    subs.add(c, order, 0)
    api.gone.add(c)
    Notifier(api).publish(order)
    assert Notifier(api).replay(order, c) is False
    assert subscribed_orders(c) == [order]
    api.gone.discard(c)  # $connect returned
    fake_store.record(order, "routing")
    assert Notifier(api).replay(order, c) is True
    Notifier(api).publish(order)
    assert api.seqs(c) == [1, 2]


def test_gone_after_a_delivery_is_gone_even_while_young(api, fake_store):
    order = fake_store.new_order()
    c = conn_id()
    subs.seen(c)
    subs.add(c, order, 0)
    Notifier(api).publish(order)
    assert api.seqs(c) == [1]
    api.gone.add(c)
    fake_store.record(order, "routing")
    Notifier(api).publish(order)
    assert subscribed_orders(c) == [] and subs.connections(order) == []


def test_other_push_failure_never_raises_and_queues_a_replay(api, fake_store, replays):
    order = fake_store.new_order()
    c = conn_id()
    make_old(c)
    subs.add(c, order, 0)
    api.failing.add(c)
    Notifier(api).publish(order)  # does not raise
    assert replays == [(c, order, 0)]
    assert subscribed_orders(c) == [order]
    assert Notifier(api).replay(order, c) is False  # still failing: try again later
    api.failing.discard(c)
    fake_store.record(order, "routing")
    assert Notifier(api).replay(order, c) is True
    assert api.seqs(c) == [1, 2]


def test_publish_survives_a_broken_store(api, fake_store, monkeypatch, replays):
    order = fake_store.new_order()
    c = conn_id()
    subs.add(c, order, 0)

    def broken(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(store, "history", broken)
    Notifier(api).publish(order)  # logged, not raised
    # Nothing may publish this order again: the subscriber gets a replay job instead.
    assert replays == [(c, order, 0)]
    assert Notifier(api).replay(order, c) is False


def test_a_cursor_only_moves_forward_and_only_while_subscribed(fake_store):
    order, c = fake_store.new_order(), conn_id()
    subs.add(c, order, 0)
    subs.delivered(c, order, 5)
    subs.delivered(c, order, 3)  # a slower publisher finishing late
    assert subs.cursors(order, [c]) == {c: 5}
    subs.remove(c, order)
    subs.delivered(c, order, 6)  # finishing after an unsubscribe
    assert subs.cursors(order, [c]) == {}
    assert not subs.redis_client().exists(f"ws:seq:{c}", f"ws:conn:{c}", f"ws:order:{order}")


def test_replay_for_an_unsubscribed_connection_is_done(api, fake_store):
    order = fake_store.new_order()
    assert Notifier(api).replay(order, conn_id()) is True
    assert api.sent == {}


def test_worker_side_api_is_configured_from_the_recorded_endpoint(fake_store):
    order = fake_store.new_order()
    c = conn_id()
    subs.save_endpoint("abc123defg", "abc123defg.execute-api.us-east-1.amazonaws.com", "api")
    subs.add(c, order, 0)
    worker_api = FakeWebsocketAPI()
    Notifier(worker_api).publish(order)
    assert worker_api.configured == [("apiId", "abc123defg", "api")]
    assert worker_api.seqs(c) == [1]


def test_concurrent_publishers_never_interleave(fake_store):
    """Four publishers racing with the recorder: strictly increasing seq, no gap, no duplicate."""
    api = FakeWebsocketAPI(delay_s=0.001)
    order = fake_store.new_order()
    conns = [conn_id() for _ in range(3)]
    for c in conns:
        subs.add(c, order, 0)
    total = 40

    def recorder():
        for i in range(total - 1):
            fake_store.record(order, "routing", {"i": i})
            Notifier(api).publish(order)

    def publisher():
        for _ in range(total):
            Notifier(api).publish(order)

    late = conn_id()

    def late_subscriber():
        time.sleep(0.01)
        subs.add(late, order, 0)
        Notifier(api).replay(order, late)

    threads = [threading.Thread(target=recorder), threading.Thread(target=late_subscriber)]
    threads += [threading.Thread(target=publisher) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Notifier(api).publish(order)
    for c in [*conns, late]:
        assert api.seqs(c) == list(range(1, total + 1))


def test_subscriptions_changed_while_a_publisher_waits_for_the_lock(api, fake_store, monkeypatch):
    """The publisher reads the subscribers before taking the lock: one that left meanwhile
    gets nothing, one that joined meanwhile is caught up by its own replay, once."""
    order = fake_store.new_order()
    leaving, joining = conn_id(), conn_id()
    subs.add(leaving, order, 0)
    real_lock = subs.order_lock

    def lock_after_changes(order_id):
        subs.remove(leaving, order_id)
        subs.add(joining, order_id, 0)
        return real_lock(order_id)

    monkeypatch.setattr(subs, "order_lock", lock_after_changes)
    Notifier(api).publish(order)
    monkeypatch.setattr(subs, "order_lock", real_lock)
    assert api.seqs(leaving) == []
    assert Notifier(api).replay(order, joining)
    Notifier(api).publish(order)
    assert api.seqs(joining) == [1]


def test_a_waiting_publisher_retries_the_lock_at_the_configured_pace(monkeypatch):
    made = {}

    class Client:
        def lock(self, name, **options):
            made.update(options, name=name)
            return contextlib.nullcontext()

    monkeypatch.setattr(subs, "redis_client", Client)
    with subs.order_lock("o-1"):
        pass
    assert made["name"] == "ws:lock:o-1"
    assert made["sleep"] == subs.get_settings().push.ws_lock_poll_s < 0.1


# -- the handlers ------------------------------------------------------------------------------


def test_connect_with_order_subscribes_and_queues_a_replay(api, fake_store, replays):
    order = fake_store.new_order()
    c = conn_id()
    answer = ws.connect(ws_event("$connect", c, query={"orderId": order, "since": "0"}))
    assert answer == {"statusCode": 200}
    assert subscribed_orders(c) == [order]
    assert replays == [(c, order, 0)]
    assert subs.endpoint() == {
        "apiId": "abc123defg",
        "domain": "abc123defg.execute-api.us-east-1.amazonaws.com",
        "stage": "api",
    }


@pytest.mark.parametrize(
    "spelling", [str.upper, lambda o: f"urn:uuid:{o}", lambda o: o.replace("-", "")]
)
def test_connect_knows_an_order_by_its_canonical_id_only(api, fake_store, replays, spelling):
    order = fake_store.new_order()
    c = conn_id()
    answer = ws.connect(ws_event("$connect", c, query={"orderId": spelling(order)}))
    assert answer["statusCode"] == 404
    assert subscribed_orders(c) == [] and replays == []


@pytest.mark.parametrize(
    "headers, query",
    [
        ({}, {}),
        ({"Authorization": "Bearer oe_00000000_" + "x" * 43}, {}),
        ({"Authorization": KEY}, {}),  # not a bearer token
        ({}, {"apiKey": "nope"}),
    ],
)
def test_connect_without_a_valid_key_is_401(api, fake_store, replays, headers, query):
    order = fake_store.new_order()
    c = conn_id()
    answer = ws.connect(ws_event("$connect", c, query={"orderId": order, **query}, headers=headers))
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"])["error"]["code"] == "unauthorized"
    assert subscribed_orders(c) == [] and replays == []


def test_connect_takes_the_key_as_a_query_parameter(api, fake_store, replays):
    order = fake_store.new_order()
    c = conn_id()
    query = {"orderId": order, "apiKey": KEY}
    answer = ws.connect(ws_event("$connect", c, query=query, headers={}))
    assert answer == {"statusCode": 200}
    assert subscribed_orders(c) == [order]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:3000.evil"])
def test_connect_from_an_origin_not_allowed_is_403(api, fake_store, replays, origin):
    c = conn_id()
    headers = {"Authorization": f"Bearer {KEY}", "Origin": origin}
    answer = ws.connect(ws_event("$connect", c, headers=headers))
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["error"]["code"] == "origin_not_allowed"


def test_connect_from_an_allowed_origin_or_none(api, fake_store, replays):
    for headers in ({"Origin": "http://localhost:3000"}, {}):
        answer = ws.connect(
            ws_event("$connect", conn_id(), headers={"Authorization": f"Bearer {KEY}", **headers})
        )
        assert answer == {"statusCode": 200}


@pytest.mark.parametrize(
    "query, status, code",
    [
        ({"orderId": str(uuid.uuid4())}, 404, "order_not_found"),
        ({"orderId": "not-a-uuid"}, 404, "order_not_found"),
        ({"orderId": "ORDER", "since": "-1"}, 400, "invalid_query"),
        ({"orderId": "ORDER", "since": "abc"}, 400, "invalid_query"),
        ({"since": "3"}, 400, "invalid_query"),
        ({"orderId": "ORDER", "since": "2"}, 400, "invalid_query"),  # the order is at seq 1
    ],
)
def test_connect_rejects_with_a_json_error(api, fake_store, replays, query, status, code):
    order = fake_store.new_order()
    query = {k: (order if v == "ORDER" else v) for k, v in query.items()}
    c = conn_id()
    answer = ws.connect(ws_event("$connect", c, query=query))
    assert answer["statusCode"] == status
    assert json.loads(answer["body"])["error"]["code"] == code
    assert subscribed_orders(c) == [] and replays == []


def test_connect_without_order_is_accepted(api, fake_store, replays):
    c = conn_id()
    assert ws.connect(ws_event("$connect", c)) == {"statusCode": 200}
    assert subscribed_orders(c) == [] and replays == []


def test_connect_to_a_finished_order_with_everything_seen_needs_no_replay(api, fake_store, replays):
    order = fake_store.new_order()
    fake_store.run(order)
    c = conn_id()
    answer = ws.connect(ws_event("$connect", c, query={"orderId": order, "since": "5"}))
    assert answer == {"statusCode": 200}
    assert replays == [] and subscribed_orders(c) == []


def test_subscribe_message_acks_then_catches_up(api, fake_store, replays):
    order = fake_store.new_order()
    fake_store.record(order, "routing")
    c = conn_id()
    ws.message(
        ws_event("$default", c, {"action": "subscribe", "orderId": order, "since": 1}),
        Notifier(api),
    )
    assert api.sent[c][0] == {"type": "subscribed", "orderId": order, "since": 1}
    assert api.seqs(c) == [2]
    assert replays == []
    fake_store.record(order, "building")
    Notifier(api).publish(order)
    assert api.seqs(c) == [2, 3]


def test_a_subscribe_that_cannot_lock_is_recorded_and_caught_up_by_a_replay(
    api, fake_store, replays, monkeypatch
):
    real_lock = subs.order_lock

    def busy(order_id):
        raise subs.LockBusy(order_id)

    monkeypatch.setattr(subs, "order_lock", busy)
    order, c = fake_store.new_order(), conn_id()
    fake_store.record(order, "routing")
    ws.message(ws_event("$default", c, {"action": "subscribe", "orderId": order}), Notifier(api))
    assert [m["type"] for m in api.sent[c]] == ["subscribed"]
    assert subscribed_orders(c) == [order] and replays == [(c, order, 0)]

    monkeypatch.setattr(subs, "order_lock", real_lock)  # the replay job, later
    assert Notifier(api).replay(order, c)
    assert api.seqs(c) == [1, 2]


def test_300_subscribers_of_one_order_each_get_every_status(fake_store, replays, monkeypatch):
    """Subscribes racing a publisher for a lock that is mostly busy: none errs, none loses a
    status once the replay jobs have run."""
    api = FakeWebsocketAPI()
    patient, impatient = subs.get_settings, subs.get_settings().updated(ws_lock_wait_s=0.001)
    monkeypatch.setattr(subs, "get_settings", lambda: impatient)
    order = fake_store.new_order()
    connections = [conn_id() for _ in range(300)]
    for c in connections:
        make_old(c)
    subscribe = {"action": "subscribe", "orderId": order}

    def publisher():
        for status in FLOW[1:]:
            fake_store.record(order, status)
            Notifier(api).publish(order)

    publisher_thread = threading.Thread(target=publisher)
    publisher_thread.start()
    with ThreadPoolExecutor(32) as pool:  # as many as Redis's connection pool allows
        for c in connections:
            pool.submit(ws.message, ws_event("$default", c, subscribe), Notifier(api))
    publisher_thread.join()
    assert replays, "the lock was never busy: the test proves nothing"

    monkeypatch.setattr(subs, "get_settings", patient)  # the replay jobs, later
    for c, order_id, _ in list(replays):
        assert Notifier(api).replay(order_id, c)
    last = fake_store.orders[order]["last_seq"]
    for c in connections:
        assert not api.of_type(c, "error"), api.of_type(c, "error")
        seqs = api.seqs(c)
        assert sorted(set(seqs)) == list(range(1, last + 1)), (c, seqs)
        assert seqs == sorted(seqs)


def test_a_connection_watches_at_most_the_configured_number_of_orders(
    api, fake_store, replays, monkeypatch
):
    limited = ws.get_settings().updated(**{"ws_max_subscriptions": 2})
    monkeypatch.setattr(ws, "get_settings", lambda: limited)
    c = conn_id()
    orders = [fake_store.new_order() for _ in range(3)]
    for order in orders:
        ws.message(
            ws_event("$default", c, {"action": "subscribe", "orderId": order}), Notifier(api)
        )
    errors = api.of_type(c, "error")
    assert [e["error"]["code"] for e in errors] == ["too_many_subscriptions"]
    assert subscribed_orders(c) == sorted(orders[:2])
    # subscribing again to an order it watches is no new subscription
    ws.message(
        ws_event("$default", c, {"action": "subscribe", "orderId": orders[0]}), Notifier(api)
    )
    assert len(api.of_type(c, "error")) == 1


def test_subscribe_beyond_the_last_seq_is_an_error(api, fake_store, replays):
    order, c = fake_store.new_order(), conn_id()
    ws.message(
        ws_event("$default", c, {"action": "subscribe", "orderId": order, "since": 9}),
        Notifier(api),
    )
    (answer,) = api.sent[c]
    assert answer["type"] == "error" and answer["error"]["code"] == "invalid_message"
    assert subscribed_orders(c) == [] and replays == []


def test_unsubscribe_stops_the_stream(api, fake_store):
    order = fake_store.new_order()
    c = conn_id()
    ws.message(ws_event("$default", c, {"action": "subscribe", "orderId": order}), Notifier(api))
    ws.message(ws_event("$default", c, {"action": "unsubscribe", "orderId": order}), Notifier(api))
    assert api.sent[c][-1] == {"type": "unsubscribed", "orderId": order}
    fake_store.record(order, "routing")
    Notifier(api).publish(order)
    assert api.seqs(c) == [1]


@pytest.mark.parametrize(
    "body, code",
    [
        ("{not json", "malformed_json"),
        ("[1, 2]", "invalid_message"),
        ({"action": "dance"}, "unknown_action"),
        ({"orderId": "x"}, "unknown_action"),
        ({"action": "subscribe"}, "invalid_message"),
        ({"action": "subscribe", "orderId": "ORDER", "since": -2}, "invalid_message"),
        ({"action": "subscribe", "orderId": str(uuid.uuid4())}, "order_not_found"),
        ({"action": "subscribe", "orderId": "ORDER_UPPER"}, "order_not_found"),
    ],
)
def test_bad_messages_get_an_error_and_the_connection_stays_usable(api, fake_store, body, code):
    order = fake_store.new_order()
    if isinstance(body, dict):
        spelled = {"ORDER": order, "ORDER_UPPER": order.upper()}
        body = {k: spelled.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    c = conn_id()
    ws.message(ws_event("$default", c, body), Notifier(api))
    [error] = api.of_type(c, "error")
    assert error["error"]["code"] == code and error["error"]["message"]
    ws.message(ws_event("$default", c, {"action": "ping"}), Notifier(api))
    assert api.sent[c][-1] == {"type": "pong"}


def test_disconnect_drops_every_subscription(api, fake_store):
    orders = [fake_store.new_order() for _ in range(3)]
    c = conn_id()
    for order in orders:
        subs.add(c, order, 0)
    ws.disconnect(ws_event("$disconnect", c))
    assert subscribed_orders(c) == []
    assert all(subs.connections(o) == [] for o in orders)


def test_a_subscribe_with_a_revoked_key_is_refused_and_closes_the_socket(
    api, fake_store, replays, monkeypatch
):
    order = fake_store.new_order()
    c = conn_id()
    monkeypatch.setattr(keys, "active", lambda prefix: False)
    ws.message(
        ws_event("$default", c, {"action": "subscribe", "orderId": order, "since": 0}),
        Notifier(api),
    )
    assert [m["error"]["code"] for m in api.of_type(c, "error")] == ["key_revoked"]
    assert api.of_type(c, "subscribed") == [] and api.closed == [c]
    assert subs.connections(order) == [] and replays == []


def test_a_client_holds_at_most_the_configured_number_of_open_connections(
    api, fake_store, monkeypatch
):
    limited = ws.get_settings().updated(**{"ws_max_connections_per_client": 2})
    monkeypatch.setattr(ws, "get_settings", lambda: limited)
    subs.redis_client().delete(f"ws:clientconns:{CLIENT}")  # earlier tests' connections
    first, second, third = conn_id(), conn_id(), conn_id()
    assert ws.connect(ws_event("$connect", first)) == ws.ACCEPT
    assert ws.connect(ws_event("$connect", second)) == ws.ACCEPT
    refused = ws.connect(ws_event("$connect", third))
    assert refused["statusCode"] == 429
    assert json.loads(refused["body"])["error"]["code"] == "too_many_connections"
    ws.disconnect(ws_event("$disconnect", first))  # a closed one frees its place
    assert ws.connect(ws_event("$connect", third)) == ws.ACCEPT
    assert ws.connect(ws_event("$connect", conn_id()))["statusCode"] == 429


def test_connects_from_one_address_are_rate_limited_before_any_key_is_looked_up(
    api, fake_store, monkeypatch
):
    limited = ws.get_settings().updated(ws_connect_rate_per_s=0.01, ws_connect_burst=3)
    monkeypatch.setattr(ws, "get_settings", lambda: limited)
    monkeypatch.setattr(ratelimit, "get_settings", lambda: limited)
    looked_up = []
    monkeypatch.setattr(keys, "client_of", lambda key: looked_up.append(key))
    fake = {"Authorization": "Bearer ok_fake"}
    answers = [
        ws.connect(ws_event("$connect", conn_id(), headers=fake, source_ip="198.51.100.7"))
        for _ in range(5)
    ]
    assert [a["statusCode"] for a in answers] == [401, 401, 401, 429, 429]
    assert json.loads(answers[-1]["body"])["error"]["code"] == "connect_rate_limited"
    assert int(answers[-1]["headers"]["Retry-After"]) >= 1
    assert len(looked_up) == 3  # the refused ones never reached the key lookup
    # Another address is not held up by this one's flood.
    other = ws.connect(ws_event("$connect", conn_id(), headers=fake, source_ip="198.51.100.8"))
    assert other["statusCode"] == 401


def test_an_address_holds_at_most_the_configured_number_of_open_connections(
    api, fake_store, monkeypatch
):
    limited = ws.get_settings().updated(ws_max_connections_per_source=2)
    monkeypatch.setattr(ws, "get_settings", lambda: limited)
    subs.redis_client().delete(f"ws:clientconns:{CLIENT}", "ws:sourceconns:203.0.113.5")
    first, second, third = conn_id(), conn_id(), conn_id()
    for c in (first, second):
        assert ws.connect(ws_event("$connect", c, source_ip="203.0.113.5")) == ws.ACCEPT
    refused = ws.connect(ws_event("$connect", third, source_ip="203.0.113.5"))
    assert refused["statusCode"] == 429
    assert json.loads(refused["body"])["error"]["code"] == "too_many_connections"
    assert ws.connect(ws_event("$connect", third, source_ip="203.0.113.6")) == ws.ACCEPT
    ws.disconnect(ws_event("$disconnect", first))  # a closed one frees its place
    assert ws.connect(ws_event("$connect", conn_id(), source_ip="203.0.113.5")) == ws.ACCEPT
    for c in (second, third):
        ws.disconnect(ws_event("$disconnect", c))


def test_a_missed_disconnect_frees_its_place_once_the_connection_cannot_be_open(
    api, fake_store, monkeypatch
):
    limited = ws.get_settings().updated(**{"ws_max_connections_per_client": 1})
    monkeypatch.setattr(ws, "get_settings", lambda: limited)
    subs.redis_client().delete(f"ws:clientconns:{CLIENT}")  # earlier tests' connections
    assert ws.connect(ws_event("$connect", conn_id())) == ws.ACCEPT
    assert ws.connect(ws_event("$connect", conn_id()))["statusCode"] == 429
    later = time.time() + limited.push.ws_subscription_ttl_s + 1  # its $disconnect was lost
    monkeypatch.setattr(subs.time, "time", lambda: later)
    assert ws.connect(ws_event("$connect", conn_id())) == ws.ACCEPT


@pytest.mark.parametrize(
    "frame",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        json.dumps(
            {
                "action": "subscribe",
                "orderId": "x",
                "since": 0,
                "deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
            }
        ),
    ],
)
def test_a_deeply_nested_frame_is_an_invalid_frame(api, fake_store, frame, caplog):
    c = conn_id()
    ws.message(ws_event("$default", c, frame), Notifier(api))
    (answer,) = api.sent[c]
    assert answer["type"] == "error" and answer["error"]["code"] == "invalid_frame", answer
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
