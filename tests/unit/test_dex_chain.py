"""The congestion model: demand and priority fees per slot, the "auto" fee estimate, and
when (or whether) a transaction lands."""

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import MarketSettings
from chalicelib.dex import BlockhashExpired, Faults, Market, RouteOptions, plan
from chalicelib.dex.chain import (
    BASE_FEE_LAMPORTS,
    BLOCKHASH_VALID_SLOTS,
    CU_PER_LEG,
    CU_UNWRAP,
    CU_WRAP,
    LANDING_RANGE,
    Chain,
    PriorityFee,
    compute_units,
    landing_chance_pm,
)
from chalicelib.dex.guards import OFF
from chalicelib.tokens import resolve, to_base_units

SOL, USDC, JUP, BONK = map(resolve, ("SOL", "USDC", "JUP", "BONK"))
CHAIN = Chain(42)
SETTINGS = MarketSettings(
    quote_latency_ms=0, exec_latency_min_ms=0, exec_latency_max_ms=0, drift_trades_per_slot=0
)
MARKET = Market(5, SETTINGS, clock=lambda: 1_000)
slots = st.integers(0, 10**7)


ANY_PATH = RouteOptions()  # the default: direct and two-hop paths


def route(token_in, token_out, ui, options=ANY_PATH):
    amount = to_base_units(ui, token_in)
    return plan(MARKET.snapshot, token_in, token_out, amount, 50, 150, options, guards=OFF)


