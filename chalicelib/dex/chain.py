"""Solana's fee market, simulated: congestion, priority fees, and when a transaction lands.

Time runs in slots. Each slot has a demand for block space, in per-mille of what a block
holds: smooth waves (waypoints a minute apart, and slower ones ten minutes apart, joined by
straight lines) plus per-slot noise, and now and then a burst of congestion lasting tens of
slots. It is a function of (seed, slot) alone, in integers, like the oracle.

Each slot's priority fees (micro-lamports per compute unit, as ``getRecentPrioritizationFees``
reports them) are a ladder of percentiles that climbs with the square of demand. A
transaction's fee ranks somewhere on a slot's ladder; a block has room for the top
``1000 / demand`` of what wants in, and the further above that line a fee ranks the likelier
the transaction lands in that slot (never certain, never hopeless). A transaction not landed
before its blockhash expires (150 slots) is dropped: ``BlockhashExpired``, worth a retry.

Fees are integers: ``5000`` lamports per signature plus ``ceil(cu_limit * price / 1e6)``.
"""

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .amm import ceil_div
from .errors import BlockhashExpired

MICRO_LAMPORTS_PER_LAMPORT = 1_000_000
BASE_FEE_LAMPORTS = 5_000  # per signature; a swap has one
BLOCKHASH_VALID_SLOTS = 150
MAX_COMPUTE_UNITS = 1_400_000  # what one transaction may ask for
DEFAULT_MAX_LAMPORTS = 5_000_000  # the most an "auto" priority fee spends: 0.005 SOL

# Compute units: what the transaction does besides swapping (compute-budget and router
# instructions), each hop's routing, each leg's swap by venue, wrapping and unwrapping SOL;
# the limit asked for is their sum plus a tenth, as after a simulation.
CU_BASE = 30_000
CU_PER_HOP = 10_000
CU_PER_LEG = {"raydium": 60_000, "meteora": 90_000}
CU_UNKNOWN_VENUE = 100_000
CU_WRAP = 12_000
CU_UNWRAP = 6_000
CU_MARGIN = (11, 10)

# Demand, in per-mille of a block's room.
WAVE_SLOTS, WAVE_RANGE = 150, (450, 1_050)
SWELL_SLOTS, SWELL_RANGE = 1_500, (-150, 250)
NOISE = 120
BURST_WINDOW = 300  # each window of slots holds a burst with probability 1/BURST_ODDS
BURST_ODDS = 3
BURST_SLOTS, BURST_EXTRA = (10, 60), (700, 2_000)
MIN_DEMAND = 100

# A slot's fee ladder at a demand of exactly one block (micro-lamports per CU), scaled by
# ``(demand / 1000) ** 2`` and jittered by up to a fifth either way.
PERCENTILES = (25, 50, 75, 90, 95, 99)
LADDER_AT_CAPACITY = (2_000, 20_000, 100_000, 400_000, 1_000_000, 5_000_000)

# Landing: the chance (per mille) in a slot for a fee ranked exactly at the block's line;
# each per-mille of rank above (or below) it adds (or takes) ``LANDING_SLOPE``.
LANDING_AT_LINE, LANDING_SLOPE = 250, 3
LANDING_RANGE = (3, 950)

TARGET_SLOTS = 3  # "auto": the lowest fee expected to land within this many slots
RECENT_SLOTS = 20  # what the estimate looks back over
RETRY_STEP = 150  # each retry asks the estimate for this much more landing chance (per mille)
RETRY_RAISE = (3, 2)  # ... and at least this times the previous attempt's fee


@dataclass(frozen=True)
class FeeLevels:
    """Priority fees paid in a slot, or over recent slots: micro-lamports per CU."""

    slot: int  # the (last) slot they were read at
    demand_pm: int  # demand for block space, per mille of a block
    p25: int
    p50: int
    p75: int
    p90: int
    p95: int
    p99: int

    @property
    def ladder(self) -> tuple[int, ...]:
        return (self.p25, self.p50, self.p75, self.p90, self.p95, self.p99)

    def rank_pm(self, micro_lamports_per_cu: int) -> int:
        """Where a fee ranks among the slot's, per mille: straight lines between the
        percentiles, from 0 for no fee to 1000 at twice the 99th percentile."""
        points = [(0, 0)] + [(p * 10, fee) for p, fee in zip(PERCENTILES, self.ladder, strict=True)]
        points.append((1_000, 2 * self.p99))
        fee = micro_lamports_per_cu
        if fee >= points[-1][1]:
            return 1_000
        for (rank_lo, fee_lo), (rank_hi, fee_hi) in zip(points, points[1:], strict=False):
            if fee < fee_hi:
                return rank_lo + (rank_hi - rank_lo) * (fee - fee_lo) // (fee_hi - fee_lo)
        return 1_000

    def to_dict(self) -> dict:
        return {
            "slot": self.slot,
            "demandPm": self.demand_pm,
            **{f"p{p}": fee for p, fee in zip(PERCENTILES, self.ladder, strict=True)},
        }


