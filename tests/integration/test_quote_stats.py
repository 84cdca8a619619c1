"""GET /api/quote, orders that carry their quote, and GET /api/stats, against real Postgres,
Redis and SQS (moto)."""

import json
import statistics
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from chalicelib.backends import cache as redis_cache
from chalicelib.backends import venues
from chalicelib.backends.cache import redis_client
from chalicelib.dex import router
from chalicelib.dex.guards import OFF
from chalicelib.orders import store
from chalicelib.tokens import resolve
from tests.integration.driver import ORDER, run_until

pytestmark = pytest.mark.integration

QUERY = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippageBps": "100"}
AMOUNTS = ("inAmount", "outAmount", "minOut", "otherAmountThreshold")
DIRECT = {**ORDER, "onlyDirectRoutes": True}  # the pair's own pools, which a test moves


@pytest.fixture
def frozen_market(settings_env, monkeypatch):
    """The market at one slot: nothing but the test's own trades moves a pool (and its pools
    are put back after the test: the next one starts from the same prices)."""
    market = venues.market()
    slot = market.current_slot()
    monkeypatch.setattr(market, "_clock", lambda: slot)
    saved = {pool_id: dict(pool.state) for pool_id, pool in market._pools.items()}
    yield market
    for pool_id, state in saved.items():
        market._pools[pool_id].state = state
    redis_cache.forget_snapshots()


def get_quote(client, **params):
    return client.http.get("/api/quote?" + urlencode({**QUERY, **params}))


