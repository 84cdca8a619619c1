"""Routing beyond one pair: the best of the direct pair and of every two-hop path through an
intermediate token (SOL, USDC, USDT by default), each hop on one pool or split among its
pair's pools, for an exact input (most output) or an exact output (least input).

For one intermediate the best two-hop route is the best first hop followed by the best
second hop for what the first bought (or, for an exact output, the cheapest second hop and
then the cheapest first hop for what it needs): a hop's result only grows with its amount,
and the two hops trade on different pools. Paths are weighed best bound first, and a path
whose bound (the amount at its pools' best marginal rates: outputs are concave) cannot beat
the best so far is not searched: small orders rarely search any two-hop path at all.
"""

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from itertools import chain

from ..config import get_settings
from ..tokens import TOKENS, Token, by_mint, listed_mints, resolve
from . import hops, reasons
from .amm import max_in, min_out
from .errors import DustAmount, GuardRefused, InsufficientLiquidity, NoRoute, VenueTimeout
from .guards import Guards
from .hops import EXACT_IN, EXACT_OUT, HopFill
from .route import Route, steps_for
from .route_guards import assess
from .snapshot import VENUES, PoolSnapshot

logger = logging.getLogger("chalicelib.dex.router")

Fetch = Callable[[str, Token, Token], PoolSnapshot]
READER_THREADS = 64  # pool reads under way at once, over all plans of the process
SWAP_MODES = (EXACT_IN, EXACT_OUT)


@dataclass(frozen=True)
class RouteOptions:
    only_direct_routes: bool = False
    max_hops: int = 2  # 1 or 2
    # True: only ``intermediate_tokens`` may sit between the hops; False: any known token
    # whose pools trade with both ends
    restrict_intermediate_tokens: bool = True
    intermediate_tokens: tuple[str, ...] = ("SOL", "USDC", "USDT")
    venues: tuple[str, ...] | None = None  # allow-list; None: every venue
    exclude_venues: tuple[str, ...] = ()

    def __post_init__(self):
        if self.max_hops not in (1, 2):
            raise ValueError(f"max_hops must be 1 or 2, not {self.max_hops}")

    @property
    def multihop(self) -> bool:
        return not self.only_direct_routes and self.max_hops > 1

    def allowed_venues(self) -> tuple[str, ...]:
        chosen = VENUES if self.venues is None else tuple(self.venues)
        unknown = [venue for venue in chosen if venue not in VENUES]
        if unknown:
            raise NoRoute(f"unknown venue {unknown[0]!r}; venues: {', '.join(VENUES)}")
        allowed = tuple(venue for venue in chosen if venue not in self.exclude_venues)
        if not allowed:
            raise NoRoute("no venue allowed")
        return allowed


DEFAULT_OPTIONS = RouteOptions()


@dataclass(frozen=True)
class _Path:
    """A path the planner searched: its hops' fills."""

    intermediates: tuple[str, ...]  # mints between the hops
    fills: tuple[HopFill, ...]

    @property
    def label(self) -> str:
        return reasons.path_label(self.intermediates)

    @property
    def in_amount(self) -> int:
        return self.fills[0].in_amount

    @property
    def out_amount(self) -> int:
        return self.fills[-1].out_amount


def plan(
    fetch: Fetch,
    token_in: Token,
    token_out: Token,
    amount: int,
    slippage_bps: int,
    valid_slots: int,
    options: RouteOptions = DEFAULT_OPTIONS,
    *,
    swap_mode: str = EXACT_IN,
    guards: Guards | None = None,
) -> Route:
    """The best route for ``amount`` (``ExactIn``: of ``token_in`` to sell; ``ExactOut``: of
    ``token_out`` to buy) over the direct pair and the two-hop paths ``options`` allow, once
    the guards (by default the configured ones) pass it. When they refuse the best, the
    next best path searched that they pass; if none, the best one's ``GuardRefused``.

    ``fetch(venue, token_a, token_b)`` reads a pool (``Market.snapshot``, maybe cached); it
    raises ``NoRoute`` for a pool that does not exist and ``VenueTimeout`` for one that did
    not answer. Every pool is read at once; pools that time out are routed without."""
    if swap_mode not in SWAP_MODES:
        raise ValueError(f"swap_mode must be one of {SWAP_MODES}, not {swap_mode!r}")
    if token_in.mint == token_out.mint:
        raise NoRoute(f"cannot swap {token_in.symbol} for {token_out.symbol}")
    if amount <= 0:
        raise DustAmount("amount must be positive", amount=amount)
    venues = options.allowed_venues()
    middles = _intermediates(token_in, token_out, options) if options.multihop else []
    pairs = [(token_in, token_out)]
    pairs += [pair for middle in middles for pair in ((token_in, middle), (middle, token_out))]
    pools, timeouts = _read(fetch, venues, pairs)
    search = _Search(swap_mode, amount, pools)
    search.direct(token_in.mint, token_out.mint)
    for middle in search.by_bound(token_in.mint, [m.mint for m in middles], token_out.mint):
        search.via(token_in.mint, middle, token_out.mint)
    if not search.paths:
        raise search.failure(token_in, token_out, timeouts)
    limits = guards or Guards.from_settings(get_settings().market)
    snapshots = list(chain.from_iterable(pools.values()))
    refused, tried = None, set()
    while True:
        for path in search.ranked():
            if path.label in tried:
                continue
            tried.add(path.label)
            try:
                route = _route(
                    path, search, snapshots, limits, token_in, token_out, slippage_bps, valid_slots
                )
            except GuardRefused as exc:
                refused = refused or exc
                continue
            _log(route, search, token_in, token_out, amount)
            return route
        if not search.pruned:
            raise refused
        search.unbounded(token_in.mint, token_out.mint)  # what the bounds left out, after all


