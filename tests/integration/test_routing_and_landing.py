"""Two-hop orders, the chain's congestion model (priority fee, compute units, slots to land,
a dropped transaction retried at a higher fee) and GET /api/fees, against real Postgres,
Redis and SQS (moto)."""

import pytest

from chalicelib.backends import cache, venues
from chalicelib.dex import VENUES, BlockhashExpired, Market
from chalicelib.dex.chain import BASE_FEE_LAMPORTS, compute_units
from chalicelib.orders import store, worker
from chalicelib.tokens import resolve
from tests.integration.conftest import post
from tests.integration.driver import ORDER, run_until

pytestmark = pytest.mark.integration

BIG_JUP_BONK = {**ORDER, "tokenIn": "JUP", "tokenOut": "BONK", "amount": "50000"}


def terminal(*order_ids):
    return lambda: all(store.get_order(o).status.terminal for o in order_ids)


@pytest.fixture
def congested(settings_env, monkeypatch):
    """The congestion model on, on a market whose slots last 10 ms (a dropped transaction's
    blockhash expires in 1.5 s, not 60 s)."""
    settings = settings_env.updated(congestion=True, slot_ms=10, quote_valid_slots=1000)
    market = Market(settings.market.order_engine_seed, settings.market)
    monkeypatch.setattr(venues, "_market", market)
    monkeypatch.setattr(worker, "get_settings", lambda: settings)
    return market


def test_a_two_hop_order_fills_both_hops_in_one_transaction(client, app_module, monkeypatch):
    market = venues.market()
    slot = market.current_slot()
    monkeypatch.setattr(market, "_clock", lambda: slot)  # only this order moves pools
    jup, bonk = resolve("JUP"), resolve("BONK")
    direct_before = {v: market.snapshot(v, jup, bonk).state for v in VENUES}
    states_before = {pool_id: dict(pool.state) for pool_id, pool in market._pools.items()}

    order_id = post(client, BIG_JUP_BONK).json_body["orderId"]
    run_until(app_module, terminal(order_id))

    order = store.get_order(order_id)
    assert order.status == "confirmed", order.failure_reason
    route = order.route
    assert route.kind.startswith("multihop") and route.hops == 2
    (middle,) = route.intermediate_mints
    first, second = route.hop_legs(0), route.hop_legs(1)
    assert sum(leg.in_amount for leg in first) == order.amount_in
    assert {leg.mint_out for leg in first} == {leg.mint_in for leg in second} == {middle}
    assert sum(leg.in_amount for leg in second) == sum(leg.out_amount for leg in first)
    assert order.amount_out == sum(leg.out_amount for leg in second)  # frozen: as routed
    assert order.amount_out >= route.min_out
    moved = {pool_id for pool_id, pool in market._pools.items()
             if pool.state != states_before[pool_id]}  # fmt: skip
    assert moved == {leg.pool_id for leg in route.legs}  # every leg's pool, and no other
    assert {v: market.snapshot(v, jup, bonk).state for v in VENUES} == direct_before


def test_a_confirmed_order_records_its_fee_compute_units_and_slots(client, app_module, congested):
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id))

    order = store.get_order(order_id)
    assert order.status == "confirmed", order.failure_reason
    assert order.compute_units == compute_units(order.route)
    assert order.fee_lamports >= BASE_FEE_LAMPORTS and order.landing_slots >= 1
    history = {h.status: h.payload for h in store.history(order_id)}
    fee = history["submitted"]["priorityFee"]
    assert int(fee["lamports"]) == order.fee_lamports
    assert fee["computeUnitLimit"] == order.compute_units
    assert history["confirmed"]["landing"] == {
        "feeLamports": str(order.fee_lamports),
        "computeUnits": order.compute_units,
        "slots": order.landing_slots,
    }
    view = client.http.get(f"/api/orders/{order_id}").json_body["order"]
    assert (view["feeLamports"], view["computeUnits"], view["slotsToLand"]) == (
        str(order.fee_lamports), order.compute_units, order.landing_slots,
    )  # fmt: skip
    stats = client.http.get("/api/stats?window=1h").json_body
    assert stats["feePaidLamports"]["p50"] == str(order.fee_lamports)
    assert stats["slotsToLand"]["p50"] == str(order.landing_slots)


def test_a_dropped_transaction_is_retried_at_a_higher_fee_within_the_cap(
    client, app_module, congested, monkeypatch
):
    sent = []
    real_send, real_land_slot = Market.send, congested.chain.land_slot

    def send(self, route, faults, attempt, max_lamports=None, previous_price=0):
        landing = real_send(self, route, faults, attempt, max_lamports, previous_price)
        sent.append((attempt, max_lamports, landing))
        return landing

    def land_slot(sent_slot, fee, rng):  # the first transaction never lands
        if len(sent) == 0:
            raise BlockhashExpired("never landed")
        return real_land_slot(sent_slot, fee, rng)

    monkeypatch.setattr(Market, "send", send)
    monkeypatch.setattr(congested.chain, "land_slot", land_slot)
    cap = 2_000_000
    order_id = post(client, {**ORDER, "priorityFee": {"maxLamports": cap}}).json_body["orderId"]
    run_until(app_module, terminal(order_id))

    order = store.get_order(order_id)
    assert order.status == "confirmed" and order.attempts == 2, order
    (first_attempt, first_cap, first), (second_attempt, second_cap, second) = sent
    assert first.dropped and not second.dropped
    assert (first_attempt, second_attempt) == (1, 2) and first_cap == second_cap == cap
    # half as much again per compute unit (or the cap), whatever the slots' fees did meanwhile
    first_price = first.fee.micro_lamports_per_cu
    assert second.fee.micro_lamports_per_cu >= min(
        first_price * 3 // 2 - 1, cap * 1_000_000 // second.fee.compute_units
    )  # (-1: the price read back from the lamports paid is rounded down)
    assert second.fee.micro_lamports_per_cu > first_price
    assert second.fee.priority_lamports <= cap
    assert order.fee_lamports == second.fee.lamports and order.landing_slots == second.slots
    assert "blockhash expired" in order.last_error


def test_recent_fees_are_a_ladder_per_slot_newest_first(client, congested):
    answer = client.http.get("/api/fees")
    assert answer.status_code == 200, answer.json_body
    fees = answer.json_body
    slots = [s["slot"] for s in fees["slots"]]
    assert slots == list(range(fees["contextSlot"], fees["contextSlot"] - 20, -1))
    for levels in [fees["recent"], *fees["slots"]]:
        ladder = [levels[p] for p in ("p25", "p50", "p75", "p90", "p95", "p99")]
        assert ladder == sorted(ladder) and levels["demandPm"] > 0
    assert client.http.get("/api/fees?slot=1").status_code == 422


def test_a_quote_shows_the_auto_fee_for_its_route(client, congested):
    cache.forget_snapshots()
    quote = client.http.get("/api/quote?tokenIn=SOL&tokenOut=USDC&amount=1.5").json_body
    fee = quote["priorityFee"]
    price, units = fee["microLamportsPerComputeUnit"], fee["computeUnits"]
    assert int(fee["priorityLamports"]) == -(-units * price // 1_000_000)
    assert int(fee["lamports"]) == BASE_FEE_LAMPORTS + int(fee["priorityLamports"])
    assert fee["expectedSlots"] >= 1 and 0 < fee["landingChancePm"] <= 1000
