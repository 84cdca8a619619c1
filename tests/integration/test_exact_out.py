"""``swapMode: "ExactOut"`` on GET /api/quote and on market orders: exactly the output
wanted, never more spent than maxIn, or a failure that says why. Real Postgres, Redis and
SQS (moto)."""

from urllib.parse import urlencode

import pytest

from chalicelib.backends import venues
from chalicelib.dex import Market
from chalicelib.orders import store
from tests.integration.conftest import post
from tests.integration.driver import run_until

pytestmark = pytest.mark.integration

# Buy exactly 100 USDC with SOL.
BUY = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "100",
       "swapMode": "ExactOut", "slippageBps": 100}  # fmt: skip
QUERY = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "100", "swapMode": "ExactOut",
         "slippageBps": "100"}  # fmt: skip


def terminal(*order_ids):
    return lambda: all(store.get_order(o).status.terminal for o in order_ids)


@pytest.fixture
def frozen(settings_env, monkeypatch):
    market = venues.market()
    slot = market.current_slot()
    monkeypatch.setattr(market, "_clock", lambda: slot)
    return market


def test_an_exact_out_quote_gives_the_input_and_its_max(client, frozen):
    quote = client.http.get("/api/quote?" + urlencode(QUERY)).json_body
    assert quote["swapMode"] == "ExactOut" and quote["outAmount"] == "100000000"
    assert quote["minOut"] == quote["outAmount"]
    inside, most = int(quote["inAmount"]), int(quote["maxIn"])
    assert most == -(-inside * 10_100 // 10_000) and quote["otherAmountThreshold"] == str(most)
    last = [
        leg for leg in quote["routePlan"] if leg["hop"] == max(x["hop"] for x in quote["routePlan"])
    ]
    assert sum(int(leg["outAmount"]) for leg in last) == 100_000_000


def test_an_exact_out_order_receives_exactly_its_amount_within_its_quotes_max_in(
    client, app_module, frozen
):
    quote = client.http.get("/api/quote?" + urlencode(QUERY)).json_body
    answer = post(client, {**BUY, "quoteId": quote["quoteId"]})
    assert answer.status_code == 202, answer.json_body
    order_id = answer.json_body["orderId"]
    assert store.get_order(order_id).amount_in == int(quote["maxIn"])  # its budget
    run_until(app_module, terminal(order_id))
    order = store.get_order(order_id)
    assert order.status == "confirmed", order.failure_reason
    assert order.amount_out == 100_000_000
    assert order.amount_in == int(quote["inAmount"])  # what it spent (frozen: as quoted)
    confirmed = store.history(order_id)[-1].payload
    assert confirmed["amountIn"] == quote["inAmount"] and confirmed["amountOut"] == "100000000"


def test_without_a_quote_the_budget_is_the_routes_max_in_at_submit(client, app_module, frozen):
    order_id = post(client, BUY).json_body["orderId"]
    budget = store.get_order(order_id).amount_in
    quote = client.http.get("/api/quote?" + urlencode(QUERY)).json_body
    assert budget == int(quote["maxIn"])
    run_until(app_module, terminal(order_id))
    assert store.get_order(order_id).amount_out == 100_000_000


def test_an_exact_out_order_that_would_spend_more_than_max_in_fails_saying_so(
    client, app_module, frozen, monkeypatch
):
    order_id = post(client, BUY).json_body["orderId"]
    with store.postgres.connection() as conn:  # as if the price rose 5 % since submit
        conn.execute("UPDATE orders SET amount_in = amount_in * 95 / 100 WHERE id = %s",
                     (order_id,))  # fmt: skip
    spent_on = []
    monkeypatch.setattr(Market, "land", lambda *a, **k: spent_on.append(a))
    run_until(app_module, terminal(order_id), timeout_s=60)
    order = store.get_order(order_id)
    assert order.status == "failed" and order.amount_out is None
    assert "the input needed rose from" in order.failure_reason
    assert "over maxIn" in order.failure_reason and not spent_on


@pytest.mark.parametrize(
    "body",
    [
        {**BUY, "type": "limit", "limitPrice": "1", "expiresInSlots": 100},
        {**BUY, "minOut": "1"},
        {**BUY, "swapMode": "exactOut"},
    ],
)
def test_exact_out_is_for_market_orders_without_min_out(client, body):
    assert post(client, body).status_code == 422


def test_an_exact_in_quote_does_not_bind_an_exact_out_order(client, frozen):
    exact_in = {**QUERY, "swapMode": "ExactIn", "amount": "1"}
    quote = client.http.get("/api/quote?" + urlencode(exact_in)).json_body
    answer = post(client, {**BUY, "amount": "1", "quoteId": quote["quoteId"]})
    assert answer.json_body["error"]["code"] == "quote_mismatch"
