"""TWAP and DCA parent orders: a row of their own (pending → working → completed |
cancelled | failed) placing one child market order per interval from delayed messages. Real
Postgres, Redis and SQS; the worker driven from the queue."""

import json
import threading
import time
from decimal import Decimal

import pytest

from chalicelib.backends import postgres, queue
from chalicelib.backends.aws import sqs_client
from chalicelib.orders import moves, parents, reaper, store
from chalicelib.orders.lifecycle import Actor, OrderStatus
from localaws.poller import lambda_record
from tests.integration.driver import run_until
from tests.integration.test_limit_orders import (  # noqa: F401 - the market fixture
    drain,
    market,
    statuses,
)
from tests.integration.test_stop_orders import oracle_price

pytestmark = pytest.mark.integration


def twap_body(**extra) -> dict:
    return {"type": "twap", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.000000002",
            "slices": 3, "intervalSeconds": 1, "slippageBps": 100, **extra}  # fmt: skip


def dca_body(**extra) -> dict:
    return {"type": "dca", "tokenIn": "SOL", "tokenOut": "USDC", "amountPerCycle": "0.5",
            "cycles": 2, "intervalSeconds": 1, "slippageBps": 100, **extra}  # fmt: skip


def place(client, body) -> str:
    answer = client.http.post(
        "/api/orders/execute", headers={"content-type": "application/json"}, body=json.dumps(body)
    )
    assert answer.status_code == 202, answer.json_body
    assert answer.json_body["status"] == "pending"
    return answer.json_body["orderId"]


def ended(order_id) -> bool:
    return store.get_order(order_id).status.terminal


def all_ended(parent_id) -> bool:
    return ended(parent_id) and all(c.status.terminal for c in store.children(parent_id))


def assert_seq_ordered(order_id) -> None:
    history = store.history(order_id)
    assert [h.seq for h in history] == list(range(1, len(history) + 1))
    assert sum(h.status.terminal for h in history) <= 1


def receive_one(wait_s: int = 2) -> dict:
    got = sqs_client().receive_message(
        QueueUrl=queue.queue_url(), MaxNumberOfMessages=1, WaitTimeSeconds=wait_s,
        AttributeNames=["All"], VisibilityTimeout=60,
    )["Messages"]  # fmt: skip
    return got[0]


def deliver(app_module, message: dict, receive_count: int = 1) -> dict:
    attributes = {**message["Attributes"], "ApproximateReceiveCount": str(receive_count)}
    message = {**message, "Attributes": attributes}
    record = lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:orders", "us-east-1")
    return app_module.process_orders({"Records": [record]}, None)


def delete(message: dict) -> None:
    sqs_client().delete_message(QueueUrl=queue.queue_url(), ReceiptHandle=message["ReceiptHandle"])


def test_a_twap_places_each_slice_once_and_completes(client, app_module, market):  # noqa: F811
    parent_id = place(client, twap_body())
    run_until(app_module, lambda: all_ended(parent_id), timeout_s=30)
    children = store.children(parent_id)
    assert [c.slice_index for c in children] == [0, 1, 2]
    assert [c.amount_in for c in children] == [333_333_334, 333_333_334, 333_333_334]
    assert sum(c.amount_in for c in children) == 1_000_000_002
    assert all(c.status == OrderStatus.CONFIRMED and c.type == "market" for c in children)
    assert all(c.slippage_bps == 100 and c.client_id == children[0].client_id for c in children)
    history = store.history(parent_id)
    assert [h.status for h in history][:2] == ["pending", "working"]
    assert history[-1].status == OrderStatus.COMPLETED
    fills = [h.payload["child"] for h in history if "child" in h.payload]
    assert sorted(f["slice"] for f in fills) == [0, 1, 2]
    assert all(f["status"] == "confirmed" and int(f["amountOut"]) > 0 for f in fills)
    assert_seq_ordered(parent_id)
    answer = client.http.get(f"/api/orders/{parent_id}").json_body
    assert answer["order"]["status"] == "completed" and answer["order"]["type"] == "twap"
    assert answer["order"]["schedule"]["slicesDone"] == 3
    assert [c["sliceIndex"] for c in answer["children"]] == [0, 1, 2]
    assert all(c["parentOrderId"] == parent_id for c in answer["children"])
    fill = answer["fill"]
    assert fill["filledAmountIn"] == "1000000002" and fill["confirmed"] == 3
    out = sum(c.amount_out for c in children)
    assert fill["filledAmountOut"] == str(out) == answer["order"]["amountOut"]
    expected = Decimal(out).scaleb(-6) / Decimal(1_000_000_002).scaleb(-9)
    assert abs(Decimal(fill["averagePrice"]) - expected) < Decimal("1e-9")


