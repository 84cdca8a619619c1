"""Limit orders: they wait in ``open``, the check job wakes them when the price meets the
limit, they never execute worse than it, and they expire. Real Postgres, Redis and SQS; the
market's clock is frozen so that only the test moves prices."""

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chalicelib import tokens
from chalicelib.backends import cache, postgres, queue, venues
from chalicelib.orders import limit_check, moves, store, worker
from chalicelib.orders.lifecycle import OrderStatus
from chalicelib.tokens import resolve
from tests.integration.driver import poll_once

pytestmark = pytest.mark.integration

SOL, USDC = resolve("SOL"), resolve("USDC")
AMOUNT = 2_000_000_000  # 2 SOL


@pytest.fixture
def market(settings_env, monkeypatch):
    """The process's market with its clock stopped, its pools put back after the test (and
    the tokens it lists known to this test only)."""
    for name in ("_BY_SYMBOL", "_BY_MINT", "LISTED"):
        monkeypatch.setattr(tokens, name, getattr(tokens, name).copy())
    market = venues.market()
    slot = market.current_slot()
    monkeypatch.setattr(market, "_clock", lambda: slot)
    saved = {pool_id: dict(pool.state) for pool_id, pool in market._pools.items()}
    yield market
    for pool_id, state in saved.items():
        market._pools[pool_id].state = state


def raydium_pool(market):
    return market._by_pair[("raydium", frozenset((SOL.mint, USDC.mint)))]


def move_price(market, factor: Fraction) -> None:
    """Multiply the Raydium SOL/USDC price (USDC per SOL) by ``factor``; forget cached quotes."""
    pool = raydium_pool(market)
    side = "reserve_y" if pool.mint_x == SOL.mint else "reserve_x"
    state = dict(pool.state)
    state[side] = int(state[side] * factor)
    pool.state = state
    cache.forget_snapshots()
    for key in cache.redis_client().scan_iter("pool:*"):
        cache.redis_client().delete(key)


def fill_price(market, amount: int = AMOUNT) -> Fraction:
    """USDC per SOL (UI units) that ``amount`` of SOL gets on Raydium right now."""
    snap = market.snapshot("raydium", SOL, USDC)
    return Fraction(snap.amount_out(SOL.mint, amount) * 10**SOL.decimals, amount * 10**6)


def limit_body(limit_price: Decimal, **extra) -> dict:
    return {
        "type": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amount": "2",  # AMOUNT
        "slippageBps": 100,
        "venues": ["raydium"],
        "limitPrice": format(limit_price, "f"),
        "expiresInSlots": 100_000,
        **extra,
    }


def post(client, body) -> str:
    answer = client.http.post(
        "/api/orders/execute", headers={"content-type": "application/json"}, body=json.dumps(body)
    )
    assert answer.status_code == 202, answer.json_body
    return answer.json_body["orderId"]


def drain(app_module) -> None:
    """Deliver every message queued (and those the deliveries queue) until none is left."""
    while poll_once(app_module.process_orders, queue.queue_url(), wait_s=0):
        pass


def statuses(order_id):
    return [h.status for h in store.history(order_id)]


def decimal(price: Fraction, places: int = 6) -> Decimal:
    return Decimal(math.floor(price * 10**places)).scaleb(-places)


def test_a_limit_order_waits_open_then_executes_when_the_price_meets_it(client, app_module, market):
    limit = decimal(fill_price(market) * Fraction(101, 100))  # 1 % above the market
    order_id = post(client, limit_body(limit))
    drain(app_module)
    assert statuses(order_id) == ["pending", "open"]
    assert store.get_order(order_id).attempts == 0  # waiting spends no attempt
    limit_check.run(app_module.notifier)  # the price has not moved: nothing to do
    assert limit_check.run(app_module.notifier).pairs_moved == 0

    move_price(market, Fraction(102, 100))
    result = limit_check.run(app_module.notifier)
    drain(app_module)

    assert result.enqueued == 1
    order = store.get_order(order_id)
    assert statuses(order_id) == ["pending", "open", "routing", "building", "submitted",
                                  "confirmed"]  # fmt: skip
    assert order.amount_out >= order.limit_min_out
    assert order.executed_price >= limit
    assert order.route.min_out >= order.limit_min_out
    view = client.http.get(f"/api/orders/{order_id}").json_body["order"]
    assert view["limitPrice"] == format(limit, "f") and view["type"] == "limit"


