"""What can go wrong at a venue. ``transient`` errors are worth retrying (maybe after a
fresh quote); the others will fail the same way again."""


class DexError(Exception):
    transient = False
    code = "dex_error"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class VenueTimeout(DexError):
    transient = True
    code = "venue_timeout"


class BlockhashExpired(DexError):
    transient = True
    code = "blockhash_expired"


class QuoteExpired(DexError):
    transient = True
    code = "quote_expired"


class SlippageExceeded(DexError):
    transient = True
    code = "slippage_exceeded"


class InsufficientLiquidity(DexError):
    code = "insufficient_liquidity"


class NoRoute(DexError):
    code = "no_route"


class DustAmount(DexError):
    code = "dust_amount"


class GuardRefused(DexError):
    """A route a market-safety guard refused before anything executed. The message starts
    with the code: it is what the order's failure reason records."""

    def __init__(self, message: str, **details):
        super().__init__(f"{self.code}: {message}", **details)


class PriceImpactTooHigh(GuardRefused):
    code = "price_impact_too_high"


class PriceDeviatesFromOracle(GuardRefused):
    code = "price_deviates_from_oracle"