def test_a_slice_message_handled_twice_places_one_child(client, app_module, market):  # noqa: F811
    """A worker killed after slice 0's commit, before its sends: the message comes back
    (receive count 2), places nothing again, and sends what was lost; none is skipped."""
    parent_id = place(client, twap_body())
    first = receive_one()
    assert json.loads(first["Body"]) == {"kind": "order", "orderId": parent_id, "slice": 0}

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed")

    real = parents._follow_up
    parents._follow_up = killed
    try:
        result = deliver(app_module, first)
    finally:
        parents._follow_up = real
    assert result["batchItemFailures"]  # not deleted: the queue redelivers it
    assert [c.slice_index for c in store.children(parent_id)] == [0]
    assert deliver(app_module, first, receive_count=2) == {"batchItemFailures": []}
    delete(first)
    assert [c.slice_index for c in store.children(parent_id)] == [0]
    run_until(app_module, lambda: all_ended(parent_id), timeout_s=30)
    drain(app_module)
    assert [c.slice_index for c in store.children(parent_id)] == [0, 1, 2]
    assert store.get_order(parent_id).status == OrderStatus.COMPLETED
    assert_seq_ordered(parent_id)


def test_two_deliveries_racing_for_a_slice_place_one_child(client, app_module, market):  # noqa: F811
    parent_id = place(client, twap_body(intervalSeconds=60))
    stale = store.get_order(parent_id)  # both read the parent before either places
    start = threading.Barrier(4)

    def run():
        start.wait()
        parents.run(stale, 0, False, app_module.notifier)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.children(parent_id)) == 1
    assert statuses(parent_id) == ["pending", "working", "working"]
    assert store.get_order(parent_id).next_slice == 1


def test_cancel_mid_twap_stops_the_remaining_slices(client, app_module, market):  # noqa: F811
    parent_id = place(client, twap_body(intervalSeconds=60))
    run_until(app_module, lambda: any(c.status.terminal for c in store.children(parent_id)))
    with postgres.connection() as conn:  # slice 1 is due: placed, its child not yet run
        conn.execute("UPDATE orders SET next_slice_at = now() WHERE id = %s", (parent_id,))
    parents.run(store.get_order(parent_id), 1, False, app_module.notifier)
    first, second = store.children(parent_id)
    assert (first.status, second.status) == (OrderStatus.CONFIRMED, OrderStatus.PENDING)
    answer = client.http.post(f"/api/orders/{parent_id}/cancel")
    assert answer.status_code == 200 and answer.json_body["status"] == "cancelled"
    assert statuses(second.id) == ["pending", "cancelled"]
    with postgres.connection() as conn:
        conn.execute("UPDATE orders SET next_slice_at = now() WHERE id = %s", (parent_id,))
    assert parents.run(store.get_order(parent_id), 2, False, app_module.notifier)
    drain(app_module)
    assert len(store.children(parent_id)) == 2
    assert statuses(parent_id)[-1] == OrderStatus.CANCELLED
    assert_seq_ordered(parent_id)
    again = client.http.post(f"/api/orders/{parent_id}/cancel")
    assert again.status_code == 409


