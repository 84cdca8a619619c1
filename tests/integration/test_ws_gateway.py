"""WebSocket subscriptions end to end, as API Gateway drives them.

The ``$connect``/``$default``/``$disconnect`` handlers get API Gateway's event dicts through
``chalice.test.Client.lambda_.invoke``; orders run through the real pipeline (HTTP function ->
SQS on a moto server -> worker -> Postgres); pushes go through ``app.websocket_api``
(``post_to_connection``) to moto's API Gateway management API backend, which records them.
"""

import json
import time
import uuid
from urllib.parse import quote, unquote

import pytest
from chalice.test import Client
from moto import mock_aws
from moto.apigatewaymanagementapi.models import (
    ApiGatewayManagementApiBackend,
    apigatewaymanagementapi_backends,
)
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError

from chalicelib.backends import aws
from chalicelib.orders import store
from chalicelib.push import subscriptions as subs
from chalicelib.push.notify import Notifier
from tests.helpers import subscribed_orders
from tests.integration.driver import FLOW, ORDER, poll_once, run_until

pytestmark = pytest.mark.integration

API_ID = "k2x9m4p7q1"
STAGE = "api"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


class GoneException(JsonRESTError):
    code = 410

    def __init__(self):
        super().__init__("GoneException", "the connection is gone")


class Management:
    """What moto's management API backend received, per connection; connections can vanish."""

    def __init__(self):
        self.closed: set[str] = set()
        self.vanish_after: dict[str, int] = {}
        self.posts: dict[str, int] = {}  # posts that went through
        self.attempts: dict[str, int] = {}  # and those answered Gone

    @staticmethod
    def backend() -> ApiGatewayManagementApiBackend:
        return apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]

    def patch(self, monkeypatch) -> None:
        real = ApiGatewayManagementApiBackend.post_to_connection

        def post_to_connection(backend, data, connection_id):
            cid = unquote(connection_id)  # moto keeps the id URL-encoded, as it came
            self.attempts[cid] = self.attempts.get(cid, 0) + 1
            if cid in self.closed:
                raise GoneException()
            real(backend, data, connection_id)
            self.posts[cid] = self.posts.get(cid, 0) + 1
            if self.posts[cid] >= self.vanish_after.get(cid, float("inf")):
                self.closed.add(cid)  # the client vanishes without a $disconnect

        monkeypatch.setattr(
            ApiGatewayManagementApiBackend, "post_to_connection", post_to_connection
        )

    def messages(self, connection_id: str) -> list[dict]:
        """Every message posted to the connection, in order (moto concatenates them)."""
        connection = self.backend().connections.get(quote(connection_id, safe=""))
        text = connection.data.decode() if connection else ""
        decoder, out, i = json.JSONDecoder(), [], 0
        while i < len(text):
            message, i = decoder.raw_decode(text, i)
            out.append(message)
        return out

    def statuses(self, connection_id: str, order_id: str | None = None) -> list[tuple[int, str]]:
        return [
            (m["seq"], m["status"])
            for m in self.messages(connection_id)
            if m.get("type") == "status" and order_id in (None, m["orderId"])
        ]


def ws_event(route: str, connection_id: str, body=None, query=None, headers=None) -> dict:
    """An API Gateway WebSocket proxy event, as Lambda receives it."""
    now = time.time()
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    context = {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16] + "=",
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "messageDirection": "IN",
        "stage": STAGE,
        "connectedAt": int(now * 1000) - 5,
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": "203.0.113.7", "userAgent": "websockets/15"},
        "requestId": uuid.uuid4().hex[:16] + "=",
        "domainName": DOMAIN,
        "connectionId": connection_id,
        "apiId": API_ID,
    }
    event: dict = {"requestContext": context, "isBase64Encoded": False}
    if route == "$connect":
        event["headers"] = {
            "Host": DOMAIN,
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "X-Forwarded-Proto": "https",
            **(headers or {}),
        }
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
        if query:
            event["queryStringParameters"] = dict(query)
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    elif route == "$disconnect":
        context["disconnectStatusCode"] = 1001
        context["disconnectReason"] = "Going away"
    else:
        context["messageId"] = uuid.uuid4().hex[:16] + "="
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def connection_id() -> str:
    return uuid.uuid4().hex[:15] + "="  # like API Gateway's "Lx1tAfIoIAMCJNw="


