"""The simulated market: snapshots, drift, faults and atomic execution."""

import json
import threading
from dataclasses import replace
from decimal import Decimal

import base58
import pytest

from chalicelib.config import MarketSettings
from chalicelib.dex import (
    VENUES,
    BlockhashExpired,
    DexError,
    Faults,
    InsufficientLiquidity,
    Market,
    NoRoute,
    PoolSnapshot,
    QuoteExpired,
    SlippageExceeded,
    VenueTimeout,
    best_route,
)
from chalicelib.dex.guards import OFF
from chalicelib.dex.market import MAX_CATCH_UP_SLOTS
from chalicelib.dex.snapshot import AMMS
from chalicelib.tokens import resolve, to_base_units, to_ui

SOL, WSOL, USDC, USDT, JUP, BONK = map(resolve, ("SOL", "WSOL", "USDC", "USDT", "JUP", "BONK"))
PAIRS = [(SOL, USDC), (USDC, SOL), (SOL, BONK), (JUP, USDT), (BONK, JUP), (USDT, USDC)]


def make_settings(**overrides) -> MarketSettings:
    values = {
        "quote_latency_ms": 0,
        "exec_latency_min_ms": 0,
        "exec_latency_max_ms": 0,
        "drift_trades_per_slot": 0,
        "venue_timeout_rate": 0.0,
        "blockhash_expiry_rate": 0.0,
        "arb_half_life_slots": 0,  # a frozen market unless a test says otherwise
    }
    return MarketSettings(**(values | overrides))


class Clock:
    """A manual slot clock."""

    def __init__(self, slot: int = 1_000):
        self.slot = slot

    def __call__(self) -> int:
        return self.slot


def market_at(seed=7, clock=None, **overrides) -> Market:
    return Market(seed, make_settings(**overrides), clock=clock or Clock())


def route_for(market, token_in, token_out, amount, bps=50, venues=VENUES, faults=None):
    """The best route, guards measuring but never refusing (they have tests of their own)."""
    snaps = [market.snapshot(v, token_in, token_out, faults) for v in venues]
    return best_route(snaps, token_in, token_out, amount, bps, 150, guards=OFF)


def states(market, token_in, token_out):
    return {v: market.snapshot(v, token_in, token_out).state for v in VENUES}


def test_every_pair_of_distinct_tokens_has_a_pool_on_both_venues():
    market = market_at()
    tokens = [SOL, USDC, USDT, JUP, BONK]
    for a in tokens:
        for b in tokens:
            if a is b:
                continue
            ids = {market.snapshot(v, a, b).pool_id for v in VENUES}
            assert len(ids) == 2
            assert {market.snapshot(v, a, b).pool_id for v in VENUES} == {
                market.snapshot(v, b, a).pool_id for v in VENUES
            }


def test_native_and_wrapped_sol_trade_on_the_same_pools():
    market = market_at()
    for venue in VENUES:
        assert (
            market.snapshot(venue, SOL, USDC).pool_id == market.snapshot(venue, WSOL, USDC).pool_id
        )


@pytest.mark.parametrize(("a", "b"), [(SOL, WSOL), (USDC, USDC)])
def test_no_pool_for_one_token_with_itself(a, b):
    with pytest.raises(NoRoute):
        market_at().snapshot("raydium", a, b)


def test_unknown_venue_has_no_pool():
    with pytest.raises(NoRoute):
        market_at().snapshot("orca", SOL, USDC)


@pytest.mark.parametrize("venue", VENUES)
def test_snapshot_survives_a_json_round_trip(venue):
    snap = market_at().snapshot(venue, SOL, BONK)
    back = PoolSnapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert back == snap
    amount = to_base_units("12.5", SOL)
    assert back.quote(SOL.mint, amount, 30, 150) == snap.quote(SOL.mint, amount, 30, 150)


def test_quoting_is_pure_and_carries_its_slot_and_expiry():
    clock = Clock(5_000)
    snap = market_at(clock=clock).snapshot("meteora", SOL, USDC)
    before = json.dumps(snap.to_dict())
    quote = snap.quote(SOL.mint, to_base_units("10", SOL), 100, 150)
    assert json.dumps(snap.to_dict()) == before
    assert (quote.slot, quote.expires_at_slot) == (5_000, 5_150)
    assert quote.mint_out == USDC.mint and quote.fee > 0
    assert quote.min_out == quote.out_amount * 9_900 // 10_000
    assert json.loads(json.dumps(quote.to_dict()))["priceImpactPct"] == str(quote.price_impact_pct)


