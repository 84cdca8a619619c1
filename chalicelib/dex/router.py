"""Choose how to fill an order: the best single venue, or a split across venues that pays more.

A split is only searched for when another venue pays more for its first sliver than the best
venue does for its last. For two constant-product pools the optimal split has a closed form
(equal marginal prices); otherwise the order is handed out in chunks, each to the venue whose
next chunk pays most, and the allocation is then refined by moving ever smaller amounts
between venues while that pays. Every decision is logged with the venues' quotes and the
reason the winner won. The chosen route then passes the market-safety guards (price impact,
oracle deviation) or fails before anything executes.
"""

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import permutations
from math import isqrt

from ..config import get_settings
from ..tokens import WSOL_MINT, Token
from . import cpmm
from .amm import BPS, ceil_div, min_out
from .errors import DustAmount, GuardRefused, InsufficientLiquidity, NoRoute, VenueTimeout
from .guards import Assessment, Guards, check
from .oracle import PairPrice
from .snapshot import PoolSnapshot, Quote, price_impact, ratio_to_decimal

logger = logging.getLogger(__name__)

CHUNKS = 32  # greedy allocation granularity: 1/32 of the order
FINEST_STEP = 1 << 16  # refinement stops at 1/65536 of the order (or one base unit)


@dataclass(frozen=True)
class Route:
    kind: str  # "single" | "split"
    legs: tuple[Quote, ...]
    in_amount: int
    out_amount: int
    min_out: int
    slippage_bps: int
    # wrap / swap... / unwrap, as a transaction would do them (amounts as strings)
    steps: tuple[dict, ...]
    reason: str
    considered: dict  # venue -> output of its best single quote (venues that could fill)
    price_impact_pct: Decimal = Decimal(0)  # of the whole route, fees aside
    oracle_price: Decimal | None = None  # UI units out per UI unit in, when the oracle was read
    oracle_deviation_pct: Decimal | None = None  # the route's price from it, beyond confidence

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "legs": [leg.to_dict() for leg in self.legs],
            "inAmount": str(self.in_amount),
            "outAmount": str(self.out_amount),
            "minOut": str(self.min_out),
            "slippageBps": self.slippage_bps,
            "steps": [dict(step) for step in self.steps],
            "reason": self.reason,
            "considered": {venue: str(out) for venue, out in self.considered.items()},
            "priceImpactPct": str(self.price_impact_pct),
            "oraclePrice": _text(self.oracle_price),
            "oracleDeviationPct": _text(self.oracle_deviation_pct),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Route":
        return cls(
            kind=d["kind"],
            legs=tuple(Quote.from_dict(leg) for leg in d["legs"]),
            in_amount=int(d["inAmount"]),
            out_amount=int(d["outAmount"]),
            min_out=int(d["minOut"]),
            slippage_bps=int(d["slippageBps"]),
            steps=tuple(dict(step) for step in d["steps"]),
            reason=d["reason"],
            considered={venue: int(out) for venue, out in d["considered"].items()},
            price_impact_pct=Decimal(d.get("priceImpactPct", 0)),
            oracle_price=_decimal(d.get("oraclePrice")),
            oracle_deviation_pct=_decimal(d.get("oracleDeviationPct")),
        )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


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
    """The route that pays most for ``amount_in`` of ``token_in``, from pool snapshots,
    once the guards (by default the configured ones) have passed it; else a non-transient
    ``GuardRefused``."""
    pools = _usable(snapshots, token_in, token_out)
    if amount_in <= 0:
        raise DustAmount("amount must be positive", amount_in=amount_in)
    mint = token_in.mint
    singles: dict[int, Quote] = {}
    failures: dict[str, InsufficientLiquidity] = {}
    for i, snap in enumerate(pools):
        try:
            singles[i] = snap.quote(mint, amount_in, slippage_bps, valid_slots)
        except InsufficientLiquidity as exc:
            failures[snap.venue] = exc
    best = max(singles, key=lambda i: singles[i].out_amount, default=None)
    outputs = [_memo_output(snap, mint) for snap in pools]

    allocation = _search_split(pools, outputs, best, mint, amount_in)
    split_out = sum(outputs[i](a) for i, a in enumerate(allocation or ()))
    best_out = singles[best].out_amount if best is not None else -1
    if allocation and sum(1 for a in allocation if a) > 1 and split_out > best_out:
        legs = tuple(
            pools[i].quote(mint, a, slippage_bps, valid_slots)
            for i, a in enumerate(allocation)
            if a
        )
        reason = _split_reason(legs, split_out, singles.get(best))
    elif best is not None:
        legs = (singles[best],)
        reason = _single_reason(singles[best], singles, failures)
    else:
        raise next(iter(failures.values()))

    out_amount = sum(leg.out_amount for leg in legs)
    if out_amount == 0:
        raise DustAmount(
            f"{amount_in} base units of {token_in.symbol} buy no {token_out.symbol}",
            amount_in=amount_in,
        )
    by_id = {snap.pool_id: snap for snap in pools}
    ideal = sum(by_id[leg.pool_id].ideal_out(mint, leg.in_amount - leg.fee) for leg in legs)
    assessment = _guarded(
        guards or Guards.from_settings(get_settings().market),
        price_impact(ideal, out_amount),
        Fraction(out_amount, amount_in),
        _oracle(pools, mint),
        token_in,
        token_out,
        legs,
    )
    route = Route(
        kind="split" if len(legs) > 1 else "single",
        legs=legs,
        in_amount=amount_in,
        out_amount=out_amount,
        min_out=min_out(out_amount, slippage_bps),
        slippage_bps=slippage_bps,
        steps=_steps(legs, token_in, token_out, amount_in, out_amount),
        reason=reason,
        considered={q.venue: q.out_amount for q in singles.values()},
        price_impact_pct=assessment.price_impact_pct,
        oracle_price=assessment.oracle_price,
        oracle_deviation_pct=assessment.oracle_deviation_pct,
    )
    if logger.isEnabledFor(logging.INFO):
        quotes = "; ".join(_describe(q) for q in singles.values())
        failed = "".join(f"; {venue}: {exc}" for venue, exc in failures.items())
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