class _Search:
    """The paths searched so far for one order, and the best of them."""

    def __init__(self, mode: str, amount: int, pools: dict[tuple[str, str], list[PoolSnapshot]]):
        self.mode, self.amount, self.pools = mode, amount, pools
        self.paths: list[_Path] = []
        self.pruned: list[str] = []  # intermediates whose path's bound could not win
        self.failures: list[InsufficientLiquidity] = []
        self.dust = False

    def score(self, path: _Path) -> int:
        """Higher is better: the output, or minus the input."""
        return path.out_amount if self.mode == EXACT_IN else -path.in_amount

    def ranked(self) -> list[_Path]:
        return sorted(self.paths, key=self.score, reverse=True)  # stable: direct first on ties

    def _best(self) -> _Path | None:
        return max(self.paths, key=self.score, default=None)

    def _fill(self, mint_in: str, mint_out: str, amount: int) -> HopFill | None:
        try:
            return hops.fill(self.mode, self.pools[mint_in, mint_out], mint_in, amount)
        except InsufficientLiquidity as exc:
            self.failures.append(exc)
            return None

    def _add(self, path: _Path) -> None:
        if path.out_amount == 0:
            self.dust = True
        else:
            self.paths.append(path)

    def direct(self, mint_in: str, mint_out: str) -> None:
        if self.pools.get((mint_in, mint_out)):
            fill = self._fill(mint_in, mint_out, self.amount)
            if fill is not None:
                self._add(_Path((), (fill,)))

    def _rate(self, mint_in: str, mint_out: str) -> Fraction:
        """The best first-sliver rate among the pair's pools: what bounds any amount's rate."""
        return max(snap.marginal_rate(mint_in) for snap in self.pools[mint_in, mint_out])

    def _beaten(self, bound: Fraction) -> bool:
        """Can no path bounded by ``bound`` (an output, or an input) beat the best so far?"""
        best = self._best()
        if best is None:
            return False
        return bound <= best.out_amount if self.mode == EXACT_IN else bound >= best.in_amount

    def by_bound(self, mint_in: str, middles: Sequence[str], mint_out: str) -> list[str]:
        """The intermediates with pools on both sides, most promising first."""
        bounds = {}
        for middle in middles:
            if self.pools.get((mint_in, middle)) and self.pools.get((middle, mint_out)):
                bounds[middle] = self._rate(mint_in, middle) * self._rate(middle, mint_out)
        return sorted(bounds, key=bounds.get, reverse=True)

    def unbounded(self, mint_in: str, mint_out: str) -> None:
        """Search the paths the bounds left out, without bounds."""
        pruned, self.pruned = self.pruned, []
        for middle in pruned:
            self.via(mint_in, middle, mint_out, bounded=False)

    def via(self, mint_in: str, middle: str, mint_out: str, bounded: bool = True) -> None:
        first_rate, second_rate = self._rate(mint_in, middle), self._rate(middle, mint_out)

        def beaten(bound) -> bool:
            if bounded and self._beaten(bound):
                self.pruned.append(middle)
                return True
            return False

        if self.mode == EXACT_IN:
            if beaten(self.amount * first_rate * second_rate):
                return
            first = self._fill(mint_in, middle, self.amount)
            if first is None or first.out_amount == 0:
                self.dust = self.dust or first is not None
                return
            if beaten(first.out_amount * second_rate):
                return
            second = self._fill(middle, mint_out, first.out_amount)
            if second is not None:
                self._add(_Path((middle,), (first, second)))
            return
        if first_rate == 0 or second_rate == 0:  # an empty pool: nothing to buy there
            return
        if beaten(self.amount / (first_rate * second_rate)):
            return
        second = self._fill(middle, mint_out, self.amount)
        if second is None or beaten(second.in_amount / first_rate):
            return
        first = self._fill(mint_in, middle, second.in_amount)
        if first is not None:
            self._add(_Path((middle,), (first, second)))

    def failure(self, token_in: Token, token_out: Token, timeouts: list) -> Exception:
        """Why no path could be searched."""
        if self.failures:
            return self.failures[0]
        if self.dust:
            return DustAmount(
                f"{self.amount} base units of {token_in.symbol} buy no {token_out.symbol}",
                amount_in=self.amount,
            )
        if timeouts:
            return timeouts[0]
        return NoRoute(f"no pool trades {token_in.symbol}/{token_out.symbol}, nor a path to it")