@pytest.mark.parametrize("venue", VENUES)
def test_depth_is_realistic(venue):
    snap = market_at().snapshot(venue, SOL, USDC)
    one = snap.quote(SOL.mint, to_base_units("1", SOL), 50, 150)
    big = snap.quote(SOL.mint, to_base_units("5000", SOL), 50, 150)
    assert one.price_impact_pct < big.price_impact_pct / 100
    assert one.price_impact_pct < 1  # percent
    # about $150 for 1 SOL: reference prices are jittered by at most 2 %, fees are < 1 %
    assert 145_000_000 < one.out_amount < 153_000_000


def test_with_no_drift_nor_arbitrage_executed_equals_quoted():
    clock = Clock()
    market = market_at(clock=clock)
    for token_in, token_out in PAIRS:
        for ui in ("0.5", "300", "20000"):
            route = route_for(market, token_in, token_out, to_base_units(ui, token_in))
            clock.slot += 3  # time passes between quote and execution, nobody else trades
            done = market.execute(route)
            assert done.amount_out == route.out_amount


def test_executed_price_is_in_ui_units():
    market = market_at()
    route = route_for(market, SOL, USDC, to_base_units("2", SOL))
    done = market.execute(route)
    expected = Decimal(done.amount_out).scaleb(-6) / 2  # USDC per SOL
    assert abs(done.executed_price - expected) <= expected.scaleb(-15)


def test_execution_below_min_out_fails_and_changes_no_pool():
    market = market_at()
    route = route_for(market, SOL, USDC, to_base_units("50000", SOL))
    assert route.kind == "split"  # both pools are at stake
    before = states(market, SOL, USDC)
    with pytest.raises(SlippageExceeded) as err:
        market.execute(replace(route, min_out=route.out_amount + 1))
    assert err.value.transient
    assert err.value.details["amount_out"] == route.out_amount
    assert states(market, SOL, USDC) == before
    market.execute(route)  # and the same route at its real minimum still fills
    assert states(market, SOL, USDC) != before


def test_a_route_quoted_before_another_trade_slips():
    market = market_at()
    first = route_for(market, SOL, USDC, to_base_units("20000", SOL), bps=10)
    second = route_for(market, SOL, USDC, to_base_units("20000", SOL), bps=10)
    market.execute(first)
    with pytest.raises(SlippageExceeded):
        market.execute(second)


def test_a_slippage_failure_says_what_moved_and_by_how_much():
    market = market_at()
    first = route_for(market, SOL, USDC, to_base_units("5000", SOL), bps=10)
    second = route_for(market, SOL, USDC, to_base_units("500", SOL), bps=10)
    market.execute(first)
    with pytest.raises(SlippageExceeded) as err:
        market.execute(second)
    # In words: what moved, by how much, against what was allowed.
    got = err.value.details["amount_out"]
    fell = (second.out_amount - got) * 10_000 / second.out_amount
    assert str(err.value).startswith(
        f"the output fell from {to_ui(second.out_amount, USDC)} USDC to {to_ui(got, USDC)} USDC"
        f" (-{format(round(Decimal(fell), 2).normalize(), 'f')} bps), beyond the 10 bps allowed: "
    ), str(err.value)


def test_an_expired_quote_is_refused_before_anything_happens():
    clock = Clock()
    market = market_at(clock=clock)
    route = route_for(market, SOL, USDC, to_base_units("1", SOL))
    clock.slot = route.legs[0].expires_at_slot
    market.execute(route)  # the last valid slot is still fine
    route = route_for(market, SOL, USDC, to_base_units("1", SOL))
    clock.slot = route.legs[0].expires_at_slot + 1
    before = states(market, SOL, USDC)
    with pytest.raises(QuoteExpired):
        market.execute(route)
    assert states(market, SOL, USDC) == before


def test_round_trip_through_the_market_never_gains():
    market = market_at()
    for token_in, token_out in PAIRS:
        amount = to_base_units("777", token_in)
        there = market.execute(route_for(market, token_in, token_out, amount))
        back = market.execute(route_for(market, token_out, token_in, there.amount_out))
        assert back.amount_out < amount


