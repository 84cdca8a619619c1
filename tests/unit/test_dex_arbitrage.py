"""Arbitrage heals the pools: any trade's impact decays towards the oracle, slot by slot,
through the pools' own swaps, so their invariants hold all the way."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import MarketSettings
from chalicelib.dex import VENUES, DustAmount, InsufficientLiquidity, Market, best_route, cpmm, dlmm
from chalicelib.dex.arbitrage import target_price
from chalicelib.dex.guards import OFF
from chalicelib.tokens import MAX_BASE_UNITS, resolve, to_base_units

SOL, USDC, USDT, JUP, BONK = map(resolve, ("SOL", "USDC", "USDT", "JUP", "BONK"))
PAIRS = [(SOL, USDC), (USDC, SOL), (SOL, BONK), (BONK, SOL), (JUP, BONK), (USDT, USDC)]
HALF_LIVES = 12


class Clock:
    def __init__(self, slot: int = 1_000):
        self.slot = slot

    def __call__(self) -> int:
        return self.slot


def market_at(clock: Clock, half_life: int = 4) -> Market:
    settings = MarketSettings(
        quote_latency_ms=0,
        exec_latency_min_ms=0,
        exec_latency_max_ms=0,
        drift_trades_per_slot=0,
        arb_half_life_slots=half_life,
    )
    return Market(7, settings, clock=clock)


def gap(a: Fraction, b: Fraction) -> Fraction:
    """``1 - lower/higher``: how far apart two prices are, whichever is higher."""
    low, high = sorted((a, b))
    return 1 - low / high


def price_and_oracle(market: Market, venue: str, pair) -> tuple[Fraction, Fraction, dict]:
    snap = market.snapshot(venue, *pair)
    oracle = market.oracle.mid(snap.mint_x, snap.mint_y, snap.slot)
    return snap.amm.spot_price(snap.state), oracle, snap.state


def trade(market: Market, pair, amount: int, venues) -> bool:
    """Execute the best route for ``amount`` on ``venues``, unguarded; False when none fills."""
    token_in, token_out = pair
    snaps = [market.snapshot(v, token_in, token_out) for v in venues]
    try:
        route = best_route(snaps, token_in, token_out, amount, 50, 150, guards=OFF)
    except (InsufficientLiquidity, DustAmount):
        return False
    market.execute(route)
    return True


def dlmm_bin_values(state: dict) -> list[int]:
    """Each bin's holdings valued at its own price (Y, in Q64): a swap never lowers one."""
    step, lowest = state["bin_step"], state["min_bin_id"]
    return [
        x * dlmm.price_q64(step, lowest + i) + (y << 64)
        for i, (x, y) in enumerate(zip(state["bin_x"], state["bin_y"], strict=True))
    ]


def assert_invariants_kept(venue: str, before: dict, after: dict) -> None:
    if venue == "raydium":
        assert after["reserve_x"] > 0 and after["reserve_y"] > 0
        assert after["reserve_x"] * after["reserve_y"] >= before["reserve_x"] * before["reserve_y"]
    else:
        assert min(after["bin_x"]) >= 0 and min(after["bin_y"]) >= 0
        old, new = dlmm_bin_values(before), dlmm_bin_values(after)
        assert all(n >= o for o, n in zip(old, new, strict=True))


def tolerance(venue: str, state: dict) -> Fraction:
    """How close arbitrage can bring a pool: the gap left after HALF_LIVES, plus half a
    bin for a book (its price moves in bins) or a sliver for a curve (the fee it pays)."""
    left = Fraction(1, 2**HALF_LIVES)
    if venue == "raydium":
        return left + Fraction(1, 10_000)
    return left + Fraction(state["bin_step"], 2 * 10_000) * Fraction(101, 100)


def fees(states: dict) -> Fraction:
    raydium, meteora = states["raydium"], states["meteora"]
    base = meteora["base_factor"] * meteora["bin_step"] * 10
    return Fraction(raydium["fee_rate"], cpmm.FEE_DENOMINATOR) + Fraction(base, dlmm.FEE_PRECISION)


