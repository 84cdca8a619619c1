"""Exact-output routing: the route that needs the least input for the output wanted, and a
landing that delivers exactly that output and never spends beyond ``max_in``."""

import contextlib
import json
from dataclasses import replace

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from chalicelib.config import MarketSettings
from chalicelib.dex import (
    EXACT_OUT,
    VENUES,
    DustAmount,
    InsufficientLiquidity,
    Market,
    Route,
    RouteOptions,
    SlippageExceeded,
    plan,
)
from chalicelib.dex.amm import max_in
from chalicelib.dex.guards import OFF
from chalicelib.tokens import WSOL_MINT, resolve, to_base_units

SOL, USDC, USDT, JUP, BONK = map(resolve, ("SOL", "USDC", "USDT", "JUP", "BONK"))
TOKENS = [SOL, USDC, USDT, JUP, BONK]
SETTINGS = MarketSettings(
    quote_latency_ms=0,
    exec_latency_min_ms=0,
    exec_latency_max_ms=0,
    drift_trades_per_slot=0,
    arb_half_life_slots=0,
)
MARKET = Market(5, SETTINGS, clock=lambda: 1_000)  # read only
pairs = st.sampled_from([(a, b) for a in TOKENS for b in TOKENS if a is not b])


ANY_PATH = RouteOptions()  # the default: direct and two-hop paths


def fetch(venue, a, b):
    return MARKET.snapshot(venue, a, b)


def buy(token_in, token_out, wanted, bps=50, options=ANY_PATH, read=fetch):
    return plan(
        read, token_in, token_out, wanted, bps, 150, options, swap_mode=EXACT_OUT, guards=OFF
    )


def sell(token_in, token_out, amount, bps=50, options=ANY_PATH, read=fetch):
    return plan(read, token_in, token_out, amount, bps, 150, options, guards=OFF)


def least_single_input(token_in, token_out, wanted) -> int | None:
    needs = []
    for venue in VENUES:
        with contextlib.suppress(InsufficientLiquidity):
            needs.append(fetch(venue, token_in, token_out).amount_in_for(token_in.mint, wanted))
    return min(needs, default=None)


@settings(max_examples=60, deadline=None)
@given(pairs, st.integers(1, 99), st.integers(-3, 6), st.integers(0, 2_000))
def test_the_route_buys_exactly_the_output_for_the_least_input(pair, mantissa, exponent, bps):
    token_in, token_out = pair
    wanted = mantissa * 10 ** (token_out.decimals + exponent)
    single = least_single_input(token_in, token_out, wanted)
    try:
        route = buy(token_in, token_out, wanted, bps)
    except InsufficientLiquidity:
        assert single is None
        return
    event(route.kind)
    assert route.swap_mode == EXACT_OUT
    assert route.out_amount == route.min_out == wanted
    assert route.max_in == max_in(route.in_amount, bps) >= route.in_amount
    assert single is None or route.in_amount <= single
    assert route.in_amount == min(route.paths.values())
    # hops chain backwards: each hop buys exactly what the next one spends
    needed = wanted
    for hop in reversed(range(route.hops)):
        legs = route.hop_legs(hop)
        assert sum(leg.out_amount for leg in legs) == needed
        for leg in legs:  # the forward math pays at least the leg's output for its input
            snap = fetch(leg.venue, *map(resolve, (leg.mint_in, leg.mint_out)))
            assert snap.amount_out(leg.mint_in, leg.in_amount) >= leg.out_amount
            assert leg.min_out == leg.out_amount
        needed = sum(leg.in_amount for leg in legs)
    assert needed == route.in_amount
    assert route.hop_legs(0)[0].mint_in == token_in.mint


@settings(max_examples=40, deadline=None)
@given(pairs, st.integers(1, 99), st.integers(-2, 5))
def test_buying_what_an_exact_input_route_bought_costs_no_more(pair, mantissa, exponent):
    token_in, token_out = pair
    amount = mantissa * 10 ** (token_in.decimals + exponent)
    try:
        sold = sell(token_in, token_out, amount)
    except (DustAmount, InsufficientLiquidity):
        return
    bought = buy(token_in, token_out, sold.out_amount)
    # The exact-input route itself is one way to buy it; integer rounding makes a split's
    # cost locally uneven, which the search may pay for with up to a base unit per leg.
    assert bought.in_amount <= amount + len(sold.legs)


