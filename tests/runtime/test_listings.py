"""Sniper orders under the local runtime: the engine starts with ``LISTINGS`` naming a token
that the mock market lists a few seconds later; orders placed over HTTP before the listing wait
in ``open``, then fill one at a time in arrival order, none above its ``maxPrice``."""

import json
import time
from fractions import Fraction

import pytest

from harness.http import get_order, submit, wait_for
from harness.runtime import ZERO_LATENCY, Runtime

pytestmark = pytest.mark.integration

SLOT_MS = 400
LEAD_S = 20  # the listing comes this long after the runtime is told of it
TOKEN = {"symbol": "SNIPE", "mint": "SnipeNew".ljust(44, "1"), "decimals": 6}
# 1,000,000 SNIPE against 10,000 USDC: 0.01 USDC each before any fill.
POOL = {"quote": "USDC", "reserve": 10**12, "quote_reserve": 10**10}
# 100 USDC each. The second's bound pays for the fresh pool (0.010125 a token, fee included)
# but not once the first has bought: it must fail, and the line go on past it.
MAX_PRICES = ("0.02", "0.0102", "0.05", "0.05", "0.05")


@pytest.fixture(scope="module")
def listed(runtime_env, tmp_path_factory):
    """A runtime whose market lists SNIPE at a slot ``LEAD_S`` from now: (runtime, the time
    of the listing slot)."""
    folder = tmp_path_factory.mktemp("data")
    slot = (time.time_ns() // 1_000_000 + LEAD_S * 1000) // SLOT_MS
    listings = json.dumps([{**TOKEN, **POOL, "slot": slot}])
    env = runtime_env(**ZERO_LATENCY, LISTINGS=listings, SLOT_MS=str(SLOT_MS))
    # Two worker processes for events: each runs a market of its own, as Lambdas do.
    runtime = Runtime(env, data_dir=folder, log_path=folder / "log", schedule_interval=1,
                      extra_args=("--workers", "2"))  # fmt: skip
    yield runtime.start(), slot * SLOT_MS / 1000
    assert runtime.stop() == 0, runtime.log()


def sniper(max_price: str) -> dict:
    return {"type": "sniper", "tokenIn": "USDC", "tokenOut": TOKEN["symbol"], "amount": "100",
            "slippageBps": 100, "maxPrice": max_price}  # fmt: skip


def test_sniper_orders_fill_in_arrival_order_from_the_listing_within_their_max_price(listed):
    engine, listed_at = listed
    ids = [submit(engine.http, sniper(price))["orderId"] for price in MAX_PRICES]
    assert time.time() < listed_at - 2, "the runtime took too long to start for this test"
    time.sleep(2)  # a few check-job runs before the listing
    assert {get_order(engine.http, o)["order"]["status"] for o in ids} == {"open"}

    def finished():
        views = [get_order(engine.http, o) for o in ids]
        done = all(v["order"]["status"] in ("confirmed", "failed") for v in views)
        return views if done else None

    views = wait_for(finished, LEAD_S + 60, interval_s=0.5, what="the sniper orders to finish")

    orders = [v["order"] for v in views]
    expected = ["confirmed", "failed", "confirmed", "confirmed", "confirmed"]
    assert [o["status"] for o in orders] == expected, [o.get("failureReason") for o in orders]
    assert orders[1]["failureReason"].startswith("the price is above maxPrice 0.0102")
    filled = [(o, v["history"]) for o, v in zip(orders, views, strict=True)
              if o["status"] == "confirmed"]  # fmt: skip
    paid = [Fraction(o["amountIn"]) / Fraction(o["amountOut"]) for o, _ in filled]
    for price, (order, _) in zip(paid, filled, strict=True):
        assert price <= Fraction(order["maxPrice"]), order
    assert paid == sorted(paid) and len(set(paid)) == len(paid)  # each bought after the last
    for (_, before), (_, after) in zip(filled, filled[1:], strict=False):
        confirmed = next(h for h in before if h["status"] == "confirmed")["createdAt"]
        routing = next(h for h in after if h["status"] == "routing")["createdAt"]
        assert routing >= confirmed  # one at a time, in arrival order
    first_routing = next(h for h in filled[0][1] if h["status"] == "routing")["createdAt"]
    assert first_routing >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(listed_at - 1))
