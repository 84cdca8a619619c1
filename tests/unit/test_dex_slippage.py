"""Dynamic slippage from a pair's recent history, and the words for a slipped landing."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.dex.slippage import (
    auto_slippage_bps,
    input_rose_message,
    output_fell_message,
    price_move_bps,
    rms_bps,
    slippage_sample_bps,
)
from chalicelib.tokens import resolve

samples = st.lists(st.integers(-500, 2_000), max_size=60)
moves = st.lists(st.integers(-1_000, 1_000), max_size=30)


@settings(max_examples=200, deadline=None)
@given(samples, moves, st.integers(0, 200), st.integers(0, 2_000))
def test_the_choice_stays_within_its_bounds(history, price_moves, floor_bps, extra):
    max_bps = floor_bps + extra
    chosen = auto_slippage_bps(history, price_moves, max_bps=max_bps, floor_bps=floor_bps)
    assert isinstance(chosen, int)
    assert floor_bps <= chosen <= max_bps
    assert chosen == auto_slippage_bps(
        list(history), list(price_moves), max_bps=max_bps, floor_bps=floor_bps
    )


@settings(max_examples=200, deadline=None)
@given(samples, moves, st.integers(0, 500))
def test_worse_slippage_or_more_volatility_never_lowers_the_choice(history, price_moves, more):
    base = auto_slippage_bps(history, price_moves, max_bps=10_000)
    worse = [s + more for s in history]
    assert auto_slippage_bps(worse, price_moves, max_bps=10_000) >= base
    wilder = [m * 2 for m in price_moves]
    assert auto_slippage_bps(history, wilder, max_bps=10_000) >= base


def test_a_calm_pair_gets_a_tight_tolerance_and_a_wild_one_the_cap():
    calm = [1, 0, 2, -1, 3, 1, 0, 2, 1, 4]
    assert auto_slippage_bps(calm, [1, -1, 2], floor_bps=10) == 10
    wild = [40, 120, 260, 80, 310, 150, 90, 200, 30, 400]
    assert auto_slippage_bps(wild, [50, -80], max_bps=300) == 300


def test_the_tail_of_losses_sets_the_tolerance():
    history = [10] * 9 + [100]  # the 90th percentile of ten is the ninth: 10
    assert auto_slippage_bps(history, floor_bps=0) == 13  # 10 and a quarter, rounded up
    history = [10] * 8 + [100, 100]
    assert auto_slippage_bps(history, floor_bps=0) == 125
    gains = [-50] * 10  # orders that got more than quoted ask for no tolerance
    assert auto_slippage_bps(gains, floor_bps=7) == 7


def test_volatility_adds_twice_its_root_mean_square():
    history = [0] * 10
    assert auto_slippage_bps(history, [30, -40], floor_bps=0) == 2 * 36  # rms 35.36 -> 36
    assert rms_bps([3, -4]) == 4 and rms_bps([5, 5]) == 5 and rms_bps([]) == 0


def test_too_few_samples_never_go_below_the_default():
    assert auto_slippage_bps([], default_bps=50) == 50
    assert auto_slippage_bps([1, 1, 1, 1], default_bps=50) == 50
    assert auto_slippage_bps([1] * 5, default_bps=50, floor_bps=0) == 2
    assert auto_slippage_bps([], default_bps=500, max_bps=300) == 300


def test_bounds_must_make_sense():
    with pytest.raises(ValueError):
        auto_slippage_bps([], max_bps=10, floor_bps=20)
    with pytest.raises(ValueError):
        auto_slippage_bps([], max_bps=10_001)


def test_samples_and_moves_round_against_the_trader():
    assert slippage_sample_bps(10_000, 9_950) == 50
    assert slippage_sample_bps(3, 2) == 3334  # 3333.3 bps lost: a sample never understates
    assert slippage_sample_bps(10_000, 10_020) == -20
    with pytest.raises(ValueError):
        slippage_sample_bps(0, 1)
    assert price_move_bps(Fraction(100), Fraction(101)) == 100
    assert price_move_bps(Fraction(3), Fraction(2)) == -3334
    assert price_move_bps(Fraction(7), Fraction(7)) == 0


def test_the_failure_messages_say_what_moved_and_by_how_much():
    assert output_fell_message(1_000_000, 993_850, 50) == (
        "the output fell from 1000000 to 993850 (-61.5 bps), beyond the 50 bps allowed"
    )
    usdc = resolve("USDC")
    assert output_fell_message(150_000_000, 149_000_000, 30, usdc) == (
        "the output fell from 150 USDC to 149 USDC (-66.67 bps), beyond the 30 bps allowed"
    )
    assert input_rose_message(92_866_798_824, 93_436_706_307, 92_959_665_623) == (
        "the input needed rose from 92866798824 to 93436706307 (+61.37 bps), over maxIn 92959665623"
    )
    assert input_rose_message(100, 200, 150) == (
        "the input needed rose from 100 to 200 (+10000 bps), over maxIn 150"
    )
