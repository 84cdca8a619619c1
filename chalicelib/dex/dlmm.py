"""Meteora-style liquidity book (DLMM): liquidity sits in discrete price bins.

Bin ``i`` trades at the constant price ``(1 + bin_step/10_000) ** i`` base units of Y per base
unit of X, held as Q64.64 fixed point. Bins below the active one hold only Y, bins above only
X. A swap takes the output token of the active bin at that bin's price, then moves to the
next bin (down when selling X, up when buying X) until the input is used up; running off the
last bin is ``InsufficientLiquidity``.

Fees follow Meteora's program: a base fee ``base_factor * bin_step * 10`` (per 1e9) plus a
variable fee ``variable_fee_control * (volatility_accumulator * bin_step)**2`` (per 1e20). The
accumulator grows by 10,000 for every bin the price sits away from the reference index,
and ``settle`` decays it when no swap happened for a while (filter and decay periods, in
slots). Fees are taken from the input per bin and leave the bins (they go to the LPs).
"""

import threading
from bisect import bisect_left, bisect_right
from fractions import Fraction
from functools import lru_cache

from .amm import ExactOutSwap, Swap, ceil_div
from .errors import InsufficientLiquidity

BASIS_POINT_MAX = 10_000
FEE_PRECISION = 1_000_000_000
MAX_FEE_RATE = 100_000_000  # 10 %
ONE_Q64 = 1 << 64
GUARD_BITS = 128  # extra precision while raising to a power; dropped at the end


@lru_cache(maxsize=1 << 16)
def price_q64(bin_step: int, bin_id: int) -> int:
    """``floor(2**64 * (1 + bin_step/10_000) ** bin_id)`` by square-and-multiply in fixed
    point with 128 guard bits: each of the few dozen truncations is worth 2**-128 of the
    result, so the floor comes out exact unless the power is within ~2**-100 of a Q64 step
    (exact-integer powers cost seconds for the far bins of small bin steps)."""
    precision = 64 + GUARD_BITS
    up, down = BASIS_POINT_MAX + bin_step, BASIS_POINT_MAX
    if bin_id < 0:
        up, down = down, up
    base, result, exponent = (up << precision) // down, 1 << precision, abs(bin_id)
    while exponent:
        if exponent & 1:
            result = (result * base) >> precision
        base = (base * base) >> precision
        exponent >>= 1
    return result >> GUARD_BITS


def bin_at_or_below(bin_step: int, price: Fraction) -> int:
    """The highest bin id whose price does not exceed ``price`` (Y per X, base units)."""
    target = price * ONE_Q64

    def fits(bin_id: int) -> bool:
        return price_q64(bin_step, bin_id) <= target

    # Gallop away from bin 0 to bracket the answer in [low, high), then bisect.
    step = 1
    if fits(0):
        low = 0
        while fits(low + step):
            low, step = low + step, step * 2
        high = low + step
    else:
        high = 0
        while not fits(high - step):
            high, step = high - step, step * 2
        low = high - step
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def nearest_bin(bin_step: int, price: Fraction) -> int:
    """The bin whose price is nearest to ``price``."""
    below = bin_at_or_below(bin_step, price)
    target = price * ONE_Q64
    if price_q64(bin_step, below + 1) - target < target - price_q64(bin_step, below):
        return below + 1
    return below


def new_state(
    *,
    bin_step: int,
    base_factor: int,
    variable_fee_control: int,
    active_id: int,
    min_bin_id: int,
    bin_x: list[int],
    bin_y: list[int],
    slot: int,
    max_volatility_accumulator: int = 350_000,
    filter_period: int = 25,
    decay_period: int = 300,
    reduction_factor: int = 5_000,
) -> dict:
    return {
        "bin_step": bin_step,
        "base_factor": base_factor,
        "variable_fee_control": variable_fee_control,
        "max_volatility_accumulator": max_volatility_accumulator,
        "filter_period": filter_period,
        "decay_period": decay_period,
        "reduction_factor": reduction_factor,
        "active_id": active_id,
        "index_reference": active_id,
        "volatility_reference": 0,
        "volatility_accumulator": 0,
        "last_swap_slot": slot,
        "min_bin_id": min_bin_id,
        "bin_x": list(bin_x),
        "bin_y": list(bin_y),
    }


