"""Market-safety guards: a route beyond the price-impact cap or too far from the oracle
fails before anything executes, with its reason first in the message."""

import json
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest

from chalicelib.config import MarketSettings, get_settings
from chalicelib.dex import (
    VENUES,
    Guards,
    Market,
    PoolSnapshot,
    PriceDeviatesFromOracle,
    PriceImpactTooHigh,
    best_route,
)
from chalicelib.dex.guards import OFF, check
from chalicelib.dex.oracle import PairPrice
from chalicelib.tokens import MAX_BASE_UNITS, resolve, to_base_units

SOL, USDC, JUP, BONK = map(resolve, ("SOL", "USDC", "JUP", "BONK"))


class Clock:
    def __init__(self, slot: int = 1_000):
        self.slot = slot

    def __call__(self) -> int:
        return self.slot


def market_at(clock=None, **overrides) -> Market:
    settings = MarketSettings(
        **{
            "quote_latency_ms": 0,
            "exec_latency_min_ms": 0,
            "exec_latency_max_ms": 0,
            "drift_trades_per_slot": 0,
            "arb_half_life_slots": 10,
        }
        | overrides
    )
    return Market(3, settings, clock=clock or Clock())


def snapshots(market, token_in, token_out, venues=VENUES):
    return [market.snapshot(v, token_in, token_out) for v in venues]


def states(market, token_in, token_out):
    return {v: market.snapshot(v, token_in, token_out).state for v in VENUES}


def test_the_whale_order_fails_on_price_impact_and_changes_nothing():
    market = market_at()
    before = states(market, SOL, USDC)
    with pytest.raises(PriceImpactTooHigh) as refused:
        best_route(snapshots(market, SOL, USDC), SOL, USDC, MAX_BASE_UNITS, 50, 10)
    assert str(refused.value).startswith("price_impact_too_high: ")
    assert "(cap 3%)" in str(refused.value)  # the default
    assert not refused.value.transient  # the worker fails the order, no retry
    assert Decimal(refused.value.details["price_impact_pct"]) > 99
    assert states(market, SOL, USDC) == before


def test_the_cap_is_exact_at_the_measured_impact():
    market = market_at()
    snaps = snapshots(market, JUP, BONK)
    amount = to_base_units("50000", JUP)
    measured = best_route(snaps, JUP, BONK, amount, 50, 10, guards=OFF).price_impact_pct
    assert Decimal(3) < measured < Decimal(50)  # the thinnest pair, a sizeable order
    at_cap = Guards(price_impact_cap_bps=int(measured * 100) + 1, oracle_deviation_bps=10_000)
    below = Guards(price_impact_cap_bps=int(measured * 100), oracle_deviation_bps=10_000)
    assert best_route(snaps, JUP, BONK, amount, 50, 10, guards=at_cap).price_impact_pct == measured
    with pytest.raises(PriceImpactTooHigh):
        best_route(snaps, JUP, BONK, amount, 50, 10, guards=below)
    with pytest.raises(PriceImpactTooHigh):  # and the configured default (300 bps) refuses it
        best_route(snaps, JUP, BONK, amount, 50, 10)


def test_a_damaged_pool_is_refused_by_the_oracle_bound_until_it_heals():
    """The incident: after a whale, 1 SOL on Raydium bought cents on the dollar. A small
    order has no impact to speak of, but its price is nowhere near the oracle's."""
    clock = Clock()
    market = market_at(clock)
    size = to_base_units("2000000", SOL)
    raydium = snapshots(market, SOL, USDC, ["raydium"])
    whale = best_route(raydium, SOL, USDC, size, 50, 10, guards=OFF)
    market.execute(whale)
    one_sol = to_base_units("1", SOL)
    with pytest.raises(PriceDeviatesFromOracle) as refused:
        best_route(snapshots(market, SOL, USDC, ["raydium"]), SOL, USDC, one_sol, 50, 10)
    message = str(refused.value)
    assert message.startswith("price_deviates_from_oracle: the route pays 0.")
    assert "USDC per SOL" in message and "(bound 5%)" in message
    assert not refused.value.transient
    assert 140 < Decimal(refused.value.details["oracle_price"]) < 160
    # both venues together: the router takes Meteora, whose price is sound
    both = best_route(snapshots(market, SOL, USDC), SOL, USDC, one_sol, 50, 10)
    assert [leg.venue for leg in both.legs] == ["meteora"]
    clock.slot += 10 * market.settings.arb_half_life_slots  # arbitrage heals Raydium
    healed = best_route(snapshots(market, SOL, USDC, ["raydium"]), SOL, USDC, one_sol, 50, 10)
    assert healed.oracle_deviation_pct < Decimal("0.5")
    assert 140_000_000 < healed.out_amount < 160_000_000


