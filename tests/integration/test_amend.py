"""Amend: new bounds for an order waiting in ``open``, recorded with a seq of its own and
pushed; refused (409 ``not_amendable``) once the order is routing. Real Postgres, Redis, SQS."""

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from chalicelib.access import keys
from chalicelib.orders import amend, store, worker
from chalicelib.orders.changes import AmendRequest
from chalicelib.orders.lifecycle import OrderStatus
from tests.integration.driver import ORDER
from tests.integration.test_limit_orders import (  # noqa: F401 - the market fixture
    decimal,
    drain,
    fill_price,
    limit_body,
    market,
    post,
    statuses,
)

pytestmark = pytest.mark.integration


def patch(client, order_id, body, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return client.http.request(
        "PATCH", f"/api/orders/{order_id}", headers=headers, body=json.dumps(body).encode()
    )


def waiting_order(client, app_module, market) -> str:  # noqa: F811
    order_id = post(client, limit_body(decimal(fill_price(market) * 2)))  # far above
    drain(app_module)
    assert statuses(order_id) == ["pending", "open"]
    return order_id


def test_an_amended_limit_is_recorded_pushed_and_then_met(client, app_module, market, monkeypatch):  # noqa: F811
    order_id = waiting_order(client, app_module, market)
    before = store.get_order(order_id)
    published = []
    real = app_module.notifier.publish
    monkeypatch.setattr(app_module.notifier, "publish", lambda oid, entries=(), *a: (
        published.append((oid, [e.seq for e in entries])), real(oid, entries, *a))[1])  # fmt: skip
    new_limit = decimal(fill_price(market) * Fraction(99, 100))  # the market meets it now
    expiry = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)

    answer = patch(client, order_id, {"limitPrice": format(new_limit, "f"),
                                      "expiresAt": expiry.isoformat()})  # fmt: skip

    assert answer.status_code == 200, answer.json_body
    assert answer.json_body["limitPrice"] == format(new_limit, "f")
    assert answer.json_body["expiresAt"] == expiry.isoformat()
    assert answer.json_body["lastSeq"] == 3
    entry = store.history(order_id)[-1]
    assert (entry.seq, entry.status) == (3, OrderStatus.OPEN)
    assert entry.payload == {
        "amended": {"limitPrice": format(new_limit, "f"), "expiresAt": expiry.isoformat()},
        "previous": {"limitPrice": format(before.limit_price, "f"),
                     "expiresAt": before.expires_at.isoformat()},
    }  # fmt: skip
    assert published[0] == (order_id, [3])
    drain(app_module)  # the amendment sent the order to the worker: no price move needed
    order = store.get_order(order_id)
    assert order.status == OrderStatus.CONFIRMED
    assert order.amount_out >= order.limit_min_out and order.limit_price == new_limit
    assert [h.seq for h in store.history(order_id)] == list(range(1, order.last_seq + 1))


def test_an_order_not_waiting_is_not_amendable(client, app_module, market):  # noqa: F811
    pending = post(client, limit_body(decimal(fill_price(market) * 2)))
    answer = patch(client, pending, {"limitPrice": "1"})
    assert answer.status_code == 409
    assert answer.json_body["error"]["code"] == "not_amendable"
    assert answer.json_body["error"]["details"] == {"status": "pending"}
    drain(app_module)
    done = post(client, ORDER)
    drain(app_module)
    answer = patch(client, done, {"expiresInSlots": 10})
    assert answer.status_code == 409
    assert answer.json_body["error"]["details"] == {"status": "confirmed"}


