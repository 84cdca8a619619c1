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
