"""One-cancels-the-other: a take-profit limit order and a stop-loss stop order placed
together; whichever starts executing cancels the other in the same transaction, so exactly
one executes even when both trigger at once. Real Postgres, Redis and SQS."""

import json
import threading
from fractions import Fraction

import pytest

from chalicelib.backends import postgres, queue
from chalicelib.orders import limit_check, store, worker
from chalicelib.orders.lifecycle import OrderStatus
from tests.integration.driver import poll_once
from tests.integration.test_limit_orders import (  # noqa: F401 - the market fixture
    decimal,
    drain,
    fill_price,
    market,
    statuses,
)
from tests.integration.test_stop_orders import oracle_price

pytestmark = pytest.mark.integration


def oco_body(take_profit: Fraction, trigger: Fraction, **stop) -> dict:
    return {"type": "oco", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "2",
            "slippageBps": 100, "venues": ["raydium"],
            "takeProfit": {"limitPrice": format(decimal(take_profit), "f"),
                           "expiresInSlots": 100_000},
            "stopLoss": {"triggerPrice": format(decimal(trigger), "f"), "direction": "below",
                         **stop}}  # fmt: skip


def place(client, body, key=None):
    headers = {"content-type": "application/json", **({"Idempotency-Key": key} if key else {})}
    return client.http.post("/api/orders/execute", headers=headers, body=json.dumps(body))


def placed_pair(client, app_module, market) -> tuple[str, str]:  # noqa: F811
    """A pair both of whose orders wait: the take profit far above the market, the stop far
    below the oracle."""
    answer = place(client, oco_body(fill_price(market) * 2, oracle_price() / 2))
    assert answer.status_code == 202, answer.json_body
    take, stop = answer.json_body["takeProfit"]["orderId"], answer.json_body["stopLoss"]["orderId"]
    drain(app_module)
    assert statuses(take) == statuses(stop) == ["pending", "open"]
    return take, stop


def both_executable(market, take: str, stop: str) -> None:  # noqa: F811
    """The market now meets the take profit and the stop has triggered: both may execute."""
    met = format(decimal(fill_price(market) * Fraction(99, 100)), "f")
    with postgres.connection() as conn:
        conn.execute("UPDATE orders SET limit_price = %s WHERE id = %s", (met, take))
        conn.execute("UPDATE orders SET triggered_at = now() WHERE id = %s", (stop,))


def assert_exactly_one_executed(take: str, stop: str) -> str:
    ends = {o: statuses(o) for o in (take, stop)}
    winners = [o for o, h in ends.items() if OrderStatus.ROUTING in h]
    assert len(winners) == 1, ends
    (winner,) = winners
    loser = stop if winner == take else take
    assert ends[winner][-1] == OrderStatus.CONFIRMED
    assert ends[loser] == ["pending", "open", "cancelled"]
    assert store.history(loser)[-1].payload == {"from": "open", "ocoExecuted": winner}
    for order_id in (take, stop):
        history = store.history(order_id)
        assert [h.seq for h in history] == list(range(1, len(history) + 1))
    return winner


def test_a_pair_is_two_linked_orders_of_their_own_types(client, app_module, market):  # noqa: F811
    take, stop = placed_pair(client, app_module, market)
    take_view = client.http.get(f"/api/orders/{take}").json_body["order"]
    stop_view = client.http.get(f"/api/orders/{stop}").json_body["order"]
    assert (take_view["type"], stop_view["type"]) == ("limit", "stop")
    assert take_view["linkedOrderId"] == stop and stop_view["linkedOrderId"] == take
    assert take_view["expiresAt"] == stop_view["expiresAt"]


def test_the_take_profit_executing_cancels_the_stop_loss(client, app_module, market):  # noqa: F811
    take, stop = placed_pair(client, app_module, market)
    answer = client.http.request(
        "PATCH", f"/api/orders/{take}", headers={"content-type": "application/json"},
        body=json.dumps({"limitPrice": format(decimal(fill_price(market) / 2), "f")}).encode(),
    )  # fmt: skip
    assert answer.status_code == 200
    drain(app_module)
    assert assert_exactly_one_executed(take, stop) == take


def test_the_stop_loss_triggering_cancels_the_take_profit(client, app_module, market):  # noqa: F811
    take, stop = placed_pair(client, app_module, market)
    with postgres.connection() as conn:  # the oracle falls to the stop
        conn.execute("UPDATE orders SET trigger_price = %s WHERE id = %s",
                     (format(decimal(oracle_price() * 2), "f"), stop))  # fmt: skip
    assert limit_check.run(app_module.notifier).stops_triggered == 1
    drain(app_module)
    assert assert_exactly_one_executed(take, stop) == stop