def test_drift_moves_prices_a_little_around_the_oracle():
    clock = Clock(0)
    market = market_at(clock=clock, drift_trades_per_slot=2, arb_half_life_slots=10)
    moved, oracle_moved = set(), set()
    for slot in range(1, 3_000, 7):
        clock.slot = slot
        for venue in VENUES:
            snap = market.snapshot(venue, SOL, USDC)
            price, oracle = AMMS[venue].spot_price(snap.state), snap.oracle_price(SOL.mint)
            assert abs(price / oracle.rate - 1) < 0.01  # never 1 % away
            moved.add((venue, price))
            oracle_moved.add(oracle.rate)
    assert len(moved) > 20 and len(oracle_moved) > 20


def test_a_long_idle_catches_up_only_the_last_slots():
    # Markets last touched at different slots end a long idle in the same state: only the
    # last MAX_CATCH_UP_SLOTS slots are applied, and each slot's trades are fixed by
    # (seed, pool, slot).
    early, late = Clock(100), Clock(100 + 3 * MAX_CATCH_UP_SLOTS)
    drifting = {"drift_trades_per_slot": 2, "arb_half_life_slots": 10}
    markets = [market_at(seed=3, clock=c, **drifting) for c in (early, late)]
    initial = states(markets[0], SOL, USDC)
    early.slot = late.slot = 10_000
    idle = states(markets[0], SOL, USDC)
    assert idle != initial
    assert states(markets[1], SOL, USDC) == idle
    other_seed = market_at(seed=4, clock=Clock(10_000), **drifting)
    assert states(other_seed, SOL, USDC) != idle


def test_execution_with_drift_differs_from_the_quote_but_respects_min_out():
    clock = Clock()
    market = market_at(clock=clock, drift_trades_per_slot=2, arb_half_life_slots=10)
    differed = 0
    for i in range(20):
        token_in, token_out = PAIRS[i % len(PAIRS)]
        route = route_for(market, token_in, token_out, to_base_units("100", token_in), bps=500)
        clock.slot += 6
        done = market.execute(route)
        assert done.amount_out >= route.min_out
        differed += done.amount_out != route.out_amount
    assert differed > 0


def run_orders(seed: int) -> list:
    """A fixed order stream against a fresh market with drift and failures turned on."""
    clock = Clock()
    settings = make_settings(
        drift_trades_per_slot=2,
        arb_half_life_slots=10,
        venue_timeout_rate=0.2,
        blockhash_expiry_rate=0.2,
    )
    market = Market(seed, settings, clock=clock)
    outcomes = []
    for i in range(30):
        token_in, token_out = PAIRS[i % len(PAIRS)]
        faults = Faults.for_attempt(seed, f"order-{i}", 1, settings)
        try:
            route = route_for(
                market, token_in, token_out, to_base_units("250", token_in), 30, faults=faults
            )
            clock.slot += 5
            done = market.execute(route, faults)
            outcomes.append((route.to_dict(), done.amount_out, done.executed_price))
        except DexError as exc:
            outcomes.append(exc.code)
    return outcomes


def test_same_seed_same_order_stream_same_outcomes():
    first, second = run_orders(11), run_orders(11)
    assert first == second
    codes = {o for o in first if isinstance(o, str)}
    assert "venue_timeout" in codes or "blockhash_expired" in codes
    assert any(not isinstance(o, str) for o in first)
    assert run_orders(12) != first


def test_faults_do_not_depend_on_the_order_of_draws():
    settings = make_settings(venue_timeout_rate=0.5)
    results = []
    for order in (VENUES, VENUES[::-1]):
        draws = {}
        for attempt in range(20):
            faults = Faults.for_attempt(1, "o", attempt, settings)
            for venue in order:
                draws[attempt, venue] = faults.venue_times_out(venue)
        results.append(draws)
    assert results[0] == results[1]
    assert 0 < sum(results[0].values()) < len(results[0])


def test_injected_failures():
    always = make_settings(venue_timeout_rate=1.0, blockhash_expiry_rate=1.0)
    market = Market(1, always, clock=Clock())
    faults = Faults.for_attempt(1, "o", 1, always)
    with pytest.raises(VenueTimeout) as timeout:
        market.snapshot("raydium", SOL, USDC, faults)
    route = route_for(market, SOL, USDC, 10**9)  # no faults: no failures
    before = states(market, SOL, USDC)
    with pytest.raises(BlockhashExpired) as expired:
        market.execute(route, faults)
    assert timeout.value.transient and expired.value.transient
    assert states(market, SOL, USDC) == before
    assert not InsufficientLiquidity.transient


