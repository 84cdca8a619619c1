"""A chosen route: its legs, hop by hop, and what it promises; stored as JSON with the order.

Legs are ordered by hop. A one-hop route trades ``token_in`` for ``token_out`` directly (on
one pool, or split); a two-hop route buys an intermediate token first and sells what that
bought. All legs execute in one transaction. ``min_out`` binds the final output only; an
exact-output route delivers exactly ``out_amount`` and spends at most ``max_in``.
"""

from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

from ..tokens import WSOL_MINT, Token
from .hops import EXACT_IN, EXACT_OUT
from .snapshot import Quote, ratio_to_decimal

__all__ = ["EXACT_IN", "EXACT_OUT", "Route", "steps_for"]


@dataclass(frozen=True)
class Route:
    kind: str  # "single" | "split" | "multihop" | "multihop_split"
    legs: tuple[Quote, ...]
    in_amount: int
    out_amount: int
    min_out: int
    slippage_bps: int
    # wrap / swap... / unwrap, as a transaction would do them (amounts as strings)
    steps: tuple[dict, ...]
    reason: str
    # venue -> its best single quote of the direct pair (venues that could fill): the output
    # it pays (ExactIn) or the input it needs (ExactOut)
    considered: dict
    price_impact_pct: Decimal = Decimal(0)  # of the whole route, fees aside
    oracle_price: Decimal | None = None  # UI units out per UI unit in, when the oracle was read
    oracle_deviation_pct: Decimal | None = None  # the route's price from it, beyond confidence
    swap_mode: str = EXACT_IN
    max_in: int | None = None  # ExactOut: the most the landing may spend (otherAmountThreshold)
    # every path the router weighed ("direct", "via USDC", ...) -> its output (ExactIn) or
    # input (ExactOut); empty for routes of ``best_route``, which weighs the direct one only
    paths: dict = field(default_factory=dict)

    @property
    def hops(self) -> int:
        return 1 + max(leg.hop for leg in self.legs)

    def hop_legs(self, hop: int) -> tuple[Quote, ...]:
        return tuple(leg for leg in self.legs if leg.hop == hop)

    @property
    def mint_in(self) -> str:
        return self.hop_legs(0)[0].mint_in

    @property
    def mint_out(self) -> str:
        return self.hop_legs(self.hops - 1)[0].mint_out

    @property
    def intermediate_mints(self) -> tuple[str, ...]:
        return tuple(self.hop_legs(hop)[0].mint_in for hop in range(1, self.hops))

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "legs": [leg.to_dict() for leg in self.legs],
            "inAmount": str(self.in_amount),
            "outAmount": str(self.out_amount),
            "minOut": str(self.min_out),
            "slippageBps": self.slippage_bps,
            "steps": [dict(step) for step in self.steps],
            "reason": self.reason,
            "considered": {venue: str(out) for venue, out in self.considered.items()},
            "priceImpactPct": str(self.price_impact_pct),
            "oraclePrice": _text(self.oracle_price),
            "oracleDeviationPct": _text(self.oracle_deviation_pct),
            "swapMode": self.swap_mode,
            "maxIn": None if self.max_in is None else str(self.max_in),
            "paths": {path: str(amount) for path, amount in self.paths.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Route":
        """Also reads routes stored before multi-hop: one hop, exact input, no percents."""
        max_in = d.get("maxIn")
        return cls(
            kind=d["kind"],
            legs=_with_percents(tuple(Quote.from_dict(leg) for leg in d["legs"])),
            in_amount=int(d["inAmount"]),
            out_amount=int(d["outAmount"]),
            min_out=int(d["minOut"]),
            slippage_bps=int(d["slippageBps"]),
            steps=tuple(dict(step) for step in d["steps"]),
            reason=d["reason"],
            considered={venue: int(out) for venue, out in d["considered"].items()},
            price_impact_pct=Decimal(d.get("priceImpactPct", 0)),
            oracle_price=_decimal(d.get("oraclePrice")),
            oracle_deviation_pct=_decimal(d.get("oracleDeviationPct")),
            swap_mode=d.get("swapMode", EXACT_IN),
            max_in=None if max_in is None else int(max_in),
            paths={path: int(amount) for path, amount in d.get("paths", {}).items()},
        )


def _with_percents(legs: tuple[Quote, ...]) -> tuple[Quote, ...]:
    """Legs stored without their share of the hop's input get it."""
    if all(leg.percent is not None for leg in legs):
        return legs
    totals: dict[int, int] = {}
    for leg in legs:
        totals[leg.hop] = totals.get(leg.hop, 0) + leg.in_amount
    return tuple(
        leg
        if leg.percent is not None
        else replace(leg, percent=_percent(leg.in_amount, totals[leg.hop]))
        for leg in legs
    )


def _percent(part: int, whole: int) -> Decimal:
    return ratio_to_decimal(Fraction(part * 100, whole or 1), 2)


def steps_for(
    legs: tuple[Quote, ...],
    token_in: Token,
    token_out: Token,
    amount_in: int,
    amount_out: int,
    max_in: int | None = None,
) -> tuple[dict, ...]:
    """The transaction's steps: wrap native SOL in, every swap in hop order, unwrap native
    SOL out. An intermediate SOL stays wrapped between the hops. An exact-output route
    wraps the most it may spend and unwraps what the swaps left of it."""
    steps = []
    if token_in.native:
        wrapped = amount_in if max_in is None else max_in
        steps.append({"type": "wrap", "mint": WSOL_MINT, "amount": str(wrapped)})
    steps.extend(
        {
            "type": "swap",
            "venue": leg.venue,
            "poolId": leg.pool_id,
            "inAmount": str(leg.in_amount),
            "outAmount": str(leg.out_amount),
            "hop": leg.hop,
        }
        for leg in sorted(legs, key=lambda leg: leg.hop)
    )
    if token_in.native and max_in is not None:
        steps.append({"type": "unwrap", "mint": WSOL_MINT, "amount": str(max_in - amount_in)})
    if token_out.native:
        steps.append({"type": "unwrap", "mint": WSOL_MINT, "amount": str(amount_out)})
    return tuple(steps)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)