def test_a_limit_already_met_executes_on_arrival(client, app_module, market):
    limit = decimal(fill_price(market) * Fraction(99, 100))
    order_id = post(client, limit_body(limit))
    drain(app_module)
    assert store.get_order(order_id).status == OrderStatus.CONFIRMED
    assert store.get_order(order_id).executed_price >= limit


@hypothesis_settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit_bps=st.integers(-200, 200),  # the limit against the market at submission
    move_bps=st.integers(-250, 250),  # then the market moves
)
def test_a_limit_order_never_executes_worse_than_its_limit_and_triggers_within_one_check(
    client, app_module, market, limit_bps, move_bps
):
    pool, saved = raydium_pool(market), dict(raydium_pool(market).state)
    cache.redis_client().delete(limit_check.LAST_PRICES)  # each example starts from no check
    start = fill_price(market)
    limit = decimal(start * Fraction(10_000 + limit_bps, 10_000))
    order_id = post(client, limit_body(limit))
    drain(app_module)
    move_price(market, Fraction(10_000 + move_bps, 10_000))
    met_after_move = fill_price(market) >= Fraction(limit)

    limit_check.run(app_module.notifier)  # one check after the move
    drain(app_module)

    order = store.get_order(order_id)
    if order.status == OrderStatus.CONFIRMED:
        assert order.amount_out >= order.limit_min_out
        assert Fraction(order.amount_out, 10**6) >= Fraction(limit) * 2
    else:
        assert order.status == OrderStatus.OPEN
        assert not met_after_move, "the price met the limit but one check did not execute it"
    if order.status == OrderStatus.OPEN:  # leave no order waiting for the next example
        moves.cancel(order_id, order.client_id, app_module.notifier)
    pool.state = saved
    move_price(market, Fraction(1))


@pytest.mark.parametrize("short_by", [-1, 0, 1])
def test_the_check_enqueues_an_order_whose_route_pays_exactly_its_limit(
    client, app_module, market, short_by
):
    """After a move the route pays its limit exactly (``short_by`` 0), one base unit more
    (-1) or one less (1): the check enqueues it and it executes, at its limit or better,
    unless it is short; then it goes on waiting."""
    market.snapshot("raydium", SOL, USDC)  # the pool caught up with the frozen slot
    pool, before = raydium_pool(market), dict(raydium_pool(market).state)
    move_price(market, Fraction(102, 100))
    paid = market.snapshot("raydium", SOL, USDC).amount_out(SOL.mint, AMOUNT)  # after the move
    pool.state = before
    move_price(market, Fraction(1))  # the price before the move, caches forgotten
    limit_min_out = paid + short_by
    # 2 SOL at limitPrice (USDC per SOL) is 2 * limitPrice * 10**6 base units of USDC.
    order_id = post(client, limit_body(Decimal(limit_min_out) / (2 * 10**USDC.decimals)))
    drain(app_module)
    assert statuses(order_id) == ["pending", "open"]
    assert store.get_order(order_id).limit_min_out == limit_min_out

    move_price(market, Fraction(102, 100))  # the same move again
    assert market.snapshot("raydium", SOL, USDC).amount_out(SOL.mint, AMOUNT) == paid
    result = limit_check.run(app_module.notifier)
    drain(app_module)

    order = store.get_order(order_id)
    if short_by <= 0:
        assert result.enqueued == 1, result
        assert order.status == OrderStatus.CONFIRMED, order
        assert order.amount_out >= limit_min_out
    else:
        assert result.candidates == 1 and result.enqueued == 0, result
        assert statuses(order_id) == ["pending", "open"]