def test_latency_is_slept_and_drawn_within_bounds():
    slept = []
    settings = make_settings(
        quote_latency_ms=200, exec_latency_min_ms=2_000, exec_latency_max_ms=3_000
    )
    market = Market(1, settings, clock=Clock(), sleep=slept.append)
    routes = [route_for(market, SOL, USDC, 10**9) for _ in range(2)]
    assert slept == [0.2] * 4  # one quote latency per venue read
    slept.clear()
    market.execute(routes[0])
    market.execute(routes[1], Faults.for_attempt(1, "o", 1, settings))
    assert len(slept) == 2 and all(2.0 <= s <= 3.0 for s in slept)


def test_signatures_are_64_bytes_of_base58_and_unique():
    settings = make_settings()
    signatures = [
        Faults.for_attempt(1, f"o{i}", a, settings).signature() for i in range(50) for a in (1, 2)
    ]
    for sig in signatures:
        assert len(base58.b58decode(sig)) == 64
        assert 86 <= len(sig) <= 88
    assert len(set(signatures)) == len(signatures)
    # the seeded signature of an attempt is reproducible
    assert Faults.for_attempt(1, "o1", 1, settings).signature() == signatures[2]


def test_concurrent_executions_are_atomic():
    market = market_at()
    before = market.snapshot("raydium", SOL, USDC).state
    amount = to_base_units("3", SOL)
    routes = [
        route_for(market, SOL, USDC, amount, bps=5_000, venues=["raydium"]) for _ in range(40)
    ]
    threads = [threading.Thread(target=market.execute, args=(r,)) for r in routes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = market.snapshot("raydium", SOL, USDC).state
    # every fill landed exactly once (the fee stays in the pool: the X side grows by it all)
    assert after["reserve_x"] == before["reserve_x"] + 40 * amount


class SharedState:
    """What Redis is to the markets of several processes, in memory."""

    def __init__(self):
        self.states: dict[str, dict] = {}
        self.locks: list[list[str]] = []

    def load(self, pool_id):
        return self.states.get(pool_id)

    def save(self, pool_id, state):
        self.states[pool_id] = json.loads(json.dumps(state))

    def locked(self, pool_ids):
        self.locks.append(sorted(pool_ids))
        return threading.Lock()


def test_a_listed_pool_filled_in_one_process_is_seen_by_the_next(monkeypatch):
    """Two processes' markets, one shared state: the second quotes and fills the listed
    pool as the first's fill left it (the seeded pools need no sharing: arbitrage to the same
    oracle keeps their copies alike)."""
    from chalicelib import tokens
    from chalicelib.config import NewListing

    for name in ("_BY_SYMBOL", "_BY_MINT", "LISTED"):
        monkeypatch.setattr(tokens, name, getattr(tokens, name).copy())
    shared, clock = SharedState(), Clock()
    listing = NewListing(symbol="SHARED", mint="Shared".ljust(44, "1"), decimals=6,
                         slot=clock.slot, reserve=10**12, quote_reserve=10**10)  # fmt: skip
    settings = make_settings(listings=(listing,))
    one, two = (Market(7, settings, clock=clock, listed_state=shared) for _ in range(2))
    new = resolve("SHARED")

    def buy(market):
        snap = market.snapshot("raydium", USDC, new)
        route = best_route([snap], USDC, new, 100_000_000, 100, 10, guards=OFF)
        return market.execute(route).amount_out

    first, second = buy(one), buy(two)

    assert second < first  # the second bought after the first moved the price
    pool_id = one._by_pair[("raydium", frozenset((USDC.mint, new.mint)))].pool_id
    assert shared.locks == [[pool_id], [pool_id]]
    assert two.snapshot("raydium", USDC, new).state == shared.states[pool_id]
    sol = best_route([two.snapshot("raydium", USDC, SOL)], USDC, SOL, 10**6, 100, 10, guards=OFF)
    two.execute(sol)  # a seeded pool: no lock, nothing shared
    assert len(shared.locks) == 2 and len(shared.states) == 1
