"""Raydium-style constant-product pool (CPMM) on integer reserves.

State: ``{"reserve_x", "reserve_y", "fee_rate"}``, all ints; ``fee_rate`` is per 1,000,000 of
the input. The fee is taken from the input, rounded up, and stays in the reserves (it is
the liquidity providers' income), so ``x * y`` never decreases.
"""

from fractions import Fraction

from .amm import ExactOutSwap, Swap, ceil_div
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


def input_for(state: dict, x_to_y: bool, amount_out: int) -> int:
    """The least input whose exact-input ``swap`` pays at least ``amount_out``.

    ``floor(net * y / (x + net)) >= out`` holds exactly when ``net >= ceil(out * x / (y - out))``,
    and ``in - ceil(in * fee)`` reaches ``net`` first at ``net + ceil(net * fee / (1 - fee))``."""
    reserve_in, reserve_out = reserves(state, x_to_y)
    if amount_out <= 0:
        return 0
    if reserve_in <= 0 or amount_out >= reserve_out:
        raise InsufficientLiquidity(
            "the pool cannot pay that much", amount_out=amount_out, reserve=reserve_out
        )
    net = ceil_div(amount_out * reserve_in, reserve_out - amount_out)
    rate = state["fee_rate"]
    return net + ceil_div(net * rate, FEE_DENOMINATOR - rate)


def swap_exact_out(state: dict, x_to_y: bool, amount_out: int, slot: int = 0) -> ExactOutSwap:
    """Exactly ``amount_out`` leaves the pool for ``input_for`` of it; what the exact-input
    swap would have paid beyond ``amount_out`` (rounding) stays in the reserves."""
    amount_in = input_for(state, x_to_y, amount_out)
    side_in, side_out = _sides(x_to_y)
    fee = ceil_div(amount_in * state["fee_rate"], FEE_DENOMINATOR)
    after = {**state, side_in: state[side_in] + amount_in, side_out: state[side_out] - amount_out}
    return ExactOutSwap(amount_in, fee, after)


class Curve:
    """Both ways of asking a pool in one direction, without building the state after."""

    def __init__(self, state: dict, x_to_y: bool):
        self._state, self._x_to_y = state, x_to_y
        self._reserve_in, self._reserve_out = reserves(state, x_to_y)
        self._fee_rate = state["fee_rate"]
        if self._reserve_in <= 0 or self._reserve_out <= 0:
            raise InsufficientLiquidity("the pool is empty")

    def amount_out(self, amount_in: int) -> int:
        """``swap(...).amount_out``."""
        net = amount_in - ceil_div(amount_in * self._fee_rate, FEE_DENOMINATOR)
        return net * self._reserve_out // (self._reserve_in + net)

    def amount_in(self, amount_out: int) -> int:
        """``input_for``."""
        return input_for(self._state, self._x_to_y, amount_out)


def quoter(state: dict, x_to_y: bool) -> Curve:
    return Curve(state, x_to_y)


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
