"""The venues as this process sees them: its mock market, and pool reads through the cache.

The mock market (``chalicelib.dex``) lives in each process, built on first use; the state of
newly listed pools, which only orders move, is shared through Redis (``listed_pools``).
"""

import threading
from collections.abc import Callable

from chalicelib.backends.cache import cached_snapshot
from chalicelib.backends.listed_pools import RedisListedPools
from chalicelib.config import get_settings
from chalicelib.dex import Faults, Market, PoolSnapshot
from chalicelib.tokens import Token

Fetch = Callable[[str, Token, Token], PoolSnapshot]

_market: Market | None = None
_market_lock = threading.Lock()


def market() -> Market:
    """The process's market, built on first use from the settings."""
    global _market
    if _market is None:
        with _market_lock:
            if _market is None:
                settings = get_settings().market
                _market = Market(
                    settings.order_engine_seed, settings, listed_state=RedisListedPools()
                )
    return _market


def cached_fetch(faults: Faults | None = None) -> Fetch:
    """Read a venue's pool for a pair from the quote cache, else from the market (with the
    seeded faults of an order's attempt, when given)."""
    live = market()
    return lambda venue, a, b: cached_snapshot(
        venue, a, b, lambda v, x, y: live.snapshot(v, x, y, faults)
    )
