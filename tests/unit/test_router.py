"""The router: best single venue, optimal splits, and its bookkeeping."""

import contextlib
import json
import logging
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import MarketSettings
from chalicelib.dex import (
    VENUES,
    DustAmount,
    InsufficientLiquidity,
    Market,
    NoRoute,
    PoolSnapshot,
    Route,
    VenueTimeout,
    best_route,
    cpmm,
    dlmm,
    quote_venues,
)
from chalicelib.dex.amm import min_out
from chalicelib.dex.guards import OFF
from chalicelib.tokens import WSOL_MINT, resolve, to_base_units

SOL, WSOL, USDC, USDT, JUP, BONK = map(resolve, ("SOL", "WSOL", "USDC", "USDT", "JUP", "BONK"))
TOKENS = [SOL, USDC, USDT, JUP, BONK]
SETTINGS = MarketSettings(
    quote_latency_ms=0, exec_latency_min_ms=0, exec_latency_max_ms=0, drift_trades_per_slot=0
)
MARKET = Market(5, SETTINGS, clock=lambda: 1_000)  # read only: nothing here executes


def unguarded(*args, **kwargs):
    """The router's search, its guards measuring but never refusing (tested on their own)."""
    return best_route(*args, guards=OFF, **kwargs)


def snapshots(token_in, token_out, venues=VENUES):
    return [MARKET.snapshot(v, token_in, token_out) for v in venues]


pairs = st.sampled_from([(a, b) for a in TOKENS for b in TOKENS if a is not b])


@settings(max_examples=60, deadline=None)
@given(pairs, st.integers(1, 99), st.integers(-4, 6), st.integers(1, 5_000))
def test_route_pays_at_least_the_best_single_venue_and_adds_up(pair, mantissa, exponent, bps):
    token_in, token_out = pair
    amount = mantissa * 10 ** (token_in.decimals + exponent)  # dust to whale, in UI terms
    snaps = snapshots(token_in, token_out)
    singles = {}
    for snap in snaps:
        with contextlib.suppress(InsufficientLiquidity):
            singles[snap.venue] = snap.quote(token_in.mint, amount, bps, 150).out_amount
    try:
        route = unguarded(snaps, token_in, token_out, amount, bps, 150)
    except DustAmount:
        assert max(singles.values()) == 0
        return
    assert route.considered == singles
    best_single = max(singles.values())
    assert route.out_amount >= best_single
    assert sum(leg.in_amount for leg in route.legs) == route.in_amount == amount
    assert sum(leg.out_amount for leg in route.legs) == route.out_amount
    assert route.min_out == min_out(route.out_amount, bps) <= route.out_amount
    assert all(leg.in_amount > 0 for leg in route.legs)
    if route.kind == "split":
        assert len({leg.venue for leg in route.legs}) == len(route.legs) > 1
        assert route.out_amount > best_single
    else:
        assert len(route.legs) == 1 and route.out_amount == best_single


def test_min_out_equals_out_at_zero_bps():
    assert min_out(123_456_789, 0) == 123_456_789
    assert min_out(123_456_789, 1) == 123_444_443  # floor(out * 9999 / 10000)
    route = unguarded(snapshots(SOL, USDC), SOL, USDC, 10**9, 0, 150)
    assert route.min_out == route.out_amount
    assert all(leg.min_out == leg.out_amount for leg in route.legs)
    with pytest.raises(ValueError):
        min_out(1, 10_001)


def test_small_orders_take_one_venue_and_whales_split():
    small = unguarded(snapshots(SOL, USDC), SOL, USDC, to_base_units("1", SOL), 50, 150)
    whale = unguarded(snapshots(SOL, USDC), SOL, USDC, to_base_units("20000", SOL), 50, 150)
    assert small.kind == "single"
    assert whale.kind == "split" and {leg.venue for leg in whale.legs} == set(VENUES)
    assert whale.out_amount > max(whale.considered.values())
    assert "split" in whale.reason and "more than" in whale.reason


