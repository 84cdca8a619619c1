"""Mock Solana venues with real AMM math (Raydium CPMM, Meteora DLMM), an oracle, the
router and its market-safety guards, and the chain's fee market (congestion, landing)."""

from .chain import Chain, FeeEstimate, FeeLevels, Landing, PriorityFee
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
from .hops import EXACT_IN, EXACT_OUT
from .market import Execution, Market
from .oracle import Oracle, OraclePrice
from .router import Route, RouteOptions, best_route, plan, quote_venues
from .slippage import auto_slippage_bps
from .snapshot import VENUES, PoolSnapshot, Quote

__all__ = [
    "EXACT_IN",
    "EXACT_OUT",
    "VENUES",
    "BlockhashExpired",
    "Chain",
    "DexError",
    "DustAmount",
    "Execution",
    "Faults",
    "FeeEstimate",
    "FeeLevels",
    "GuardRefused",
    "Guards",
    "InsufficientLiquidity",
    "Landing",
    "Market",
    "NoRoute",
    "Oracle",
    "OraclePrice",
    "PoolSnapshot",
    "PriceDeviatesFromOracle",
    "PriceImpactTooHigh",
    "PriorityFee",
    "Quote",
    "QuoteExpired",
    "Route",
    "RouteOptions",
    "SlippageExceeded",
    "VenueTimeout",
    "auto_slippage_bps",
    "best_route",
    "plan",
    "quote_venues",
]
