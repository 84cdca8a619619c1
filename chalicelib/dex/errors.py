"""What can go wrong at a venue. ``transient`` errors are worth retrying (maybe after a
fresh quote); the others will fail the same way again. As an answer (a quote), a transient
error is a 503 and any other a 422."""

from ..errors import EngineError


class DexError(EngineError):
    transient = False
    code = "dex_error"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details

    @property
    def status(self) -> int:  # type: ignore[override]
        return 503 if self.transient else 422

    def body(self) -> dict:
        return {
            "error": {"code": self.code, "message": self.message, "details": self.details or None}
        }


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