def test_the_oracle_bound_is_exact_at_the_measured_deviation():
    market = market_at()
    snaps = snapshots(market, SOL, USDC)
    amount = to_base_units("5000", SOL)
    measured = best_route(snaps, SOL, USDC, amount, 50, 10, guards=OFF).oracle_deviation_pct
    assert Decimal(0) < measured < Decimal(5)
    bps = int(measured * 100)
    assert best_route(snaps, SOL, USDC, amount, 50, 10, guards=Guards(10_000, bps + 1))
    with pytest.raises(PriceDeviatesFromOracle):
        best_route(snaps, SOL, USDC, amount, 50, 10, guards=Guards(10_000, bps))


def test_guards_come_from_the_settings():
    settings = get_settings().updated(price_impact_cap_bps=25, oracle_deviation_bps=40).market
    assert Guards.from_settings(settings) == Guards(25, 40)
    assert Guards.from_settings(MarketSettings()) == Guards(300, 500)


def test_without_oracle_readings_only_the_impact_is_checked():
    market = market_at()
    bare = [replace(s, oracle_x=None, oracle_y=None) for s in snapshots(market, SOL, USDC)]
    route = best_route(bare, SOL, USDC, 10**9, 50, 10)
    assert route.oracle_price is None and route.oracle_deviation_pct is None
    assert route.to_dict()["oraclePrice"] is None
    with pytest.raises(PriceImpactTooHigh):
        best_route(bare, SOL, USDC, MAX_BASE_UNITS, 50, 10)


def test_a_cached_snapshot_keeps_its_oracle_readings():
    snap = market_at().snapshot("meteora", JUP, BONK)
    back = PoolSnapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert back == snap and back.oracle_price(JUP.mint) == snap.oracle_price(JUP.mint)
    older = {k: v for k, v in snap.to_dict().items() if k != "oracle"}  # cached before
    assert PoolSnapshot.from_dict(older).oracle_x is None


AMOUNT_KEYS = {"inAmount", "outAmount", "minOut", "fee", "amount"}


def amounts(value, key=None):
    """Every value under an amount key, anywhere in a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "considered":
                yield from v.values()
            else:
                yield from amounts(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from amounts(v, key)
    elif key in AMOUNT_KEYS:
        yield value


@pytest.mark.parametrize(("token_in", "token_out", "ui"), [(SOL, USDC, "1"), (USDC, SOL, "300000")])
def test_every_amount_in_a_route_is_a_string_of_base_units(token_in, token_out, ui):
    market = market_at()
    amount = to_base_units(ui, token_in)
    route = best_route(snapshots(market, token_in, token_out), token_in, token_out, amount, 50, 10)
    document = json.loads(json.dumps(route.to_dict()))
    found = list(amounts(document))
    assert len(found) >= 8  # legs (4 each), route (3), steps, considered
    assert all(isinstance(a, str) and a.isdigit() for a in found), found
    assert int(document["minOut"]) == route.min_out  # how the worker reads it
    assert document["priceImpactPct"] == str(route.price_impact_pct)
    assert Decimal(document["oraclePrice"]) == route.oracle_price


def test_a_route_exactly_at_the_cap_or_the_bound_passes_and_a_hair_beyond_is_refused():
    """The impact cap and the oracle bound are the most a route may reach (exact fractions:
    3 % impact against a 300 bps cap, 5 % off the oracle against a 500 bps bound)."""
    guards, hair = Guards(price_impact_cap_bps=300, oracle_deviation_bps=500), Fraction(1, 10**12)
    oracle = PairPrice(rate=Fraction(1), conf=Fraction(0), publish_slot=0)
    at_cap = check(guards, Fraction(3, 100), Fraction(1), None, SOL, USDC)
    assert at_cap.price_impact_pct == Decimal("3")
    with pytest.raises(PriceImpactTooHigh):
        check(guards, Fraction(3, 100) + hair, Fraction(1), None, SOL, USDC)
    at_bound = check(guards, Fraction(0), Fraction(95, 100), oracle, SOL, USDC)
    assert at_bound.oracle_deviation_pct == Decimal("5")
    with pytest.raises(PriceDeviatesFromOracle):
        check(guards, Fraction(0), Fraction(95, 100) - hair, oracle, SOL, USDC)
