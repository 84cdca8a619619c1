"""One hop of a route: an amount of one token traded for another across the pools of that
pair, on one pool or split between several, whichever pays most.

An exact-input hop shares its input out and maximises the output; an exact-output hop
shares its output out and minimises the input. Both search on the snapshots' quoters (no
pool state is built), and only the chosen hop is turned into quotes.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from . import split
from .errors import InsufficientLiquidity
from .snapshot import PoolSnapshot, Quote, ratio_to_decimal

EXACT_IN, EXACT_OUT = "ExactIn", "ExactOut"


@dataclass(frozen=True)
class HopFill:
    mode: str  # EXACT_IN: ``shares`` are inputs; EXACT_OUT: outputs
    mint_in: str
    mint_out: str
    pools: tuple[PoolSnapshot, ...]
    shares: tuple[int, ...]  # per pool; 0: the pool is not used
    in_amount: int
    out_amount: int
    # Each pool's amount on its own (the output it pays, or the input it costs), by venue
    # (pools that cannot fill it alone are absent); the best of them, None if none can.
    singles: dict[str, int]
    best: int | None
    failures: dict[str, InsufficientLiquidity]  # why the other pools cannot fill it alone

    @property
    def is_split(self) -> bool:
        return sum(1 for share in self.shares if share) > 1

    @property
    def single_amount(self) -> int | None:
        """The best single pool's amount, as in ``singles``."""
        return None if self.best is None else self.singles[self.pools[self.best].venue]

    def quotes(self, hop: int, slippage_bps: int, valid_slots: int) -> tuple[Quote, ...]:
        """The hop's legs, each with its share of the hop's input in percent."""
        legs = []
        for snap, share in zip(self.pools, self.shares, strict=True):
            if not share:
                continue
            if self.mode == EXACT_IN:
                legs.append(snap.quote(self.mint_in, share, slippage_bps, valid_slots))
            else:
                legs.append(snap.quote_exact_out(self.mint_in, share, valid_slots))
        total = sum(leg.in_amount for leg in legs)
        return tuple(
            replace(leg, hop=hop, percent=ratio_to_decimal(Fraction(leg.in_amount * 100, total), 2))
            for leg in legs
        )


def exact_in(pools: Sequence[PoolSnapshot], mint_in: str, amount: int) -> HopFill:
    """The best way to sell ``amount`` of ``mint_in``: the best single pool, or a split that
    pays more. ``InsufficientLiquidity`` when not even all pools together can take it."""
    values = [split.memo(lambda a, snap=snap: snap.amount_out(mint_in, a)) for snap in pools]
    singles, failures = _singles(pools, lambda snap: snap.amount_out(mint_in, amount))
    best = max(singles, key=singles.get, default=None)
    allocation = split.search(pools, values, best, mint_in, amount, amount)
    if allocation and sum(1 for a in allocation if a) > 1:
        split_out = sum(values[i](a) for i, a in enumerate(allocation))
        if best is None or split_out > singles[best]:
            return _fill(EXACT_IN, pools, mint_in, allocation, amount, split_out, singles, failures)
    if best is None:
        raise next(iter(failures.values()))
    shares = [amount if i == best else 0 for i in range(len(pools))]
    return _fill(EXACT_IN, pools, mint_in, shares, amount, singles[best], singles, failures)


def exact_out(pools: Sequence[PoolSnapshot], mint_in: str, amount: int) -> HopFill:
    """The cheapest way to buy exactly ``amount`` with ``mint_in``: the single pool that
    needs the least input, or a split that needs less."""
    values = [split.memo(lambda b, snap=snap: -snap.amount_in_for(mint_in, b)) for snap in pools]
    singles, failures = _singles(pools, lambda snap: snap.amount_in_for(mint_in, amount))
    best = min(singles, key=singles.get, default=None)
    best_input = singles[best] if best is not None else 0
    allocation = split.search(pools, values, best, mint_in, amount, best_input, exact_out=True)
    if allocation and sum(1 for b in allocation if b) > 1:
        split_in = -sum(values[i](b) for i, b in enumerate(allocation))
        if best is None or split_in < singles[best]:
            return _fill(EXACT_OUT, pools, mint_in, allocation, split_in, amount, singles, failures)
    if best is None:
        raise next(iter(failures.values()))
    shares = [amount if i == best else 0 for i in range(len(pools))]
    return _fill(EXACT_OUT, pools, mint_in, shares, singles[best], amount, singles, failures)


def _singles(pools: Sequence[PoolSnapshot], amount_of: Callable[[PoolSnapshot], int]):
    """({pool index: its amount alone}, {venue: why it cannot fill alone})."""
    singles, failures = {}, {}
    for i, snap in enumerate(pools):
        try:
            singles[i] = amount_of(snap)
        except InsufficientLiquidity as exc:
            failures[snap.venue] = exc
    return singles, failures


def fill(mode: str, pools: Sequence[PoolSnapshot], mint_in: str, amount: int) -> HopFill:
    return (exact_in if mode == EXACT_IN else exact_out)(pools, mint_in, amount)


def _fill(mode, pools, mint_in, shares, in_amount, out_amount, singles, failures) -> HopFill:
    best = (max if mode == EXACT_IN else min)(singles, key=singles.get, default=None)
    return HopFill(
        mode=mode,
        mint_in=mint_in,
        mint_out=pools[0].mint_out(mint_in),
        pools=tuple(pools),
        shares=tuple(shares),
        in_amount=in_amount,
        out_amount=out_amount,
        singles={pools[i].venue: amount for i, amount in singles.items()},
        best=best,
        failures=failures,
    )