def post(client, body, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    return client.http.post("/api/orders/execute", headers=headers, body=json.dumps(body))


def terminal(*order_ids):
    return lambda: all(store.get_order(o).status.terminal for o in order_ids)


# -- the quote -----------------------------------------------------------------------------


def test_quote_has_jupiter_shape_with_amounts_as_strings(client, frozen_market):
    answer = get_quote(client)
    assert answer.status_code == 200, answer.json_body
    quote = answer.json_body
    assert all(isinstance(quote[k], str) for k in AMOUNTS)
    assert quote["inAmount"] == "1500000000" and quote["inAmountUi"] == "1.5"
    assert Decimal(quote["outAmountUi"]) * 10**6 == int(quote["outAmount"])  # USDC: 6 decimals
    assert quote["otherAmountThreshold"] == quote["minOut"]
    assert int(quote["minOut"]) == int(quote["outAmount"]) * 9900 // 10000
    assert len(quote["quoteId"]) == 32
    assert quote["expiresAtSlot"] - quote["contextSlot"] == 10
    assert Decimal(quote["oraclePrice"]) > 0 and Decimal(quote["oracleDeviationPct"]) >= 0
    plan = quote["routePlan"]
    money = ("inAmount", "outAmount", "feeAmount", "fee")
    assert plan and all(isinstance(leg[k], str) for leg in plan for k in money)
    hops = sorted({leg["hop"] for leg in plan})
    assert hops in ([0], [0, 1]) and (len(hops) == 2) == quote["routeKind"].startswith("multihop")
    first, last = [[leg for leg in plan if leg["hop"] == hop] for hop in (hops[0], hops[-1])]
    assert sum(int(leg["inAmount"]) for leg in first) == 1_500_000_000
    assert {leg["inputMint"] for leg in first} == {quote["mintIn"]}
    assert {leg["outputMint"] for leg in last} == {quote["mintOut"]}
    assert sum(int(leg["outAmount"]) for leg in last) == int(quote["outAmount"])
    for hop in hops:
        assert sum(Decimal(leg["percent"]) for leg in plan if leg["hop"] == hop) == 100
    fee = quote["priorityFee"]
    assert int(fee["lamports"]) == 5000 + int(fee["priorityLamports"]) and fee["expectedSlots"] >= 1
    ttl_ms = redis_client().pttl(f"quote:{quote['quoteId']}")
    assert 0 < ttl_ms <= 10 * 400


def test_an_order_with_its_quote_routes_as_quoted_at_zero_drift(client, app_module, frozen_market):
    quote = get_quote(client).json_body
    body = {**ORDER, "quoteId": quote["quoteId"]}
    order_id = post(client, body).json_body["orderId"]
    assert store.get_order(order_id).min_out == int(quote["minOut"])
    run_until(app_module, terminal(order_id))

    order = client.http.get(f"/api/orders/{order_id}").json_body["order"]
    assert order["status"] == "confirmed"
    route = order["route"]
    assert route["outAmount"] == quote["outAmount"] and route["minOut"] == quote["minOut"]
    assert [(leg["poolId"], leg["inAmount"], leg["outAmount"]) for leg in route["legs"]] == [
        (leg["poolId"], leg["inAmount"], leg["outAmount"]) for leg in quote["routePlan"]
    ]
    assert order["amountOut"] == quote["outAmount"]


def _sell_into_every_pool(market):
    """Trades of others that lower SOL's price in USDC by 2-3% on both venues."""
    sol, usdc = resolve("SOL"), resolve("USDC")
    for venue, ui in (("raydium", 2000), ("meteora", 16000)):
        snap = market.snapshot(venue, sol, usdc)
        market.execute(router.best_route([snap], sol, usdc, ui * 10**9, 100, 10, guards=OFF))
    redis_cache.forget_snapshots()
    for key in redis_client().scan_iter("pool:*"):  # the worker reads the moved pools
        redis_client().delete(key)


def test_an_order_never_fills_below_its_quotes_min_out(client, app_module, frozen_market):
    quote = get_quote(client, onlyDirectRoutes="true").json_body  # the pools moved below
    _sell_into_every_pool(frozen_market)

    bound = post(client, {**DIRECT, "quoteId": quote["quoteId"]}).json_body["orderId"]
    run_until(app_module, terminal(bound))
    order = store.get_order(bound)
    assert order.status == "failed", order
    assert order.amount_out is None and order.min_out == int(quote["minOut"])
    assert "below the minimum" in order.failure_reason

    # The same order without the quote accepts the moved price (its own slippage bound).
    free = post(client, DIRECT).json_body["orderId"]
    run_until(app_module, terminal(free))
    order = store.get_order(free)
    assert order.status == "confirmed"
    assert order.amount_out < int(quote["minOut"])


def test_a_looser_min_out_beside_a_quote_never_fills_below_the_quotes_min_out(
    client, app_module, frozen_market
):
    """An order naming its quote and a minOut of its own far below it: the quote's minimum
    binds. The market moves 2-3 % after the quote: the worker then fails the order rather
    than fill between the two minimums, where the same order without its quote fills."""
    quote = get_quote(client, onlyDirectRoutes="true").json_body
    quoted = int(quote["minOut"])
    _sell_into_every_pool(frozen_market)

    answer = post(client, {**DIRECT, "quoteId": quote["quoteId"], "minOut": "1"})
    assert answer.status_code == 202, answer.json_body
    bound = answer.json_body["orderId"]
    assert store.get_order(bound).min_out == quoted
    run_until(app_module, terminal(bound))
    view = client.http.get(f"/api/orders/{bound}").json_body["order"]
    assert view["status"] == "failed" and view["amountOut"] is None, view
    assert "below the minimum" in view["failureReason"]

    free = post(client, {**DIRECT, "minOut": "1"}).json_body["orderId"]
    run_until(app_module, terminal(free))
    order = store.get_order(free)
    assert order.status == "confirmed", order
    assert 1 <= order.amount_out < quoted  # what the user's own minOut would have let through


@pytest.mark.parametrize("offset", [-1, 1])
def test_an_order_with_a_quote_and_a_min_out_binds_the_larger_of_the_two(
    client, app_module, frozen_market, offset
):
    """minOut one base unit under or over the quote's: the order binds the larger, shown as
    its route's minOut once it executes (at zero drift, as quoted)."""
    quote = get_quote(client).json_body
    quoted = int(quote["minOut"])
    own = quoted + offset
    body = {**ORDER, "quoteId": quote["quoteId"], "minOut": str(own)}
    order_id = post(client, body).json_body["orderId"]
    assert store.get_order(order_id).min_out == max(own, quoted)
    run_until(app_module, terminal(order_id))

    order = client.http.get(f"/api/orders/{order_id}").json_body["order"]
    assert order["status"] == "confirmed", order
    assert order["route"]["minOut"] == str(max(own, quoted))
    assert int(order["amountOut"]) >= max(own, quoted)


def test_min_out_in_the_body_binds_like_a_quote(client, app_module, frozen_market):
    out = int(get_quote(client).json_body["outAmount"])
    order_id = post(client, {**ORDER, "minOut": str(out + 1)}).json_body["orderId"]
    run_until(app_module, terminal(order_id))
    order = store.get_order(order_id)
    assert order.status == "failed" and order.min_out == out + 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"amount": "1e3"}, "amount"),
        ({"amount": " 1.5"}, "amount"),
        ({"amount": "+1.5"}, "amount"),
        ({"amount": "01.5"}, "amount"),
        ({"amount": "1."}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "0.0000000001"}, "amount"),
        ({"slippageBps": "\u0661\u0660\u0660"}, "slippageBps"),  # Arabic-Indic 100
        ({"slippageBps": "+100"}, "slippageBps"),
        ({"slippageBps": "1.5"}, "slippageBps"),
        ({"slippageBps": "0"}, "slippageBps"),
        ({"slippageBps": "5001"}, "slippageBps"),
        ({"venues": "raydium,orca"}, "venues"),
        ({"venues": "raydium,,meteora"}, "venues"),
        ({"venues": ""}, "venues"),
        ({"tokenIn": "DOGE"}, "tokenIn"),
        ({"tokenOut": "SOL"}, "tokenOut"),
        ({"type": "limit"}, "type"),
        ({"quoteId": "0" * 32}, "quoteId"),
        ({"sort": "asc"}, "sort"),
    ],
)
def test_invalid_quote_queries_are_422_naming_the_field(client, params, field):
    answer = get_quote(client, **params)
    assert answer.status_code == 422, answer.json_body
    error = answer.json_body["error"]
    assert error["code"] == "invalid_order"
    assert any(d["field"].split(".")[0] == field for d in error["details"]), error


