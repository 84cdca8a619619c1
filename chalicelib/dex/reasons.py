"""Why the router chose what it chose, in words: recorded with the route and logged."""

from collections.abc import Sequence
from fractions import Fraction

from ..tokens import by_mint
from .amm import BPS
from .hops import EXACT_IN, HopFill
from .snapshot import Quote, ratio_to_decimal


def bps(more: int, base: int) -> str:
    return f"{ratio_to_decimal(Fraction(more * BPS, base), 2)} bps" if base > 0 else "from nothing"


def _better(mode: str, amount: int, than: int) -> tuple[str, str]:
    """ "pays N more" (exact input) or "needs N less" (exact output), and by how many bps."""
    if mode == EXACT_IN:
        return f"pays {amount - than} more", bps(amount - than, than)
    return f"needs {than - amount} less", bps(than - amount, than)


def hop(fill: HopFill, legs: Sequence[Quote]) -> str:
    """Why this pool, or this split, for one hop."""
    return split(fill, legs) if len(legs) > 1 else single(fill)


def single(fill: HopFill) -> str:
    winner = fill.pools[fill.best].venue
    others = {venue: amount for venue, amount in fill.singles.items() if venue != winner}
    if not others:
        why = ", ".join(f"{venue}: {exc}" for venue, exc in fill.failures.items())
        return f"{winner} is the only venue that can fill ({why or 'no other venue'})"
    pick = max if fill.mode == EXACT_IN else min
    runner = pick(others, key=others.get)
    better, by = _better(fill.mode, fill.singles[winner], others[runner])
    more = "pays more" if fill.mode == EXACT_IN else "needs less"
    return f"{winner} {better} than {runner} ({by}); no split {more}"


def split(fill: HopFill, legs: Sequence[Quote]) -> str:
    total_in = sum(leg.in_amount for leg in legs)
    shares = " / ".join(
        f"{leg.venue} {ratio_to_decimal(Fraction(leg.in_amount * 100, total_in), 1)}%"
        for leg in legs
    )
    if fill.best is None:
        return f"split {shares}: no single venue can fill the order"
    amount = fill.out_amount if fill.mode == EXACT_IN else fill.in_amount
    better, by = _better(fill.mode, amount, fill.single_amount)
    return f"split {shares} {better} than {fill.pools[fill.best].venue} alone ({by})"


def path_label(intermediates: Sequence[str]) -> str:
    if not intermediates:
        return "direct"
    return "via " + ", ".join(by_mint(mint).symbol for mint in intermediates)


def path(mode: str, label: str, amount: int, others: dict[str, int], hop_reasons) -> str:
    """Why this path (direct, or via an intermediate token) over the others weighed."""
    if len(hop_reasons) == 1:
        told = hop_reasons[0]
    else:
        told = "; then ".join(hop_reasons)
        told = f"{label}: {told}"
    if not others:
        return told
    pick = max if mode == EXACT_IN else min
    runner = pick(others, key=others.get)
    better, by = _better(mode, amount, others[runner])
    return f"{told}; {better} than {runner} ({by})"