class Gateway:
    """API Gateway's side: invokes the WebSocket Lambdas; the worker drains the queue."""

    def __init__(self, client, app_module, management, api_key):
        self.client, self.app_module, self.management = client, app_module, management
        self.api_key = api_key

    def connect(self, cid: str, headers=None, **query) -> dict:
        """``$connect`` with the default client's key, unless ``headers`` say otherwise."""
        headers = {"Authorization": f"Bearer {self.api_key}", **(headers or {})}
        headers = {k: v for k, v in headers.items() if v is not None}
        query = {k: str(v) for k, v in query.items()}
        event = ws_event("$connect", cid, query=query, headers=headers)
        return self.client.lambda_.invoke("ws_connect", event).payload

    def send(self, cid: str, body) -> dict:
        return self.client.lambda_.invoke("ws_message", ws_event("$default", cid, body)).payload

    def disconnect(self, cid: str) -> dict:
        return self.client.lambda_.invoke("ws_disconnect", ws_event("$disconnect", cid)).payload

    def post_order(self) -> str:
        answer = self.client.http.post(
            "/api/orders/execute",
            headers={"content-type": "application/json"},
            body=json.dumps(ORDER),
        )
        assert answer.status_code == 202, answer.body
        return answer.json_body["orderId"]

    def cold_worker(self) -> None:
        """The worker is another Lambda: its websocket_api has no endpoint until it reads one."""
        api = self.app_module.app.websocket_api
        api._endpoint, api._client = None, None
        self.app_module.notifier = Notifier(api)  # restored by the gateway fixture

    def drain(self, done, timeout_s: float = 30) -> None:
        """Run the worker (orders and replay jobs) until ``done()``, then the queue is empty."""
        run_until(self.app_module, done, timeout_s)
        while poll_once(self.app_module.process_orders, self.queue_url()):
            pass

    def queue_url(self) -> str:
        from chalicelib.backends import queue

        return queue.queue_url()

    def finished(self, *order_ids):
        return lambda: all(store.get_order(o).status.terminal for o in order_ids)


@pytest.fixture
def management(monkeypatch):
    mock = mock_aws()
    mock.start(reset=False)  # the session's SQS moto server shares these backends
    management = Management()
    management.patch(monkeypatch)
    yield management
    mock.stop(remove_data=False)


@pytest.fixture
def gateway(settings_env, management, monkeypatch, api_key):
    import app as app_module

    api = app_module.app.websocket_api
    # A session made inside the mock, as the Lambda makes one at import; a fresh endpoint.
    monkeypatch.setattr(api, "session", aws.management_session(settings_env))
    monkeypatch.setattr(api, "_endpoint", None)
    monkeypatch.setattr(api, "_client", None)
    monkeypatch.setattr(app_module, "notifier", Notifier(api))
    with Client(app_module.app, stage_name="local") as client:
        yield Gateway(client, app_module, management, api_key)


def expect_flow(management, cid, order_id):
    assert management.statuses(cid, order_id) == list(enumerate(FLOW, start=1))


# -- $connect ---------------------------------------------------------------------------------


def test_subscribe_on_connect_before_the_order_runs(gateway, management):
    order_id = gateway.post_order()
    cid = connection_id()
    assert gateway.connect(cid, orderId=order_id) == {"statusCode": 200}
    assert subscribed_orders(cid) == [order_id]
    gateway.cold_worker()
    gateway.drain(gateway.finished(order_id))

    expect_flow(management, cid, order_id)
    confirmed = management.messages(cid)[-1]
    order = store.get_order(order_id)
    assert confirmed["txHash"] == order.tx_hash and confirmed["orderId"] == order_id
    assert confirmed["type"] == "status" and "createdAt" in confirmed
    assert subscribed_orders(cid) == [], "the terminal status ends the subscription"
    assert subs.connections(order_id) == []


def test_subscribe_after_the_order_finished_replays_its_history(gateway, management):
    order_id = gateway.post_order()
    gateway.drain(gateway.finished(order_id))
    cid = connection_id()
    assert gateway.connect(cid, orderId=order_id, since=0) == {"statusCode": 200}
    assert management.messages(cid) == [], "nothing is posted before $connect returned"
    gateway.cold_worker()
    gateway.drain(lambda: len(management.messages(cid)) >= 5)
    expect_flow(management, cid, order_id)


def test_reconnect_with_since_gets_exactly_what_it_missed(gateway, management):
    order_id = gateway.post_order()
    first = connection_id()
    gateway.connect(first, orderId=order_id)
    poll_once(gateway.app_module.process_orders, gateway.queue_url())  # replay + order
    seen = [seq for seq, _ in management.statuses(first)]
    gateway.disconnect(first)
    assert subscribed_orders(first) == []
    gateway.drain(gateway.finished(order_id))
    assert [seq for seq, _ in management.statuses(first)] == seen

    last = seen[-1]
    second = connection_id()
    gateway.connect(second, orderId=order_id, since=last)
    gateway.drain(lambda: len(management.statuses(second)) >= 5 - last)
    assert seen + [seq for seq, _ in management.statuses(second)] == [1, 2, 3, 4, 5]