def test_both_triggering_at_once_execute_exactly_one(client, app_module, market):  # noqa: F811
    """Both orders executable, two workers race them from two threads: one executes, the
    other is cancelled, whichever wins."""
    winners = {"take": 0, "stop": 0}
    for _ in range(12):
        take, stop = placed_pair(client, app_module, market)
        both_executable(market, take, stop)
        start = threading.Barrier(2)

        def run(order_id, start=start):
            start.wait()
            worker._run_order(order_id, "receipt", app_module.notifier)

        threads = [threading.Thread(target=run, args=(o,)) for o in (take, stop)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for order_id in (take, stop):  # the landing check of the one that executes
            while not store.get_order(order_id).status.terminal:
                with postgres.connection() as conn:
                    conn.execute("UPDATE orders SET lease_until = NULL WHERE id = %s", (order_id,))
                worker._run_order(order_id, "receipt", app_module.notifier)
        winner = assert_exactly_one_executed(take, stop)
        winners["take" if winner == take else "stop"] += 1
    assert sum(winners.values()) == 12, winners


def test_both_in_one_batch_execute_exactly_one(client, app_module, market):  # noqa: F811
    """Both orders' messages in one SQS batch: their writes share the batch's transaction."""
    take, stop = placed_pair(client, app_module, market)
    both_executable(market, take, stop)
    for order_id in (take, stop):
        queue.send_order(order_id)
    while poll_once(app_module.process_orders, queue.queue_url(), wait_s=0):
        pass
    drain(app_module)
    assert_exactly_one_executed(take, stop)


def test_cancelling_one_cancels_both(client, app_module, market):  # noqa: F811
    take, stop = placed_pair(client, app_module, market)
    assert client.http.post(f"/api/orders/{stop}/cancel").status_code == 200
    assert statuses(take) == statuses(stop) == ["pending", "open", "cancelled"]


def test_a_replay_answers_the_same_pair(client, app_module, market):  # noqa: F811
    body = oco_body(fill_price(market) * 2, oracle_price() / 2)
    first = place(client, body, key="pair-1")
    again = place(client, body, key="pair-1")
    other = place(client, {**body, "amount": "3"}, key="pair-1")
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 409)
    assert again.json_body == first.json_body
    assert len(store.list_orders(None, 10, None)[0]) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"takeProfit": None}, "takeProfit"),
        ({"stopLoss": None}, "stopLoss"),
        ({"takeProfit": {"limitPrice": "1"}}, "expiresAt"),
        ({"takeProfit": {"limitPrice": 1, "expiresInSlots": 5}}, "takeProfit.limitPrice"),
        ({"stopLoss": {"triggerPrice": "1"}}, "stopLoss.direction"),
        ({"stopLoss": {"triggerPrice": "1", "direction": "up"}}, "stopLoss.direction"),
        ({"stopLoss": {"triggerPrice": "0", "direction": "below"}}, "triggerPrice"),
        ({"tokenIn": "NOPE"}, "tokenIn"),
        ({"limitPrice": "1"}, "limitPrice"),
    ],
)
def test_a_malformed_pair_is_422_naming_the_field(client, change, field):
    body = {**oco_body(Fraction(200), Fraction(100)), **change}
    answer = place(client, {k: v for k, v in body.items() if v is not None})
    assert answer.status_code == 422, answer.json_body
    assert answer.json_body["error"]["details"][0]["field"] == field
    assert store.list_orders(None, 10, None)[0] == []


def test_openapi_documents_oco(client):
    doc = client.http.get("/api/openapi.json").json_body
    body = doc["paths"]["/api/orders/execute"]["post"]["requestBody"]
    refs = [s["$ref"] for s in body["content"]["application/json"]["schema"]["oneOf"]]
    assert [r.rsplit("/", 1)[1] for r in refs][:2] == ["OrderRequest", "OcoRequest"]
    schemas = doc["components"]["schemas"]
    assert {"takeProfit", "stopLoss"} <= set(schemas["OcoRequest"]["properties"])
    assert {"triggerPrice", "direction"} <= set(schemas["StopLoss"]["properties"])


def test_cancel_many_of_one_cancels_its_pair(client, app_module, market):  # noqa: F811
    take, stop = placed_pair(client, app_module, market)
    answer = client.http.post("/api/orders/cancel", headers={"content-type": "application/json"},
                              body=json.dumps({"orderIds": [take]}))  # fmt: skip
    assert [r["orderId"] for r in answer.json_body["results"]] == [take]
    assert statuses(take) == statuses(stop) == ["pending", "open", "cancelled"]