@dataclass(frozen=True)
class PriorityFee:
    compute_units: int  # the compute-unit limit asked for
    micro_lamports_per_cu: int

    @property
    def priority_lamports(self) -> int:
        return ceil_div(self.compute_units * self.micro_lamports_per_cu, MICRO_LAMPORTS_PER_LAMPORT)

    @property
    def lamports(self) -> int:
        """What the transaction pays: the base fee and the priority fee."""
        return BASE_FEE_LAMPORTS + self.priority_lamports

    def to_dict(self) -> dict:
        return {
            "computeUnitLimit": self.compute_units,
            "computeUnitPriceMicroLamports": self.micro_lamports_per_cu,
            "priorityLamports": str(self.priority_lamports),
            "lamports": str(self.lamports),
        }


@dataclass(frozen=True)
class FeeEstimate:
    fee: PriorityFee
    landing_chance_pm: int  # per slot, as recent slots predict
    expected_slots: int  # to land, rounded up
    capped: bool  # the cap held the fee below what the target asked

    def to_dict(self) -> dict:
        return {
            **self.fee.to_dict(),
            "landingChancePm": self.landing_chance_pm,
            "expectedSlots": self.expected_slots,
            "capped": self.capped,
        }


@dataclass(frozen=True)
class Landing:
    """Where a sent transaction landed."""

    sent_slot: int
    landed_slot: int  # dropped: the slot its blockhash expires at
    fee: PriorityFee
    slot_ms: int
    dropped: bool = False  # not landed before its blockhash expired

    @property
    def slots(self) -> int:
        return self.landed_slot - self.sent_slot

    @property
    def delay_s(self) -> float:  # a duration, not money
        return self.slots * self.slot_ms / 1000


def compute_units(route) -> int:
    """The compute-unit limit for a route's transaction: its legs, hops and SOL wrapping."""
    steps = [step["type"] for step in route.steps]
    units = CU_BASE + CU_PER_HOP * route.hops
    units += sum(CU_PER_LEG.get(leg.venue, CU_UNKNOWN_VENUE) for leg in route.legs)
    units += CU_WRAP * steps.count("wrap") + CU_UNWRAP * steps.count("unwrap")
    return min(MAX_COMPUTE_UNITS, ceil_div(units * CU_MARGIN[0], CU_MARGIN[1]))