def test_a_limit_order_expires(client, app_module, market):
    limit = decimal(fill_price(market) * 2)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    order_id = post(client, limit_body(limit, expiresInSlots=None, expiresAt=soon))
    drain(app_module)
    assert store.get_order(order_id).status == OrderStatus.OPEN

    with postgres.connection() as conn:  # its time runs out
        conn.execute("UPDATE orders SET expires_at = now() - interval '1 s' WHERE id = %s",
                     (order_id,))  # fmt: skip
    result = limit_check.run(app_module.notifier)

    assert result.expired == 1
    assert statuses(order_id) == ["pending", "open", "expired"]
    assert limit_check.run(app_module.notifier).expired == 0


def test_an_open_limit_order_can_be_cancelled(client, app_module, market):
    order_id = post(client, limit_body(decimal(fill_price(market) * 2)))
    drain(app_module)
    answer = client.http.post(f"/api/orders/{order_id}/cancel")
    assert answer.status_code == 200
    assert statuses(order_id) == ["pending", "open", "cancelled"]


def test_the_check_reads_the_orders_that_trigger_not_the_orders_open(client, app_module, market):
    """300 orders wait far above the market, 3 just above it: a move that meets the 3 reads
    3 rows, and the range query uses the waiting-limit index."""
    spot = fill_price(market)
    far, near = decimal(spot * 2), decimal(spot * Fraction(1005, 1000))
    rows = [(far, i) for i in range(300)]
    _insert_waiting(rows)
    near_ids = [post(client, limit_body(near)) for _ in range(3)]
    drain(app_module)
    assert {store.get_order(o).status for o in near_ids} == {OrderStatus.OPEN}

    move_price(market, Fraction(102, 100))
    result = limit_check.run(app_module.notifier)

    assert result.candidates == 3 and result.enqueued == 3
    with postgres.connection() as conn:
        conn.execute("ANALYZE orders")  # as autovacuum would have
        conn.execute("SET enable_seqscan = off")  # the plan for a big table, on a small one
        plan = conn.execute(
            "EXPLAIN (FORMAT JSON) " + store.TRIGGERED_SQL,
            {"mint_in": SOL.mint, "mint_out": USDC.mint, "price": near, "after_price": 0,
             "after_id": uuid.UUID(int=0), "limit": 1000},
        ).fetchone()  # fmt: skip
    assert "orders_waiting_limit_idx" in json.dumps(plan), json.dumps(plan)


def test_the_check_enqueues_every_order_the_price_meets_beyond_one_page(
    client, app_module, market, monkeypatch
):
    """More triggered orders than a page, all at one limit price (ties paged on the id):
    one check enqueues every one of them, each once."""
    near = decimal(fill_price(market) * Fraction(1005, 1000))
    _insert_waiting([(near, i) for i in range(store.TRIGGERED_PAGE + 5)])
    limit_check.run(app_module.notifier)  # the price as first seen: nothing triggers
    sent: list[str] = []
    monkeypatch.setattr(limit_check.queue, "send_order", sent.append)

    move_price(market, Fraction(102, 100))
    result = limit_check.run(app_module.notifier)

    assert result.candidates == result.enqueued == store.TRIGGERED_PAGE + 5
    assert len(set(sent)) == len(sent) == store.TRIGGERED_PAGE + 5
    assert limit_check.run(app_module.notifier).candidates == 0  # the pair's price is checked


def test_paging_reads_each_triggered_order_once_and_no_other(
    client, app_module, market, monkeypatch
):
    spot = fill_price(market)
    prices = [decimal(spot * Fraction(1000 + bps, 1000)) for bps in (1, 2, 3, 5, 8, 13, 600)]
    _insert_waiting([(prices[i % len(prices)], i) for i in range(40)])
    monkeypatch.setattr(store, "TRIGGERED_PAGE", 3)
    top = prices[4]  # every order up to 8 per mille above the spot

    pages = list(store.triggered_orders(SOL.mint, USDC.mint, top))

    read = [o.id for page in pages for o in page]
    with postgres.connection() as conn:
        expected = conn.execute(
            "SELECT id FROM orders WHERE limit_price <= %s", (top,)
        ).fetchall()  # fmt: skip
    assert sorted(read) == sorted(r["id"] for r in expected) and len(read) == len(set(read))
    assert all(len(page) <= 3 for page in pages)


