"""The seeded pool listing: which pairs trade on which venue, at what price and depth.

Every pair of distinct pool tokens has a Raydium CPMM and a Meteora DLMM pool. Prices come
from reference USD prices, depth from a TVL per pool (SOL/USDC holds tens of millions of
dollars, JUP/BONK a few hundred thousand); the seed jitters both a little.
"""

import hashlib
import random
from dataclasses import dataclass
from fractions import Fraction

import base58

from ..tokens import Token, resolve
from . import cpmm, dlmm

REFERENCE_USD = {
    "WSOL": Fraction(150),
    "USDC": Fraction(1),
    "USDT": Fraction(1),
    "JUP": Fraction(8, 10),
    "BONK": Fraction(2, 100_000),
}
STABLES = {"USDC", "USDT"}


@dataclass(frozen=True)
class Listing:
    x: str  # token symbols; x is the pool's base token
    y: str
    raydium_tvl_usd: int
    meteora_tvl_usd: int
    bin_step: int  # bps between DLMM bins
    base_factor: int  # DLMM base fee = base_factor * bin_step * 10 per 1e9
    # Chosen so that the variable fee never rises by more than a bin's price step from one
    # bin to the next (at most 35 bins of accumulated volatility): output stays concave.
    variable_fee_control: int
    bins_each_side: int  # DLMM liquidity spans active +- this many bins


LISTINGS = (
    Listing("WSOL", "USDC", 40_000_000, 8_000_000, 10, 20_000, 40_000, 80),
    Listing("WSOL", "USDT", 8_000_000, 2_000_000, 10, 20_000, 40_000, 80),
    Listing("WSOL", "JUP", 3_000_000, 1_000_000, 25, 12_000, 6_400, 60),
    Listing("WSOL", "BONK", 5_000_000, 1_500_000, 80, 6_250, 625, 40),
    Listing("USDC", "USDT", 20_000_000, 10_000_000, 1, 8_000, 500_000, 30),
    Listing("JUP", "USDC", 5_000_000, 2_000_000, 20, 10_000, 10_000, 70),
    Listing("JUP", "USDT", 1_000_000, 400_000, 20, 10_000, 10_000, 70),
    Listing("BONK", "USDC", 4_000_000, 1_500_000, 80, 6_250, 625, 40),
    Listing("BONK", "USDT", 1_000_000, 300_000, 80, 6_250, 625, 40),
    Listing("JUP", "BONK", 300_000, 100_000, 100, 5_000, 400, 40),
)

# Background trades are at most this share of the pool's depth (CPMM reserves) or of its
# active bin (DLMM), so prices wander by fractions of a percent, not more.
CPMM_TRADE_SHARE = Fraction(1, 5_000)
DLMM_TRADE_SHARE = Fraction(1, 5)


@dataclass
class Pool:
    """A live pool inside the market. Only ``Market`` mutates it, under its lock."""

    venue: str
    pool_id: str
    mint_x: str
    mint_y: str
    state: dict
    slot: int  # background trades and arbitrage are applied up to this slot
    trade_x: int  # the largest background trade selling X (base units of X)
    trade_y: int  # ... and buying X (base units of Y)


def pool_id(venue: str, mint_x: str, mint_y: str) -> str:
    """A stable, address-like id (32 bytes in base58) for a venue's pool of a pair."""
    digest = hashlib.sha256(f"{venue}:{mint_x}:{mint_y}".encode()).digest()
    return base58.b58encode(digest).decode()


def reference_price(x: Token, y: Token, usd: dict) -> Fraction:
    """Base units of Y per base unit of X at the reference USD prices."""
    return (usd[x.symbol] / 10**x.decimals) / (usd[y.symbol] / 10**y.decimals)


def _units(usd: Fraction, token: Token, usd_price: Fraction) -> int:
    """How many base units of ``token`` are worth ``usd``."""
    return int(usd / usd_price * 10**token.decimals)


def _cpmm_pool(listing: Listing, x: Token, y: Token, usd: dict, tvl: Fraction, slot: int) -> Pool:
    state = cpmm.new_state(_units(tvl / 2, x, usd[x.symbol]), _units(tvl / 2, y, usd[y.symbol]))
    return Pool(
        venue="raydium",
        pool_id=pool_id("raydium", x.mint, y.mint),
        mint_x=x.mint,
        mint_y=y.mint,
        state=state,
        slot=slot,
        trade_x=int(state["reserve_x"] * CPMM_TRADE_SHARE),
        trade_y=int(state["reserve_y"] * CPMM_TRADE_SHARE),
    )


def _dlmm_pool(listing: Listing, x: Token, y: Token, usd: dict, tvl: Fraction, slot: int) -> Pool:
    price = reference_price(x, y, usd)
    step, reach = listing.bin_step, listing.bins_each_side
    # The bin nearest the reference, so the two venues' prices differ by less than the
    # fees and buying on one to sell on the other does not pay.
    active = dlmm.nearest_bin(step, price)
    value_y = _units(tvl, y, usd[y.symbol])  # the whole pool's value, in base units of Y
    weights = [reach + 1 - abs(d) for d in range(-reach, reach + 1)]  # a "curve" shape
    total_weight = sum(weights)
    bin_x, bin_y = [], []
    for d, weight in zip(range(-reach, reach + 1), weights, strict=True):
        value = value_y * weight // total_weight
        # Below the active bin: Y only; above: X only; the active bin holds both halves.
        in_y = value if d < 0 else value // 2 if d == 0 else 0
        bin_y.append(in_y)
        bin_x.append(((value - in_y) << 64) // dlmm.price_q64(step, active + d))
    state = dlmm.new_state(
        bin_step=step,
        base_factor=listing.base_factor,
        variable_fee_control=listing.variable_fee_control,
        active_id=active,
        min_bin_id=active - reach,
        bin_x=bin_x,
        bin_y=bin_y,
        slot=slot,
    )
    active_value = value_y * (reach + 1) // total_weight
    return Pool(
        venue="meteora",
        pool_id=pool_id("meteora", x.mint, y.mint),
        mint_x=x.mint,
        mint_y=y.mint,
        state=state,
        slot=slot,
        trade_x=int((active_value << 64) * DLMM_TRADE_SHARE) // dlmm.price_q64(step, active),
        trade_y=int(active_value * DLMM_TRADE_SHARE),
    )


def _jittered_usd(rng: random.Random) -> dict[str, Fraction]:
    usd = {}
    for symbol, price in REFERENCE_USD.items():
        jitter_bps = rng.randint(-10, 10) if symbol in STABLES else rng.randint(-200, 200)
        usd[symbol] = price * (10_000 + jitter_bps) / 10_000
    return usd


def reference_usd(seed: int) -> dict[str, Fraction]:
    """The seed's USD price per token: what the pools are built at, and the oracle's anchor."""
    return _jittered_usd(random.Random(f"{seed}:listing"))


def build_pools(seed: int, slot: int) -> list[Pool]:
    """Every listed pool on both venues; the same seed builds the same pools."""
    rng = random.Random(f"{seed}:listing")
    usd = _jittered_usd(rng)
    pools = []
    for listing in LISTINGS:
        x, y = resolve(listing.x), resolve(listing.y)
        for build, tvl in (
            (_cpmm_pool, listing.raydium_tvl_usd),
            (_dlmm_pool, listing.meteora_tvl_usd),
        ):
            depth = Fraction(tvl * rng.randint(75, 125), 100)
            pools.append(build(listing, x, y, usd, depth, slot))
    return pools