def landing_chance_pm(levels: FeeLevels, micro_lamports_per_cu: int) -> int:
    """The chance (per mille) that a transaction paying this fee lands in a slot like
    ``levels``: how far its fee ranks above the line of what the block has room for."""
    room_pm = min(1_000, 1_000_000 // max(levels.demand_pm, 1))
    line = 1_000 - room_pm
    chance = LANDING_AT_LINE + (levels.rank_pm(micro_lamports_per_cu) - line) * LANDING_SLOPE
    return min(LANDING_RANGE[1], max(LANDING_RANGE[0], chance))


def expected_slots(chance_pm: int) -> int:
    """Slots until a landing at ``chance_pm`` per slot, on average (rounded up)."""
    return ceil_div(1_000, chance_pm)


def _draws(key: str, ranges: Sequence[tuple[int, int]]) -> list[int]:
    """One integer in each ``(low, high)`` range (inclusive), a function of ``key`` alone:
    eight bytes of a hash per draw, far cheaper than seeding a ``Random`` per slot."""
    digest = hashlib.blake2b(key.encode(), digest_size=8 * len(ranges)).digest()
    return [
        low + int.from_bytes(digest[8 * i : 8 * i + 8], "big") % (high - low + 1)
        for i, (low, high) in enumerate(ranges)
    ]


def _median(values: Sequence[int]) -> int:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


class Chain:
    def __init__(self, seed: int, slot_ms: int = 400):
        self.seed = seed
        self.slot_ms = slot_ms
        self.demand_pm = lru_cache(maxsize=8192)(self._demand_pm)
        self.fees = lru_cache(maxsize=8192)(self._fees)
        self._waypoint = lru_cache(maxsize=1024)(self._draw_waypoint)
        self._burst = lru_cache(maxsize=1024)(self._draw_burst)

    def _draw_waypoint(self, kind: str, knot: int) -> int:
        low, high = WAVE_RANGE if kind == "wave" else SWELL_RANGE
        return random.Random(f"{self.seed}:chain:{kind}:{knot}").randint(low, high)

    def _wave(self, kind: str, period: int, slot: int) -> int:
        knot, into = divmod(slot, period)
        start, end = self._waypoint(kind, knot), self._waypoint(kind, knot + 1)
        return start + (end - start) * into // period

    def _draw_burst(self, window: int) -> tuple[int, int, int] | None:
        """(first slot, last slot, extra demand) of the window's burst, if it has one."""
        rng = random.Random(f"{self.seed}:chain:burst:{window}")
        starts, length = rng.randrange(BURST_WINDOW), rng.randint(*BURST_SLOTS)
        extra, happens = rng.randint(*BURST_EXTRA), rng.randrange(BURST_ODDS) == 0
        if not happens:
            return None
        first = window * BURST_WINDOW + starts
        return first, first + length - 1, extra

    def _bursting(self, slot: int) -> int:
        """Extra demand from bursts under way at ``slot`` (one may spill into the next window)."""
        window = slot // BURST_WINDOW
        extra = 0
        for burst in (self._burst(window - 1), self._burst(window)):
            if burst is not None and burst[0] <= slot <= burst[1]:
                extra += burst[2]
        return extra

    def _demand_pm(self, slot: int) -> int:
        (noise,) = _draws(f"{self.seed}:chain:noise:{slot}", [(-NOISE, NOISE)])
        demand = self._wave("wave", WAVE_SLOTS, slot) + self._wave("swell", SWELL_SLOTS, slot)
        return max(MIN_DEMAND, demand + noise + self._bursting(slot))

    def _fees(self, slot: int) -> FeeLevels:
        demand = self.demand_pm(slot)
        jitter = _draws(f"{self.seed}:chain:fees:{slot}", [(80, 120)] * len(LADDER_AT_CAPACITY))
        ladder, floor = [], 0
        for base, percent in zip(LADDER_AT_CAPACITY, jitter, strict=True):
            fee = base * demand * demand // 1_000_000 * percent // 100
            floor = max(fee, floor + 1)  # percentiles never go down the ladder
            ladder.append(floor)
        return FeeLevels(slot, demand, *ladder)

    def recent_fees(self, slot: int, n: int = RECENT_SLOTS) -> FeeLevels:
        """The last ``n`` slots up to ``slot``: each percentile's median over them, and
        their median demand."""
        window = [self.fees(s) for s in range(slot - n + 1, slot + 1)]
        ladder = [_median([levels.ladder[i] for levels in window]) for i in range(len(PERCENTILES))]
        return FeeLevels(slot, _median([levels.demand_pm for levels in window]), *ladder)

    def chance_pm(self, micro_lamports_per_cu: int, slot: int) -> int:
        """The chance that a transaction paying this lands in ``slot`` (per mille)."""
        return landing_chance_pm(self.fees(slot), micro_lamports_per_cu)

    def estimate(
        self,
        route,
        slot: int,
        attempt: int = 1,
        max_lamports: int = DEFAULT_MAX_LAMPORTS,
        target_slots: int = TARGET_SLOTS,
    ) -> FeeEstimate:
        """The "auto" priority fee for ``route`` sent at ``slot``: the lowest that recent
        slots say lands within ``target_slots``, its priority part at most ``max_lamports``.
        Each retry (``attempt`` > 1) asks for a better chance and at least half as much
        again as the attempt before, within the cap."""
        units = compute_units(route)
        recent = self.recent_fees(slot)
        cap = max_lamports * MICRO_LAMPORTS_PER_LAMPORT // units
        price, wanted = 0, 0
        for k in range(1, attempt + 1):
            wanted = min(LANDING_RANGE[1], ceil_div(1_000, target_slots) + (k - 1) * RETRY_STEP)
            lowest = _lowest_fee(recent, wanted, cap)
            raised = price * RETRY_RAISE[0] // RETRY_RAISE[1] if k > 1 else 0
            floor = recent.p25 if k > 1 else 0  # a retry never stays at no fee at all
            price = min(cap, max(lowest, raised, floor))
        chance = landing_chance_pm(recent, price)
        return FeeEstimate(
            fee=PriorityFee(units, price),
            landing_chance_pm=chance,
            expected_slots=expected_slots(chance),
            capped=chance < wanted,
        )

    def land_slot(self, sent_slot: int, fee: PriorityFee, rng: random.Random) -> int:
        """The slot a transaction sent at ``sent_slot`` lands in: one draw from ``rng`` per
        slot, against that slot's chance. ``BlockhashExpired`` if it has not landed once its
        blockhash is ``BLOCKHASH_VALID_SLOTS`` old."""
        price = fee.micro_lamports_per_cu
        for slot in range(sent_slot + 1, sent_slot + BLOCKHASH_VALID_SLOTS + 1):
            if rng.randrange(1_000) < self.chance_pm(price, slot):
                return slot
        raise BlockhashExpired(
            f"not landed in {BLOCKHASH_VALID_SLOTS} slots at {price} micro-lamports per CU: "
            "the blockhash expired",
            sent_slot=sent_slot,
            micro_lamports_per_cu=price,
        )


def _lowest_fee(levels: FeeLevels, wanted_pm: int, cap: int) -> int:
    """The lowest fee (micro-lamports per CU, at most ``cap``) whose landing chance in a
    slot like ``levels`` reaches ``wanted_pm``; ``cap`` if none does."""
    if landing_chance_pm(levels, 0) >= wanted_pm:
        return 0
    low, high = 0, cap  # chance(low) < wanted; the chance only grows with the fee
    if landing_chance_pm(levels, high) < wanted_pm:
        return cap
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if landing_chance_pm(levels, mid) >= wanted_pm else (mid, high)
    return high