def test_missing_and_repeated_parameters_are_422(client):
    missing = client.http.get("/api/quote?tokenIn=SOL&tokenOut=USDC")
    assert missing.status_code == 422
    assert missing.json_body["error"]["details"][0]["field"] == "amount"
    twice = client.http.get("/api/quote?" + urlencode(QUERY) + "&amount=2")
    assert twice.status_code == 422
    assert twice.json_body["error"]["details"][0]["field"] == "amount"


def test_a_quote_beyond_the_impact_cap_is_422_with_the_guards_code(client):
    big = {"tokenIn": "JUP", "tokenOut": "BONK", "amount": "50000"}
    answer = get_quote(client, **big, onlyDirectRoutes="true")
    assert answer.status_code == 422
    assert answer.json_body["error"]["code"] == "price_impact_too_high"
    # Through SOL (or USDC, USDT) the same size passes: the thin direct pools are left out.
    answer = get_quote(client, **big)
    assert answer.status_code == 200, answer.json_body
    quote = answer.json_body
    assert quote["routeKind"].startswith("multihop") and Decimal(quote["priceImpactPct"]) <= 3
    middles = {leg["outputMint"] for leg in quote["routePlan"] if leg["hop"] == 0}
    assert len(middles) == 1 and middles <= {resolve(t).mint for t in ("SOL", "USDC", "USDT")}
    assert get_quote(client, **big, maxHops="1").json_body["error"]["code"] == (
        "price_impact_too_high"
    )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"maxHops": "3"}, "maxHops"),
        ({"maxHops": "two"}, "maxHops"),
        ({"onlyDirectRoutes": "yes"}, "onlyDirectRoutes"),
        ({"restrictIntermediateTokens": "1"}, "restrictIntermediateTokens"),
        ({"excludeVenues": "raydium,meteora"}, "excludeVenues"),
        ({"excludeVenues": "orca"}, "excludeVenues"),
    ],
)
def test_routing_switches_are_parsed_strictly(client, params, field):
    answer = get_quote(client, **params)
    assert answer.status_code == 422, answer.json_body
    assert field in json.dumps(answer.json_body["error"])


def test_excluded_venues_and_direct_routes_shape_the_quote(client, frozen_market):
    only_meteora = get_quote(client, excludeVenues="raydium").json_body
    assert {leg["venue"] for leg in only_meteora["routePlan"]} == {"meteora"}
    direct = get_quote(client, onlyDirectRoutes="true").json_body
    assert {leg["hop"] for leg in direct["routePlan"]} == {0}
    assert {leg["outputMint"] for leg in direct["routePlan"]} == {direct["mintOut"]}
    free = get_quote(client).json_body  # the best of everything never pays less
    assert int(free["outAmount"]) >= int(direct["outAmount"])


def test_unknown_expired_or_foreign_quotes_are_refused(client, frozen_market):
    unknown = post(client, {**ORDER, "quoteId": "f" * 32})
    assert unknown.status_code == 422
    assert unknown.json_body["error"]["code"] == "quote_expired"

    quote_id = get_quote(client).json_body["quoteId"]
    other = post(client, {**ORDER, "amount": "2", "quoteId": quote_id})
    assert other.status_code == 422
    assert other.json_body["error"]["code"] == "quote_mismatch"

    redis_client().delete(f"quote:{quote_id}")  # as its TTL would
    expired = post(client, {**ORDER, "quoteId": quote_id})
    assert expired.json_body["error"]["code"] == "quote_expired"
    assert store.list_orders(None, 10, None)[0] == []


