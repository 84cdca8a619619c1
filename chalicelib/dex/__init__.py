"""Mock Solana venues with real AMM math (Raydium CPMM, Meteora DLMM) and the router."""

from .errors import (
    BlockhashExpired,
    DexError,
    DustAmount,
    InsufficientLiquidity,
    NoRoute,
    QuoteExpired,
    SlippageExceeded,
    VenueTimeout,
)
from .faults import Faults
from .market import Execution, Market, get_market
from .router import Route, best_route, quote_venues
from .snapshot import VENUES, PoolSnapshot, Quote

__all__ = [
    "VENUES",
    "BlockhashExpired",
    "DexError",
    "DustAmount",
    "Execution",
    "Faults",
    "InsufficientLiquidity",
    "Market",
    "NoRoute",
    "PoolSnapshot",
    "Quote",
    "QuoteExpired",
    "Route",
    "SlippageExceeded",
    "VenueTimeout",
    "best_route",
    "get_market",
    "quote_venues",
]
