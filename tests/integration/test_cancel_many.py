"""Cancel many: the orders named, or all of the caller's (filtered), in one answer with each
order's outcome. Real Postgres, Redis and SQS."""

import json
import threading
import uuid

import pytest

from chalicelib.access import keys
from chalicelib.orders import store, worker
from chalicelib.orders.lifecycle import OrderStatus
from tests.integration.driver import FLOW, ORDER, run_until

pytestmark = pytest.mark.integration


def post(client, body=ORDER, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    answer = client.http.post("/api/orders/execute", headers=headers, body=json.dumps(body))
    assert answer.status_code == 202, answer.json_body
    return answer.json_body["orderId"]


def cancel_many(client, body):
    return client.http.post(
        "/api/orders/cancel", headers={"content-type": "application/json"}, body=json.dumps(body)
    )


def statuses(order_id):
    return [h.status for h in store.history(order_id)]


def test_each_named_order_gets_its_outcome(client, app_module):
    done = post(client)
    run_until(app_module, lambda: store.get_order(done).status.terminal)
    waiting = [post(client), post(client)]
    other_key = keys.create(f"other-{uuid.uuid4().hex[:8]}").key
    theirs = post(client, key=other_key)
    unknown = str(uuid.uuid4())

    answer = cancel_many(
        client, {"orderIds": [waiting[0], done, unknown, theirs, waiting[1], "nope", waiting[0]]}
    )

    assert answer.status_code == 200, answer.json_body
    assert answer.json_body == {
        "cancelled": 2,
        "results": [
            {"orderId": waiting[0], "outcome": "cancelled", "status": "cancelled"},
            {"orderId": done, "outcome": "not_cancellable", "status": "confirmed"},
            {"orderId": unknown, "outcome": "not_found", "status": None},
            {"orderId": theirs, "outcome": "not_found", "status": None},  # not the caller's
            {"orderId": waiting[1], "outcome": "cancelled", "status": "cancelled"},
            {"orderId": "nope", "outcome": "not_found", "status": None},
        ],
    }
    for order_id in waiting:
        assert statuses(order_id) == ["pending", "cancelled"]
        assert store.history(order_id)[-1].payload == {"from": "pending"}
    assert store.get_order(theirs).status == OrderStatus.PENDING
    assert statuses(done) == FLOW
    run_until(app_module, lambda: store.get_order(theirs).status.terminal)  # workers let be
    assert all(statuses(order_id) == ["pending", "cancelled"] for order_id in waiting)


def test_all_cancels_only_the_caller_s_orders_matching_the_filters(client, app_module):
    sol_usdc = [post(client), post(client)]
    usdc_sol = post(client, {**ORDER, "tokenIn": "USDC", "tokenOut": "SOL", "amount": "10"})
    other_key = keys.create(f"other-{uuid.uuid4().hex[:8]}").key
    theirs = post(client, key=other_key)

    answer = cancel_many(client, {"all": True, "tokenIn": "SOL", "type": "market"})

    assert answer.status_code == 200
    assert sorted(r["orderId"] for r in answer.json_body["results"]) == sorted(sol_usdc)
    assert {r["outcome"] for r in answer.json_body["results"]} == {"cancelled"}
    assert store.get_order(usdc_sol).status == OrderStatus.PENDING
    assert store.get_order(theirs).status == OrderStatus.PENDING
    everything = cancel_many(client, {"all": True}).json_body
    assert [r["orderId"] for r in everything["results"]] == [usdc_sol]
    assert cancel_many(client, {"all": True}).json_body == {"results": [], "cancelled": 0}


def test_cancels_are_pushed(client, app_module, monkeypatch):
    published = []
    monkeypatch.setattr(
        app_module.notifier, "publish", lambda order_id, entries, *_: published.append(
            (order_id, [e.status for e in entries]))
    )  # fmt: skip
    ids = [post(client), post(client)]
    cancel_many(client, {"orderIds": ids})
    assert sorted(published) == sorted((i, [OrderStatus.CANCELLED]) for i in ids)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "orderIds"),
        ({"orderIds": [], "all": True}, "orderIds"),
        ({"orderIds": []}, "orderIds"),
        ({"orderIds": [str(uuid.uuid4()) for _ in range(101)]}, "orderIds"),
        ({"orderIds": [1]}, "orderIds.0"),
        ({"all": False}, "all"),
        ({"all": "yes"}, "all"),
        ({"orderIds": [str(uuid.uuid4())], "tokenIn": "SOL"}, "orderIds"),
        ({"all": True, "tokenIn": "NOPE"}, "tokenIn"),
        ({"all": True, "type": "nope"}, "type"),
        ({"all": True, "extra": 1}, "extra"),
    ],
)
def test_a_malformed_request_is_422_naming_the_field(client, body, field):
    answer = cancel_many(client, body)
    assert answer.status_code == 422, answer.json_body
    assert answer.json_body["error"]["details"][0]["field"] == field


def test_the_single_cancel_route_still_answers(client):
    order_id = post(client)
    answer = client.http.post(f"/api/orders/{order_id}/cancel")
    assert answer.status_code == 200 and answer.json_body["status"] == "cancelled"


def test_cancel_many_racing_workers_records_one_terminal_status_each(client, app_module):
    """Workers run the orders while one cancel-many races them: each order ends with one
    terminal status, and a cancelled order never reached ``submitted``."""
    for _ in range(10):
        ids = [post(client) for _ in range(4)]
        start = threading.Barrier(len(ids) + 1)

        def run_worker(order_id, start=start):
            start.wait()
            worker._run_order(order_id, "receipt", app_module.notifier)

        def run_cancel(ids=ids, start=start):
            start.wait()
            cancel_many(client, {"orderIds": ids})

        threads = [threading.Thread(target=run_worker, args=(i,)) for i in ids]
        threads.append(threading.Thread(target=run_cancel))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for order_id in ids:
            while not store.get_order(order_id).status.terminal:
                worker._run_order(order_id, "receipt", app_module.notifier)
            history = statuses(order_id)
            assert [s for s in history if s.terminal] == [history[-1]]
            assert [h.seq for h in store.history(order_id)] == list(range(1, len(history) + 1))
            if history[-1] == OrderStatus.CANCELLED:
                assert OrderStatus.SUBMITTED not in history
            else:
                assert history == FLOW


def test_openapi_documents_cancel_many(client):
    doc = client.http.get("/api/openapi.json").json_body
    operation = doc["paths"]["/api/orders/cancel"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CancelManyRequest"
    )
    request = doc["components"]["schemas"]["CancelManyRequest"]
    assert request["properties"]["orderIds"]["anyOf"][0]["maxItems"] == 100
    outcome = doc["components"]["schemas"]["CancelOutcomeKind"]
    assert outcome["enum"] == ["cancelled", "not_cancellable", "not_found"]