def test_the_quote_is_part_of_the_idempotency_fingerprint(client, frozen_market):
    first, second = (get_quote(client).json_body["quoteId"] for _ in range(2))
    accepted = post(client, {**ORDER, "quoteId": first}, key="q")
    assert accepted.status_code == 202
    assert post(client, {**ORDER, "quoteId": first}, key="q").status_code == 200
    assert post(client, {**ORDER, "quoteId": second}, key="q").status_code == 409
    assert post(client, {**ORDER, "quoteId": first, "minOut": "1"}, key="q").status_code == 409
    redis_client().delete(f"quote:{first}")  # expired: a retry still gets its order
    again = post(client, {**ORDER, "quoteId": first}, key="q")
    assert again.status_code == 200
    assert again.json_body["orderId"] == accepted.json_body["orderId"]
    assert post(client, {**ORDER, "amount": "2", "quoteId": first}, key="q").status_code == 409
    assert post(client, {**ORDER, "quoteId": first}, key="other").status_code == 422


# -- stats ---------------------------------------------------------------------------------


def _improvement_bps(route: dict) -> Decimal:
    best = max(int(v) for v in route["considered"].values())
    return (int(route["outAmount"]) - best) * Decimal(10000) / best


def test_stats_count_and_share_a_handful_of_orders(client, app_module, frozen_market):
    bodies = [ORDER, {**ORDER, "amount": "3"}, {**ORDER, "tokenIn": "USDC", "tokenOut": "SOL",
              "amount": "250"}]  # fmt: skip
    confirmed = [post(client, b).json_body["orderId"] for b in bodies]
    whale = {**DIRECT, "tokenIn": "JUP", "tokenOut": "BONK", "amount": "50000"}
    failed = post(client, whale).json_body["orderId"]
    run_until(app_module, terminal(*confirmed, failed))
    old = post(client, {**ORDER, "amount": "4"}).json_body["orderId"]
    run_until(app_module, terminal(old))
    store.query(
        "UPDATE orders SET created_at = created_at - interval '2 days' WHERE id = %s RETURNING id",
        (old,),
    )

    stats = client.http.get("/api/stats?window=24h").json_body
    assert stats["window"] == "24h" and stats["orders"] == 4
    assert stats["byStatus"]["confirmed"] == {"count": 3, "share": "0.7500"}
    assert stats["byStatus"]["failed"] == {"count": 1, "share": "0.2500"}
    assert stats["byStatus"]["pending"] == {"count": 0, "share": "0.0000"}
    assert stats["failureReasons"] == {"price_impact_too_high": 1}
    assert stats["confirmed"] == 3 and stats["belowMinOut"] == 0
    routes = [store.get_order(o).route.to_dict() for o in confirmed]
    venues = [leg["venue"] for r in routes for leg in r["legs"]]
    assert {v: s["orders"] for v, s in stats["venues"].items()} == {
        v: venues.count(v) for v in set(venues)
    }
    splits = sum(r["kind"] == "split" for r in routes)
    assert stats["splitShare"] == str((Decimal(splits) / 3).quantize(Decimal("0.0001")))
    multihops = sum(r["kind"].startswith("multihop") for r in routes)
    assert stats["multihopShare"] == str((Decimal(multihops) / 3).quantize(Decimal("0.0001")))
    assert stats["feePaidLamports"]["p50"] is None  # the congestion model is off here
    median = statistics.median(_improvement_bps(r) for r in routes)
    assert Decimal(stats["priceImprovementBps"]["p50"]) == round(median, 2)
    assert Decimal(stats["realizedOverMinOutBps"]["p50"]) > 0
    assert Decimal(stats["submitToConfirmedS"]["p99"]) >= 0

    week = client.http.get("/api/stats?window=7d").json_body
    assert week["orders"] == 5 and week["byStatus"]["confirmed"]["count"] == 4


def test_stats_count_a_fill_exactly_at_its_minimum_as_not_below_it(client, app_module):
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id))
    filled = store.get_order(order_id).amount_out

    def stats_with_min_out(min_out: int) -> dict:  # as if the order had been bound to it
        store.write_rows(
            "UPDATE orders SET min_out = %s WHERE id = %s RETURNING id", (min_out, order_id)
        )
        return client.http.get("/api/stats?window=1h").json_body

    exactly = stats_with_min_out(filled)
    assert exactly["belowMinOut"] == 0
    assert exactly["realizedOverMinOutBps"]["p50"] == "0.00"
    short = stats_with_min_out(filled + 1)
    assert short["belowMinOut"] == 1
    assert Decimal(short["realizedOverMinOutBps"]["p50"]) <= 0  # 1 unit in ~2e8: "-0.00"


