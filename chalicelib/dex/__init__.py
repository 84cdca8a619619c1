"""Mock Solana venues with real AMM math (Raydium CPMM, Meteora DLMM), an oracle, the
router and its market-safety guards."""

from .errors import (
    BlockhashExpired,
    DexError,
    DustAmount,
    GuardRefused,
    InsufficientLiquidity,
    NoRoute,
    PriceDeviatesFromOracle,
    PriceImpactTooHigh,
    QuoteExpired,
    SlippageExceeded,
    VenueTimeout,
)
from .faults import Faults
from .guards import Guards
from .market import Execution, Market
from .oracle import Oracle, OraclePrice
from .router import Route, best_route, quote_venues
from .snapshot import VENUES, PoolSnapshot, Quote

__all__ = [
    "VENUES",
    "BlockhashExpired",
    "DexError",
    "DustAmount",
    "Execution",
    "Faults",
    "GuardRefused",
    "Guards",
    "InsufficientLiquidity",
    "Market",
    "NoRoute",
    "Oracle",
    "OraclePrice",
    "PoolSnapshot",
    "PriceDeviatesFromOracle",
    "PriceImpactTooHigh",
    "Quote",
    "QuoteExpired",
    "Route",
    "SlippageExceeded",
    "VenueTimeout",
    "best_route",
    "quote_venues",
]
