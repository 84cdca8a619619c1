"""Choose how to fill an order: the best single venue, a split across venues that pays more,
or (``plan``) a path through an intermediate token.

``best_route`` routes the direct pair from the snapshots it is given; ``plan`` reads every
pool it may need itself (through the caller's ``fetch``), weighs direct and two-hop paths,
exact input or exact output. How a hop is shared among pools is ``hops.py`` and ``split.py``.
Every decision is logged with the venues' quotes and the reason the winner won. The chosen
route then passes the market-safety guards (price impact, oracle deviation) or fails before
anything executes.
"""

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..config import get_settings
from ..tokens import Token
from . import hops, reasons
from .amm import min_out
from .errors import DustAmount, NoRoute, VenueTimeout
from .guards import Guards
from .planner import RouteOptions, plan
from .route import Route, steps_for
from .route_guards import assess, describe
from .snapshot import PoolSnapshot

logger = logging.getLogger(__name__)

__all__ = ["Route", "RouteOptions", "best_route", "plan", "quote_venues"]


def quote_venues(
    market,
    token_in: Token,
    token_out: Token,
    venues: Sequence[str],
    faults=None,
    fetch: Callable[[str, Token, Token], PoolSnapshot] | None = None,
) -> list[PoolSnapshot]:
    """Read every venue's pool at once, so the quote latency is paid once. Venues that time
    out are dropped; if all of them do, ``VenueTimeout``."""
    if not venues:
        raise NoRoute("no venue allowed")
    if fetch is None:

        def fetch(venue, a, b):
            return market.snapshot(venue, a, b, faults)

    with ThreadPoolExecutor(max_workers=len(venues)) as pool:
        futures = [pool.submit(fetch, venue, token_in, token_out) for venue in venues]
    snapshots, timeouts = [], []
    for venue, future in zip(venues, futures, strict=True):
        try:
            snapshots.append(future.result())
        except VenueTimeout as exc:
            logger.info("venue %s timed out; routing without it", venue)
            timeouts.append(exc)
    if not snapshots:
        raise timeouts[0]
    return snapshots


def best_route(
    snapshots: Sequence[PoolSnapshot],
    token_in: Token,
    token_out: Token,
    amount_in: int,
    slippage_bps: int,
    valid_slots: int,
    guards: Guards | None = None,
) -> Route:
    """The route that pays most for ``amount_in`` of ``token_in``, from pool snapshots of
    the pair, once the guards (by default the configured ones) have passed it; else a
    non-transient ``GuardRefused``."""
    pools = _usable(snapshots, token_in, token_out)
    if amount_in <= 0:
        raise DustAmount("amount must be positive", amount_in=amount_in)
    fill = hops.exact_in(pools, token_in.mint, amount_in)
    legs = fill.quotes(0, slippage_bps, valid_slots)
    reason = reasons.hop(fill, legs)
    out_amount = sum(leg.out_amount for leg in legs)
    if out_amount == 0:
        raise DustAmount(
            f"{amount_in} base units of {token_in.symbol} buy no {token_out.symbol}",
            amount_in=amount_in,
        )
    assessment = assess(
        guards or Guards.from_settings(get_settings().market),
        legs,
        pools,
        amount_in,
        out_amount,
        token_in,
        token_out,
    )
    route = Route(
        kind="split" if len(legs) > 1 else "single",
        legs=legs,
        in_amount=amount_in,
        out_amount=out_amount,
        min_out=min_out(out_amount, slippage_bps),
        slippage_bps=slippage_bps,
        steps=steps_for(legs, token_in, token_out, amount_in, out_amount),
        reason=reason,
        considered=dict(fill.singles),
        price_impact_pct=assessment.price_impact_pct,
        oracle_price=assessment.oracle_price,
        oracle_deviation_pct=assessment.oracle_deviation_pct,
    )
    if logger.isEnabledFor(logging.INFO):
        quotes = "; ".join(
            describe(snap.quote(token_in.mint, amount_in, slippage_bps, valid_slots))
            for snap in pools
            if snap.venue in fill.singles
        )
        failed = "".join(f"; {venue}: {exc}" for venue, exc in fill.failures.items())
        logger.info(
            "route %d %s -> %s: %s%s => %s: %s",
            amount_in,
            token_in.symbol,
            token_out.symbol,
            quotes,
            failed,
            route.kind,
            reason,
        )
    return route


def _usable(snapshots: Sequence[PoolSnapshot], token_in: Token, token_out: Token) -> list:
    if not snapshots:
        raise NoRoute("no venue could be quoted")
    if token_in.mint == token_out.mint:
        raise NoRoute(f"cannot swap {token_in.symbol} for {token_out.symbol}")
    pair, pools, seen = {token_in.mint, token_out.mint}, [], set()
    for snap in snapshots:
        if {snap.mint_x, snap.mint_y} != pair:
            raise NoRoute(
                f"pool {snap.pool_id} does not trade {token_in.symbol}/{token_out.symbol}"
            )
        if snap.pool_id not in seen:  # one pool twice would be counted twice
            seen.add(snap.pool_id)
            pools.append(snap)
    return pools
