"""Dynamic slippage: the tolerance a pair's recent history calls for, and the words for a
landing that went beyond it. Pure integer arithmetic; the samples are kept elsewhere.

A sample is the slippage one order met, in bps of its quoted output: positive when it got
less than quoted, negative when more. The tolerance covers the pair's bad tail (the 90th
percentile of what orders lost, with a quarter more as headroom) plus twice the recent
volatility (the root mean square of price moves, in bps), within ``[floor_bps, max_bps]``.
With fewer than ``MIN_SAMPLES`` samples there is too little to go on for going below
``default_bps``.
"""

from collections.abc import Sequence
from fractions import Fraction
from math import ceil, isqrt

from ..tokens import Token, to_ui
from .amm import BPS, ceil_div
from .snapshot import ratio_to_decimal

MIN_SAMPLES = 5
TAIL_PERCENTILE = 90
HEADROOM = Fraction(5, 4)
VOLATILITY_WEIGHT = 2


def auto_slippage_bps(
    samples: Sequence[int],
    price_moves_bps: Sequence[int] = (),
    *,
    max_bps: int = 300,
    floor_bps: int = 10,
    default_bps: int = 50,
) -> int:
    """The slippage (bps) to allow on a pair whose recent orders slipped by ``samples`` (bps)
    while its price moved by ``price_moves_bps`` between readings (bps, either sign)."""
    if not 0 <= floor_bps <= max_bps <= BPS:
        raise ValueError(f"need 0 <= floor_bps ({floor_bps}) <= max_bps ({max_bps}) <= {BPS}")
    lost = sorted(max(0, int(sample)) for sample in samples)
    tail = lost[ceil_div(len(lost) * TAIL_PERCENTILE, 100) - 1] if lost else 0
    need = ceil_div(tail * HEADROOM.numerator, HEADROOM.denominator)
    need += VOLATILITY_WEIGHT * rms_bps(price_moves_bps)
    if len(lost) < MIN_SAMPLES:
        need = max(need, default_bps)
    return min(max_bps, max(floor_bps, need))


def rms_bps(moves: Sequence[int]) -> int:
    """The root mean square of ``moves``, rounded up."""
    if not moves:
        return 0
    mean_square = ceil_div(sum(int(m) * int(m) for m in moves), len(moves))
    root = isqrt(mean_square)
    return root if root * root == mean_square else root + 1


def slippage_sample_bps(quoted_out: int, realized_out: int) -> int:
    """How many bps of the quoted output an order lost (negative: gained), rounded towards
    the loss, so a sample never understates it."""
    if quoted_out <= 0:
        raise ValueError("the quoted output must be positive")
    return ceil_div((quoted_out - realized_out) * BPS, quoted_out)


def price_move_bps(before: Fraction, after: Fraction) -> int:
    """A price's move in bps of where it was (either sign), rounded away from zero."""
    move = (after - before) * BPS / before
    return ceil(move) if move >= 0 else -ceil(-move)


def _amount(amount: int, token: Token | None) -> str:
    return f"{to_ui(amount, token)} {token.symbol}" if token is not None else str(amount)


def _bps_text(part: int, whole: int) -> str:
    """``part`` in bps of ``whole``, to two decimals at most ("61.5", "100")."""
    return format(ratio_to_decimal(Fraction(part * BPS, whole), 2).normalize(), "f")


def output_fell_message(
    quoted_out: int, realized_out: int, allowed_bps: int, token: Token | None = None
) -> str:
    """ "the output fell from X to Y (-Z bps), beyond the N bps allowed"."""
    verb, sign = ("fell", "-") if realized_out < quoted_out else ("rose", "+")
    moved = _bps_text(abs(quoted_out - realized_out), quoted_out)
    return (
        f"the output {verb} from {_amount(quoted_out, token)} to {_amount(realized_out, token)} "
        f"({sign}{moved} bps), beyond the {allowed_bps} bps allowed"
    )


def input_rose_message(
    planned_in: int, needed_in: int, max_in: int, token: Token | None = None
) -> str:
    """ "the input needed rose from X to Y (+Z bps), over maxIn M" (exact-output orders)."""
    moved = _bps_text(needed_in - planned_in, planned_in)
    return (
        f"the input needed rose from {_amount(planned_in, token)} to {_amount(needed_in, token)} "
        f"(+{moved} bps), over maxIn {_amount(max_in, token)}"
    )
