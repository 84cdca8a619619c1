"""Meteora DLMM math, straight on the pool state."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.dex import dlmm
from chalicelib.dex.amm import ceil_div
from chalicelib.dex.errors import InsufficientLiquidity
from chalicelib.dex.listing import LISTINGS, build_pools

ONE = 1 << 64


def totals(state: dict) -> tuple[int, int]:
    """(all X, all Y) held in the bins."""
    return sum(state["bin_x"]), sum(state["bin_y"])


def book(bin_step=10, active=0, reach=20, per_bin=10**12, slot=0, **fees) -> dict:
    """A small pool: ``per_bin`` worth of Y in every bin, Y below the active bin, X above."""
    fees = {"base_factor": 10_000, "variable_fee_control": 40_000} | fees
    ids = range(active - reach, active + reach + 1)
    bin_y = [per_bin if i < active else per_bin // 2 if i == active else 0 for i in ids]
    bin_x = [
        ((per_bin - y) << 64) // dlmm.price_q64(bin_step, i)
        for i, y in zip(ids, bin_y, strict=True)
    ]
    return dlmm.new_state(
        bin_step=bin_step,
        active_id=active,
        min_bin_id=active - reach,
        bin_x=bin_x,
        bin_y=bin_y,
        slot=slot,
        **fees,
    )


# The market's own DLMM pools (real depth and fee settings), plus small ones to run dry.
MARKET_BOOKS = [p.state for p in build_pools(7, 0) if p.venue == "meteora"]
books = st.one_of(
    st.sampled_from(MARKET_BOOKS),
    st.builds(
        book,
        bin_step=st.sampled_from([1, 10, 25, 80]),
        active=st.integers(-500, 500),
        reach=st.integers(1, 30),
        per_bin=st.integers(10**3, 10**12),
    ),
)


@st.composite
def trades(draw, count=1):
    """A book, a direction, the book's depth that way (in input units, before fees) and
    ``count`` amounts sized to it."""
    state, x_to_y = draw(books), draw(st.booleans())
    x, y = totals(state)
    price = dlmm.spot_price(state)
    depth = int(y / price if x_to_y else x * price)  # all it can sell, in input units
    # k * 10**e millionths of the depth: from inside the active bin to 120 % of it all.
    sizes = st.builds(
        lambda k, e: max(1, depth * k * 10**e // 1_000_000),
        st.integers(1, 12),
        st.integers(1, 5),
    )
    return state, x_to_y, depth, [draw(sizes) for _ in range(count)]


def swap_or_none(state, x_to_y, amount):
    try:
        return dlmm.swap(state, x_to_y, amount)
    except InsufficientLiquidity:
        return None


@given(st.sampled_from([1, 10, 25, 80, 100]), st.integers(-3_000, 3_000))
def test_bin_price_is_the_exact_floor_of_the_power(bin_step, bin_id):
    exact = Fraction(10_000 + bin_step, 10_000) ** bin_id * ONE
    assert dlmm.price_q64(bin_step, bin_id) == exact.numerator // exact.denominator


@settings(deadline=None)
@given(st.sampled_from([1, 10, 80]), st.fractions(min_value=Fraction(1, 10**6), max_value=10**6))
def test_bin_at_or_below_brackets_the_price(bin_step, price):
    bin_id = dlmm.bin_at_or_below(bin_step, price)
    assert dlmm.price_q64(bin_step, bin_id) <= price * ONE < dlmm.price_q64(bin_step, bin_id + 1)


@given(st.sampled_from([1, 10, 100]), st.fractions(min_value=Fraction(1, 10**4), max_value=10**4))
def test_nearest_bin_is_at_most_half_a_step_away(bin_step, price):
    bin_id = dlmm.nearest_bin(bin_step, price)
    gap = abs(Fraction(dlmm.price_q64(bin_step, bin_id), ONE) / price - 1)
    assert gap * 10_000 <= Fraction(bin_step, 2) + Fraction(1, 10**6)


def test_a_small_swap_in_the_active_bin_pays_the_active_price_and_base_fee():
    state = book(bin_step=10, active=0)
    result = dlmm.swap(state, True, 10**6)
    assert result.fee == ceil_div(10**6 * 10_000 * 10 * 10, 10**9)  # 0.1 %: no volatility yet
    assert result.amount_out == 10**6 - result.fee  # price 1 at bin 0
    assert result.state["active_id"] == 0


@settings(max_examples=60, deadline=None)
@given(trades())
def test_tokens_are_conserved_and_bins_never_go_negative(trade):
    state, x_to_y, depth, (amount,) = trade
    result = swap_or_none(state, x_to_y, amount)
    if result is None:
        assert amount * 10 > depth * 8  # fees are at most 10 %: 80 % of the depth fills
        return
    after = result.state
    assert min(after["bin_x"]) >= 0 and min(after["bin_y"]) >= 0
    (x0, y0), (x1, y1) = totals(state), totals(after)
    gained, lost = (x1 - x0, y0 - y1) if x_to_y else (y1 - y0, x0 - x1)
    assert gained == amount - result.fee  # the fee leaves the bins for the LPs
    assert lost == result.amount_out


@settings(max_examples=60, deadline=None)
@given(trades(count=2))
def test_output_is_monotone_and_average_price_does_not_improve_with_size(trade):
    state, x_to_y, _, amounts = trade
    a, b = sorted(amounts)
    small, large = swap_or_none(state, x_to_y, a), swap_or_none(state, x_to_y, b)
    if large is None:
        return
    assert small.amount_out <= large.amount_out
    # Bins further out pay less (and fees rise no faster than prices fall), so out/in
    # falls with size; rounding (fee ceil, output floor, per bin) costs the small trade at
    # most three base units of input plus one of output for each bin it touched.
    touched = abs(small.state["active_id"] - state["active_id"]) + 1
    price = dlmm.spot_price(state)
    best_rate = price if x_to_y else 1 / price
    rounding = 3 * touched * (ceil_div(best_rate.numerator, best_rate.denominator) + 1)
    assert large.amount_out * a <= (small.amount_out + rounding) * b


@settings(max_examples=60, deadline=None)
@given(trades())
def test_a_round_trip_never_gains(trade):
    state, x_to_y, _, (amount,) = trade
    there = swap_or_none(state, x_to_y, amount)
    if there is None or there.amount_out == 0:
        return
    back = swap_or_none(there.state, not x_to_y, there.amount_out)
    assert back is not None  # the bins we crossed hold what we sold into them
    assert back.amount_out <= amount


@settings(max_examples=60, deadline=None)
@given(trades())
def test_the_marginal_rate_bounds_the_average_and_falls_with_the_trade(trade):
    state, x_to_y, _, (amount,) = trade
    result = swap_or_none(state, x_to_y, amount)
    if result is None:
        return
    first, last = dlmm.marginal_rate(state, x_to_y), dlmm.marginal_rate(result.state, x_to_y)
    assert result.amount_out <= amount * first
    assert last <= first
    if result.state["active_id"] != state["active_id"]:
        assert last < first  # a bin further out pays less


@pytest.mark.parametrize("x_to_y", [True, False])
def test_running_out_of_bins_is_insufficient_liquidity(x_to_y):
    state = book(reach=3, per_bin=10**9)
    x, y = totals(state)
    with pytest.raises(InsufficientLiquidity) as err:
        dlmm.swap(state, x_to_y, 10 * (x + y))
    assert 0 < err.value.details["filled"] < err.value.details["amount_in"]


def test_crossing_bins_raises_the_fee():
    state = book(bin_step=10, per_bin=10**9)
    base_rate = dlmm.fee_rate(state)
    small = dlmm.swap(state, True, 10**5)
    large = dlmm.swap(state, True, 10**10)  # crosses ~10 bins
    assert large.state["active_id"] <= -5
    assert small.fee * 10**9 <= base_rate * 10**5 + 10**9  # base fee only (plus rounding)
    assert large.fee * 10**9 > base_rate * 10**10  # later bins charged the variable fee
    assert large.state["volatility_accumulator"] > 0


def test_volatility_is_kept_within_the_filter_period_then_decays_then_resets():
    state = book(bin_step=10, per_bin=10**9, slot=0)
    moved = dlmm.swap(state, True, 10**10, slot=100).state
    accumulated = moved["volatility_accumulator"]
    assert accumulated > 0
    assert dlmm.settle(moved, 100 + moved["filter_period"] - 1) == moved
    decayed = dlmm.settle(moved, 100 + moved["filter_period"])
    assert decayed["index_reference"] == moved["active_id"]
    assert decayed["volatility_reference"] == accumulated * moved["reduction_factor"] // 10_000
    assert dlmm.settle(moved, 100 + moved["decay_period"])["volatility_reference"] == 0
    # With the reference at the new active bin the same trade is cheaper than right after.
    again = dlmm.swap(moved, True, 10**8)
    later = dlmm.swap(decayed, True, 10**8)
    assert later.fee < again.fee


def test_variable_fee_settings_keep_fee_steps_below_price_steps():
    # The concavity the router relies on: per bin, the fee may not rise by more than the
    # price falls, at any accumulated volatility the pool allows.
    for listing in LISTINGS:
        state = book(bin_step=listing.bin_step, variable_fee_control=listing.variable_fee_control)
        for bins in range(36):
            state_here = {**state, "volatility_accumulator": bins * 10_000}
            state_next = {**state, "volatility_accumulator": (bins + 1) * 10_000}
            step = dlmm.fee_rate(state_next) - dlmm.fee_rate(state_here)
            assert step * 10_000 < listing.bin_step * 10**9


def test_swap_does_not_touch_its_input_state():
    state = book()
    bins = list(state["bin_y"])
    dlmm.swap(state, True, 10**13 // 2)
    assert state["bin_y"] == bins and state["active_id"] == 0
