"""``slippageBps: "auto"``: the tolerance a pair's recent orders call for (``dex.slippage``).

Every worker adds each confirmed order's sample to a Redis stream per pair and direction:
the slippage it met (bps of its routed output) and the oracle price it was routed at (the
moves between samples are the pair's volatility). One ``XADD`` per confirmed order, trimmed
to about ``KEEP`` samples; a choice reads the last ``READ``. Redis being down only costs the
choice its history: it falls back to the default, within the cap.
"""

import logging
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import redis

from chalicelib.backends.cache import redis_client
from chalicelib.dex import EXACT_IN, Route, auto_slippage_bps
from chalicelib.dex.slippage import price_move_bps, slippage_sample_bps
from chalicelib.orders.models import OrderSpec

log = logging.getLogger(__name__)

KEEP, READ = 200, 100
FLOOR_BPS, DEFAULT_BPS = 10, 50  # the least ever chosen; the choice with too few samples


def _key(mint_in: str, mint_out: str) -> str:
    return f"slippage:{mint_in}:{mint_out}"


def record(route: Route, amount_out: int) -> None:
    """A confirmed exact-input order's sample."""
    if route.swap_mode != EXACT_IN or route.out_amount <= 0:
        return
    price = "" if route.oracle_price is None else format(route.oracle_price, "f")
    sample = {"bps": slippage_sample_bps(route.out_amount, amount_out), "price": price}
    try:
        key = _key(route.mint_in, route.mint_out)
        redis_client().xadd(key, sample, maxlen=KEEP, approximate=True)
    except redis.RedisError as e:
        log.warning("slippage sample not kept: %r", e)


def history(mint_in: str, mint_out: str) -> tuple[list[int], list[int]]:
    """The pair's recent samples (bps) and its price moves between them (bps), oldest first."""
    try:
        entries = redis_client().xrevrange(_key(mint_in, mint_out), count=READ)
    except redis.RedisError as e:
        log.warning("slippage samples not read: %r", e)
        return [], []
    fields = [entry for _, entry in reversed(entries)]
    samples = [int(f["bps"]) for f in fields]
    prices = [Fraction(Decimal(f["price"])) for f in fields if f.get("price")]
    return samples, [price_move_bps(a, b) for a, b in pairwise(prices) if a > 0]


def choose(spec: OrderSpec) -> OrderSpec:
    """The spec with its slippage chosen, when it asked for "auto" (``slippage_bps`` is the
    cap until then); else as it is."""
    if not spec.auto_slippage:
        return spec
    cap = spec.slippage_bps
    samples, moves = history(spec.token_in.mint, spec.token_out.mint)
    chosen = auto_slippage_bps(
        samples,
        moves,
        max_bps=cap,
        floor_bps=min(FLOOR_BPS, cap),
        default_bps=min(DEFAULT_BPS, cap),
    )
    return replace(spec, slippage_bps=chosen)