def _guarded(limits: Guards, impact, rate, oracle, token_in, token_out, legs) -> Assessment:
    """``guards.check``, logging a refusal with the legs it refused."""
    try:
        return check(limits, impact, rate, oracle, token_in, token_out)
    except GuardRefused as exc:
        logger.info("route refused: %s; legs: %s", exc, "; ".join(_describe(q) for q in legs))
        raise


def _oracle(pools: list, mint_in: str) -> PairPrice | None:
    """The oracle's price from the freshest snapshot that read it."""
    read = [snap for snap in pools if snap.oracle_x is not None and snap.oracle_y is not None]
    if not read:
        return None
    return max(read, key=lambda snap: snap.oracle_x.publish_slot).oracle_price(mint_in)


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


def _memo_output(snap: PoolSnapshot, mint_in: str) -> Callable[[int], int | None]:
    """``amount -> output`` for one pool, remembered; ``None`` when the pool cannot fill it."""
    cache = {0: 0}

    def output(amount: int) -> int | None:
        if amount not in cache:
            try:
                cache[amount] = snap.amount_out(mint_in, amount)
            except InsufficientLiquidity:
                cache[amount] = None
        return cache[amount]

    return output


def _search_split(pools: list, outputs: list, best, mint_in: str, amount: int):
    """The best allocation of ``amount`` over the pools found, or None when splitting
    cannot pay. ``best`` is the index of the best single venue (None: none can fill)."""
    if len(pools) == 2 and all(p.amm is cpmm for p in pools):
        return _refine(outputs, _cpmm_closed_form(pools, mint_in, amount), step=2, finest=1)
    if len(pools) < 2 or (best is not None and not _split_may_pay(pools, best, mint_in, amount)):
        return None
    allocation = _greedy(outputs, amount)
    return _refine(outputs, allocation, ceil_div(amount, CHUNKS) // 2, amount // FINEST_STEP)


def _split_may_pay(pools: list, best: int, mint_in: str, amount: int) -> bool:
    """Does another venue pay more for its first sliver than the best venue for its last?
    If not, outputs being concave, no split beats the best venue alone, and small orders
    are spared the search. (For a CPMM the rate after the swap slightly underestimates
    the rate of its last sliver, which only errs towards searching.)"""
    last = pools[best].marginal_rate(mint_in, after=amount)
    return any(p.marginal_rate(mint_in) > last for i, p in enumerate(pools) if i != best)


def _cpmm_closed_form(pools: list, mint_in: str, amount: int) -> list[int]:
    """Two constant-product pools pay most when their marginal outputs are equal:
    ``sqrt(g1*x1*y1) / (x1 + g1*a) = sqrt(g2*x2*y2) / (x2 + g2*(A - a))`` with ``g = 1 - fee``,
    which is linear in ``a``. ``isqrt`` keeps it in integers; ``_refine`` fixes rounding."""
    (x1, y1), (x2, y2) = (cpmm.reserves(p.state, p.x_to_y(mint_in)) for p in pools)
    g1, g2 = (cpmm.FEE_DENOMINATOR - p.state["fee_rate"] for p in pools)
    d = cpmm.FEE_DENOMINATOR
    s1, s2 = isqrt(g1 * x1 * y1), isqrt(g2 * x2 * y2)
    first = (s1 * (x2 * d + g2 * amount) - s2 * x1 * d) // (s1 * g2 + s2 * g1)
    first = min(max(first, 0), amount)
    return [first, amount - first]


def _greedy(outputs: list, amount: int) -> list[int]:
    """Hand the order out in chunks, each to the venue whose next chunk pays most."""
    allocation, got = [0] * len(outputs), [0] * len(outputs)
    chunk, left = ceil_div(amount, CHUNKS), amount
    while left:
        size = min(chunk, left)
        gains = {}
        for i, out in enumerate(outputs):
            after = out(allocation[i] + size)
            if after is not None:
                gains[i] = after - got[i]
        if not gains:
            raise InsufficientLiquidity("no venue can fill the rest of the order", left=left)
        i = max(gains, key=gains.get)
        allocation[i] += size
        got[i] += gains[i]
        left -= size
    return allocation


def _refine(outputs: list, allocation: list[int], step: int, finest: int) -> list[int]:
    """Move ``step`` between venues while that pays more, halving ``step`` when no move does.
    Every venue can fill its share of ``allocation`` (and so any smaller share)."""
    allocation = list(allocation)
    finest = max(finest, 1)
    step = max(step, finest)
    while step >= finest:
        moved = False
        for i, j in permutations(range(len(outputs)), 2):
            if allocation[i] < step:
                continue
            now_i, now_j = outputs[i](allocation[i]), outputs[j](allocation[j])
            new_i, new_j = outputs[i](allocation[i] - step), outputs[j](allocation[j] + step)
            if new_j is not None and new_i + new_j > now_i + now_j:
                allocation[i] -= step
                allocation[j] += step
                moved = True
                break
        if not moved:
            step //= 2
    return allocation


def _steps(legs, token_in: Token, token_out: Token, amount_in: int, amount_out: int) -> tuple:
    steps = []
    if token_in.native:
        steps.append({"type": "wrap", "mint": WSOL_MINT, "amount": str(amount_in)})
    steps.extend(
        {
            "type": "swap",
            "venue": leg.venue,
            "poolId": leg.pool_id,
            "inAmount": str(leg.in_amount),
            "outAmount": str(leg.out_amount),
        }
        for leg in legs
    )
    if token_out.native:
        steps.append({"type": "unwrap", "mint": WSOL_MINT, "amount": str(amount_out)})
    return tuple(steps)


def _describe(quote: Quote) -> str:
    return f"{quote.venue} out={quote.out_amount} fee={quote.fee} impact={quote.price_impact_pct}%"


def _bps(more: int, base: int) -> str:
    return f"{ratio_to_decimal(Fraction(more * BPS, base), 2)} bps" if base > 0 else "from nothing"


def _single_reason(winner: Quote, singles: dict, failures: dict) -> str:
    others = [q for q in singles.values() if q is not winner]
    if not others:
        why = ", ".join(f"{venue}: {exc}" for venue, exc in failures.items())
        return f"{winner.venue} is the only venue that can fill ({why or 'no other venue'})"
    runner = max(others, key=lambda q: q.out_amount)
    more = winner.out_amount - runner.out_amount
    return (
        f"{winner.venue} pays {more} more than {runner.venue} ({_bps(more, runner.out_amount)}); "
        "no split pays more"
    )


def _split_reason(legs: tuple, split_out: int, best: Quote | None) -> str:
    total_in = sum(leg.in_amount for leg in legs)
    shares = " / ".join(
        f"{leg.venue} {ratio_to_decimal(Fraction(leg.in_amount * 100, total_in), 1)}%"
        for leg in legs
    )
    if best is None:
        return f"split {shares}: no single venue can fill the order"
    more = split_out - best.out_amount
    return (
        f"split {shares} pays {more} more than {best.venue} alone ({_bps(more, best.out_amount)})"
    )