def test_an_amendment_racing_the_worker_either_wins_or_is_refused(client, app_module, market):  # noqa: F811
    """The worker takes an order whose limit the market meets while an amendment races it:
    either the amendment is recorded (before any ``routing``) and the order still executes
    once, or it is refused because the order was routing by then."""
    outcomes = {"amended": 0, "refused": 0}
    for _ in range(12):
        order_id = waiting_order(client, app_module, market)
        met = format(decimal(fill_price(market) * Fraction(99, 100)), "f")
        with store.postgres.connection() as conn:  # the market meets it now
            conn.execute("UPDATE orders SET limit_price = %s WHERE id = %s", (met, order_id))
        client_id = store.get_order(order_id).client_id
        start, refused = threading.Barrier(2), []

        def run_worker(order_id=order_id, start=start):
            start.wait()
            worker._run_order(order_id, "receipt", app_module.notifier)

        def run_amend(order_id=order_id, start=start, refused=refused, client_id=client_id):
            start.wait()
            try:
                amend.amend(order_id, client_id, AmendRequest(expiresInSlots=5000), 400,
                            app_module.notifier)  # fmt: skip
            except amend.NotAmendable as e:
                refused.append(e.details["status"])

        threads = [threading.Thread(target=run_worker), threading.Thread(target=run_amend)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with store.postgres.connection() as conn:  # a lost worker's lease: give it up now
            conn.execute("UPDATE orders SET lease_until = NULL WHERE id = %s", (order_id,))
        drain(app_module)
        history = store.history(order_id)
        kinds = [h.status for h in history]
        assert [h.seq for h in history] == list(range(1, len(history) + 1))
        assert [s for s in kinds if s.terminal] == [OrderStatus.CONFIRMED] == kinds[-1:]
        amended = [h for h in history if "amended" in h.payload]
        if refused:
            assert not amended and refused[0] != "open"
            outcomes["refused"] += 1
        else:
            assert len(amended) == 1 and kinds.index(OrderStatus.ROUTING) > amended[0].seq - 1
            outcomes["amended"] += 1
    assert sum(outcomes.values()) == 12, outcomes


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"limitPrice": 150}, "limitPrice"),
        ({"limitPrice": "0"}, "limitPrice"),
        ({"limitPrice": "-1"}, "limitPrice"),
        ({"maxPrice": "1"}, "maxPrice"),  # a limit order has none
        ({"expiresAt": "2000-01-01T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "2100-01-01T00:00:00Z", "expiresInSlots": 5}, "expiresAt"),
        ({"expiresInSlots": 0}, "expiresInSlots"),
        ({"status": "confirmed"}, "status"),
    ],
)
def test_a_malformed_amendment_is_422_naming_the_field(client, app_module, market, body, field):  # noqa: F811
    order_id = waiting_order(client, app_module, market)
    answer = patch(client, order_id, body)
    assert answer.status_code == 422, answer.json_body
    assert answer.json_body["error"]["details"][0]["field"] == field
    assert statuses(order_id) == ["pending", "open"]


def test_another_client_s_order_is_not_found(client, app_module, market):  # noqa: F811
    order_id = waiting_order(client, app_module, market)
    other_key = keys.create(f"other-{uuid.uuid4().hex[:8]}").key
    assert patch(client, order_id, {"limitPrice": "1"}, key=other_key).status_code == 404
    assert patch(client, str(uuid.uuid4()), {"limitPrice": "1"}).status_code == 404
    assert patch(client, "nope", {"limitPrice": "1"}).status_code == 404


def test_a_worker_that_read_the_order_before_an_amendment_loses_its_move(
    client,
    app_module,
    market,  # noqa: F811
    monkeypatch,
):
    """The amendment lands while a delivery is routing with the old limit: that delivery's
    move to ``routing`` fails, and the order executes under the new limit (the amendment
    sent it again)."""
    order_id = waiting_order(client, app_module, market)
    client_id = store.get_order(order_id).client_id
    met = format(decimal(fill_price(market) * Fraction(99, 100)), "f")
    with store.postgres.connection() as conn:
        conn.execute("UPDATE orders SET limit_price = %s WHERE id = %s", (met, order_id))
    real_route = worker.router.plan

    def route_then_amend(*args, **kwargs):
        route = real_route(*args, **kwargs)
        amend.amend(order_id, client_id, AmendRequest(limitPrice="0.000001"), 400,
                    app_module.notifier)  # fmt: skip
        return route

    monkeypatch.setattr(worker.router, "plan", route_then_amend)
    worker._run_order(order_id, "receipt", app_module.notifier)
    assert statuses(order_id) == ["pending", "open", "open"]  # the delivery lost
    monkeypatch.setattr(worker.router, "plan", real_route)
    with store.postgres.connection() as conn:  # the lost delivery's lease, given up now
        conn.execute("UPDATE orders SET lease_until = NULL WHERE id = %s", (order_id,))
    drain(app_module)
    assert store.get_order(order_id).status == OrderStatus.CONFIRMED
    assert str(store.get_order(order_id).limit_price) == "0.000001"


def test_an_order_routing_is_refused(client, app_module, market):  # noqa: F811
    order_id = waiting_order(client, app_module, market)
    order = store.get_order(order_id)
    store.advance(order.id, OrderStatus.OPEN, order.last_seq,
                  store.StatusChange.routing(order.venues, 1), store.Actor.WORKER)  # fmt: skip
    answer = patch(client, order_id, {"limitPrice": "1"})
    assert answer.status_code == 409
    assert answer.json_body["error"] == {
        "code": "not_amendable",
        "message": "the order is routing: only an order waiting in open can be amended",
        "details": {"status": "routing"},
    }


def test_openapi_documents_amend(client):
    doc = client.http.get("/api/openapi.json").json_body
    operation = doc["paths"]["/api/orders/{order_id}"]["patch"]
    assert "409" in operation["responses"]
    schema = doc["components"]["schemas"]["AmendRequest"]
    assert {"limitPrice", "maxPrice", "expiresAt", "expiresInSlots"} <= set(schema["properties"])
