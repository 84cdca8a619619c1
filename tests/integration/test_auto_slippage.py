"""``slippageBps: "auto"``: chosen from the pair's samples in Redis (shared by every worker),
within maxAutoSlippageBps, echoed; and slippage failures said in words. Real Postgres,
Redis and SQS (moto)."""

from urllib.parse import urlencode

import pytest

from chalicelib.backends.cache import redis_client
from chalicelib.orders import auto_slippage, store
from chalicelib.tokens import resolve
from tests.integration.conftest import post
from tests.integration.driver import ORDER, run_until

pytestmark = pytest.mark.integration

AUTO = {**ORDER, "slippageBps": "auto"}
SOL, USDC = resolve("SOL").mint, resolve("USDC").mint


def terminal(*order_ids):
    return lambda: all(store.get_order(o).status.terminal for o in order_ids)


def seed(samples_bps, prices=None):
    """Samples of earlier SOL -> USDC orders, as workers keep them."""
    key = auto_slippage._key(SOL, USDC)
    for i, bps in enumerate(samples_bps):
        price = "" if prices is None else prices[i]
        redis_client().xadd(key, {"bps": bps, "price": price})


def test_without_history_auto_is_the_default_within_the_cap(client):
    answer = post(client, AUTO)
    assert answer.status_code == 202, answer.json_body
    assert answer.json_body["slippageBps"] == 50
    assert store.get_order(answer.json_body["orderId"]).slippage_bps == 50
    capped = post(client, {**AUTO, "maxAutoSlippageBps": 20}).json_body
    assert capped["slippageBps"] == 20


def test_a_pair_that_slipped_gets_a_wider_bound_and_never_beyond_the_cap(client):
    seed([100] * 20)  # every recent order lost 1 %
    wide = post(client, AUTO).json_body
    assert wide["slippageBps"] == 125  # the tail and a quarter more
    assert post(client, {**AUTO, "maxAutoSlippageBps": 80}).json_body["slippageBps"] == 80
    redis_client().delete(auto_slippage._key(SOL, USDC))
    seed([1] * 20, prices=["100", "101", "100", "101"] * 5)  # calm fills, a moving price
    volatile = post(client, AUTO).json_body["slippageBps"]
    assert volatile >= 2 * 99  # twice the price moves' root mean square (~99-100 bps)


def test_a_confirmed_order_leaves_its_sample(client, app_module):
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id))
    order = store.get_order(order_id)
    assert order.status == "confirmed"
    samples, _ = auto_slippage.history(SOL, USDC)
    expected = -(-(order.route.out_amount - order.amount_out) * 10_000 // order.route.out_amount)
    assert samples == [expected]


def test_a_replay_of_an_auto_order_is_the_same_order_whatever_it_chose(client):
    first = post(client, AUTO, key="auto-1")
    seed([300] * 20)  # the choice would now differ
    again = post(client, AUTO, key="auto-1")
    assert again.status_code == 200 and again.json_body["orderId"] == first.json_body["orderId"]
    other = post(client, {**AUTO, "maxAutoSlippageBps": 20}, key="auto-1")
    assert other.status_code == 409


def test_an_auto_quote_binds_an_auto_order(client):
    query = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippageBps": "auto"}
    quote = client.http.get("/api/quote?" + urlencode(query)).json_body
    assert quote["autoSlippage"] is True and quote["slippageBps"] == 50
    bound = post(client, {**AUTO, "slippageBps": "auto", "quoteId": quote["quoteId"]})
    assert bound.status_code == 202, bound.json_body
    fixed = client.http.get("/api/quote?" + urlencode({**query, "slippageBps": "50"})).json_body
    mismatch = post(client, {**AUTO, "quoteId": fixed["quoteId"]})
    assert mismatch.json_body["error"]["code"] == "quote_mismatch"


@pytest.mark.parametrize(
    "body",
    [
        {**ORDER, "maxAutoSlippageBps": 100},  # a cap without "auto"
        {**AUTO, "maxAutoSlippageBps": 0},
        {**ORDER, "slippageBps": "AUTO"},
        {**ORDER, "slippageBps": "50"},
    ],
)
def test_auto_fields_are_parsed_strictly(client, body):
    assert post(client, body).status_code == 422
