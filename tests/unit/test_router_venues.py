"""A venue allow-list binds the whole route: every leg, every step and every venue considered."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import MarketSettings
from chalicelib.dex import (
    VENUES,
    DustAmount,
    GuardRefused,
    InsufficientLiquidity,
    Market,
    best_route,
    quote_venues,
)
from chalicelib.tokens import resolve

TOKENS = [resolve(s) for s in ("SOL", "USDC", "USDT", "JUP", "BONK")]
SETTINGS = MarketSettings(
    quote_latency_ms=0, exec_latency_min_ms=0, exec_latency_max_ms=0, drift_trades_per_slot=0
)
MARKET = Market(5, SETTINGS, clock=lambda: 1_000)  # read only: nothing here executes
pairs = st.sampled_from([(a, b) for a in TOKENS for b in TOKENS if a is not b])
allow_lists = st.lists(st.sampled_from(VENUES), min_size=1, max_size=2, unique=True)


def route_venues(route) -> set[str]:
    """Every venue a route names: its legs, its swap steps and the quotes it weighed."""
    steps = {s["venue"] for s in route.steps if s["type"] == "swap"}
    return {leg.venue for leg in route.legs} | steps | set(route.considered)


@settings(max_examples=80, deadline=None)
@given(pairs, st.integers(1, 99), st.integers(-2, 4), allow_lists)
def test_a_route_names_only_allowed_venues(pair, mantissa, exponent, allowed):
    token_in, token_out = pair
    amount = mantissa * 10 ** (token_in.decimals + exponent)  # dust to whale, in UI terms
    snapshots = quote_venues(MARKET, token_in, token_out, allowed)
    assert {s.venue for s in snapshots} <= set(allowed)
    try:
        route = best_route(snapshots, token_in, token_out, amount, 100, 150)
    except (DustAmount, InsufficientLiquidity, GuardRefused):
        return
    assert route_venues(route) <= set(allowed), (allowed, route.to_dict())


@pytest.mark.parametrize("venue", VENUES)
def test_an_order_both_venues_would_split_stays_on_its_one_venue(venue):
    sol, usdc = resolve("SOL"), resolve("USDC")
    amount = 1_000 * 10**sol.decimals
    both = best_route(quote_venues(MARKET, sol, usdc, VENUES), sol, usdc, amount, 100, 150)
    assert both.kind == "split"  # so the allow-list below is what keeps it on one venue
    route = best_route(quote_venues(MARKET, sol, usdc, [venue]), sol, usdc, amount, 100, 150)
    assert route.kind == "single"
    assert route_venues(route) == {venue}