def test_a_waiting_order_spends_no_attempt_on_a_venue_timeout(
    client, app_module, market, monkeypatch, settings_env
):
    """Venues time out on the first checks of a triggered order, more of them than
    ``max_attempts``: it goes on waiting, checked again after a delay that doubles up to its
    cap, and executes once they answer."""
    from chalicelib.dex import Faults
    from tests.integration.driver import run_until

    limit = decimal(fill_price(market) * Fraction(101, 100))
    order_id = post(client, limit_body(limit))
    drain(app_module)
    real, timeouts = Faults.for_attempt, app_module.get_settings().lifecycle.max_attempts + 2

    def for_attempt(seed, oid, attempt, settings, waiting_checks=0):
        faults = real(seed, oid, attempt, settings, waiting_checks)
        if waiting_checks < timeouts:
            monkeypatch.setattr(faults, "venue_times_out", lambda venue, *pool: True)
        return faults

    monkeypatch.setattr(Faults, "for_attempt", staticmethod(for_attempt))
    monkeypatch.setattr(venues, "cached_snapshot", lambda venue, a, b, read: read(venue, a, b))
    move_price(market, Fraction(102, 100))
    assert limit_check.run(app_module.notifier).enqueued == 1
    backoff = {"retry_base_delay_s": 1, "waiting_retry_max_delay_s": 4}
    monkeypatch.setattr(worker, "get_settings", lambda: settings_env.updated(**backoff))
    delays, send = [], queue.send_order
    monkeypatch.setattr(queue, "send_order", lambda oid, delay_s=0: (delays.append(delay_s),
                                                                     send(oid)))  # fmt: skip
    run_until(app_module, lambda: store.get_order(order_id).status.terminal)

    order = store.get_order(order_id)
    assert statuses(order_id) == ["pending", "open", "routing", "building", "submitted",
                                  "confirmed"]  # fmt: skip
    assert order.attempts == 1 and order.waiting_checks == timeouts  # 1 unmet, then timeouts
    assert delays == [1, 2, 4, 4]  # each of the timeouts in a row doubles it, to the cap
    assert order.waiting_faults == timeouts - 1


def test_a_limit_order_the_guards_refuse_waits_as_the_check_job_does(client, app_module, market):
    """5,000 SOL moves the pool beyond the price-impact cap: the limit is met, the route is
    refused. The order waits in ``open`` (as the check job, finding the same, leaves it)."""
    order_id = post(client, limit_body(Decimal("1"), amount="5000"))
    drain(app_module)
    order = store.get_order(order_id)
    assert statuses(order_id) == ["pending", "open"] and order.attempts == 0

    move_price(market, Fraction(102, 100))
    assert limit_check.run(app_module.notifier).enqueued == 0
    queue.send_order(order_id)  # a delivery all the same (the reaper, a duplicate)
    drain(app_module)
    assert statuses(order_id) == ["pending", "open"]


def _insert_waiting(rows) -> None:
    """Waiting limit orders written straight to the table (the API would take minutes)."""
    from chalicelib.access import keys

    client_id = keys.create(f"bulk-{datetime.now(UTC).timestamp()}").client_id
    with postgres.connection() as conn:
        conn.cursor().executemany(
            """
            INSERT INTO orders (id, client_id, type, status, token_in, token_out, mint_in,
                                mint_out, amount_in, slippage_bps, venues, limit_price,
                                expires_at)
            VALUES (gen_random_uuid(), %s, 'limit', 'open', 'SOL', 'USDC', %s, %s, %s, 100,
                    '{raydium}', %s, now() + interval '1 day')
            """,
            [(client_id, SOL.mint, USDC.mint, AMOUNT, price) for price, _ in rows],
        )


