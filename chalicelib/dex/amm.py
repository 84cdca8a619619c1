"""What the two pool models share: the result of a swap and integer rounding."""

from typing import NamedTuple

BPS = 10_000


class Swap(NamedTuple):
    amount_out: int
    fee: int  # in base units of the input token
    state: dict  # the pool state after the swap: a new dict, the input state is untouched


class ExactOutSwap(NamedTuple):
    """An exact-output swap: exactly the wanted output leaves the pool for ``amount_in``."""

    amount_in: int  # fee included
    fee: int  # in base units of the input token
    state: dict


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def min_out(amount_out: int, slippage_bps: int) -> int:
    """The least the user accepts: ``floor(out * (10000 - bps) / 10000)``."""
    if not 0 <= slippage_bps <= BPS:
        raise ValueError(f"slippage_bps must be within 0..{BPS}, not {slippage_bps}")
    return amount_out * (BPS - slippage_bps) // BPS


def max_in(amount_in: int, slippage_bps: int) -> int:
    """The most an exact-output order spends: ``ceil(in * (10000 + bps) / 10000)``
    (Jupiter's otherAmountThreshold for ExactOut)."""
    if not 0 <= slippage_bps <= BPS:
        raise ValueError(f"slippage_bps must be within 0..{BPS}, not {slippage_bps}")
    return ceil_div(amount_in * (BPS + slippage_bps), BPS)
