"""Stop orders: they wait in ``open`` until the oracle price crosses their trigger; the check
job records the trigger (read with an index) and they execute as a market order, or as a
limit order with a limitPrice. Real Postgres, Redis and SQS; the market's clock is frozen."""

import json
from decimal import Decimal
from fractions import Fraction

import pytest

from chalicelib.backends import postgres, venues
from chalicelib.orders import limit_check, store
from chalicelib.orders.lifecycle import OrderStatus
from tests.integration.test_amend import patch
from tests.integration.test_limit_orders import (  # noqa: F401 - the market fixture
    SOL,
    USDC,
    decimal,
    drain,
    fill_price,
    market,
    post,
    statuses,
)

pytestmark = pytest.mark.integration


def oracle_price() -> Fraction:
    """USDC per SOL, UI units, as the oracle says now."""
    snap = venues.market().snapshot("raydium", SOL, USDC)
    return snap.oracle_price(SOL.mint).rate * Fraction(10**SOL.decimals, 10**USDC.decimals)


def stop_body(trigger: Fraction, direction: str, **extra) -> dict:
    return {"type": "stop", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "2",
            "slippageBps": 100, "venues": ["raydium"], "direction": direction,
            "triggerPrice": format(decimal(trigger), "f"), **extra}  # fmt: skip


EXECUTED = ["routing", "building", "submitted", "confirmed"]


def test_a_stop_waits_until_the_oracle_crosses_its_trigger_then_executes_as_market(
    client,
    app_module,
    market,  # noqa: F811
):
    order_id = post(client, stop_body(oracle_price() * Fraction(9, 10), "below"))
    drain(app_module)
    assert statuses(order_id) == ["pending", "open"]
    assert store.get_order(order_id).attempts == 0
    assert limit_check.run(app_module.notifier).stops_triggered == 0  # not crossed

    # The stop moves up past the price (as the price falling past it would do).
    answer = patch(client, order_id, {"triggerPrice": format(decimal(oracle_price() * 2), "f")})
    assert answer.status_code == 200, answer.json_body
    drain(app_module)  # the amendment's delivery: still no trigger recorded, still waiting
    assert statuses(order_id) == ["pending", "open", "open"]
    result = limit_check.run(app_module.notifier)
    drain(app_module)

    assert result.stops_triggered == 1
    history = store.history(order_id)
    assert [h.status for h in history] == ["pending", "open", "open", "open", *EXECUTED]
    triggered = history[3].payload["triggered"]
    assert triggered["direction"] == "below"
    assert Decimal(triggered["oraclePrice"]) <= Decimal(triggered["triggerPrice"])
    view = client.http.get(f"/api/orders/{order_id}").json_body["order"]
    assert view["type"] == "stop" and view["direction"] == "below" and view["triggeredAt"]
    assert limit_check.run(app_module.notifier).stops_triggered == 0  # triggered once


def test_an_above_stop_crossed_at_placement_triggers_on_the_next_check(
    client,
    app_module,
    market,  # noqa: F811
):
    above = post(client, stop_body(oracle_price() * Fraction(9, 10), "above"))
    below = post(client, stop_body(oracle_price() * Fraction(9, 10), "below"))  # not crossed
    drain(app_module)
    assert limit_check.run(app_module.notifier).stops_triggered == 1
    drain(app_module)
    assert statuses(above)[-4:] == EXECUTED
    assert statuses(below) == ["pending", "open"]


def test_a_stop_limit_waits_for_its_limit_once_triggered(
    client,
    app_module,
    market,  # noqa: F811
):
    far = decimal(fill_price(market) * 2)
    order_id = post(client, stop_body(oracle_price() * 2, "below", limitPrice=format(far, "f")))
    drain(app_module)
    limit_check.run(app_module.notifier)
    drain(app_module)
    assert statuses(order_id) == ["pending", "open", "open"]  # triggered, limit unmet
    assert store.get_order(order_id).triggered_at is not None

    met = decimal(fill_price(market) * Fraction(99, 100))
    assert patch(client, order_id, {"limitPrice": format(met, "f")}).status_code == 200
    drain(app_module)
    order = store.get_order(order_id)
    assert order.status == OrderStatus.CONFIRMED
    assert order.amount_out >= order.limit_min_out


def test_a_stop_can_be_cancelled_while_it_waits(client, app_module, market):  # noqa: F811
    order_id = post(client, stop_body(oracle_price() / 2, "below"))
    drain(app_module)
    assert client.http.post(f"/api/orders/{order_id}/cancel").status_code == 200
    assert statuses(order_id) == ["pending", "open", "cancelled"]
    assert limit_check.run(app_module.notifier).stops_triggered == 0


def test_the_check_reads_crossed_stops_with_the_index(client, app_module, market):  # noqa: F811
    for _ in range(3):
        post(client, stop_body(oracle_price() / 2, "below"))
    drain(app_module)
    with postgres.connection() as conn:
        conn.execute("ANALYZE orders")
        conn.execute("SET enable_seqscan = off")
        for crossed in store._STOPS_CROSSED.values():
            plan = conn.execute(
                "EXPLAIN (FORMAT JSON) " + store.STOPS_SQL.format(crossed=crossed),
                {"mint_in": SOL.mint, "mint_out": USDC.mint, "direction": "below",
                 "price": 100, "limit": 1000},
            ).fetchone()  # fmt: skip
            assert "orders_waiting_stop_idx" in json.dumps(plan), json.dumps(plan)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"triggerPrice": None}, "triggerPrice"),
        ({"triggerPrice": "0"}, "triggerPrice"),
        ({"triggerPrice": 100}, "triggerPrice"),
        ({"direction": None}, "direction"),
        ({"direction": "sideways"}, "direction"),
        ({"maxPrice": "1"}, "maxPrice"),
        ({"expiresAt": "2000-01-01T00:00:00Z"}, "expiresAt"),
    ],
)
def test_a_malformed_stop_order_is_422_naming_the_field(client, extra, field):
    body = {**stop_body(Fraction(100), "below"), **extra}
    body = {k: v for k, v in body.items() if v is not None}
    answer = client.http.post("/api/orders/execute", headers={"content-type": "application/json"},
                              body=json.dumps(body))  # fmt: skip
    assert answer.status_code == 422, answer.json_body
    assert answer.json_body["error"]["details"][0]["field"] == field


def test_trigger_fields_belong_to_stop_orders(client):
    body = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1",
            "triggerPrice": "100", "direction": "below"}  # fmt: skip
    answer = client.http.post("/api/orders/execute", headers={"content-type": "application/json"},
                              body=json.dumps(body))  # fmt: skip
    assert answer.status_code == 422
    assert answer.json_body["error"]["details"][0]["field"] == "triggerPrice"
