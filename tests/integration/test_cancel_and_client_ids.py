"""Cancel (racing a worker against real Postgres) and client order ids."""

import json
import threading
import uuid

import pytest

from chalicelib.access import keys
from chalicelib.backends import queue
from chalicelib.orders import moves, store, worker
from chalicelib.orders.lifecycle import OrderStatus
from tests.integration.driver import FLOW, ORDER, poll_once, run_until

pytestmark = pytest.mark.integration


@pytest.fixture
def other_key(settings_env) -> str:
    return keys.create(f"client-b-{uuid.uuid4().hex[:8]}").key


def post(client, body=ORDER, headers=None):
    headers = {"content-type": "application/json", **(headers or {})}
    return client.http.post("/api/orders/execute", headers=headers, body=json.dumps(body))


def cancel(client, order_id, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.http.post(f"/api/orders/{order_id}/cancel", headers=headers)


def statuses(order_id):
    return [h.status for h in store.history(order_id)]


# -- cancel ------------------------------------------------------------------------------------


def test_a_pending_order_is_cancelled_once_and_never_executes(client, app_module):
    order_id = post(client).json_body["orderId"]

    answer = cancel(client, order_id)

    assert answer.status_code == 200
    assert answer.json_body["status"] == "cancelled"
    again = cancel(client, order_id)
    assert again.status_code == 409
    assert again.json_body["error"]["code"] == "not_cancellable"
    assert again.json_body["error"]["details"] == {"status": "cancelled"}
    assert poll_once(app_module.process_orders, queue.queue_url(), wait_s=1) == 1
    assert statuses(order_id) == ["pending", "cancelled"]  # the worker let it be
    history = client.http.get(f"/api/orders/{order_id}").json_body["history"]
    assert history[-1]["payload"] == {"from": "pending"}


def test_cancel_after_submitted_is_409_with_the_status(client, app_module):
    order_id = post(client).json_body["orderId"]
    run_until(app_module, lambda: store.get_order(order_id).status.terminal)

    answer = cancel(client, order_id)

    assert answer.status_code == 409
    error = answer.json_body["error"]
    assert error["code"] == "not_cancellable" and error["details"] == {"status": "confirmed"}
    assert statuses(order_id) == FLOW


def test_another_client_s_order_cannot_be_cancelled(client, other_key):
    order_id = post(client).json_body["orderId"]
    assert cancel(client, order_id, key=other_key).status_code == 404
    assert cancel(client, str(uuid.uuid4())).status_code == 404
    assert cancel(client, "not-an-id").status_code == 404
    assert store.get_order(order_id).status == OrderStatus.PENDING


def test_cancel_is_pushed_like_every_status(client, app_module, monkeypatch):
    published = []
    monkeypatch.setattr(
        app_module.notifier, "publish", lambda order_id, *_: published.append(order_id)
    )
    order_id = post(client).json_body["orderId"]
    cancel(client, order_id)
    assert published == [order_id]


def test_cancel_racing_a_worker_ends_with_exactly_one_terminal_status(client, app_module):
    """Each round: a worker runs the order while a cancel races it from another thread.
    Whoever wins, the order ends with one terminal status; a cancelled order never reached
    ``submitted``, and a cancel refused (409) saw it at ``submitted`` or later."""
    outcomes = {"cancelled": 0, "refused": 0}
    for _ in range(40):
        order_id = post(client).json_body["orderId"]
        client_id = store.get_order(order_id).client_id
        start = threading.Barrier(2)
        refused = []

        def run_worker(order_id=order_id, start=start):
            start.wait()
            worker._run_order(order_id, "receipt", app_module.notifier)

        def run_cancel(order_id=order_id, start=start, refused=refused, client_id=client_id):
            start.wait()
            try:
                moves.cancel(order_id, client_id, app_module.notifier)
            except moves.NotCancellable as e:
                refused.append(OrderStatus(e.details["status"]))

        threads = [threading.Thread(target=run_worker), threading.Thread(target=run_cancel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        while not store.get_order(order_id).status.terminal:  # the landing check, if sent
            worker._run_order(order_id, "receipt", app_module.notifier)

        history = statuses(order_id)
        assert [s for s in history if s.terminal] == [history[-1]]
        assert len(history) == len(set(history))
        assert [h.seq for h in store.history(order_id)] == list(range(1, len(history) + 1))
        if history[-1] == OrderStatus.CANCELLED:
            assert OrderStatus.SUBMITTED not in history and not refused
            outcomes["cancelled"] += 1
        else:
            assert history == FLOW
            assert refused and not refused[0].cancellable
            outcomes["refused"] += 1
    assert sum(outcomes.values()) == 40, outcomes


# -- client order ids ------------------------------------------------------------------------


def test_client_order_id_is_returned_everywhere_and_filters_the_list(client):
    answer = post(client, {**ORDER, "clientOrderId": "my-order #1"})
    assert answer.status_code == 202
    assert answer.json_body["clientOrderId"] == "my-order #1"
    order_id = answer.json_body["orderId"]
    post(client, {**ORDER, "clientOrderId": "my-order #2"})
    post(client, ORDER)

    detail = client.http.get(f"/api/orders/{order_id}").json_body
    assert detail["order"]["clientOrderId"] == "my-order #1"
    page = client.http.get("/api/orders?clientOrderId=my-order%20%231").json_body
    assert [o["id"] for o in page["orders"]] == [order_id]
    assert len(client.http.get("/api/orders").json_body["orders"]) == 3


def test_a_duplicate_client_order_id_is_409_unless_the_same_key_replays(client, other_key):
    body = {**ORDER, "clientOrderId": "abc"}
    first = post(client, body, headers={"Idempotency-Key": "k1"})
    replay = post(client, body, headers={"Idempotency-Key": "k1"})
    duplicate = post(client, {**body, "amount": "2"})

    assert first.status_code == 202 and replay.status_code == 200
    assert replay.json_body["orderId"] == first.json_body["orderId"]
    assert duplicate.status_code == 409
    assert duplicate.json_body["error"]["code"] == "duplicate_client_order_id"
    assert duplicate.json_body["error"]["details"] == {"clientOrderId": "abc"}
    # Another client's same id is another order.
    theirs = post(client, body, headers={"Authorization": f"Bearer {other_key}"})
    assert theirs.status_code == 202
    assert len(store.list_orders(None, 100, None)[0]) == 2


@pytest.mark.parametrize("bad", ["", "x" * 65, "é", "tab\there", 12])
def test_a_malformed_client_order_id_is_422(client, bad):
    answer = post(client, {**ORDER, "clientOrderId": bad})
    assert answer.status_code == 422
    assert answer.json_body["error"]["details"][0]["field"] == "clientOrderId"


def test_the_list_filter_refuses_a_malformed_client_order_id(client):
    answer = client.http.get("/api/orders?clientOrderId=" + "x" * 65)
    assert answer.status_code == 422