def test_two_clients_on_one_order(gateway, management):
    order_id = gateway.post_order()
    a, b = connection_id(), connection_id()
    gateway.connect(a, orderId=order_id)
    gateway.connect(b, orderId=order_id, since=0)
    gateway.cold_worker()
    gateway.drain(gateway.finished(order_id))
    expect_flow(management, a, order_id)
    expect_flow(management, b, order_id)


@pytest.mark.parametrize(
    "query, status, code",
    [
        ({"orderId": "6f1c1f0e-6d4f-4a7e-9a55-0b5b8f8f0f00"}, 404, "order_not_found"),
        ({"orderId": "../../etc/passwd"}, 404, "order_not_found"),
        ({"orderId": "ORDER", "since": "minus one"}, 400, "invalid_query"),
    ],
)
def test_connect_rejects_unknown_orders_and_bad_since(gateway, query, status, code):
    order_id = gateway.post_order()
    cid = connection_id()
    answer = gateway.connect(cid, **{k: order_id if v == "ORDER" else v for k, v in query.items()})
    assert answer["statusCode"] == status
    assert json.loads(answer["body"])["error"]["code"] == code
    assert subscribed_orders(cid) == []


# -- $default ---------------------------------------------------------------------------------


def test_one_client_on_five_orders(gateway, management):
    cid = connection_id()
    assert gateway.connect(cid) == {"statusCode": 200}
    orders = [gateway.post_order() for _ in range(5)]
    for order_id in orders:
        gateway.send(cid, {"action": "subscribe", "orderId": order_id, "since": 0})
    acks = [m for m in management.messages(cid) if m["type"] == "subscribed"]
    assert [a["orderId"] for a in acks] == orders
    gateway.cold_worker()
    gateway.drain(gateway.finished(*orders))
    for order_id in orders:
        expect_flow(management, cid, order_id)
    assert subscribed_orders(cid) == []
    assert gateway.send(cid, {"action": "ping"}) == {"statusCode": 200}
    assert management.messages(cid)[-1] == {"type": "pong"}, "the socket is still in use"


def test_subscribe_message_catches_up_on_the_socket_at_once(gateway, management):
    order_id = gateway.post_order()
    gateway.drain(gateway.finished(order_id))
    cid = connection_id()
    gateway.connect(cid)
    gateway.send(cid, {"action": "subscribe", "orderId": order_id, "since": 2})
    assert management.messages(cid)[0] == {"type": "subscribed", "orderId": order_id, "since": 2}
    assert management.statuses(cid) == list(enumerate(FLOW, start=1))[2:]


@pytest.mark.parametrize("joins", ["before the first push", "after the first push"])
def test_a_subscriber_who_joins_mid_delivery_gets_the_next_status_live(
    gateway, management, monkeypatch, joins
):
    """Subscribed while the worker pushes ``routing`` (just before it, with that status
    written unwatched; or just after): ``submitted`` reaches it at its own push, not only
    with the terminal status, and nothing twice."""
    order_id = gateway.post_order()
    cid = connection_id()
    gateway.connect(cid)
    real = gateway.app_module.notifier.publish
    seen_after_push: list[list[str]] = []

    def publish(pushed_order_id, latest=()):
        first = str(pushed_order_id) == order_id and not seen_after_push
        if first and joins == "before the first push":
            gateway.send(cid, {"action": "subscribe", "orderId": order_id})
        real(pushed_order_id, latest)
        if str(pushed_order_id) != order_id:
            return
        if first and joins == "after the first push":
            gateway.send(cid, {"action": "subscribe", "orderId": order_id})
        seen_after_push.append([status for _, status in management.statuses(cid, order_id)])

    monkeypatch.setattr(gateway.app_module.notifier, "publish", publish)
    gateway.drain(gateway.finished(order_id))

    assert len(seen_after_push) >= 3  # routing; building with submitted; confirmed
    before_terminal = seen_after_push[-2]
    assert before_terminal == FLOW[: FLOW.index("submitted") + 1]
    expect_flow(management, cid, order_id)  # each status once, in order