@pytest.mark.parametrize(
    "query",
    ["window=", "window=0h", "window=1w", "window=1.5h", "window=24%20h", "window=%EF%BC%91h",
     "window=-1h", "window=400d", "window=1H", "other=1"],
)  # fmt: skip
def test_malformed_windows_are_422(client, query):
    answer = client.http.get(f"/api/stats?{query}")
    assert answer.status_code == 422, answer.json_body
    assert answer.json_body["error"]["code"] == "invalid_query"


def test_openapi_documents_quote_and_stats_with_string_amounts(client):
    doc = client.http.get("/api/openapi.json").json_body
    assert {"/api/quote", "/api/stats"} <= set(doc["paths"])
    quote = doc["components"]["schemas"]["QuoteResponse"]["properties"]
    assert all(quote[k]["type"] == "string" for k in AMOUNTS)
    leg = doc["components"]["schemas"]["RoutePlanLeg"]["properties"]
    assert all(leg[k]["type"] == "string" for k in ("inAmount", "outAmount", "fee"))


def test_stats_count_only_the_callers_orders_and_need_a_key(client, app_module):
    from chalicelib.access import keys

    other = {"Authorization": f"Bearer {keys.create('stats-other').key}"}
    mine = post(client, ORDER).json_body["orderId"]
    theirs = client.http.post(
        "/api/orders/execute",
        headers={"content-type": "application/json", **other},
        body=json.dumps({**ORDER, "amount": "2"}),
    ).json_body["orderId"]
    run_until(app_module, terminal(mine, theirs))

    assert client.http.get("/api/stats?window=1h").json_body["orders"] == 1
    assert client.http.get("/api/stats?window=1h", headers=other).json_body["orders"] == 1
    for path in ("/api/stats", "/api/quote?" + urlencode(QUERY)):
        assert client.http.get(path, headers={"Authorization": None}).status_code == 401


LONG = "x" * 3000


@pytest.mark.parametrize(
    "path",
    [
        f"/api/quote?{urlencode({**QUERY, 'tokenIn': LONG})}",
        f"/api/quote?{urlencode({**QUERY, 'tokenOut': LONG})}",
        f"/api/quote?{urlencode({**QUERY, 'amount': LONG})}",
        f"/api/quote?{urlencode({**QUERY, 'amount': '0.' + '0' * 3000 + '1'})}",
        f"/api/quote?{urlencode({**QUERY, 'amount': '1' * 3000})}",
        f"/api/quote?{urlencode({**QUERY, 'slippageBps': LONG})}",
        f"/api/quote?{urlencode({**QUERY, 'venues': LONG})}",
        f"/api/quote?{urlencode({**QUERY, 'type': LONG})}",
        f"/api/quote?{urlencode({**QUERY, LONG: '1'})}",
        f"/api/stats?window={LONG}",
        f"/api/stats?{LONG}=1",
    ],
)
def test_a_long_value_is_not_echoed_whole(client, path):
    answer = client.http.get(path)
    assert answer.status_code == 422, answer.json_body
    assert len(json.dumps(answer.json_body)) < 600, answer.json_body


@pytest.mark.parametrize("amount", [LONG, "0." + "0" * 3000 + "1", "1" * 3000, "1." + "1" * 3000])
def test_a_long_amount_in_an_order_is_not_echoed_whole(client, amount):
    answer = post(client, {**ORDER, "amount": amount})
    assert answer.status_code == 422, answer.json_body
    assert len(json.dumps(answer.json_body)) < 600, answer.json_body


def test_a_quote_serves_only_the_client_that_asked_for_it(client, frozen_market):
    from chalicelib.access import keys

    other = {"Authorization": f"Bearer {keys.create('quote-other').key}"}
    quote_id = get_quote(client).json_body["quoteId"]
    theirs = client.http.post(
        "/api/orders/execute",
        headers={"content-type": "application/json", **other},
        body=json.dumps({**ORDER, "quoteId": quote_id}),
    )
    assert theirs.status_code == 422, theirs.json_body
    assert theirs.json_body["error"]["code"] == "quote_expired"  # as unknown
    assert post(client, {**ORDER, "quoteId": quote_id}).status_code == 202, "still the asker's"


def test_a_quote_binds_one_order_only(client, frozen_market):
    quote_id = get_quote(client).json_body["quoteId"]
    assert post(client, {**ORDER, "quoteId": quote_id}).status_code == 202
    again = post(client, {**ORDER, "quoteId": quote_id})
    assert again.status_code == 422, again.json_body
    assert again.json_body["error"]["code"] == "quote_used"
    assert len(store.list_orders(None, 10, None)[0]) == 1
