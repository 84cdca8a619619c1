"""Simulated arbitrage: traders who watch the oracle bring every pool back to its price.

The gap between a pool and the oracle, ``1 - lower/higher`` of the two prices, shrinks by
half every ``half_life`` slots: a pool drained to nothing and one priced a million times too
high both heal within a few half-lives. The arbitrageur trades through the pool's own swap
and pays its fees, so the pool's invariants hold and no token comes out of nowhere.
"""

from decimal import Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from math import isqrt

from . import cpmm, dlmm
from .amm import ceil_div
from .errors import InsufficientLiquidity

FORGOTTEN_AFTER = 64  # half-lives after which no trace of a gap is left
DEAD_BAND = 1_000_000  # a CPMM trade below a millionth of its reserve is not worth making


@lru_cache(maxsize=1024)
def _kept(slots: int, half_life: int) -> Fraction:
    """``2 ** (-slots / half_life)``: the share of a gap still open after ``slots``."""
    if slots >= FORGOTTEN_AFTER * half_life:
        return Fraction(0)
    with localcontext() as ctx:
        ctx.prec = 20
        return Fraction(Decimal(2) ** (Decimal(-slots) / half_life))


def target_price(spot: Fraction, oracle: Fraction, slots: int, half_life: int) -> Fraction:
    """Where arbitrage leaves a pool priced at ``spot`` after ``slots`` slots."""
    low, high = sorted((spot, oracle))
    gap = (1 - low / high) * _kept(slots, half_life)
    return oracle * (1 - gap) if spot < oracle else oracle / (1 - gap)


def heal(venue: str, state: dict, oracle: Fraction, slots: int, half_life: int, slot: int):
    """The pool's state after ``slots`` slots of arbitrage towards ``oracle``, ending at
    ``slot``: one swap to ``target_price``, as near as the pool's math allows."""
    amm = cpmm if venue == "raydium" else dlmm
    target = target_price(amm.spot_price(state), oracle, slots, half_life)
    if venue == "raydium":
        return _cpmm_toward(state, target, slot)
    return _dlmm_toward(state, target, oracle, slot)


def _cpmm_toward(state: dict, target: Fraction, slot: int) -> dict:
    x, y = state["reserve_x"], state["reserve_y"]
    if x <= 0 or y <= 0:
        return state
    k = x * y
    x_to_y = Fraction(y, x) > target  # X is dear in the pool: sell X into it
    if x_to_y:  # the reserves at ``target`` on the same curve, fees aside
        net, reserve = isqrt(k * target.denominator // target.numerator) - x, x
    else:
        net, reserve = isqrt(k * target.numerator // target.denominator) - y, y
    if net * DEAD_BAND < reserve:
        return state
    fee_rate = state["fee_rate"]
    gross = ceil_div(net * cpmm.FEE_DENOMINATOR, cpmm.FEE_DENOMINATOR - fee_rate)
    return cpmm.swap(state, x_to_y, gross, slot).state


def _dlmm_toward(state: dict, target: Fraction, oracle: Fraction, slot: int) -> dict:
    """A book's price moves in whole bins: at least one bin towards the oracle per step
    (else a small decay would round back to the active bin), never past the oracle's bin."""
    step, active, lowest = state["bin_step"], state["active_id"], state["min_bin_id"]
    home = dlmm.nearest_bin(step, oracle)
    if active > home:
        goal = max(home, dlmm.bin_at_or_below(step, target))
    elif active < home:
        goal = min(home, dlmm.bin_at_or_below(step, target) + 1)
    else:
        return state
    goal = min(max(goal, lowest), lowest + len(state["bin_x"]) - 1)
    if goal == active:
        return state
    x_to_y, amount = dlmm.input_to_reach(state, goal)
    try:
        return dlmm.swap(state, x_to_y, amount, slot).state
    except InsufficientLiquidity:  # the book ends before the goal: nothing to arbitrage
        return state
