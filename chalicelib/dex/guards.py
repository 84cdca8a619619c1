"""Market-safety guards: what a route must pass before anything executes.

A route fails when its price impact exceeds the cap, or when the price it pays lies
further from the oracle's than the bound, beyond the oracle's own confidence. Deviation is
measured as ``1 - lower/higher`` of the two prices, so it means the same whichever token
is the dear one.
"""

from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

from ..config import MarketSettings
from ..tokens import Token
from .amm import BPS
from .errors import PriceDeviatesFromOracle, PriceImpactTooHigh
from .oracle import PairPrice
from .snapshot import ratio_to_decimal


@dataclass(frozen=True)
class Guards:
    price_impact_cap_bps: int = 300
    oracle_deviation_bps: int = 500

    @classmethod
    def from_settings(cls, settings: MarketSettings) -> "Guards":
        return cls(settings.price_impact_cap_bps, settings.oracle_deviation_bps)


OFF = Guards(price_impact_cap_bps=BPS, oracle_deviation_bps=BPS)  # measures, never refuses


@dataclass(frozen=True)
class Assessment:
    """What the guards measured, rounded for the record."""

    price_impact_pct: Decimal
    oracle_price: Decimal | None  # UI units of the output token per UI unit of the input
    oracle_deviation_pct: Decimal | None


def deviation(rate: Fraction, oracle: PairPrice) -> Fraction:
    """How far ``rate`` lies from the oracle's, less the oracle's confidence; in [0, 1)."""
    paid = rate.numerator * oracle.rate.denominator  # both over the same denominator
    fair = oracle.rate.numerator * rate.denominator
    low, high = sorted((paid, fair))
    return max(Fraction(0), Fraction(high - low, high) - oracle.conf)


def check(
    guards: Guards,
    impact: Fraction,
    rate: Fraction,
    oracle: PairPrice | None,
    token_in: Token,
    token_out: Token,
) -> Assessment:
    """Raise when a guard refuses a route of ``impact`` paying ``rate`` (base units out per
    base unit in); else what was measured. Without an oracle reading only impact is checked."""
    impact_pct = ratio_to_decimal(impact * 100, 6)
    if impact * BPS > guards.price_impact_cap_bps:
        raise PriceImpactTooHigh(
            f"the route moves the price {impact_pct}% (cap {_pct(guards.price_impact_cap_bps)}%)",
            price_impact_pct=str(impact_pct),
        )
    if oracle is None:
        return Assessment(impact_pct, None, None)
    off = deviation(rate, oracle)
    off_pct = ratio_to_decimal(off * 100, 4)
    fair = ui_rate(oracle.rate, token_in, token_out)
    if off * BPS > guards.oracle_deviation_bps:
        paid = ui_rate(rate, token_in, token_out)
        raise PriceDeviatesFromOracle(
            f"the route pays {paid:f} {token_out.symbol} per {token_in.symbol}, {off_pct}% "
            f"off the oracle's {fair:f} (bound {_pct(guards.oracle_deviation_bps)}%)",
            oracle_price=format(fair, "f"),
            deviation_pct=str(off_pct),
        )
    return Assessment(impact_pct, fair, off_pct)


def ui_rate(rate: Fraction, token_in: Token, token_out: Token) -> Decimal:
    """A base-unit rate in UI units, to 10 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 10
        quotient = Decimal(rate.numerator) / Decimal(rate.denominator)
        return quotient.scaleb(token_in.decimals - token_out.decimals)


def _pct(bps: int) -> str:
    return format(Decimal(bps).scaleb(-2).normalize(), "f")
