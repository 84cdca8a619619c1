"""Exact-output math of both pool models, and the per-direction quoters the router searches
with: every answer checked against the exact-input ``swap`` it inverts or stands for."""

import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.dex import cpmm, dlmm
from chalicelib.dex.amm import max_in
from chalicelib.dex.errors import InsufficientLiquidity
from chalicelib.dex.listing import build_pools
from chalicelib.dex.snapshot import PoolSnapshot

POOLS = build_pools(3, 0)
AMMS = {"raydium": cpmm, "meteora": dlmm}


def book(active=0, reach=20, per_bin=10**12, bin_step=10, index_reference=None) -> dict:
    ids = range(active - reach, active + reach + 1)
    bin_y = [per_bin if i < active else per_bin // 2 if i == active else 0 for i in ids]
    bin_x = [
        ((per_bin - y) << 64) // dlmm.price_q64(bin_step, i)
        for i, y in zip(ids, bin_y, strict=True)
    ]
    state = dlmm.new_state(
        bin_step=bin_step,
        base_factor=10_000,
        variable_fee_control=40_000,
        active_id=active,
        min_bin_id=active - reach,
        bin_x=bin_x,
        bin_y=bin_y,
        slot=0,
    )
    if index_reference is not None:  # a book whose price moved: fees vary along the walk
        state |= {"index_reference": index_reference, "volatility_reference": 20_000}
    return state


pools = st.sampled_from(POOLS)
directions = st.booleans()
magnitudes = st.integers(0, 17).flatmap(lambda e: st.integers(1, 10 ** (e + 1)))


def forward(amm, state, x_to_y, amount_in):
    try:
        return amm.swap(state, x_to_y, amount_in).amount_out
    except InsufficientLiquidity:
        return None


@settings(max_examples=300, deadline=None)
@given(pools, directions, magnitudes)
def test_input_for_is_the_least_input_that_buys_the_output(pool, x_to_y, wanted):
    amm = AMMS[pool.venue]
    try:
        needed = amm.input_for(pool.state, x_to_y, wanted)
    except InsufficientLiquidity:
        # then not even every bin (or the whole reserve) pays that much
        reserves = pool.state["bin_y" if x_to_y else "bin_x"] if amm is dlmm else None
        most = sum(reserves) if reserves else cpmm.reserves(pool.state, x_to_y)[1] - 1
        assert wanted > most
        return
    assert forward(amm, pool.state, x_to_y, needed) >= wanted
    assert (forward(amm, pool.state, x_to_y, needed - 1) or 0) < wanted


@settings(max_examples=200, deadline=None)
@given(st.integers(-15, 15), st.integers(-15, 15), directions, magnitudes)
def test_input_for_on_a_book_whose_fees_vary_along_the_walk(active, reference, x_to_y, wanted):
    state = book(active=active, index_reference=reference)
    try:
        needed = dlmm.input_for(state, x_to_y, wanted)
    except InsufficientLiquidity:
        assert wanted > sum(state["bin_y" if x_to_y else "bin_x"])
        return
    assert forward(dlmm, state, x_to_y, needed) >= wanted
    assert (forward(dlmm, state, x_to_y, needed - 1) or 0) < wanted
    assert dlmm.quoter(state, x_to_y).amount_in(wanted) == needed


@settings(max_examples=300, deadline=None)
@given(pools, directions, magnitudes)
def test_a_quoter_answers_as_the_swap_does(pool, x_to_y, amount):
    amm = AMMS[pool.venue]
    quoter = amm.quoter(pool.state, x_to_y)
    expected = forward(amm, pool.state, x_to_y, amount)
    if expected is None:
        with pytest.raises(InsufficientLiquidity):
            quoter.amount_out(amount)
    else:
        assert quoter.amount_out(amount) == expected
    try:
        needed = amm.input_for(pool.state, x_to_y, amount)
    except InsufficientLiquidity:
        with pytest.raises(InsufficientLiquidity):
            quoter.amount_in(amount)
    else:
        assert quoter.amount_in(amount) == needed


def test_a_quoted_snapshot_still_copies_and_pickles():
    snap = PoolSnapshot("meteora", "m", "x", "y", 0, book())
    out = snap.amount_out("x", 10**12)
    for copied in (copy.deepcopy(snap), pickle.loads(pickle.dumps(snap))):
        assert copied == snap and copied.amount_out("x", 10**12) == out


def test_a_quoter_gives_the_same_answers_in_any_order():
    pool = next(p for p in POOLS if p.venue == "meteora")
    amounts = [10**k for k in range(3, 13)]
    fresh = [dlmm.quoter(pool.state, True).amount_out(a) for a in amounts]
    shared = dlmm.quoter(pool.state, True)
    assert [shared.amount_out(a) for a in reversed(amounts)][::-1] == fresh


@settings(max_examples=200, deadline=None)
@given(pools, directions, magnitudes)
def test_an_exact_output_swap_pays_exactly_and_keeps_the_pool_whole(pool, x_to_y, wanted):
    amm = AMMS[pool.venue]
    try:
        swap = amm.swap_exact_out(pool.state, x_to_y, wanted, 9)
    except InsufficientLiquidity:
        return
    same_input = amm.swap(pool.state, x_to_y, swap.amount_in, 9)
    assert swap.amount_in == amm.input_for(pool.state, x_to_y, wanted)
    assert swap.fee == same_input.fee  # the fee an exact-input swap of that input charges
    if amm is cpmm:
        side_in, side_out = ("reserve_x", "reserve_y") if x_to_y else ("reserve_y", "reserve_x")
        assert swap.state[side_in] == pool.state[side_in] + swap.amount_in
        assert swap.state[side_out] == pool.state[side_out] - wanted
        before = pool.state["reserve_x"] * pool.state["reserve_y"]
        assert swap.state["reserve_x"] * swap.state["reserve_y"] >= before
    else:
        bins_in, bins_out = ("bin_x", "bin_y") if x_to_y else ("bin_y", "bin_x")
        assert sum(swap.state[bins_out]) == sum(pool.state[bins_out]) - wanted
        assert sum(swap.state[bins_in]) == sum(pool.state[bins_in]) + swap.amount_in - swap.fee
        assert min(swap.state["bin_x"] + swap.state["bin_y"]) >= 0
        for key in ("active_id", "volatility_accumulator", "last_swap_slot"):
            assert swap.state[key] == same_input.state[key]
        # what the exact-input swap would have paid beyond ``wanted`` stays in the bins
        assert sum(swap.state[bins_out]) - sum(same_input.state[bins_out]) == (
            same_input.amount_out - wanted
        )


def test_an_exact_output_swap_leaves_the_input_state_untouched():
    pool = next(p for p in POOLS if p.venue == "meteora")
    before = {k: list(v) if isinstance(v, list) else v for k, v in pool.state.items()}
    dlmm.swap_exact_out(pool.state, True, 10**9, 1)
    assert pool.state == before


def test_nothing_wanted_costs_nothing():
    for pool in POOLS[:2]:
        amm = AMMS[pool.venue]
        assert amm.input_for(pool.state, True, 0) == 0
        assert amm.swap_exact_out(pool.state, True, 0).amount_in == 0


def test_a_constant_product_pool_never_pays_its_whole_reserve():
    state = cpmm.new_state(10**12, 5 * 10**11)
    with pytest.raises(InsufficientLiquidity):
        cpmm.input_for(state, True, 5 * 10**11)
    assert cpmm.swap(state, True, cpmm.input_for(state, True, 5 * 10**11 - 1)).amount_out == (
        5 * 10**11 - 1
    )


@pytest.mark.parametrize(
    ("amount_in", "bps", "expected"),
    [(10_000, 50, 10_050), (10_001, 50, 10_052), (1, 1, 2), (999, 0, 999), (3, 10_000, 6)],
)
def test_max_in_rounds_up(amount_in, bps, expected):
    assert max_in(amount_in, bps) == expected
    with pytest.raises(ValueError):
        max_in(1, 10_001)
