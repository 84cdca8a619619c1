"""A Pyth-like price feed per token: price and confidence in USD, with the slot it was
published at, all integers (``price * 10**expo`` USD per token, as Pyth's accounts hold them).

Each feed wanders around the token's reference price (the listing's, seeded): every
``KNOT_SLOTS`` slots the feed has a waypoint drawn from ``Random(f"{seed}:oracle:{symbol}:{n}")``
within ``wander_bps`` of the reference (stablecoins a twentieth of that), and the price moves
in a straight line between waypoints. So a feed's price is a function of (seed, token, slot)
alone, whoever reads it and whenever. Publication lags by 0-2 slots, as Pyth's does.
"""

import random
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from ..tokens import by_mint

EXPO = -12
KNOT_SLOTS = 150  # a minute of 400 ms slots between waypoints
CONF_BPS = {"WSOL": 5, "USDC": 1, "USDT": 1, "JUP": 10, "BONK": 20}
STABLES = {"USDC", "USDT"}
BPS = 10_000


@dataclass(frozen=True)
class OraclePrice:
    mint: str
    price: int  # USD per whole token is price * 10**expo
    conf: int  # the confidence interval's half-width, same units
    expo: int
    publish_slot: int

    def per_base_unit(self) -> Fraction:
        """USD per base unit of the token."""
        return Fraction(self.price) * Fraction(10) ** (self.expo - by_mint(self.mint).decimals)

    def to_dict(self) -> dict:
        return {
            "mint": self.mint,
            "price": str(self.price),
            "conf": str(self.conf),
            "expo": self.expo,
            "publishSlot": self.publish_slot,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "OraclePrice":
        return cls(d["mint"], int(d["price"]), int(d["conf"]), int(d["expo"]), d["publishSlot"])


@dataclass(frozen=True)
class PairPrice:
    """What the oracle says one token is worth in another."""

    rate: Fraction  # base units of the output token per base unit of the input token
    conf: Fraction  # relative half-width of the confidence interval
    publish_slot: int  # the older of the two feeds'


def pair_price(given: OraclePrice, wanted: OraclePrice) -> PairPrice:
    """The rate of ``given`` in ``wanted``; confidences add up, as Pyth composes them."""
    shift = given.expo - wanted.expo + by_mint(wanted.mint).decimals - by_mint(given.mint).decimals
    num, den = given.price, wanted.price
    rate = Fraction(num * 10**shift, den) if shift >= 0 else Fraction(num, den * 10**-shift)
    return PairPrice(
        rate=rate,
        conf=Fraction(given.conf * den + wanted.conf * num, num * den),
        publish_slot=min(given.publish_slot, wanted.publish_slot),
    )


class Oracle:
    def __init__(self, seed: int, reference_usd: dict[str, Fraction], wander_bps: int):
        self.seed = seed
        self.reference_usd = dict(reference_usd)
        self.wander_bps = wander_bps
        self.read = lru_cache(maxsize=4096)(self._read)
        self._waypoint = lru_cache(maxsize=4096)(self._draw_waypoint)

    def usd(self, symbol: str, slot: int) -> Fraction:
        """The feed's exact price in USD per whole token at ``slot``."""
        knot, into = divmod(slot, KNOT_SLOTS)
        start, end = self._waypoint(symbol, knot), self._waypoint(symbol, knot + 1)
        offset_bps = start + Fraction((end - start) * into, KNOT_SLOTS)
        return self.reference_usd[symbol] * (1 + offset_bps / BPS)

    def mid(self, mint_x: str, mint_y: str, slot: int) -> Fraction:
        """Base units of Y per base unit of X at ``slot``, unrounded: what arbitrage aims at."""
        x, y = by_mint(mint_x), by_mint(mint_y)
        x_usd, y_usd = self.usd(x.symbol, slot), self.usd(y.symbol, slot)
        return x_usd / y_usd * Fraction(10) ** (y.decimals - x.decimals)

    def _read(self, mint: str, slot: int) -> OraclePrice:
        """The feed's account as read at ``slot``."""
        symbol = by_mint(mint).symbol
        published = slot - random.Random(f"{self.seed}:oracle-lag:{symbol}:{slot}").randint(0, 2)
        usd = self.usd(symbol, published)
        price = int(usd * 10**-EXPO)
        return OraclePrice(mint, price, price * CONF_BPS[symbol] // BPS, EXPO, published)

    def _draw_waypoint(self, symbol: str, knot: int) -> int:
        reach = self.wander_bps // 20 if symbol in STABLES else self.wander_bps
        if not reach:
            return 0
        return random.Random(f"{self.seed}:oracle:{symbol}:{knot}").randint(-reach, reach)
