"""Token registry and exact conversion between UI amounts and integer base units.

Money never passes through a float: UI amounts are parsed as ``Decimal`` from their
text and scaled by ``10**decimals``; anything that does not land on a whole base unit
is refused rather than rounded.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation
from functools import cache

from .config import get_settings
from .errors import InvalidField, clip

WSOL_MINT = "So11111111111111111111111111111111111111112"
MAX_BASE_UNITS = 2**63 - 1  # what a Postgres bigint (and an SPL token amount) holds
# A decimal string in ASCII digits: Decimal() itself also takes "1_000" and other scripts' digits.
# (NaN and Infinity pass here to be refused as not finite.)
DECIMAL_RE = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:s?nan|inf(inity)?))", re.ASCII)


class TokenError(InvalidField):
    """A token or amount the engine cannot accept; ``field`` names the input at fault."""

    code = "invalid_order"


@dataclass(frozen=True)
class Token:
    symbol: str
    mint: str
    decimals: int
    native: bool = False  # native SOL: wrapped before the swap, unwrapped after


TOKENS: tuple[Token, ...] = (
    Token("SOL", WSOL_MINT, 9, native=True),
    Token("WSOL", WSOL_MINT, 9),
    Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6),
    Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6),
    Token("JUP", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6),
    Token("BONK", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", 5),
)
_BY_SYMBOL = {t.symbol: t for t in TOKENS}
# A mint names the SPL token, so the wrapped-SOL mint resolves to WSOL, not native SOL.
_BY_MINT = {t.mint: t for t in TOKENS if not t.native}


def list_token(token: Token) -> Token:
    """Make a newly listed token known (the market lists it at its slot)."""
    if _BY_SYMBOL.get(token.symbol, token) != token or _BY_MINT.get(token.mint, token) != token:
        raise ValueError(f"{token.symbol} ({token.mint}) clashes with a known token")
    _BY_SYMBOL[token.symbol] = _BY_MINT[token.mint] = token
    LISTED.add(token.mint)
    return token


LISTED: set[str] = set()  # mints of the tokens listed after the start


def listed_mints() -> list[str]:
    _configured_listings()
    return sorted(LISTED)


@cache
def _configured_listings() -> None:
    """The settings' listings, made known on first use (not at import: settings come later)."""
    for listing in get_settings().market.listings:
        list_token(Token(listing.symbol, listing.mint, listing.decimals))


def resolve(ref: str, field: str = "token") -> Token:
    """Find a token by symbol (case-insensitive in ASCII only: "ſol" is not SOL) or by mint."""
    _configured_listings()
    token = _BY_MINT.get(ref) or (_BY_SYMBOL.get(ref.upper()) if ref.isascii() else None)
    if token is None:
        known = ", ".join(_BY_SYMBOL)
        raise TokenError(
            field, f"unknown token {clip(ref)!r}; known symbols: {known}, or their mints"
        )
    return token


def by_mint(mint: str) -> Token:
    _configured_listings()
    return _BY_MINT[mint]


def check_pair(token_in: Token, token_out: Token) -> None:
    if token_in.mint == token_out.mint:
        raise TokenError("tokenOut", f"cannot swap {token_in.symbol} for {token_out.symbol}")


# The most one order may sell, in UI units: about $1.5M at reference prices; beyond that no
# pool absorbs it within the price-impact cap anyway. ``MAX_ORDER_UI`` overrides per symbol,
# e.g. '{"SOL": "5000"}'.
MAX_ORDER_UI = {
    "SOL": Decimal(10_000),
    "WSOL": Decimal(10_000),
    "USDC": Decimal(1_500_000),
    "USDT": Decimal(1_500_000),
    "JUP": Decimal(2_000_000),
    "BONK": Decimal(75_000_000_000),
}


def max_order(token: Token, overrides: Mapping[str, Decimal] | None = None) -> int:
    """The largest amount of ``token`` one order may sell, in base units."""
    if overrides is None:
        overrides = get_settings().market.max_order_ui
    limit = {k.upper(): v for k, v in overrides.items()}.get(token.symbol)
    if limit is None:
        limit = MAX_ORDER_UI.get(token.symbol)
    if limit is None:  # a newly listed token: its pool's own depth bounds an order
        return MAX_BASE_UNITS
    return int(limit.scaleb(token.decimals))


def check_max_order(
    amount: int, token: Token, overrides: Mapping[str, Decimal] | None = None
) -> int:
    """``amount`` (base units), or a ``TokenError`` naming the limit when it is above it."""
    limit = max_order(token, overrides)
    if amount > limit:
        raise TokenError(
            "amount",
            f"at most {to_ui(limit, token)} {token.symbol} per order, not {to_ui(amount, token)}",
        )
    return amount


def to_base_units(amount: str | int | Decimal, token: Token, field: str = "amount") -> int:
    """``"1.5"`` SOL -> ``1_500_000_000``. Exact, or a ``TokenError``."""
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise TokenError(field, "amount must be a decimal string or an integer")
    if isinstance(amount, str):
        amount = amount.strip()
        if not DECIMAL_RE.fullmatch(amount):
            raise TokenError(field, f"{clip(amount)!r} is not a decimal number")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise TokenError(field, f"{clip(amount)!r} is not a decimal number") from None
    if not value.is_finite():
        raise TokenError(field, "amount must be a finite number")
    if value <= 0:
        raise TokenError(field, "amount must be greater than zero")
    finer = f"{token.symbol} has {token.decimals} decimals; {clip(str(amount))} is finer than that"
    if value.adjusted() < -token.decimals:  # below one base unit, however many digits follow
        raise TokenError(field, finer)
    if value.adjusted() > len(str(MAX_BASE_UNITS)):  # before scaling a huge exponent
        raise TokenError(field, "amount is too large")
    # Scaled with room for every digit, and trapped should it round: exact, or refused.
    exact = Context(prec=len(value.as_tuple().digits) + token.decimals + 1, traps=[Inexact])
    try:
        scaled = value.scaleb(token.decimals, context=exact)
    except Inexact:
        raise TokenError(field, finer) from None
    if scaled != scaled.to_integral_value(context=exact):
        raise TokenError(field, finer)
    base = int(scaled)
    if base > MAX_BASE_UNITS:
        raise TokenError(field, "amount is too large")
    return base


def to_ui(base_units: int, token: Token) -> str:
    """``1_500_000_000`` SOL base units -> ``"1.5"``."""
    text = format(Decimal(base_units).scaleb(-token.decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