# -- sniper orders ---------------------------------------------------------------------------


def list_new_token(market, slot: int):
    """A token listed at ``slot`` with 1,000,000 of it against 10,000 USDC (0.01 USDC each)."""
    from chalicelib.config import NewListing

    suffix = uuid.uuid4().hex[:6].upper()
    listing = NewListing(symbol=f"N{suffix}", mint=f"New{suffix}".ljust(44, "1"), decimals=6,
                         slot=slot, reserve=10**12, quote_reserve=10**10)  # fmt: skip
    market.list_pool(listing)
    return resolve(listing.symbol)


def sniper_body(token, max_price: str, amount: str = "100") -> dict:
    return {"type": "sniper", "tokenIn": "USDC", "tokenOut": token.symbol, "amount": amount,
            "slippageBps": 100, "maxPrice": max_price}  # fmt: skip


def paid(order) -> Fraction:
    """USDC paid per token bought, in UI units."""
    return Fraction(order.amount_in, 10**6) / Fraction(order.amount_out, 10**6)


def test_sniper_orders_fill_in_arrival_order_from_the_listing_within_their_bounds(
    client, app_module, market, monkeypatch
):
    now = market.current_slot()
    token = list_new_token(market, now + 10)
    first = post(client, sniper_body(token, "0.02"))
    # 0.0102 pays for 100 USDC on the fresh pool (0.010125), not after the first fill.
    second = post(client, sniper_body(token, "0.0102"))
    third = post(client, sniper_body(token, "0.05"))
    drain(app_module)
    limit_check.run(app_module.notifier)  # before the listing slot: nothing can trade
    drain(app_module)
    assert {store.get_order(o).status for o in (first, second, third)} == {OrderStatus.OPEN}

    monkeypatch.setattr(market, "_clock", lambda: now + 10)  # the listing slot comes
    assert limit_check.run(app_module.notifier).snipers_woken == 1
    drain(app_module)

    a, b, c = (store.get_order(o) for o in (first, second, third))
    assert (a.status, b.status, c.status) == ("confirmed", "failed", "confirmed")
    assert b.failure_reason.startswith("the price is above maxPrice 0.0102")
    assert paid(a) <= Fraction("0.02") and paid(c) <= Fraction("0.05")
    assert paid(a) < Fraction("0.0102") < paid(c)  # c bought after a moved the price
    confirmed_a = store.history(first)[-1].created_at
    assert all(h.created_at >= confirmed_a for h in store.history(third)[2:])
    assert statuses(third) == ["pending", "open", "routing", "building", "submitted",
                               "confirmed"]  # fmt: skip


def test_a_sniper_order_never_fills_above_its_max_price(client, app_module, market, monkeypatch):
    now = market.current_slot()
    token = list_new_token(market, now)
    order_id = post(client, sniper_body(token, "0.01"))  # the pool's own price, fees aside
    drain(app_module)
    order = store.get_order(order_id)
    assert order.status == OrderStatus.FAILED and order.amount_out is None
    assert statuses(order_id) == ["pending", "open", "failed"]


def test_a_sniper_order_needs_a_new_listing_and_a_max_price(client, market):
    answer = client.http.post(
        "/api/orders/execute",
        headers={"content-type": "application/json"},
        body=json.dumps(sniper_body(USDC, "1") | {"tokenIn": "SOL"}),
    )
    assert answer.status_code == 422
    assert answer.json_body["error"]["details"][0]["field"] == "tokenOut"
    token = list_new_token(market, market.current_slot() + 100)
    body = sniper_body(token, "1")
    del body["maxPrice"]
    answer = client.http.post(
        "/api/orders/execute", headers={"content-type": "application/json"}, body=json.dumps(body)
    )
    assert answer.status_code == 422
    assert answer.json_body["error"]["details"][0]["field"] == "maxPrice"
