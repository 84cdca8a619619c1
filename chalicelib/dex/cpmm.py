"""Raydium-style constant-product pool (CPMM) on integer reserves.

State: ``{"reserve_x", "reserve_y", "fee_rate"}``, all ints; ``fee_rate`` is per 1,000,000 of
the input. The fee is taken from the input, rounded up, and stays in the reserves (it is
the liquidity providers' income), so ``x * y`` never decreases.
"""

from fractions import Fraction

from .amm import Swap, ceil_div
from .errors import InsufficientLiquidity

FEE_DENOMINATOR = 1_000_000
RAYDIUM_FEE_RATE = 2_500  # 0.25 %


def new_state(reserve_x: int, reserve_y: int, fee_rate: int = RAYDIUM_FEE_RATE) -> dict:
    return {"reserve_x": reserve_x, "reserve_y": reserve_y, "fee_rate": fee_rate}


def _sides(x_to_y: bool) -> tuple[str, str]:
    return ("reserve_x", "reserve_y") if x_to_y else ("reserve_y", "reserve_x")


def swap(state: dict, x_to_y: bool, amount_in: int, slot: int = 0) -> Swap:
    """Exact-input swap: ``out = floor(net * y / (x + net))`` with ``net = in - ceil(fee)``."""
    side_in, side_out = _sides(x_to_y)
    reserve_in, reserve_out = state[side_in], state[side_out]
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidity("the pool is empty")
    fee = ceil_div(amount_in * state["fee_rate"], FEE_DENOMINATOR)
    net = amount_in - fee
    out = net * reserve_out // (reserve_in + net)  # always < reserve_out
    after = {**state, side_in: reserve_in + amount_in, side_out: reserve_out - out}
    return Swap(out, fee, after)


def settle(state: dict, slot: int) -> dict:
    """Time passing changes nothing in a constant-product pool."""
    return state


def spot_price(state: dict) -> Fraction:
    """Marginal price before fees, in base units of Y per base unit of X."""
    return Fraction(state["reserve_y"], state["reserve_x"])


def marginal_rate(state: dict, x_to_y: bool) -> Fraction:
    """Output per unit of input for the next sliver of input, after the fee."""
    reserve_in, reserve_out = reserves(state, x_to_y)
    return Fraction(
        (FEE_DENOMINATOR - state["fee_rate"]) * reserve_out, FEE_DENOMINATOR * reserve_in
    )


def reserves(state: dict, x_to_y: bool) -> tuple[int, int]:
    """(reserve of the input token, reserve of the output token)."""
    side_in, side_out = _sides(x_to_y)
    return state[side_in], state[side_out]