def test_demand_is_a_function_of_seed_and_slot_that_varies_with_bursts():
    demand = [CHAIN.demand_pm(slot) for slot in range(10_000)]
    assert demand == [Chain(42).demand_pm(slot) for slot in range(10_000)]
    assert demand != [Chain(43).demand_pm(slot) for slot in range(10_000)]
    congested = sum(d > 1_000 for d in demand) / len(demand)
    assert 0.02 < congested < 0.4  # mostly room in blocks, but bursts of congestion
    assert max(demand) > 2_000 and min(demand) < 700
    # smooth: from one slot to the next demand moves by noise and the odd burst edge
    steps = sorted(abs(a - b) for a, b in zip(demand, demand[1:], strict=False))
    assert steps[len(steps) * 9 // 10] <= 250


@settings(max_examples=100, deadline=None)
@given(slots)
def test_a_slots_fee_ladder_climbs_and_follows_demand(slot):
    levels = CHAIN.fees(slot)
    assert list(levels.ladder) == sorted(set(levels.ladder))  # strictly up the percentiles
    assert all(isinstance(fee, int) and fee > 0 for fee in levels.ladder)
    assert levels.demand_pm == CHAIN.demand_pm(slot)
    assert levels.to_dict()["p50"] == levels.p50


def test_fees_rise_with_congestion():
    by_demand = sorted(range(0, 30_000, 7), key=CHAIN.demand_pm)
    calm, busy = by_demand[: len(by_demand) // 10], by_demand[-len(by_demand) // 10 :]
    assert max(CHAIN.fees(s).p50 for s in calm) < min(CHAIN.fees(s).p50 for s in busy)


def test_recent_fees_are_medians_over_the_window():
    recent = CHAIN.recent_fees(5_000, 5)
    window = [CHAIN.fees(s) for s in range(4_996, 5_001)]
    assert recent.p75 == sorted(levels.p75 for levels in window)[2]
    assert recent.demand_pm == sorted(levels.demand_pm for levels in window)[2]
    assert recent.slot == 5_000


@settings(max_examples=100, deadline=None)
@given(slots, st.integers(0, 10**7), st.integers(0, 10**7))
def test_paying_more_never_lowers_the_chance_to_land(slot, fee, more):
    levels = CHAIN.fees(slot)
    low, high = landing_chance_pm(levels, fee), landing_chance_pm(levels, fee + more)
    assert LANDING_RANGE[0] <= low <= high <= LANDING_RANGE[1]


def test_the_same_fee_lands_less_often_when_blocks_are_full():
    levels = CHAIN.fees(1)
    calm, full = replace(levels, demand_pm=500), replace(levels, demand_pm=2_500)
    fee = levels.p50
    assert landing_chance_pm(full, fee) < landing_chance_pm(calm, fee)
    assert landing_chance_pm(full, 0) == LANDING_RANGE[0]  # no fee in a full block: hopeless
    assert landing_chance_pm(calm, 10 * levels.p99) == LANDING_RANGE[1]  # never certain


def test_compute_units_follow_the_legs_and_the_wrapping():
    single = route(JUP, USDC, "10", RouteOptions(venues=("raydium",)))
    wrapped = route(SOL, USDC, "0.1", RouteOptions(venues=("raydium",)))
    two_hop = route(JUP, BONK, "25000")
    assert single.kind == wrapped.kind == "single" and two_hop.hops == 2
    assert compute_units(wrapped) - compute_units(single) == pytest.approx(CU_WRAP * 1.1, abs=1)
    assert compute_units(two_hop) > compute_units(single) + 3 * min(CU_PER_LEG.values())
    unwrapped = route(USDC, SOL, "15", RouteOptions(venues=("raydium",)))
    assert compute_units(unwrapped) - compute_units(single) == pytest.approx(CU_UNWRAP * 1.1, 1)


def test_fees_are_integer_lamports():
    fee = PriorityFee(compute_units=200_001, micro_lamports_per_cu=3)
    assert fee.priority_lamports == 1  # ceil(600_003 / 1e6)
    assert fee.lamports == BASE_FEE_LAMPORTS + 1
    assert PriorityFee(300_000, 0).lamports == 5_000
    assert PriorityFee(300_000, 1_000_000).lamports == 5_000 + 300_000
    assert fee.to_dict()["lamports"] == "5001"


@settings(max_examples=60, deadline=None)
@given(slots)
def test_auto_is_the_lowest_fee_expected_to_land_within_three_slots(slot):
    swap = route(JUP, USDC, "10")
    estimate = CHAIN.estimate(swap, slot)
    recent = CHAIN.recent_fees(slot)
    price = estimate.fee.micro_lamports_per_cu
    assert estimate.fee.compute_units == compute_units(swap)
    assert estimate.landing_chance_pm == landing_chance_pm(recent, price)
    if not estimate.capped:
        assert estimate.expected_slots <= 3
        assert price == 0 or landing_chance_pm(recent, price - 1) * 3 < 1_000


def test_the_cap_holds_and_retries_raise_the_fee_within_it():
    swap = route(JUP, BONK, "25000")
    busy = max(range(0, 30_000, 11), key=CHAIN.demand_pm)
    prices = [
        CHAIN.estimate(swap, busy, attempt).fee.micro_lamports_per_cu for attempt in (1, 2, 3)
    ]
    assert prices[0] > 0 and prices == sorted(set(prices))  # each retry pays more
    capped = CHAIN.estimate(swap, busy, attempt=6, max_lamports=20_000)
    assert capped.fee.priority_lamports <= 20_000 and capped.capped
    assert CHAIN.estimate(swap, busy, attempt=7, max_lamports=20_000).fee == capped.fee
    calm = min(range(0, 30_000, 11), key=CHAIN.demand_pm)
    first, retry = (CHAIN.estimate(swap, calm, a).fee.micro_lamports_per_cu for a in (1, 2))
    assert retry > first  # even with room in blocks, a retry does not stay put


def test_landing_draws_decide_the_slot_and_are_seeded():
    fee = PriorityFee(300_000, 0)
    draws = [CHAIN.land_slot(1_000, fee, random.Random(f"r{i}")) for i in range(200)]
    assert draws == [CHAIN.land_slot(1_000, fee, random.Random(f"r{i}")) for i in range(200)]
    assert all(1_000 < slot <= 1_000 + BLOCKHASH_VALID_SLOTS for slot in draws)
    paid = PriorityFee(300_000, CHAIN.recent_fees(1_000).p99)
    faster = [CHAIN.land_slot(1_000, paid, random.Random(f"r{i}")) for i in range(200)]
    assert sum(faster) < sum(draws)


def test_a_transaction_that_never_lands_expires_with_its_blockhash():
    hopeless = Chain(42)
    hopeless.chance_pm = lambda fee, slot: 0  # a chain whose blocks never have room
    with pytest.raises(BlockhashExpired) as expired:
        hopeless.land_slot(77, PriorityFee(200_000, 5), random.Random(1))
    assert expired.value.transient
    assert expired.value.details == {"sent_slot": 77, "micro_lamports_per_cu": 5}


def test_the_market_lands_per_order_and_attempt_from_the_faults_streams():
    clock = [40_000]
    market = Market(5, SETTINGS, clock=lambda: clock[0])
    swap = route(JUP, USDC, "10")

    def landing(order, attempt):
        return market.landing(swap, faults=Faults.for_attempt(5, order, attempt, SETTINGS))

    first = landing("o1", 1)
    assert first == landing("o1", 1)  # the same order and attempt: the same landing
    assert len({landing(f"o{i}", 1).landed_slot for i in range(30)}) > 1
    assert first.sent_slot == 40_000 and first.slots == first.landed_slot - 40_000 >= 1
    assert first.delay_s == first.slots * SETTINGS.slot_ms / 1000
    assert first.fee == market.chain.estimate(swap, 40_000).fee  # "auto" by default
    chosen = PriorityFee(compute_units(swap), 12_345)
    assert market.landing(swap, chosen).fee == chosen
    retried = market.landing(swap, faults=Faults.for_attempt(5, "o1", 2, SETTINGS), attempt=2)
    assert retried.fee.micro_lamports_per_cu > first.fee.micro_lamports_per_cu


def test_the_old_expiry_rate_still_works_beside_the_model():
    always = SETTINGS.model_copy(update={"blockhash_expiry_rate": 1.0})
    assert Faults.for_attempt(1, "o", 1, always).blockhash_expires()
    assert not Faults.for_attempt(1, "o", 1, SETTINGS).blockhash_expires()