def fee_rate(state: dict) -> int:
    """Total fee per 1e9 of input at the current volatility accumulator."""
    bin_step = state["bin_step"]
    base = state["base_factor"] * bin_step * 10
    squared = (state["volatility_accumulator"] * bin_step) ** 2
    variable = ceil_div(state["variable_fee_control"] * squared, 100_000_000_000)
    return min(base + variable, MAX_FEE_RATE)


def settle(state: dict, slot: int) -> dict:
    """Meteora's ``update_references``: after ``filter_period`` slots without a swap the
    reference index moves to the active bin and the accumulated volatility decays (by
    ``reduction_factor``), and it is forgotten after ``decay_period``. Idempotent for a slot."""
    elapsed = slot - state["last_swap_slot"]
    if elapsed < state["filter_period"]:
        return state
    if elapsed < state["decay_period"]:
        reference = state["volatility_accumulator"] * state["reduction_factor"] // BASIS_POINT_MAX
    else:
        reference = 0
    return {**state, "index_reference": state["active_id"], "volatility_reference": reference}


def _accumulated_volatility(state: dict) -> int:
    """Meteora's ``update_volatility_accumulator``: the reference volatility plus 10,000 per
    bin between the active bin and the reference index, capped."""
    distance = abs(state["index_reference"] - state["active_id"])
    accumulated = state["volatility_reference"] + distance * BASIS_POINT_MAX
    return min(accumulated, state["max_volatility_accumulator"])


def _bin_capacity(reserve: int, price: int, rate: int, x_to_y: bool) -> tuple[int, int]:
    """(input before fee, fee) that buy a bin's whole ``reserve``, rounded against the trader."""
    max_in = ceil_div(reserve << 64, price) if x_to_y else ceil_div(reserve * price, ONE_Q64)
    return max_in, ceil_div(max_in * rate, FEE_PRECISION - rate)


def input_to_reach(state: dict, target_id: int) -> tuple[bool, int]:
    """(direction, input) of the swap that makes ``target_id`` the active bin: it buys out
    every bin on the way, as ``swap`` would, and one more base unit enters the target."""
    s = dict(state)
    x_to_y = target_id < s["active_id"]
    reserves = state["bin_y"] if x_to_y else state["bin_x"]
    total = 1
    while s["active_id"] != target_id:
        s["volatility_accumulator"] = _accumulated_volatility(s)
        reserve = reserves[s["active_id"] - s["min_bin_id"]]
        if reserve:
            price = price_q64(s["bin_step"], s["active_id"])
            total += sum(_bin_capacity(reserve, price, fee_rate(s), x_to_y))
        s["active_id"] += -1 if x_to_y else 1
    return x_to_y, total


