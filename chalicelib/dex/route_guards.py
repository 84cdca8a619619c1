"""The market-safety guards applied to a whole route, however many hops and legs it has."""

import logging
from collections.abc import Mapping, Sequence
from fractions import Fraction

from ..tokens import Token
from .errors import GuardRefused
from .guards import Assessment, Guards, check
from .oracle import OraclePrice, PairPrice, pair_price
from .snapshot import PoolSnapshot, Quote

logger = logging.getLogger("chalicelib.dex.router")


def impact(legs: Sequence[Quote], pools: Mapping[str, PoolSnapshot]) -> Fraction:
    """How far the route's output falls short of trading every hop at its pools' spot
    prices, fees aside: the hops' shortfalls compound."""
    kept = Fraction(1)
    for hop in sorted({leg.hop for leg in legs}):
        hop_legs = [leg for leg in legs if leg.hop == hop]
        ideal = sum(
            pools[leg.pool_id].ideal_out(leg.mint_in, leg.in_amount - leg.fee) for leg in hop_legs
        )
        if ideal > 0:
            kept *= sum(leg.out_amount for leg in hop_legs) / ideal
    return max(Fraction(0), 1 - kept)


def _feed(snapshots: Sequence[PoolSnapshot], mint: str) -> OraclePrice | None:
    """The oracle's feed of ``mint`` from the freshest snapshot that read one."""
    read = [s for s in snapshots if s.oracle_x is not None and s.oracle_y is not None]
    read = [s for s in read if mint in (s.mint_x, s.mint_y)]
    if not read:
        return None
    snap = max(read, key=lambda s: s.oracle_x.publish_slot)
    return snap.oracle_x if snap.mint_x == mint else snap.oracle_y


def oracle(snapshots: Sequence[PoolSnapshot], mint_in: str, mint_out: str) -> PairPrice | None:
    """The oracle's rate of ``mint_in`` in ``mint_out``, from the feeds the snapshots read."""
    given, wanted = _feed(snapshots, mint_in), _feed(snapshots, mint_out)
    if given is None or wanted is None:
        return None
    return pair_price(given, wanted)


def assess(
    limits: Guards,
    legs: Sequence[Quote],
    snapshots: Sequence[PoolSnapshot],
    in_amount: int,
    out_amount: int,
    token_in: Token,
    token_out: Token,
) -> Assessment:
    """``guards.check`` of the whole route, logging a refusal with the legs it refused.
    ``snapshots``: every pool read for it, the legs' among them (the oracle's feeds come
    from the freshest)."""
    pools = {snap.pool_id: snap for snap in snapshots}
    rate = Fraction(out_amount, in_amount)
    feeds = oracle(snapshots, token_in.mint, token_out.mint)
    try:
        return check(limits, impact(legs, pools), rate, feeds, token_in, token_out)
    except GuardRefused as exc:
        logger.info("route refused: %s; legs: %s", exc, "; ".join(describe(q) for q in legs))
        raise


def describe(quote: Quote) -> str:
    return f"{quote.venue} out={quote.out_amount} fee={quote.fee} impact={quote.price_impact_pct}%"
