"""Raydium CPMM math, straight on the pool state."""

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.dex import cpmm
from chalicelib.dex.amm import ceil_div

reserves = st.integers(min_value=10**3, max_value=10**18)
amounts = st.integers(min_value=1, max_value=10**16)
pools = st.builds(cpmm.new_state, reserves, reserves)


def test_fee_is_rounded_up_on_the_input():
    state = cpmm.new_state(10**12, 10**12)
    assert cpmm.swap(state, True, 1).fee == 1  # 0.0025 base units round up to one
    assert cpmm.swap(state, True, 400).fee == 1  # exactly 0.25 %
    assert cpmm.swap(state, True, 401).fee == 2
    assert cpmm.swap(state, True, 1).amount_out == 0  # the fee ate it all


@given(pools, st.booleans(), amounts)
def test_output_is_the_floor_of_the_constant_product_formula(state, x_to_y, amount):
    result = cpmm.swap(state, x_to_y, amount)
    reserve_in, reserve_out = cpmm.reserves(state, x_to_y)
    assert result.fee * 1_000_000 >= amount * 2_500 > (result.fee - 1) * 1_000_000
    net = amount - result.fee
    # out is the largest integer with out * (x + net) <= net * y
    assert result.amount_out * (reserve_in + net) <= net * reserve_out
    assert (result.amount_out + 1) * (reserve_in + net) > net * reserve_out


@given(pools, st.booleans(), amounts)
def test_reserves_stay_positive_and_the_product_never_falls(state, x_to_y, amount):
    after = cpmm.swap(state, x_to_y, amount).state
    assert after["reserve_x"] > 0 and after["reserve_y"] > 0
    assert after["reserve_x"] * after["reserve_y"] >= state["reserve_x"] * state["reserve_y"]
    in_before, _ = cpmm.reserves(state, x_to_y)
    in_after, _ = cpmm.reserves(after, x_to_y)
    assert in_after == in_before + amount  # the fee stays in the pool


def test_swap_does_not_touch_its_input_state():
    state = cpmm.new_state(10**12, 5 * 10**12)
    copy = dict(state)
    cpmm.swap(state, True, 10**9)
    assert state == copy


@given(pools, st.booleans(), amounts, amounts)
def test_output_is_monotone_and_average_price_does_not_improve_with_size(state, x_to_y, a, b):
    a, b = sorted((a, b))
    out_a = cpmm.swap(state, x_to_y, a).amount_out
    out_b = cpmm.swap(state, x_to_y, b).amount_out
    assert out_a <= out_b
    # out/in falls with size; integer rounding (the fee's ceil, the output's floor) can
    # cost the smaller trade at most one base unit each side of the spot price.
    reserve_in, reserve_out = cpmm.reserves(state, x_to_y)
    rounding = 1 + ceil_div(reserve_out, reserve_in)
    assert out_b * a <= (out_a + rounding) * b


@given(pools, st.booleans(), amounts)
def test_a_round_trip_never_gains(state, x_to_y, amount):
    there = cpmm.swap(state, x_to_y, amount)
    if there.amount_out == 0:
        return
    back = cpmm.swap(there.state, not x_to_y, there.amount_out)
    assert back.amount_out <= amount


@settings(max_examples=50)
@given(pools, st.lists(st.tuples(st.booleans(), amounts), max_size=20))
def test_reserves_never_go_negative_over_many_swaps(state, trades):
    for x_to_y, amount in trades:
        state = cpmm.swap(state, x_to_y, amount).state
        assert state["reserve_x"] > 0 and state["reserve_y"] > 0


def test_a_larger_pool_moves_less():
    shallow, deep = cpmm.new_state(10**12, 10**12), cpmm.new_state(10**15, 10**15)
    assert cpmm.swap(shallow, True, 10**10).amount_out < cpmm.swap(deep, True, 10**10).amount_out


def test_spot_price_is_y_per_x():
    assert cpmm.spot_price(cpmm.new_state(2 * 10**12, 3 * 10**12)) == Fraction(3, 2)


@given(pools, st.booleans(), amounts)
def test_the_marginal_rate_bounds_the_average_and_falls_with_the_trade(state, x_to_y, amount):
    result = cpmm.swap(state, x_to_y, amount)
    first = cpmm.marginal_rate(state, x_to_y)
    assert result.amount_out <= amount * first
    assert cpmm.marginal_rate(result.state, x_to_y) <= first