def _route(path, search, snapshots, limits, token_in, token_out, bps, valid_slots) -> Route:
    legs = tuple(
        chain.from_iterable(
            fill.quotes(hop, bps, valid_slots) for hop, fill in enumerate(path.fills)
        )
    )
    in_amount, out_amount = path.in_amount, path.out_amount
    exact_out = search.mode == EXACT_OUT
    assessment = assess(limits, legs, snapshots, in_amount, out_amount, token_in, token_out)
    hop_reasons = []
    for hop, fill in enumerate(path.fills):
        told = reasons.hop(fill, [leg for leg in legs if leg.hop == hop])
        if len(path.fills) > 1:
            told = f"{by_mint(fill.mint_in).symbol}->{by_mint(fill.mint_out).symbol} {told}"
        hop_reasons.append(told)
    amounts = {p.label: (p.out_amount if not exact_out else p.in_amount) for p in search.paths}
    others = {label: amount for label, amount in amounts.items() if label != path.label}
    split = any(fill.is_split for fill in path.fills)
    kind = ("split" if split else "single") if len(path.fills) == 1 else "multihop"
    if len(path.fills) > 1 and split:
        kind = "multihop_split"
    direct = next((p for p in search.paths if not p.intermediates), None)
    most_in = max_in(in_amount, bps) if exact_out else None
    return Route(
        kind=kind,
        legs=legs,
        in_amount=in_amount,
        out_amount=out_amount,
        min_out=out_amount if exact_out else min_out(out_amount, bps),
        slippage_bps=bps,
        steps=steps_for(legs, token_in, token_out, in_amount, out_amount, most_in),
        reason=reasons.path(search.mode, path.label, amounts[path.label], others, hop_reasons),
        considered=dict(direct.fills[0].singles) if direct else {},
        price_impact_pct=assessment.price_impact_pct,
        oracle_price=assessment.oracle_price,
        oracle_deviation_pct=assessment.oracle_deviation_pct,
        swap_mode=search.mode,
        max_in=most_in,
        paths=amounts,
    )


def _intermediates(token_in: Token, token_out: Token, options: RouteOptions) -> list[Token]:
    """The tokens a two-hop path may pass through (wrapped SOL, never native SOL)."""
    if options.restrict_intermediate_tokens:
        candidates = [resolve(ref) for ref in options.intermediate_tokens]
    else:
        candidates = [t for t in TOKENS if not t.native] + [by_mint(m) for m in listed_mints()]
    ends, seen, middles = {token_in.mint, token_out.mint}, set(), []
    for token in candidates:
        if token.mint not in ends and token.mint not in seen:
            seen.add(token.mint)
            middles.append(by_mint(token.mint))
    return middles


def _read(fetch: Fetch, venues: Sequence[str], pairs: Sequence[tuple[Token, Token]]):
    """Every venue's pool of every pair, read at once: ({(mint_in, mint_out): pools}, the
    timeouts). Pools that do not exist or time out are left out."""
    jobs = [(venue, a, b) for a, b in pairs for venue in venues]
    futures = [_readers().submit(fetch, venue, a, b) for venue, a, b in jobs]
    pools: dict[tuple[str, str], list[PoolSnapshot]] = {}
    timeouts, seen = [], set()
    for (venue, a, b), future in zip(jobs, futures, strict=True):
        found = pools.setdefault((a.mint, b.mint), [])
        try:
            snap = future.result()
        except VenueTimeout as exc:
            logger.info("%s timed out on %s/%s; routing without it", venue, a.symbol, b.symbol)
            timeouts.append(exc)
            continue
        except NoRoute:
            continue
        if {snap.mint_x, snap.mint_y} != {a.mint, b.mint}:
            raise NoRoute(f"pool {snap.pool_id} does not trade {a.symbol}/{b.symbol}")
        if snap.pool_id not in seen:  # one pool twice would be counted twice
            seen.add(snap.pool_id)
            found.append(snap)
    return pools, timeouts


@lru_cache(maxsize=1)
def _readers() -> ThreadPoolExecutor:
    """The threads that read pools, shared by every plan of the process: starting a dozen
    threads per order would cost more than the planning itself. A read that waits only
    waits on another plan's reads (no read plans), so sharing cannot deadlock."""
    return ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="pool-read")


def _log(route: Route, search: _Search, token_in: Token, token_out: Token, amount: int) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    weighed = "; ".join(f"{label}={amount}" for label, amount in route.paths.items())
    left_out = ", ".join(reasons.path_label((middle,)) for middle in search.pruned)
    pruned = f"; bounded out: {left_out}" if left_out else ""
    logger.info(
        "plan %s %d %s -> %s: %s%s => %s: %s",
        search.mode,
        amount,
        token_in.symbol,
        token_out.symbol,
        weighed,
        pruned,
        route.kind,
        route.reason,
    )