def test_a_parent_fails_only_when_every_child_failed(client, app_module, market):  # noqa: F811
    parent_id = place(client, twap_body(slices=2, intervalSeconds=60))
    for k in (0, 1):
        with postgres.connection() as conn:
            conn.execute("UPDATE orders SET next_slice_at = now() WHERE id = %s", (parent_id,))
        parents.run(store.get_order(parent_id), k, False, app_module.notifier)
    for child in store.children(parent_id):
        moves.fail(str(child.id), "venue down", "test", Actor.WORKER, app_module.notifier)
    parent = store.get_order(parent_id)
    assert parent.status == OrderStatus.FAILED
    assert parent.failure_reason == "every child order failed"
    assert_seq_ordered(parent_id)


def test_a_dca_skips_and_records_a_cycle_outside_its_band(client, app_module, market):  # noqa: F811
    price = oracle_price()
    above = format(Decimal(int(price * 2)), "f")
    parent_id = place(client, dca_body(minPrice=above))
    first = receive_one()
    deliver(app_module, first)
    delete(first)
    with postgres.connection() as conn:  # the band widens: the next cycle is inside it
        conn.execute("UPDATE orders SET band_min = 1 WHERE id = %s", (parent_id,))
    run_until(app_module, lambda: all_ended(parent_id), timeout_s=30)
    history = store.history(parent_id)
    skips = [h.payload for h in history if isinstance(h.payload.get("skipped"), dict)]
    assert len(skips) == 1 and skips[0]["slice"] == 0
    assert skips[0]["skipped"]["reason"] == "below_min_price"
    assert skips[0]["skipped"]["minPrice"] == above
    children = store.children(parent_id)
    assert [(c.slice_index, c.amount_in) for c in children] == [(1, 500_000_000)]
    assert history[-1].status == OrderStatus.COMPLETED
    assert history[-1].payload["skipped"] == 1 and history[-1].payload["confirmed"] == 1
    fill = client.http.get(f"/api/orders/{parent_id}").json_body["fill"]
    assert fill["skipped"] == 1 and fill["filledAmountIn"] == "500000000"


def test_a_dca_every_cycle_skipped_completes_empty(client, app_module, market):  # noqa: F811
    below = format(Decimal(int(oracle_price() / 2)), "f")
    parent_id = place(client, dca_body(maxPrice=below))
    run_until(app_module, lambda: ended(parent_id), timeout_s=30)
    assert store.children(parent_id) == []
    history = store.history(parent_id)
    skips = [h.payload["skipped"] for h in history if "slice" in h.payload]
    assert [s["reason"] for s in skips] == ["above_max_price", "above_max_price"]
    assert history[-1].status == OrderStatus.COMPLETED


def test_the_reaper_sends_a_parent_whose_next_slice_is_overdue(client, app_module, market):  # noqa: F811
    parent_id = place(client, twap_body(slices=2, intervalSeconds=60))
    first = receive_one()
    deliver(app_module, first)
    delete(first)
    run_until(app_module, lambda: all(c.status.terminal for c in store.children(parent_id)))
    with postgres.connection() as conn:  # slice 1's message was lost, and it is long due
        conn.execute(
            "UPDATE orders SET next_slice_at = now() - interval '1 hour' WHERE id = %s",
            (parent_id,),
        )
    assert reaper.run(app_module.notifier) >= 1
    run_until(app_module, lambda: all_ended(parent_id), timeout_s=30)
    assert [c.slice_index for c in store.children(parent_id)] == [0, 1]


