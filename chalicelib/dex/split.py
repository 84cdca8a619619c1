"""How to share one hop's amount among the pools of a pair.

A split is only searched for when another pool pays more for its first sliver than the best
pool does for its last. For two constant-product pools the optimal split of an input has a
closed form (equal marginal prices); otherwise the amount is handed out in chunks, each to
the pool whose next chunk pays most, and the allocation is then refined by moving ever
smaller amounts between pools while that pays.

The search maximises a sum of per-pool values of the amount each pool gets: for an exact
input the output it buys, for an exact output minus the input it costs. Both are concave in
the amount, which is what makes the greedy hand-out and the refinement find the optimum.
"""

from collections.abc import Callable, Sequence
from itertools import permutations
from math import isqrt

from . import cpmm
from .amm import ceil_div
from .errors import InsufficientLiquidity
from .snapshot import PoolSnapshot

CHUNKS = 32  # greedy allocation granularity: 1/32 of the amount
FINEST_STEP = 1 << 16  # refinement stops at 1/65536 of the amount (or one base unit)

Value = Callable[[int], int | None]  # a pool's value of an amount; None: it cannot take it


def memo(value: Callable[[int], int]) -> Value:
    """``value`` remembered per amount, ``None`` where the pool has not the liquidity."""
    cache = {0: 0}

    def remembered(amount: int) -> int | None:
        if amount not in cache:
            try:
                cache[amount] = value(amount)
            except InsufficientLiquidity:
                cache[amount] = None
        return cache[amount]

    return remembered


def search(
    pools: Sequence[PoolSnapshot],
    values: Sequence[Value],
    best: int | None,
    mint_in: str,
    amount: int,
    best_input: int,
    exact_out: bool = False,
) -> list[int] | None:
    """The best allocation of ``amount`` over the pools found, or None when splitting
    cannot pay. ``best`` is the index of the best single pool (None: none can take it all),
    ``best_input`` the input that pool alone would trade."""
    if not exact_out and len(pools) == 2 and all(p.amm is cpmm for p in pools):
        return refine(values, cpmm_closed_form(pools, mint_in, amount), step=2, finest=1)
    if len(pools) < 2 or (best is not None and not may_pay(pools, best, mint_in, best_input)):
        return None
    allocation = greedy(values, amount)
    # An exact output is refined to the base unit: what it costs is what the order pays.
    finest = 1 if exact_out else amount // FINEST_STEP
    return refine(values, allocation, ceil_div(amount, CHUNKS) // 2, finest)


def may_pay(pools: Sequence[PoolSnapshot], best: int, mint_in: str, best_input: int) -> bool:
    """Does another pool pay more for its first sliver than the best pool for its last?
    If not, outputs being concave, no split beats the best pool alone, and small orders
    are spared the search. (For a CPMM the rate after the swap slightly underestimates
    the rate of its last sliver, which only errs towards searching.)"""
    last = pools[best].marginal_rate(mint_in, after=best_input)
    return any(p.marginal_rate(mint_in) > last for i, p in enumerate(pools) if i != best)


def cpmm_closed_form(pools: Sequence[PoolSnapshot], mint_in: str, amount: int) -> list[int]:
    """Two constant-product pools pay most when their marginal outputs are equal:
    ``sqrt(g1*x1*y1) / (x1 + g1*a) = sqrt(g2*x2*y2) / (x2 + g2*(A - a))`` with ``g = 1 - fee``,
    which is linear in ``a``. ``isqrt`` keeps it in integers; ``refine`` fixes rounding."""
    (x1, y1), (x2, y2) = (cpmm.reserves(p.state, p.x_to_y(mint_in)) for p in pools)
    g1, g2 = (cpmm.FEE_DENOMINATOR - p.state["fee_rate"] for p in pools)
    d = cpmm.FEE_DENOMINATOR
    s1, s2 = isqrt(g1 * x1 * y1), isqrt(g2 * x2 * y2)
    first = (s1 * (x2 * d + g2 * amount) - s2 * x1 * d) // (s1 * g2 + s2 * g1)
    first = min(max(first, 0), amount)
    return [first, amount - first]


def greedy(values: Sequence[Value], amount: int) -> list[int]:
    """Hand the amount out in chunks, each to the pool whose next chunk is worth most;
    smaller chunks once no pool can take a whole one (the pools are nearly full)."""
    allocation, got = [0] * len(values), [0] * len(values)
    chunk, left = ceil_div(amount, CHUNKS), amount
    while left:
        size = min(chunk, left)
        gains = {}
        for i, value in enumerate(values):
            after = value(allocation[i] + size)
            if after is not None:
                gains[i] = after - got[i]
        if not gains and chunk > 1:
            chunk //= 2
            continue
        if not gains:
            raise InsufficientLiquidity("no venue can fill the rest of the order", left=left)
        i = max(gains, key=gains.get)
        allocation[i] += size
        got[i] += gains[i]
        left -= size
    return allocation


def refine(values: Sequence[Value], allocation: list[int], step: int, finest: int) -> list[int]:
    """Move ``step`` between pools while that is worth more, halving ``step`` when no move
    is. Every pool can take its share of ``allocation`` (and so any smaller share)."""
    allocation = list(allocation)
    finest = max(finest, 1)
    step = max(step, finest)
    while step >= finest:
        moved = False
        for i, j in permutations(range(len(values)), 2):
            if allocation[i] < step:
                continue
            now_i, now_j = values[i](allocation[i]), values[j](allocation[j])
            new_i, new_j = values[i](allocation[i] - step), values[j](allocation[j] + step)
            if new_j is not None and new_i + new_j > now_i + now_j:
                allocation[i] -= step
                allocation[j] += step
                moved = True
                break
        if not moved:
            step //= 2
    return allocation