sizes = st.builds(
    lambda mantissa, exponent: mantissa * 10**exponent, st.integers(1, 99), st.integers(0, 19)
)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(PAIRS),
    st.sampled_from([VENUES, ("raydium",), ("meteora",)]),
    sizes,
)
def test_after_a_trade_of_any_size_pools_return_to_the_oracle(pair, venues, size):
    clock = Clock()
    market = market_at(clock)
    half_life = market.settings.arb_half_life_slots
    trade(market, pair, min(size, MAX_BASE_UNITS), venues)
    states = {v: price_and_oracle(market, v, pair)[2] for v in VENUES}
    for _ in range(HALF_LIVES * half_life):
        clock.slot += 1
        for venue in VENUES:
            after = price_and_oracle(market, venue, pair)[2]
            assert_invariants_kept(venue, states[venue], after)
            states[venue] = after
    prices = {}
    for venue in VENUES:
        price, oracle, state = price_and_oracle(market, venue, pair)
        assert gap(price, oracle) <= tolerance(venue, state), venue
        prices[venue] = price
    # so the venues agree within their fees: buying on one to sell on the other does not pay
    assert gap(prices["raydium"], prices["meteora"]) <= fees(states)


@pytest.mark.parametrize("pair", [(SOL, USDC), (JUP, BONK)])
def test_the_gap_halves_every_half_life(pair):
    clock = Clock()
    market = market_at(clock, half_life=10)
    price, oracle, _ = price_and_oracle(market, "raydium", pair)
    trade(market, pair, to_base_units("10000", pair[0]) * 10, ["raydium"])
    price, oracle, _ = price_and_oracle(market, "raydium", pair)
    gaps = [gap(price, oracle)]
    assert gaps[0] > Fraction(1, 10)
    for _ in range(4):
        clock.slot += 10
        price, oracle, _ = price_and_oracle(market, "raydium", pair)
        gaps.append(gap(price, oracle))
    for before, after in zip(gaps, gaps[1:], strict=False):
        assert before * Fraction(49, 100) <= after <= before * Fraction(51, 100)


def test_a_long_idle_heals_a_pool_in_one_step():
    clock = Clock()
    market = market_at(clock, half_life=10)
    trade(market, (SOL, USDC), MAX_BASE_UNITS, ["raydium"])
    price, oracle, _ = price_and_oracle(market, "raydium", (SOL, USDC))
    assert gap(price, oracle) > Fraction(99, 100)
    clock.slot += 100_000  # far beyond the slots replayed one by one
    price, oracle, _ = price_and_oracle(market, "raydium", (SOL, USDC))
    assert gap(price, oracle) < Fraction(1, 10_000)


def test_without_arbitrage_a_damaged_pool_stays_damaged():
    clock = Clock()
    market = market_at(clock, half_life=0)
    trade(market, (SOL, USDC), to_base_units("100000", SOL), ["raydium"])
    damaged = price_and_oracle(market, "raydium", (SOL, USDC))[2]
    clock.slot += 1_000
    assert price_and_oracle(market, "raydium", (SOL, USDC))[2] == damaged


@settings(max_examples=200, deadline=None)
@given(
    st.fractions(min_value=Fraction(1, 10**12), max_value=10**12),
    st.fractions(min_value=Fraction(1, 10**6), max_value=10**6),
    st.integers(0, 500),
    st.integers(1, 100),
)
def test_target_price_closes_the_gap_by_the_half_life(spot, oracle, slots, half_life):
    target = target_price(spot, oracle, slots, half_life)
    kept = Fraction(1, 2) ** Fraction(slots, half_life)
    # on the same side of the oracle as the pool, no further from it, by the decay
    assert (target - oracle) * (spot - oracle) >= 0
    assert abs(gap(target, oracle) - gap(spot, oracle) * kept) <= Fraction(1, 10**15)