def test_a_whale_buy_splits_and_a_large_thin_pair_buy_hops():
    whale = buy(SOL, USDC, to_base_units("3000000", USDC), options=RouteOptions(max_hops=1))
    assert whale.kind == "split" and {leg.venue for leg in whale.legs} == set(VENUES)
    assert whale.in_amount < min(whale.considered.values())
    assert "needs" in whale.reason and "less than" in whale.reason
    thin = buy(JUP, BONK, to_base_units("1500000000", BONK))  # about $30k of BONK
    assert thin.hops == 2 and thin.in_amount < thin.paths["direct"]


def test_exact_output_steps_wrap_the_most_and_unwrap_what_is_left():
    route = buy(SOL, USDC, to_base_units("1500", USDC), bps=100)
    types = [step["type"] for step in route.steps]
    assert types == ["wrap"] + ["swap"] * len(route.legs) + ["unwrap"]
    assert route.steps[0] == {"type": "wrap", "mint": WSOL_MINT, "amount": str(route.max_in)}
    assert route.steps[-1]["amount"] == str(route.max_in - route.in_amount)
    bought_sol = buy(USDC, SOL, to_base_units("10", SOL))
    assert bought_sol.steps[-1] == {
        "type": "unwrap",
        "mint": WSOL_MINT,
        "amount": str(to_base_units("10", SOL)),
    }


def test_an_exact_output_route_survives_a_json_round_trip():
    route = buy(JUP, BONK, to_base_units("1500000000", BONK))
    back = Route.from_dict(json.loads(json.dumps(route.to_dict())))
    assert back == route and back.max_in == route.max_in and back.swap_mode == EXACT_OUT


def market() -> tuple[Market, list]:
    clock = [1_000]
    return Market(7, SETTINGS, clock=lambda: clock[0]), clock


def pool_states(market_, route):
    return {
        leg.pool_id: market_.snapshot(leg.venue, *map(resolve, (leg.mint_in, leg.mint_out))).state
        for leg in route.legs
    }


@pytest.mark.parametrize(
    ("token_in", "token_out", "ui"),
    [(JUP, SOL, "500"), (SOL, USDC, "3000000"), (JUP, BONK, "1500000000"), (USDC, SOL, "0.5")],
)
def test_landing_delivers_exactly_the_output_wanted(token_in, token_out, ui):
    live, clock = market()

    def read(venue, a, b):
        return live.snapshot(venue, a, b)

    wanted = to_base_units(ui, token_out)
    route = buy(token_in, token_out, wanted, read=read)
    clock[0] += 3
    done = live.execute(route)
    assert done.amount_out == wanted
    assert done.amount_in == route.in_amount  # nobody else traded: exactly as planned


def test_landing_spends_more_when_the_price_moved_but_never_beyond_max_in():
    live, _ = market()

    def read(venue, a, b):
        return live.snapshot(venue, a, b)

    wanted = to_base_units("500", SOL)
    slack = buy(JUP, SOL, wanted, bps=300, read=read)
    tight = buy(JUP, SOL, wanted, bps=10, read=read)
    live.execute(sell(JUP, SOL, to_base_units("20000", JUP), read=read))  # SOL got dearer
    done = live.execute(slack)
    assert done.amount_out == wanted
    assert slack.in_amount < done.amount_in <= slack.max_in
    before = pool_states(live, tight)
    with pytest.raises(SlippageExceeded) as slipped:
        live.execute(tight)
    assert slipped.value.transient
    assert slipped.value.details["max_in"] == tight.max_in < slipped.value.details["amount_in"]
    assert str(slipped.value).startswith(f"the input needed rose from {tight.in_amount} to ")
    assert f"over maxIn {tight.max_in}" in str(slipped.value)
    assert pool_states(live, tight) == before  # nothing filled
    assert live.execute(replace(tight, max_in=slipped.value.details["amount_in"])).amount_out == (
        wanted
    )
