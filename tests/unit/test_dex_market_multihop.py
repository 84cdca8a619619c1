"""Landing a two-hop route: one transaction, every leg or none; the second hop trades what
the first actually produced; the route's minimum binds its final output only."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import MarketSettings
from chalicelib.dex import Market, RouteOptions, SlippageExceeded, dlmm, plan
from chalicelib.dex.amm import min_out
from chalicelib.dex.guards import OFF
from chalicelib.dex.snapshot import AMMS
from chalicelib.dex.staged import pro_rata
from chalicelib.tokens import by_mint, resolve, to_base_units

SOL, USDC, USDT, JUP, BONK = map(resolve, ("SOL", "USDC", "USDT", "JUP", "BONK"))
SETTINGS = MarketSettings(
    quote_latency_ms=0,
    exec_latency_min_ms=0,
    exec_latency_max_ms=0,
    drift_trades_per_slot=0,
    arb_half_life_slots=0,  # a frozen market: only the test's own trades move it
)
VIA_USDC = RouteOptions(intermediate_tokens=("USDC",))


def market() -> Market:
    return Market(7, SETTINGS, clock=lambda: 1_000)


def route_on(market_, token_in, token_out, amount, bps=50, options=VIA_USDC):
    def read(venue, a, b):
        return market_.snapshot(venue, a, b)

    return plan(read, token_in, token_out, amount, bps, 150, options, guards=OFF)


def two_hop(market_, bps=50):
    route = route_on(market_, JUP, BONK, to_base_units("25000", JUP), bps)
    assert route.hops == 2 and route.intermediate_mints == (USDC.mint,)
    return route


def pool_states(market_, route) -> dict:
    return {
        leg.pool_id: market_.snapshot(leg.venue, by_mint(leg.mint_in), by_mint(leg.mint_out)).state
        for leg in route.legs
    }


def push_jup_down(market_, ui: str) -> None:
    """Someone sells JUP for USDC first: the first hop then buys less USDC."""
    market_.execute(route_on(market_, JUP, USDC, to_base_units(ui, JUP), 5_000, RouteOptions()))


def test_a_two_hop_route_lands_as_quoted_in_a_frozen_market():
    live = market()
    route = two_hop(live)
    before = pool_states(live, route)
    done = live.execute(route)
    assert (done.amount_in, done.amount_out) == (route.in_amount, route.out_amount)
    after = pool_states(live, route)
    assert all(after[pool] != before[pool] for pool in before)  # every leg traded
    bonk_per_jup = (done.amount_out / 10**BONK.decimals) / (done.amount_in / 10**JUP.decimals)
    assert abs(float(done.executed_price) / bonk_per_jup - 1) < 1e-9  # the route's two ends


def first_hop_output(market_, route, states) -> int:
    """What the route's first hop produces on ``states`` (updated in place)."""
    produced = 0
    for leg in route.hop_legs(0):
        produced += _swap(market_, leg, states, leg.in_amount)
    return produced


def _swap(market_, leg, states, amount) -> int:
    snap = market_.snapshot(leg.venue, by_mint(leg.mint_in), by_mint(leg.mint_out))
    swap = AMMS[leg.venue].swap(
        states[leg.pool_id], leg.mint_in == snap.mint_x, amount, market_.current_slot()
    )
    states[leg.pool_id] = swap.state
    return swap.amount_out


def test_the_second_hop_trades_what_the_first_produced_pro_rata():
    live = market()
    route = two_hop(live)
    push_jup_down(live, "50000")
    states = pool_states(live, route)  # what the landing will meet
    produced = first_hop_output(live, route, states)
    planned = [leg.in_amount for leg in route.hop_legs(1)]
    assert produced < sum(planned)  # the first hop bought less USDC than quoted
    final = sum(
        _swap(live, leg, states, amount)
        for leg, amount in zip(route.hop_legs(1), pro_rata(produced, planned), strict=True)
    )
    done = live.execute(route)
    assert done.amount_out == final < route.out_amount
    assert pool_states(live, route) == states


def test_the_minimum_binds_the_final_output_not_the_first_hop():
    probe, live = market(), market()
    route = two_hop(live, bps=10)
    push_jup_down(probe, "30000")
    push_jup_down(live, "30000")
    produced = first_hop_output(probe, route, pool_states(probe, route))
    assert produced < sum(leg.min_out for leg in route.hop_legs(0))  # below the hop's quote
    # The engine may set the route's minimum (a limit's, a client's): that alone binds.
    accepting = replace(route, min_out=min_out(route.out_amount, 500))
    done = live.execute(accepting)
    assert accepting.min_out <= done.amount_out < route.min_out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 60_000), st.integers(-3, 3))
def test_a_landing_fills_exactly_when_the_final_output_meets_the_minimum(pushed, offset):
    """Two identical markets: one shows what the route's landing produces, the other lands
    the route with its minimum a few units either side of that."""
    probe, live = market(), market()
    route = two_hop(probe)
    assert two_hop(live) == route
    if pushed:
        push_jup_down(probe, str(pushed))
        push_jup_down(live, str(pushed))
    produced = probe.execute(replace(route, min_out=0)).amount_out
    bound = replace(route, min_out=max(0, produced + offset))
    before = pool_states(live, route)
    if offset <= 0:
        assert live.execute(bound).amount_out == produced
    else:
        with pytest.raises(SlippageExceeded) as slipped:
            live.execute(bound)
        assert slipped.value.details["amount_out"] == produced
        assert pool_states(live, route) == before  # all legs or none


def test_a_first_hop_that_runs_dry_fails_the_whole_route():
    live = market()
    route = two_hop(live)
    leg = next(leg for leg in route.hop_legs(0) if leg.venue == "meteora")
    book = live.snapshot("meteora", JUP, USDC)
    assert book.mint_x == JUP.mint
    capacity = dlmm.input_for(book.state, True, sum(book.state["bin_y"]))
    # someone else sells JUP into the book first, leaving half of what our leg needs
    drain = capacity - leg.in_amount // 2
    live.execute(route_on(live, JUP, USDC, drain, 10_000, RouteOptions(venues=("meteora",))))
    before = pool_states(live, route)
    with pytest.raises(SlippageExceeded, match="meteora ran out of liquidity"):
        live.execute(route)
    assert pool_states(live, route) == before


@pytest.mark.parametrize(
    ("total", "planned", "expected"),
    [
        (100, [1, 1], [50, 50]),
        (101, [1, 1], [51, 50]),
        (10, [3, 7], [3, 7]),
        (11, [3, 7], [3, 8]),  # the rest goes to the largest share
        (0, [5, 9], [0, 0]),
        (7, [4], [7]),
    ],
)
def test_pro_rata_shares_add_up(total, planned, expected):
    assert pro_rata(total, planned) == expected
    assert sum(pro_rata(total, planned)) == total