def test_a_long_interval_is_waited_out_in_delays(client, app_module, market, monkeypatch):  # noqa: F811
    parent_id = place(client, twap_body(slices=2, intervalSeconds=3600))
    sent = []
    real = queue.send_order
    monkeypatch.setattr(queue, "send_order", lambda oid, delay_s=0, slice_index=None: (
        sent.append((slice_index, delay_s)), real(oid, delay_s, slice_index)))  # fmt: skip
    first = receive_one()
    deliver(app_module, first)
    delete(first)
    assert (1, 3600) in sent  # capped at 900 by the queue: it comes early...
    parents.run(store.get_order(parent_id), 1, False, app_module.notifier)
    assert len(store.children(parent_id)) == 1  # ...and waits on
    assert sent[-1][0] == 1 and 3590 <= sent[-1][1] <= 3600


def test_a_client_sees_only_its_own_parents(client, app_module, market):  # noqa: F811
    parent_id = place(client, twap_body(intervalSeconds=60))
    assert parent_id in store.live_order_ids()
    from chalicelib.access import keys

    other = keys.create(f"other-{time.time_ns()}").key
    headers = {"Authorization": f"Bearer {other}"}
    answer = client.http.get(f"/api/orders/{parent_id}", headers=headers)
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (twap_body(slices=1), "slices"),
        (twap_body(slices=101), "slices"),
        (twap_body(slices="3"), "slices"),
        (twap_body(intervalSeconds=0), "intervalSeconds"),
        (twap_body(amount="0.000000002"), "amount"),
        (twap_body(amount="abc"), "amount"),
        (twap_body(tokenIn="NOPE"), "tokenIn"),
        (twap_body(limitPrice="1"), "limitPrice"),
        ({k: v for k, v in twap_body().items() if k != "slices"}, "slices"),
        (dca_body(cycles=0), "cycles"),
        (dca_body(minPrice="0"), "minPrice"),
        (dca_body(minPrice="2", maxPrice="1"), "minPrice"),
        (dca_body(maxPrice=1), "maxPrice"),
        (dca_body(amount="1"), "amount"),
        ({k: v for k, v in dca_body().items() if k != "amountPerCycle"}, "amountPerCycle"),
    ],
)
def test_a_malformed_parent_is_422_naming_the_field(client, body, field):
    answer = client.http.post(
        "/api/orders/execute", headers={"content-type": "application/json"}, body=json.dumps(body)
    )
    assert answer.status_code == 422, answer.json_body
    assert field in [d["field"] for d in answer.json_body["error"]["details"]], answer.json_body


def test_openapi_documents_twap_and_dca_with_examples(client):
    doc = client.http.get("/api/openapi.json").json_body
    content = doc["paths"]["/api/orders/execute"]["post"]["requestBody"]["content"]
    refs = [s["$ref"].rsplit("/", 1)[1] for s in content["application/json"]["schema"]["oneOf"]]
    assert {"TwapRequest", "DcaRequest"} <= set(refs)
    examples = content["application/json"]["examples"]
    assert examples["twap"]["value"]["slices"] == 5
    schemas = doc["components"]["schemas"]
    assert {"slices", "intervalSeconds", "amount"} <= set(schemas["TwapRequest"]["properties"])
    dca = set(schemas["DcaRequest"]["properties"])
    assert {"amountPerCycle", "cycles", "minPrice", "maxPrice"} <= dca
    assert {"children", "fill"} <= set(schemas["OrderDetail"]["properties"])


def test_cancel_many_cancels_a_parent_with_its_waiting_children(client, app_module, market):  # noqa: F811
    parent_id = place(client, twap_body(intervalSeconds=60))
    parents.run(store.get_order(parent_id), 0, False, app_module.notifier)
    (child,) = store.children(parent_id)
    answer = client.http.post(
        "/api/orders/cancel", headers={"content-type": "application/json"},
        body=json.dumps({"all": True}),
    )  # fmt: skip
    assert answer.status_code == 200, answer.json_body
    outcomes = {r["orderId"]: r["outcome"] for r in answer.json_body["results"]}
    assert outcomes == {parent_id: "cancelled", str(child.id): "cancelled"}
    assert statuses(parent_id)[-1] == statuses(child.id)[-1] == OrderStatus.CANCELLED
    assert_seq_ordered(parent_id)