def best_on_a_grid(snaps, mint, amount, points=400):
    """The best of ``points`` evenly spaced splits of ``amount`` between two pools."""

    def out(snap, a):
        if a == 0:
            return 0
        try:
            return snap.amount_out(mint, a)
        except InsufficientLiquidity:
            return -1

    splits = {amount * i // points for i in range(points + 1)}
    return max(out(snaps[0], a) + out(snaps[1], amount - a) for a in splits)


def rounding(snaps, mint) -> int:
    """What integer rounding (the fee's ceil, the output's floor) can cost a route: a few
    base units of input, each worth up to the best spot price in output units."""
    rates = []
    for snap in snaps:
        price = snap.amm.spot_price(snap.state)
        rate = price if snap.x_to_y(mint) else 1 / price
        rates.append(rate.numerator // rate.denominator + 1)
    return 4 * max(rates) + 4


def cpmm_snapshot(pool_id, x, y, fee_rate=cpmm.RAYDIUM_FEE_RATE):
    state = cpmm.new_state(x, y, fee_rate)
    return PoolSnapshot("raydium", pool_id, SOL.mint, USDC.mint, 0, state)


reserves = st.integers(10**6, 10**15)


@settings(max_examples=40, deadline=None)
@given(
    reserves, reserves, reserves, reserves, st.integers(1, 500), st.sampled_from([2_500, 10_000])
)
def test_two_constant_product_pools_split_optimally(x1, y1, x2, y2, per_mille, fee_rate):
    snaps = [cpmm_snapshot("a", x1, y1), cpmm_snapshot("b", x2, y2, fee_rate)]
    amount = max(1, min(x1, x2) * per_mille // 1_000)
    best = best_on_a_grid(snaps, SOL.mint, amount)
    try:
        route = unguarded(snaps, SOL, USDC, amount, 50, 150)
    except DustAmount:
        assert best == 0
        return
    # The closed form lands on the optimum: no split on a fine grid does better,
    # integer rounding aside.
    assert route.out_amount >= best - rounding(snaps, SOL.mint)


def small_dlmm_snapshot(per_bin, reach=20, bin_step=10):
    ids = range(-reach, reach + 1)
    bin_y = [per_bin if i < 0 else per_bin // 2 if i == 0 else 0 for i in ids]
    bin_x = [
        ((per_bin - y) << 64) // dlmm.price_q64(bin_step, i)
        for i, y in zip(ids, bin_y, strict=True)
    ]
    state = dlmm.new_state(
        bin_step=bin_step,
        base_factor=10_000,
        variable_fee_control=40_000,
        active_id=0,
        min_bin_id=-reach,
        bin_x=bin_x,
        bin_y=bin_y,
        slot=0,
    )
    return PoolSnapshot("meteora", "m", SOL.mint, USDC.mint, 0, state)


@settings(max_examples=25, deadline=None)
@given(st.integers(10**8, 10**12), st.integers(10**6, 10**10), st.integers(1, 1_000))
def test_greedy_split_of_a_curve_and_a_book_is_near_the_optimum(reserve, per_bin, per_mille):
    snaps = [cpmm_snapshot("r", reserve, reserve), small_dlmm_snapshot(per_bin)]
    amount = max(1, (reserve + 20 * per_bin) * per_mille // 1_000)
    best = best_on_a_grid(snaps, SOL.mint, amount)
    try:
        route = unguarded(snaps, SOL, USDC, amount, 50, 150)
    except DustAmount:
        assert best == 0
        return
    assert route.out_amount >= best - rounding(snaps, SOL.mint)


def test_dust_is_refused():
    with pytest.raises(DustAmount):
        unguarded(snapshots(SOL, USDC), SOL, USDC, 1, 50, 150)  # one lamport
    with pytest.raises(DustAmount):
        unguarded(snapshots(SOL, USDC), SOL, USDC, 0, 50, 150)


def test_no_snapshot_is_no_route():
    with pytest.raises(NoRoute):
        unguarded([], SOL, USDC, 10**9, 50, 150)


def test_snapshots_of_another_pair_are_refused():
    with pytest.raises(NoRoute):
        unguarded(snapshots(SOL, USDT), SOL, USDC, 10**9, 50, 150)
    with pytest.raises(NoRoute):
        unguarded(snapshots(SOL, USDC), SOL, WSOL, 10**9, 50, 150)


def test_a_venue_without_enough_liquidity_drops_out():
    huge = to_base_units("150000", SOL)  # beyond all of Meteora's SOL/USDC bins
    meteora_only = snapshots(SOL, USDC, ["meteora"])
    with pytest.raises(InsufficientLiquidity):
        unguarded(meteora_only, SOL, USDC, huge, 50, 150)
    route = unguarded(snapshots(SOL, USDC), SOL, USDC, huge, 50, 150)
    assert set(route.considered) == {"raydium"}
    assert route.out_amount >= route.considered["raydium"]


def test_a_pool_given_twice_is_counted_once():
    snaps = snapshots(SOL, USDC, ["raydium", "raydium"])
    route = unguarded(snaps, SOL, USDC, to_base_units("20000", SOL), 50, 150)
    assert route.kind == "single"


@pytest.mark.parametrize(
    ("token_in", "token_out", "types"),
    [
        (SOL, USDC, ["wrap", "swap"]),
        (USDC, SOL, ["swap", "unwrap"]),
        (WSOL, USDC, ["swap"]),
        (USDC, WSOL, ["swap"]),
        (JUP, BONK, ["swap"]),
    ],
)
def test_native_sol_is_wrapped_and_unwrapped(token_in, token_out, types):
    route = unguarded(snapshots(token_in, token_out), token_in, token_out, 10**7, 50, 150)
    assert [step["type"] for step in route.steps] == types
    if token_in.native:
        assert route.steps[0] == {"type": "wrap", "mint": WSOL_MINT, "amount": str(route.in_amount)}
    if token_out.native:
        assert route.steps[-1] == {
            "type": "unwrap",
            "mint": WSOL_MINT,
            "amount": str(route.out_amount),
        }


@pytest.mark.parametrize("ui", ["1", "20000"])
def test_route_survives_a_json_round_trip(ui):
    route = unguarded(snapshots(SOL, USDC), SOL, USDC, to_base_units(ui, SOL), 75, 150)
    back = Route.from_dict(json.loads(json.dumps(route.to_dict())))
    assert back == route


def test_every_decision_is_logged_with_both_quotes(caplog):
    with caplog.at_level(logging.INFO, logger="chalicelib.dex.router"):
        route = unguarded(snapshots(SOL, USDC), SOL, USDC, 10**9, 50, 150)
    message = caplog.records[-1].getMessage()
    for venue, out in route.considered.items():
        assert f"{venue} out={out}" in message
    assert route.reason in message


def test_quote_venues_fetches_concurrently():
    barrier = threading.Barrier(len(VENUES), timeout=10)

    def fetch(venue, a, b):
        barrier.wait()  # breaks (and fails the test) unless every fetch runs at once
        return MARKET.snapshot(venue, a, b)

    snaps = quote_venues(MARKET, SOL, USDC, VENUES, fetch=fetch)
    assert [s.venue for s in snaps] == list(VENUES)


def test_quote_venues_drops_a_venue_that_times_out():
    def fetch(venue, a, b):
        if venue == "meteora":
            raise VenueTimeout("slow")
        return MARKET.snapshot(venue, a, b)

    assert [s.venue for s in quote_venues(MARKET, SOL, USDC, VENUES, fetch=fetch)] == ["raydium"]


def test_quote_venues_raises_when_every_venue_times_out():
    def fetch(venue, a, b):
        raise VenueTimeout(venue)

    with pytest.raises(VenueTimeout):
        quote_venues(MARKET, SOL, USDC, VENUES, fetch=fetch)


def test_quote_venues_passes_other_errors_on_and_honours_the_allow_list():
    with pytest.raises(NoRoute):
        quote_venues(MARKET, SOL, USDC, ["raydium", "orca"])
    with pytest.raises(NoRoute):
        quote_venues(MARKET, SOL, USDC, [])
    assert [s.venue for s in quote_venues(MARKET, SOL, USDC, ["meteora"])] == ["meteora"]
