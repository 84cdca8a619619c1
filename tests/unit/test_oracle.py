"""The mock Pyth-like oracle: seeded, bounded, continuous, integer prices."""

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.dex.listing import reference_usd
from chalicelib.dex.oracle import EXPO, KNOT_SLOTS, Oracle, OraclePrice, pair_price
from chalicelib.tokens import resolve

SOL, USDC, USDT, JUP, BONK = map(resolve, ("WSOL", "USDC", "USDT", "JUP", "BONK"))
TOKENS = [SOL, USDC, USDT, JUP, BONK]
slots = st.integers(0, 10**10)


def oracle(seed=42, wander_bps=100) -> Oracle:
    return Oracle(seed, reference_usd(seed), wander_bps)


def test_same_seed_same_prices_whatever_the_order_of_reads():
    first, second = oracle(), oracle()
    reads = [(token.mint, slot) for token in TOKENS for slot in range(5_000, 5_400, 37)]
    forward = [first.read(mint, slot) for mint, slot in reads]
    backward = [second.read(mint, slot) for mint, slot in reversed(reads)][::-1]
    assert forward == backward
    assert [oracle(seed=43).read(m, s) for m, s in reads] != forward


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TOKENS), slots)
def test_a_feed_stays_within_its_wander_of_the_reference(token, slot):
    feed = oracle(wander_bps=150)
    reach = Fraction(150 if token not in (USDC, USDT) else 150 // 20, 10_000)
    reference = feed.reference_usd[token.symbol]
    assert abs(feed.usd(token.symbol, slot) / reference - 1) <= reach
    assert oracle(wander_bps=0).usd(token.symbol, slot) == reference


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TOKENS), slots)
def test_a_feed_moves_a_little_per_slot(token, slot):
    feed = oracle(wander_bps=100)
    step = feed.usd(token.symbol, slot + 1) / feed.usd(token.symbol, slot) - 1
    # waypoints at most 200 bps apart, KNOT_SLOTS slots between them; relative to a price
    # that may be 1 % below the reference
    assert abs(step) <= Fraction(203, 10_000 * KNOT_SLOTS)


def test_feeds_wander_over_time():
    feed = oracle()
    prices = {feed.read(SOL.mint, slot).price for slot in range(0, 100 * KNOT_SLOTS, KNOT_SLOTS)}
    assert len(prices) > 50


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TOKENS), slots)
def test_a_reading_is_integers_published_up_to_two_slots_back(token, slot):
    reading = oracle().read(token.mint, slot)
    assert reading.expo == EXPO
    assert all(isinstance(v, int) for v in (reading.price, reading.conf, reading.publish_slot))
    assert slot - 2 <= reading.publish_slot <= slot
    assert 0 < reading.conf < reading.price // 100  # a confidence well under 1 %
    exact = oracle().usd(token.symbol, reading.publish_slot) * 10**-EXPO
    assert reading.price == int(exact)


def test_a_reading_survives_a_json_round_trip():
    reading = oracle().read(BONK.mint, 123_456)
    assert OraclePrice.from_dict(json.loads(json.dumps(reading.to_dict()))) == reading
    assert isinstance(reading.to_dict()["price"], str)


@pytest.mark.parametrize(("a", "b"), [(SOL, USDC), (JUP, BONK), (USDT, SOL)])
def test_pair_prices_are_in_base_units_and_invert(a, b):
    feed = oracle()
    x, y = feed.read(a.mint, 9_000), feed.read(b.mint, 9_000)
    there, back = pair_price(x, y), pair_price(y, x)
    assert there.rate * back.rate == 1
    assert there.conf == back.conf == Fraction(x.conf, x.price) + Fraction(y.conf, y.price)
    usd_ratio = Fraction(x.price, y.price)  # per whole token
    assert there.rate == usd_ratio * Fraction(10) ** (b.decimals - a.decimals)


def test_one_sol_is_worth_about_150_usdc():
    feed = oracle()
    rate = pair_price(feed.read(SOL.mint, 1), feed.read(USDC.mint, 1)).rate
    assert 145 * 10**6 < rate * 10**9 < 155 * 10**6