def test_an_order_nobody_watches_is_pushed_without_looking_for_subscribers(
    gateway, management, monkeypatch
):
    looked: list[str] = []
    real = subs.connections
    monkeypatch.setattr(subs, "connections", lambda oid: looked.append(oid) or real(oid))
    unwatched = gateway.post_order()
    gateway.drain(gateway.finished(unwatched))
    assert unwatched not in looked
    assert not store.get_order(unwatched).watched

    watched = gateway.post_order()
    cid = connection_id()
    gateway.connect(cid, orderId=watched)
    assert store.get_order(watched).watched
    gateway.drain(gateway.finished(watched))
    assert looked.count(watched) >= 3  # routing; building with submitted; confirmed
    expect_flow(management, cid, watched)


def test_bad_messages_get_errors_on_a_usable_socket(gateway, management):
    cid = connection_id()
    gateway.connect(cid)
    gateway.send(cid, "{oops")
    gateway.send(cid, {"action": "subscribe", "orderId": str(uuid.uuid4())})
    gateway.send(cid, {"action": "launch"})
    gateway.send(cid, {"action": "ping"})
    codes = [m["error"]["code"] for m in management.messages(cid) if m["type"] == "error"]
    assert codes == ["malformed_json", "order_not_found", "unknown_action"]
    assert management.messages(cid)[-1] == {"type": "pong"}


def test_unsubscribe_stops_the_stream(gateway, management):
    order_id = gateway.post_order()
    cid = connection_id()
    gateway.connect(cid)
    gateway.send(cid, {"action": "subscribe", "orderId": order_id})
    gateway.send(cid, {"action": "unsubscribe", "orderId": order_id})
    gateway.drain(gateway.finished(order_id))
    assert management.statuses(cid) == [(1, "pending")]


# -- vanishing clients ------------------------------------------------------------------------


def test_a_client_that_vanishes_mid_stream(gateway, management):
    order_id, other = gateway.post_order(), gateway.post_order()
    gone, stays = connection_id(), connection_id()
    gateway.connect(gone)
    gateway.send(gone, {"action": "subscribe", "orderId": order_id})
    gateway.send(gone, {"action": "subscribe", "orderId": other})
    gateway.connect(stays, orderId=order_id)
    # The vanishing client has the two acks and both orders' pending; two more, then gone.
    management.vanish_after[gone] = management.posts[gone] + 2
    gateway.cold_worker()
    gateway.drain(gateway.finished(order_id, other))

    assert store.get_order(order_id).status == "confirmed", "a push failure never fails it"
    assert store.get_order(other).status == "confirmed"
    expect_flow(management, stays, order_id)
    received = [(m["orderId"], m["seq"]) for m in management.messages(gone) if "seq" in m]
    assert len(received) == 4 and len(set(received)) == 4
    for order in (order_id, other):  # in order, without gaps, up to where it vanished
        seqs = [seq for o, seq in received if o == order]
        assert seqs == list(range(1, len(seqs) + 1))
    assert subscribed_orders(gone) == [], "a gone connection is dropped from every subscription"
    assert gone not in subs.connections(order_id) + subs.connections(other)
    # Never retried: at most one Gone per order whose publisher was already in flight.
    assert 1 <= management.attempts[gone] - management.posts[gone] <= 2


def test_disconnect_drops_the_subscriptions(gateway, management):
    order_id = gateway.post_order()
    cid = connection_id()
    gateway.connect(cid, orderId=order_id)
    assert gateway.disconnect(cid) == {"statusCode": 200}
    assert subscribed_orders(cid) == [] and subs.connections(order_id) == []
    gateway.drain(gateway.finished(order_id))
    assert management.messages(cid) == []


def test_a_twap_parents_stream_carries_a_childs_fill_as_it_ends(gateway, management):
    """The first slice's fill reaches the parent's subscriber when the child ends, not a
    minute later with the next slice."""
    body = {"type": "twap", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1",
            "slices": 2, "intervalSeconds": 60, "slippageBps": 100}  # fmt: skip
    answer = gateway.client.http.post(
        "/api/orders/execute", headers={"content-type": "application/json"}, body=json.dumps(body)
    )
    assert answer.status_code == 202, answer.body
    parent_id = answer.json_body["orderId"]
    cid = connection_id()
    gateway.connect(cid)
    gateway.send(cid, {"action": "subscribe", "orderId": parent_id})  # caught up at once

    def first_child_ended() -> bool:
        children = store.children(parent_id)
        return bool(children) and children[0].status.terminal

    gateway.drain(first_child_ended)  # the second slice waits its minute in the queue

    pushed = [m for m in management.messages(cid) if m["type"] == "status"]
    history = store.history(parent_id)
    assert [(m["seq"], m["status"]) for m in pushed] == [(h.seq, h.status) for h in history]
    fills = [m["child"] for m in pushed if "child" in m]
    assert [(f["slice"], f["status"]) for f in fills] == [(0, "confirmed")]
