"""A pool's state as one RPC read saw it, and the quotes computed from it (pure, no I/O)."""

import copy
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from . import cpmm, dlmm
from .amm import min_out
from .errors import DustAmount, NoRoute
from .oracle import OraclePrice, PairPrice, pair_price

# Each venue runs one pool model; both modules offer swap, settle, spot_price, marginal_rate.
AMMS = {"raydium": cpmm, "meteora": dlmm}
VENUES = tuple(AMMS)


def ratio_to_decimal(value: Fraction, places: int) -> Decimal:
    """Round a ratio half-up to ``places`` decimals, in integers (no float anywhere)."""
    scaled = value * 10**places
    rounded = (scaled.numerator * 2 + scaled.denominator) // (2 * scaled.denominator)
    return Decimal(rounded).scaleb(-places)


def price_impact(ideal: Fraction, out: int) -> Fraction:
    """How far the output falls short of the ``ideal`` one (the net input traded at the
    spot price), in [0, 1): the price moved by the trade itself; fees are not counted."""
    if ideal <= 0:
        return Fraction(0)
    return max(Fraction(0), 1 - out / ideal)


@dataclass(frozen=True)
class Quote:
    venue: str
    pool_id: str
    mint_in: str
    mint_out: str
    in_amount: int
    out_amount: int
    min_out: int
    fee: int  # base units of the input token
    price_impact_pct: Decimal
    slot: int
    expires_at_slot: int
    hop: int = 0  # 0-based: a two-hop route's second hop trades what its first one bought
    percent: Decimal | None = None  # of its hop's input; set by the router

    @property
    def fee_amount(self) -> int:
        return self.fee

    def to_dict(self) -> dict:
        return {
            "venue": self.venue,
            "poolId": self.pool_id,
            "mintIn": self.mint_in,
            "mintOut": self.mint_out,
            "inAmount": str(self.in_amount),
            "outAmount": str(self.out_amount),
            "minOut": str(self.min_out),
            "fee": str(self.fee),
            "priceImpactPct": str(self.price_impact_pct),
            "slot": self.slot,
            "expiresAtSlot": self.expires_at_slot,
            "hop": self.hop,
            "percent": None if self.percent is None else format(self.percent, "f"),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Quote":
        percent = d.get("percent")
        return cls(
            venue=d["venue"],
            pool_id=d["poolId"],
            mint_in=d["mintIn"],
            mint_out=d["mintOut"],
            in_amount=int(d["inAmount"]),
            out_amount=int(d["outAmount"]),
            min_out=int(d["minOut"]),
            fee=int(d["fee"]),
            price_impact_pct=Decimal(d["priceImpactPct"]),
            slot=int(d["slot"]),
            expires_at_slot=int(d["expiresAtSlot"]),
            hop=int(d.get("hop", 0)),
            percent=None if percent is None else Decimal(percent),
        )


@dataclass(frozen=True)
class PoolSnapshot:
    venue: str
    pool_id: str
    mint_x: str
    mint_y: str
    slot: int
    state: dict  # ints, and lists of ints (DLMM bins); never mutated
    oracle_x: OraclePrice | None = None  # the two tokens' price feeds, read with the pool
    oracle_y: OraclePrice | None = None

    @property
    def amm(self):
        try:
            return AMMS[self.venue]
        except KeyError:
            raise NoRoute(f"unknown venue {self.venue!r}") from None

    def x_to_y(self, mint_in: str) -> bool:
        if mint_in == self.mint_x:
            return True
        if mint_in == self.mint_y:
            return False
        raise NoRoute(f"pool {self.pool_id} does not trade {mint_in}")

    def mint_out(self, mint_in: str) -> str:
        return self.mint_y if self.x_to_y(mint_in) else self.mint_x

    def _quoter(self, mint_in: str):
        """The pool's per-direction quoter (``cpmm.Curve``, ``dlmm.BinPath``), made once per
        snapshot: the state never changes, so neither does what any amount buys."""
        x_to_y = self.x_to_y(mint_in)
        quoters = self.__dict__.setdefault("_quoters", {})  # not a field: eq and repr ignore it
        if x_to_y not in quoters:
            quoters.setdefault(x_to_y, self.amm.quoter(self.state, x_to_y))
        return quoters[x_to_y]

    def amount_out(self, mint_in: str, amount_in: int) -> int:
        """Just the output amount: what the router calls in its search."""
        if amount_in <= 0:
            raise DustAmount("amount must be positive", amount_in=amount_in)
        return self._quoter(mint_in).amount_out(amount_in)

    def amount_in_for(self, mint_in: str, amount_out: int) -> int:
        """The least input of ``mint_in`` that buys at least ``amount_out``."""
        if amount_out <= 0:
            raise DustAmount("amount must be positive", amount_out=amount_out)
        return self._quoter(mint_in).amount_in(amount_out)

    def ideal_out(self, mint_in: str, net_in: int) -> Fraction:
        """What ``net_in`` (after fees) would buy at the spot price, were there no impact."""
        spot = self.amm.spot_price(self.state)
        return net_in * spot if self.x_to_y(mint_in) else net_in / spot

    def oracle_price(self, mint_in: str) -> PairPrice | None:
        """The oracle's rate of ``mint_in`` in the other token, if the feeds were read."""
        if self.oracle_x is None or self.oracle_y is None:
            return None
        if self.x_to_y(mint_in):
            return pair_price(self.oracle_x, self.oracle_y)
        return pair_price(self.oracle_y, self.oracle_x)

    def marginal_rate(self, mint_in: str, after: int = 0) -> Fraction:
        """Output per unit of input for the next sliver, once ``after`` has been swapped."""
        x_to_y, state = self.x_to_y(mint_in), self.state
        if after:
            state = self.amm.swap(state, x_to_y, after, self.slot).state
            return self.amm.marginal_rate(state, x_to_y)
        first = self.__dict__.setdefault("_first_rates", {})  # the state never changes
        if x_to_y not in first:
            first[x_to_y] = self.amm.marginal_rate(state, x_to_y)
        return first[x_to_y]

    def quote(self, mint_in: str, amount_in: int, slippage_bps: int, valid_slots: int) -> Quote:
        if amount_in <= 0:
            raise DustAmount("amount must be positive", amount_in=amount_in)
        x_to_y = self.x_to_y(mint_in)
        swap = self.amm.swap(self.state, x_to_y, amount_in, self.slot)
        impact = price_impact(self.ideal_out(mint_in, amount_in - swap.fee), swap.amount_out)
        return Quote(
            venue=self.venue,
            pool_id=self.pool_id,
            mint_in=mint_in,
            mint_out=self.mint_y if x_to_y else self.mint_x,
            in_amount=amount_in,
            out_amount=swap.amount_out,
            min_out=min_out(swap.amount_out, slippage_bps),
            fee=swap.fee,
            price_impact_pct=ratio_to_decimal(impact * 100, 6),
            slot=self.slot,
            expires_at_slot=self.slot + valid_slots,
        )

    def quote_exact_out(self, mint_in: str, amount_out: int, valid_slots: int) -> Quote:
        """What buying exactly ``amount_out`` costs: the least input, rounded up, checked
        against the exact-input math. Its ``min_out`` is ``amount_out``: nothing less fills."""
        x_to_y = self.x_to_y(mint_in)
        amount_in = self.amount_in_for(mint_in, amount_out)
        swap = self.amm.swap(self.state, x_to_y, amount_in, self.slot)
        if swap.amount_out < amount_out:  # the inverse math is wrong: never quote that
            raise ArithmeticError(
                f"{self.pool_id}: {amount_in} buys {swap.amount_out}, not {amount_out}"
            )
        impact = price_impact(self.ideal_out(mint_in, amount_in - swap.fee), amount_out)
        return Quote(
            venue=self.venue,
            pool_id=self.pool_id,
            mint_in=mint_in,
            mint_out=self.mint_out(mint_in),
            in_amount=amount_in,
            out_amount=amount_out,
            min_out=amount_out,
            fee=swap.fee,
            price_impact_pct=ratio_to_decimal(impact * 100, 6),
            slot=self.slot,
            expires_at_slot=self.slot + valid_slots,
        )

    def to_dict(self) -> dict:
        return {
            "venue": self.venue,
            "poolId": self.pool_id,
            "mintX": self.mint_x,
            "mintY": self.mint_y,
            "slot": self.slot,
            "state": copy.deepcopy(self.state),
            "oracle": [o.to_dict() for o in (self.oracle_x, self.oracle_y) if o is not None],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PoolSnapshot":
        feeds = [OraclePrice.from_dict(o) for o in d.get("oracle", ())]
        oracle_x, oracle_y = feeds if len(feeds) == 2 else (None, None)
        return cls(
            venue=d["venue"],
            pool_id=d["poolId"],
            mint_x=d["mintX"],
            mint_y=d["mintY"],
            slot=int(d["slot"]),
            state=copy.deepcopy(d["state"]),
            oracle_x=oracle_x,
            oracle_y=oracle_y,
        )