def swap(state: dict, x_to_y: bool, amount_in: int, slot: int = 0) -> Swap:
    """Exact-input swap walking bins from the active one; ``slot`` stamps the swap time."""
    s = dict(state)
    bin_x, bin_y = list(state["bin_x"]), list(state["bin_y"])
    bin_step, lowest = s["bin_step"], s["min_bin_id"]
    left, total_out, total_fee = amount_in, 0, 0
    while left > 0:
        i = s["active_id"] - lowest
        if not 0 <= i < len(bin_x):
            raise InsufficientLiquidity(
                "not enough liquidity in the pool's bins",
                amount_in=amount_in,
                filled=amount_in - left,
            )
        s["volatility_accumulator"] = _accumulated_volatility(s)
        reserve = bin_y[i] if x_to_y else bin_x[i]
        if reserve:
            price = price_q64(bin_step, s["active_id"])
            rate = fee_rate(s)
            max_in, max_fee = _bin_capacity(reserve, price, rate, x_to_y)
            if left >= max_in + max_fee:
                used, out, fee = max_in + max_fee, reserve, max_fee
            else:
                used, fee = left, ceil_div(left * rate, FEE_PRECISION)
                net = left - fee
                out = min((net * price) >> 64 if x_to_y else (net << 64) // price, reserve)
            if x_to_y:
                bin_x[i] += used - fee
                bin_y[i] -= out
            else:
                bin_y[i] += used - fee
                bin_x[i] -= out
            left -= used
            total_out += out
            total_fee += fee
        if left:
            s["active_id"] += -1 if x_to_y else 1
    s["bin_x"], s["bin_y"], s["last_swap_slot"] = bin_x, bin_y, slot
    return Swap(total_out, total_fee, s)


def _exact_out_fills(state: dict, x_to_y: bool, amount_out: int):
    """``swap``'s walk run backwards: (bin index, input with fee, fee, output) of each bin
    that an exact-output swap of ``amount_out`` trades in. Every bin but the last is bought
    out at its capacity; the last gets the least input whose ``swap`` pays what is left.

    (Below a bin's capacity ``swap`` never pays its whole reserve, so a bin's capacity is
    also the least input that gets past it: the walk needs no search.)"""
    s = dict(state)
    reserves, lowest = (state["bin_y"] if x_to_y else state["bin_x"]), s["min_bin_id"]
    left = amount_out
    while left > 0:
        i = s["active_id"] - lowest
        if not 0 <= i < len(reserves):
            raise InsufficientLiquidity(
                "not enough liquidity in the pool's bins",
                amount_out=amount_out,
                filled=amount_out - left,
            )
        s["volatility_accumulator"] = _accumulated_volatility(s)
        reserve = reserves[i]
        if reserve:
            price, rate = price_q64(s["bin_step"], s["active_id"]), fee_rate(s)
            out = min(left, reserve)
            capacity, capacity_fee = _bin_capacity(reserve, price, rate, x_to_y)
            used = sum(_bin_capacity(out, price, rate, x_to_y))
            # The fee as ``swap`` would charge this input: a partial bin's on the input.
            fee = (
                capacity_fee
                if used >= capacity + capacity_fee
                else ceil_div(used * rate, FEE_PRECISION)
            )
            yield i, used, fee, out
            left -= out
        if left:
            s["active_id"] += -1 if x_to_y else 1


def input_for(state: dict, x_to_y: bool, amount_out: int) -> int:
    """The least input whose exact-input ``swap`` pays at least ``amount_out``."""
    return sum(used for _, used, _, _ in _exact_out_fills(state, x_to_y, amount_out))


def swap_exact_out(state: dict, x_to_y: bool, amount_out: int, slot: int = 0) -> ExactOutSwap:
    """Exactly ``amount_out`` leaves the bins for ``input_for`` of it; the fees leave the
    bins as in ``swap``, and what ``swap`` would have paid beyond ``amount_out`` stays."""
    bin_x, bin_y = list(state["bin_x"]), list(state["bin_y"])
    bins_in, bins_out = (bin_x, bin_y) if x_to_y else (bin_y, bin_x)
    total_in, total_fee, last = 0, 0, state["active_id"] - state["min_bin_id"]
    for i, used, fee, out in _exact_out_fills(state, x_to_y, amount_out):
        bins_in[i] += used - fee
        bins_out[i] -= out
        total_in, total_fee, last = total_in + used, total_fee + fee, i
    s = dict(state)
    if amount_out > 0:  # the bin the swap ended in is the active one, as after ``swap``
        s["active_id"] = last + state["min_bin_id"]
        s["volatility_accumulator"] = _accumulated_volatility(s)
    s["bin_x"], s["bin_y"], s["last_swap_slot"] = bin_x, bin_y, slot
    return ExactOutSwap(total_in, total_fee, s)


class BinPath:
    """The bins a swap from one state walks through in one direction, each with the input
    that buys it out: a bin's fee depends only on how far it lies from the reference index,
    so the walk is the same whatever the amount, and every swap from that state (exact
    input or exact output) is a bisection plus one partial bin. Built lazily, only as far
    as the amounts asked for reach; safe to share between threads."""

    def __init__(self, state: dict, x_to_y: bool):
        self._state = state
        self._walker = dict(state)  # only its active_id and volatility_accumulator move
        self._reserves = state["bin_y"] if x_to_y else state["bin_x"]
        self._x_to_y = x_to_y
        self._bins: list[tuple[int, int, int]] = []  # (price, fee rate, reserve) of non-empty bins
        self._bought_in = [0]  # input (fees included) that buys out the first k of them
        self._bought_out = [0]  # ... and what they pay
        self._walked_off = False
        self._lock = threading.Lock()

    def __reduce__(self):  # copied or pickled (with a snapshot): walked again as needed
        return BinPath, (self._state, self._x_to_y)

    def _walk(self, beyond_in: int | None = None, reach_out: int | None = None) -> None:
        """Add bins until buying them all costs more than ``beyond_in`` (or pays at least
        ``reach_out``), or the book ends."""
        with self._lock:
            s, lowest = self._walker, self._walker["min_bin_id"]
            while not self._walked_off and (
                (beyond_in is not None and self._bought_in[-1] <= beyond_in)
                or (reach_out is not None and self._bought_out[-1] < reach_out)
            ):
                i = s["active_id"] - lowest
                if not 0 <= i < len(self._reserves):
                    self._walked_off = True
                    break
                s["volatility_accumulator"] = _accumulated_volatility(s)
                reserve = self._reserves[i]
                if reserve:
                    price, rate = price_q64(s["bin_step"], s["active_id"]), fee_rate(s)
                    self._bins.append((price, rate, reserve))
                    self._bought_in.append(
                        self._bought_in[-1] + sum(_bin_capacity(reserve, price, rate, self._x_to_y))
                    )
                    self._bought_out.append(self._bought_out[-1] + reserve)
                s["active_id"] += -1 if self._x_to_y else 1

    def amount_out(self, amount_in: int) -> int:
        """``swap(...).amount_out``, without building the state after the swap."""
        if amount_in >= self._bought_in[-1]:
            self._walk(beyond_in=amount_in)
        full = bisect_right(self._bought_in, amount_in) - 1  # bins bought out
        left = amount_in - self._bought_in[full]
        if not left:
            return self._bought_out[full]
        if full == len(self._bins):
            raise InsufficientLiquidity(
                "not enough liquidity in the pool's bins",
                amount_in=amount_in,
                filled=self._bought_in[full],
            )
        price, rate, reserve = self._bins[full]
        net = left - ceil_div(left * rate, FEE_PRECISION)
        out = (net * price) >> 64 if self._x_to_y else (net << 64) // price
        return self._bought_out[full] + min(out, reserve)

    def amount_in(self, amount_out: int) -> int:
        """``input_for``."""
        if amount_out <= 0:
            return 0
        if amount_out > self._bought_out[-1]:
            self._walk(reach_out=amount_out)
        reached = bisect_left(self._bought_out, amount_out)  # bins the swap trades in
        if reached == len(self._bought_out):
            raise InsufficientLiquidity(
                "not enough liquidity in the pool's bins",
                amount_out=amount_out,
                filled=self._bought_out[-1],
            )
        price, rate, _ = self._bins[reached - 1]
        rest = amount_out - self._bought_out[reached - 1]
        return self._bought_in[reached - 1] + sum(_bin_capacity(rest, price, rate, self._x_to_y))


def quoter(state: dict, x_to_y: bool) -> BinPath:
    return BinPath(state, x_to_y)


def marginal_rate(state: dict, x_to_y: bool) -> Fraction:
    """Output per unit of input for the next sliver of input: the price of the first bin
    that holds the output token, less the fee charged in that bin."""
    s = dict(state)
    reserves = state["bin_y"] if x_to_y else state["bin_x"]
    while 0 <= s["active_id"] - s["min_bin_id"] < len(reserves):
        if reserves[s["active_id"] - s["min_bin_id"]]:
            s["volatility_accumulator"] = _accumulated_volatility(s)
            price = spot_price(s)
            return (1 - Fraction(fee_rate(s), FEE_PRECISION)) * (price if x_to_y else 1 / price)
        s["active_id"] += -1 if x_to_y else 1
    return Fraction(0)


def spot_price(state: dict) -> Fraction:
    """The active bin's price before fees, in base units of Y per base unit of X."""
    return Fraction(price_q64(state["bin_step"], state["active_id"]), ONE_Q64)
