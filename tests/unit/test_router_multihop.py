"""``router.plan``: the direct pair and two-hop paths through an intermediate token, each hop
on one pool or split; its options, its reads, and the routes it records."""

import json
import threading
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from chalicelib.config import MarketSettings
from chalicelib.dex import (
    VENUES,
    DustAmount,
    Faults,
    Guards,
    InsufficientLiquidity,
    Market,
    NoRoute,
    PriceDeviatesFromOracle,
    PriceImpactTooHigh,
    Route,
    RouteOptions,
    VenueTimeout,
    best_route,
    plan,
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
pairs = st.sampled_from([(a, b) for a in TOKENS for b in TOKENS if a is not b])


ANY_PATH = RouteOptions()  # the default: direct and two-hop paths


def fetch(venue, a, b):
    return MARKET.snapshot(venue, a, b)


def direct(token_in, token_out, amount, bps=50, venues=VENUES):
    snaps = [MARKET.snapshot(v, token_in, token_out) for v in venues]
    return best_route(snaps, token_in, token_out, amount, bps, 150, guards=OFF)


def unguarded(token_in, token_out, amount, bps=50, options=ANY_PATH, **kwargs):
    return plan(fetch, token_in, token_out, amount, bps, 150, options, guards=OFF, **kwargs)


def assert_hops_add_up(route: Route, token_in, token_out):
    """Every hop trades exactly what the one before produced, from token_in to token_out."""
    carried, mint = route.in_amount, token_in.mint
    for hop in range(route.hops):
        legs = route.hop_legs(hop)
        assert legs and all(leg.in_amount > 0 for leg in legs)
        assert sum(leg.in_amount for leg in legs) == carried
        assert {leg.mint_in for leg in legs} == {mint}
        assert len({leg.mint_out for leg in legs}) == 1
        assert len({leg.pool_id for leg in legs}) == len(legs)
        assert abs(sum(leg.percent for leg in legs) - 100) <= Decimal("0.01") * len(legs)
        carried, mint = sum(leg.out_amount for leg in legs), legs[0].mint_out
    assert (carried, mint) == (route.out_amount, token_out.mint)
    assert [leg.hop for leg in route.legs] == sorted(leg.hop for leg in route.legs)


def assert_kind_matches(route: Route):
    split = any(len(route.hop_legs(h)) > 1 for h in range(route.hops))
    expected = {1: "split" if split else "single", 2: "multihop_split" if split else "multihop"}
    assert route.kind == expected[route.hops]


@settings(max_examples=60, deadline=None)
@given(pairs, st.integers(1, 99), st.integers(-4, 6), st.integers(1, 2_000))
def test_the_plan_never_pays_less_than_the_best_direct_route(pair, mantissa, exponent, bps):
    token_in, token_out = pair
    amount = mantissa * 10 ** (token_in.decimals + exponent)  # dust to whale, in UI terms
    try:
        best_direct = direct(token_in, token_out, amount, bps).out_amount
    except (DustAmount, InsufficientLiquidity):
        best_direct = 0
    try:
        route = unguarded(token_in, token_out, amount, bps)
    except DustAmount:
        assert best_direct == 0
        return
    event(route.kind)
    assert route.out_amount >= best_direct
    assert route.paths.get("direct", 0) == best_direct
    assert route.out_amount == max(route.paths.values())
    assert route.min_out == min_out(route.out_amount, bps)
    assert_hops_add_up(route, token_in, token_out)
    assert_kind_matches(route)
    for leg in route.legs:  # each leg is what its pool pays for its input
        snap = MARKET.snapshot(leg.venue, *map(resolve, (leg.mint_in, leg.mint_out)))
        assert snap.amount_out(leg.mint_in, leg.in_amount) == leg.out_amount
    if route.hops == 2:
        assert route.out_amount > best_direct
        assert route.intermediate_mints[0] not in (token_in.mint, token_out.mint)
        assert route.reason.startswith("via ")


@settings(max_examples=40, deadline=None)
@given(pairs, st.integers(1, 99), st.integers(-2, 5), st.sampled_from(["direct", "one hop"]))
def test_direct_only_options_route_as_best_route_does(pair, mantissa, exponent, how):
    token_in, token_out = pair
    amount = mantissa * 10 ** (token_in.decimals + exponent)
    options = RouteOptions(only_direct_routes=True) if how == "direct" else RouteOptions(max_hops=1)
    reads = []

    def recording(venue, a, b):
        reads.append(frozenset((a.mint, b.mint)))
        return fetch(venue, a, b)

    try:
        expected = direct(token_in, token_out, amount)
    except (DustAmount, InsufficientLiquidity) as exc:
        with pytest.raises(type(exc)):
            plan(recording, token_in, token_out, amount, 50, 150, options, guards=OFF)
        return
    route = plan(recording, token_in, token_out, amount, 50, 150, options, guards=OFF)
    assert route.hops == 1 and route.kind in ("single", "split")
    assert set(reads) == {frozenset((token_in.mint, token_out.mint))}
    assert replace(route, paths={}) == expected
    assert route.paths == {"direct": expected.out_amount}


def test_a_large_jup_to_bonk_order_fills_through_an_intermediate_within_the_cap():
    amount = to_base_units("25000", JUP)  # about $20k into a direct pool of about $400k
    guarded = Guards(price_impact_cap_bps=300, oracle_deviation_bps=500)
    snaps = [MARKET.snapshot(v, JUP, BONK) for v in VENUES]
    with pytest.raises(PriceImpactTooHigh):
        best_route(snaps, JUP, BONK, amount, 50, 150, guards=guarded)
    route = plan(fetch, JUP, BONK, amount, 50, 150, guards=guarded)
    assert route.hops == 2 and route.kind.startswith("multihop")
    assert route.intermediate_mints[0] in {SOL.mint, USDC.mint, USDT.mint}
    assert route.price_impact_pct < 3
    assert route.oracle_deviation_pct is not None
    assert route.out_amount > route.paths["direct"]
    assert_hops_add_up(route, JUP, BONK)


def test_when_every_path_is_refused_the_best_ones_refusal_is_raised():
    with pytest.raises(PriceImpactTooHigh) as refused:
        plan(fetch, JUP, BONK, to_base_units("1500000", JUP), 50, 150, guards=Guards())
    assert "moves the price" in str(refused.value)


def test_a_path_the_guards_refuse_gives_way_to_the_next_best():
    """A direct pool priced a tenth above the oracle pays most, and is refused."""

    def generous(venue, a, b):
        snap = fetch(venue, a, b)
        if {a.mint, b.mint} == {JUP.mint, USDC.mint} and venue == "raydium":
            richer = "reserve_y" if snap.mint_y == USDC.mint else "reserve_x"
            return replace(snap, state=snap.state | {richer: snap.state[richer] * 11 // 10})
        return snap

    amount = to_base_units("100", JUP)
    guarded = Guards(price_impact_cap_bps=300, oracle_deviation_bps=500)
    unchecked = plan(generous, JUP, USDC, amount, 50, 150, guards=OFF)
    assert unchecked.hops == 1 and unchecked.legs[0].venue == "raydium"
    with pytest.raises(PriceDeviatesFromOracle):
        best_route(
            [generous(v, JUP, USDC) for v in VENUES], JUP, USDC, amount, 50, 150, guards=guarded
        )
    route = plan(generous, JUP, USDC, amount, 50, 150, guards=guarded)
    assert route.out_amount < unchecked.out_amount
    assert route.oracle_deviation_pct * 100 <= 500


@pytest.mark.parametrize(
    ("token_in", "token_out", "middle", "types"),
    [
        (SOL, JUP, "USDC", ["wrap", "swap", "swap"]),
        (JUP, SOL, "USDC", ["swap", "swap", "unwrap"]),
        (JUP, BONK, "SOL", ["swap", "swap"]),  # SOL in between stays wrapped
    ],
)
def test_two_hop_steps_wrap_and_unwrap_only_at_the_ends(token_in, token_out, middle, types):
    options = RouteOptions(venues=("raydium",), intermediate_tokens=(middle,))
    amount = to_base_units("40000", JUP) if token_in is JUP else to_base_units("2000", SOL)
    route = unguarded(token_in, token_out, amount, options=options)
    assert route.hops == 2 and route.kind == "multihop", route.paths
    assert [step["type"] for step in route.steps] == types
    swaps = [step for step in route.steps if step["type"] == "swap"]
    assert [step["hop"] for step in swaps] == [0, 1]
    assert [step["poolId"] for step in swaps] == [leg.pool_id for leg in route.legs]
    if token_in.native:
        assert route.steps[0]["amount"] == str(route.in_amount)
    if token_out.native:
        assert route.steps[-1] == {
            "type": "unwrap",
            "mint": WSOL_MINT,
            "amount": str(route.out_amount),
        }


allow_lists = st.lists(st.sampled_from(VENUES), min_size=1, max_size=2, unique=True)


@settings(max_examples=40, deadline=None)
@given(pairs, st.integers(1, 99), st.integers(0, 5), allow_lists, st.booleans())
def test_venue_lists_bind_every_hop(pair, mantissa, exponent, allowed, as_exclusion):
    token_in, token_out = pair
    amount = mantissa * 10 ** (token_in.decimals + exponent)
    if as_exclusion:
        options = RouteOptions(exclude_venues=tuple(v for v in VENUES if v not in allowed))
    else:
        options = RouteOptions(venues=tuple(allowed))
    try:
        route = unguarded(token_in, token_out, amount, options=options)
    except (DustAmount, InsufficientLiquidity):
        return
    steps = {s["venue"] for s in route.steps if s["type"] == "swap"}
    assert {leg.venue for leg in route.legs} | steps | set(route.considered) <= set(allowed)


def test_unknown_or_no_venues_are_no_route():
    with pytest.raises(NoRoute):
        unguarded(SOL, USDC, 10**9, options=RouteOptions(venues=("raydium", "orca")))
    with pytest.raises(NoRoute):
        unguarded(SOL, USDC, 10**9, options=RouteOptions(exclude_venues=VENUES))
    with pytest.raises(NoRoute):
        unguarded(SOL, WSOL, 10**9)
    with pytest.raises(DustAmount):
        unguarded(SOL, USDC, 0)
    with pytest.raises(ValueError):
        RouteOptions(max_hops=3)
    with pytest.raises(ValueError):
        unguarded(SOL, USDC, 10**9, swap_mode="ExactInOut")


def pairs_read(token_in, token_out, options) -> set[frozenset]:
    reads = []

    def recording(venue, a, b):
        reads.append(frozenset((a.symbol, b.symbol)))
        return fetch(venue, a, b)

    plan(recording, token_in, token_out, 10**9, 50, 150, options, guards=OFF)
    return set(reads)


def test_intermediates_are_the_listed_ones_unless_unrestricted():
    direct_pair = frozenset(("SOL", "USDC"))
    via_usdt = {frozenset(("SOL", "USDT")), frozenset(("USDT", "USDC"))}
    assert pairs_read(SOL, USDC, RouteOptions()) == {direct_pair} | via_usdt
    unrestricted = pairs_read(SOL, USDC, RouteOptions(restrict_intermediate_tokens=False))
    middles = {symbol for pair in unrestricted for symbol in pair} - {"SOL", "USDC"}
    assert middles == {"USDT", "JUP", "BONK"}
    only_jup = pairs_read(SOL, USDC, RouteOptions(intermediate_tokens=("JUP",)))
    assert only_jup == {direct_pair, frozenset(("SOL", "JUP")), frozenset(("JUP", "USDC"))}


def test_every_pool_is_read_at_once():
    jobs = 2 * len(VENUES) + len(VENUES)  # SOL->USDT, USDT->USDC, and the direct pair
    barrier = threading.Barrier(jobs, timeout=10)

    def together(venue, a, b):
        barrier.wait()  # breaks (and fails the test) unless every read runs at once
        return fetch(venue, a, b)

    route = plan(together, SOL, USDC, 10**9, 50, 150, guards=OFF)
    assert route.out_amount > 0


def test_pools_that_time_out_or_do_not_exist_are_routed_without():
    def flaky(venue, a, b):
        if {a.mint, b.mint} == {JUP.mint, BONK.mint}:
            raise VenueTimeout(f"{venue} is slow")
        if venue == "meteora":
            raise NoRoute("no such pool")
        return fetch(venue, a, b)

    route = plan(flaky, JUP, BONK, to_base_units("100", JUP), 50, 150, guards=OFF)
    assert route.hops == 2 and {leg.venue for leg in route.legs} == {"raydium"}
    assert "direct" not in route.paths and route.considered == {}

    def slow(venue, a, b):
        raise VenueTimeout(venue)

    with pytest.raises(VenueTimeout):
        plan(slow, JUP, BONK, 10**6, 50, 150, guards=OFF)

    def missing(venue, a, b):
        raise NoRoute("none")

    with pytest.raises(NoRoute):
        plan(missing, JUP, BONK, 10**6, 50, 150, guards=OFF)


def test_a_fetch_answering_for_another_pair_is_refused():
    def confused(venue, a, b):
        return fetch(venue, SOL, USDC)

    with pytest.raises(NoRoute):
        plan(confused, JUP, BONK, 10**6, 50, 150, guards=OFF)


def test_per_pool_timeouts_do_not_depend_on_which_read_draws_first():
    settings_ = SETTINGS.model_copy(update={"venue_timeout_rate": 0.5})
    market = Market(5, settings_, clock=lambda: 1_000)

    def routed(attempt):
        faults = Faults.for_attempt(5, "order", attempt, settings_)

        def read(venue, a, b):
            return market.snapshot(venue, a, b, faults, timeout_per_pool=True)

        try:
            return plan(read, JUP, BONK, to_base_units("5000", JUP), 50, 150, guards=OFF)
        except VenueTimeout:
            return None

    outcomes = [routed(attempt) for attempt in range(8)]
    assert outcomes == [routed(attempt) for attempt in range(8)]  # same draws, same routes
    paths = {frozenset(r.paths) for r in outcomes if r is not None}
    assert len(paths) > 1  # the timeouts took different pools out on different attempts


@pytest.mark.parametrize(("ui", "options"), [("1", RouteOptions()), ("40000", RouteOptions())])
def test_a_plan_survives_a_json_round_trip(ui, options):
    route = unguarded(JUP, BONK, to_base_units(ui, JUP), options=options)
    back = Route.from_dict(json.loads(json.dumps(route.to_dict())))
    assert back == route
    assert back.hops == route.hops and back.paths == route.paths


def test_routes_stored_before_multihop_still_read():
    route = direct(SOL, USDC, to_base_units("20000", SOL))
    assert route.kind == "split"
    stored = json.loads(json.dumps(route.to_dict()))
    for key in ("swapMode", "maxIn", "paths"):
        del stored[key]
    for leg in stored["legs"]:
        del leg["hop"], leg["percent"]
    for step in stored["steps"]:
        step.pop("hop", None)
    back = Route.from_dict(stored)
    assert (back.swap_mode, back.max_in, back.paths, back.hops) == ("ExactIn", None, {}, 1)
    assert [leg.percent for leg in back.legs] == [leg.percent for leg in route.legs]
    assert replace(back, steps=route.steps) == route
    assert back.to_dict()["legs"][0]["hop"] == 0
