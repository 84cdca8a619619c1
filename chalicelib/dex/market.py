"""The simulated venues: live pools that drift, an oracle, latency, failures and atomic
execution.

Drift is other people trading: at every slot each pool sees ``drift_trades_per_slot``
background trades drawn from ``Random(f"{seed}:{pool_id}:{slot}")``, leaning towards the
oracle's price so prices wander without running away; the oracle itself wanders while the
market drifts. Arbitrage then pulls every pool towards the oracle (``arbitrage.py``), so the
impact of any trade, ours included, decays with ``arb_half_life_slots``. Pools catch up
lazily when they are read or traded: slot by slot over the last ``MAX_CATCH_UP_SLOTS``, and
the arbitrage of the slots before that in one step. With neither background trades nor
arbitrage the market is frozen between our own trades (not even DLMM fees decay), so what
executes is exactly what was quoted.
"""

import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Protocol

from ..config import MarketSettings, NewListing
from ..tokens import Token, by_mint, list_token, resolve
from . import arbitrage, cpmm
from .amm import ceil_div
from .chain import (
    BLOCKHASH_VALID_SLOTS,
    DEFAULT_MAX_LAMPORTS,
    MICRO_LAMPORTS_PER_LAMPORT,
    RETRY_RAISE,
    Chain,
    Landing,
    PriorityFee,
)
from .errors import (
    BlockhashExpired,
    InsufficientLiquidity,
    NoRoute,
    QuoteExpired,
    VenueTimeout,
)
from .faults import Faults
from .hops import EXACT_OUT
from .listing import Pool, build_pools, pool_id, reference_usd
from .oracle import Oracle
from .snapshot import AMMS, PoolSnapshot
from .staged import StagedFills


class ListedState(Protocol):
    """Where the state of newly listed pools is shared between processes (a landing on one
    reads it, swaps and writes it back under its lock)."""

    def load(self, pool_id: str) -> dict | None: ...

    def save(self, pool_id: str, state: dict) -> None: ...

    def locked(self, pool_ids: list[str]) -> AbstractContextManager[None]: ...


MAX_CATCH_UP_SLOTS = 64
# A pool 0.5 % above its reference price sees 90 % of background trades selling into it.
MEAN_REVERSION = 80


@dataclass(frozen=True)
class Execution:
    amount_out: int
    executed_price: Decimal  # UI units of token_out per UI unit of token_in
    amount_in: int | None = None  # what was spent: the route's input, or an ExactOut's need


def executed_price(mint_in: str, amount_in: int, mint_out: str, amount_out: int) -> Decimal:
    decimals_in, decimals_out = by_mint(mint_in).decimals, by_mint(mint_out).decimals
    with localcontext() as ctx:
        ctx.prec = 18
        return Decimal(amount_out).scaleb(decimals_in - decimals_out) / Decimal(amount_in)


class Market:
    def __init__(
        self,
        seed: int,
        settings: MarketSettings,
        clock: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        listed_state: ListedState | None = None,
    ):
        self.seed = seed
        # Where the state of newly listed pools is shared between processes (None: this
        # market's own copy only, as in a single process).
        self._listed_state = listed_state
        self.settings = settings
        self._clock = clock or (lambda: time.time_ns() // 1_000_000 // settings.slot_ms)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._latency = random.Random(f"{seed}:latency")  # when no Faults are given
        self._landing = random.Random(f"{seed}:landing")  # ditto
        self.chain = Chain(seed, settings.slot_ms)  # the congestion model
        wander = settings.oracle_wander_bps if settings.drift_trades_per_slot else 0
        self.oracle = Oracle(seed, reference_usd(seed), wander)
        pools = build_pools(seed, self._clock())
        self._pools = {p.pool_id: p for p in pools}
        self._by_pair = {(p.venue, frozenset((p.mint_x, p.mint_y))): p for p in pools}
        self._live_from: dict[str, int] = {}  # pools of tokens listed later: their first slot
        for listing in settings.listings:
            self.list_pool(listing)

    def list_pool(self, listing: NewListing) -> Pool:
        """A new token's Raydium pool, trading from ``listing.slot`` on. It has no oracle
        feed, so no background trades or arbitrage: only orders move it."""
        token = list_token(Token(listing.symbol, listing.mint, listing.decimals))
        quote = resolve(listing.quote)
        pool = Pool(
            venue="raydium",
            pool_id=pool_id("raydium", token.mint, quote.mint),
            mint_x=token.mint,
            mint_y=quote.mint,
            state=cpmm.new_state(listing.reserve, listing.quote_reserve),
            slot=listing.slot,
            trade_x=0,
            trade_y=0,
        )
        with self._lock:
            self._pools[pool.pool_id] = pool
            self._by_pair[(pool.venue, frozenset((pool.mint_x, pool.mint_y)))] = pool
            self._live_from[pool.pool_id] = listing.slot
        return pool

    def _check_live(self, pool: Pool) -> None:
        live_from = self._live_from.get(pool.pool_id)
        if live_from is not None and self.current_slot() < live_from:
            raise NoRoute(f"pool {pool.pool_id} trades from slot {live_from}")

    def current_slot(self) -> int:
        return self._clock()

    def snapshot(
        self,
        venue: str,
        token_in: Token,
        token_out: Token,
        faults: Faults | None = None,
        *,
        timeout_per_pool: bool = False,
    ) -> PoolSnapshot:
        """The simulated RPC read of a pool: latency, maybe a timeout, then its state.
        ``timeout_per_pool``: the timeout is drawn from the pool's own stream, not the
        venue's (for ``router.plan``, which reads several pools of a venue concurrently)."""
        pool = self._by_pair.get((venue, frozenset((token_in.mint, token_out.mint))))
        if pool is None or token_in.mint == token_out.mint:
            raise NoRoute(f"{venue} has no {token_in.symbol}/{token_out.symbol} pool")
        self._check_live(pool)
        if self.settings.quote_latency_ms:
            self._sleep(self.settings.quote_latency_ms / 1000)
        if faults is not None and faults.venue_times_out(
            venue, pool.pool_id if timeout_per_pool else None
        ):
            raise VenueTimeout(f"{venue} did not answer in time", venue=venue)
        self._load_listed([pool])
        with self._lock:
            now = self.current_slot()
            self._catch_up(pool, now)
            state = {k: list(v) if isinstance(v, list) else v for k, v in pool.state.items()}
        oracle_x = oracle_y = None
        if pool.pool_id not in self._live_from:  # a new listing has no feed yet
            oracle_x = self.oracle.read(pool.mint_x, now)
            oracle_y = self.oracle.read(pool.mint_y, now)
        return PoolSnapshot(
            venue, pool.pool_id, pool.mint_x, pool.mint_y, now, state, oracle_x, oracle_y
        )

    def execute(self, route, faults: Faults | None = None) -> Execution:
        """Submit a route and wait for it to land: ``submit``, the landing delay, ``land``."""
        self.submit(route)
        self._sleep(self.landing_delay_s(faults))
        return self.land(route, faults)

    def submit(self, route) -> None:
        """Check a route can be sent: its quotes must not have expired."""
        for leg in route.legs:
            self._pool_for(leg)
        submitted = self.current_slot()
        expiry = min(leg.expires_at_slot for leg in route.legs)
        if submitted > expiry:
            raise QuoteExpired("the quote expired before submission", slot=submitted, expiry=expiry)

    def land(self, route, faults: Faults | None = None) -> Execution:
        """The sent transaction lands: every leg of every hop fills on the live pools, or
        none does. (Background trades and arbitrage of the slots that passed apply either
        way: that is the market.) A blockhash that expired before landing fails it."""
        pools = [self._pool_for(leg) for leg in route.legs]
        if faults is not None and faults.blockhash_expires():
            raise BlockhashExpired("the transaction's blockhash expired before it landed")
        listed = [p.pool_id for p in pools if p.pool_id in self._live_from]
        held = self._listed_state.locked(listed) if self._listed_state and listed else nullcontext()
        with held:  # no other process lands on a listed pool between our read and our write
            self._load_listed(pools)
            amount_in, amount_out = self._land_on(route, pools)
            for pool in pools:
                if pool.pool_id in listed and self._listed_state:
                    self._listed_state.save(pool.pool_id, pool.state)
        return Execution(
            amount_out=amount_out,
            executed_price=executed_price(route.mint_in, amount_in, route.mint_out, amount_out),
            amount_in=amount_in,
        )

    def _land_on(self, route, pools: list[Pool]) -> tuple[int, int]:
        """Fill every leg on the pools, or none; (input spent, output)."""
        with self._lock:
            now = self.current_slot()
            for pool in pools:
                self._catch_up(pool, now)
            fills = StagedFills(route, pools, now)  # committed only if every leg fills
            if route.swap_mode == EXACT_OUT:
                amount_in, amount_out = fills.exact_out(), route.out_amount
            else:
                amount_in, amount_out = route.in_amount, fills.exact_in()
            for pool in pools:
                pool.state = fills.states[pool.pool_id]
        return amount_in, amount_out

    def _load_listed(self, pools: list[Pool]) -> None:
        """Read the shared state of the listed pools among ``pools`` (landed elsewhere)."""
        if self._listed_state is None:
            return
        for pool in pools:
            if pool.pool_id in self._live_from:
                state = self._listed_state.load(pool.pool_id)
                if state is not None:
                    with self._lock:
                        pool.state = state

    def _pool_for(self, leg) -> Pool:
        pool = self._pools.get(leg.pool_id)
        if pool is None or leg.mint_in not in (pool.mint_x, pool.mint_y):
            raise NoRoute(f"no pool {leg.pool_id} trading {leg.mint_in}")
        self._check_live(pool)
        return pool

    def landing_delay_s(self, faults: Faults | None) -> float:
        """How long a sent transaction takes to land (the latency model)."""
        if faults is not None:
            return faults.exec_latency_s()
        low, high = self.settings.exec_latency_min_ms, self.settings.exec_latency_max_ms
        with self._lock:
            return self._latency.uniform(low, high) / 1000

    def landing(
        self, route, fee: PriorityFee | None = None, faults: Faults | None = None, attempt: int = 1
    ) -> Landing:
        """When a transaction for ``route`` sent now lands under the congestion model (the
        ``chain``): at ``fee``, or at the chain's "auto" estimate for this ``attempt``. The
        draws come from ``faults`` (seeded per order and attempt), else from the market's
        own stream. ``BlockhashExpired`` if it would not land before its blockhash expired.
        (It only decides when: ``land`` then fills the route.)"""
        sent = self.current_slot()
        if fee is None:
            fee = self.chain.estimate(route, sent, attempt).fee
        if faults is not None:
            landed = self.chain.land_slot(sent, fee, faults.landing())
        else:
            with self._lock:
                landed = self.chain.land_slot(sent, fee, self._landing)
        return Landing(sent, landed, fee, self.settings.slot_ms)

    def send(
        self,
        route,
        faults: Faults | None,
        attempt: int,
        max_lamports: int | None = None,
        previous_price: int = 0,
    ) -> Landing:
        """Send ``route``'s transaction at the "auto" priority fee for this ``attempt``
        (within ``max_lamports`` of priority fee), and at least half as much again per
        compute unit as the attempt before paid (``previous_price``, micro-lamports): when it
        lands, or that it is dropped once its blockhash expires (``Landing.dropped``), the
        sender finding out only then."""
        cap = DEFAULT_MAX_LAMPORTS if max_lamports is None else max_lamports
        sent = self.current_slot()
        fee = self.chain.estimate(route, sent, attempt, cap).fee
        raised = ceil_div(previous_price * RETRY_RAISE[0], RETRY_RAISE[1])
        most = cap * MICRO_LAMPORTS_PER_LAMPORT // fee.compute_units
        if raised > fee.micro_lamports_per_cu:
            fee = PriorityFee(fee.compute_units, min(most, raised))
        try:
            return self.landing(route, fee, faults)
        except BlockhashExpired:
            expiry = sent + BLOCKHASH_VALID_SLOTS
            return Landing(sent, expiry, fee, self.settings.slot_ms, dropped=True)

    def _catch_up(self, pool: Pool, now: int) -> None:
        """Apply the background trades and arbitrage of the slots since the pool was last
        touched."""
        trades, half_life = self.settings.drift_trades_per_slot, self.settings.arb_half_life_slots
        if (trades == 0 and half_life == 0) or now <= pool.slot or pool.pool_id in self._live_from:
            return
        first = max(pool.slot + 1, now - MAX_CATCH_UP_SLOTS + 1)
        if half_life and first > pool.slot + 1:  # the slots not replayed: their arbitrage
            self._arbitrage(pool, first - 1, first - 1 - pool.slot)
        for slot in range(first, now + 1):
            rng = random.Random(f"{self.seed}:{pool.pool_id}:{slot}")
            for _ in range(trades):
                self._background_trade(pool, rng, slot)
            if half_life:
                self._arbitrage(pool, slot, 1)
        pool.state = AMMS[pool.venue].settle(pool.state, now)
        pool.slot = now

    def _arbitrage(self, pool: Pool, slot: int, slots: int) -> None:
        """``slots`` slots of arbitrage, ending at ``slot``, towards the oracle there."""
        oracle = self.oracle.mid(pool.mint_x, pool.mint_y, slot)
        half_life = self.settings.arb_half_life_slots
        pool.state = arbitrage.heal(pool.venue, pool.state, oracle, slots, half_life, slot)

    def _background_trade(self, pool: Pool, rng: random.Random, slot: int) -> None:
        amm = AMMS[pool.venue]
        oracle = self.oracle.mid(pool.mint_x, pool.mint_y, slot)
        deviation = float(amm.spot_price(pool.state) / oracle - 1)  # a probability, not money
        sell_x = 0.5 + max(-0.4, min(0.4, deviation * MEAN_REVERSION))
        # Draw both numbers every time: the stream stays a function of (seed, pool, slot).
        x_to_y, size = rng.random() < sell_x, rng.randint(1, 1_000)
        amount = (pool.trade_x if x_to_y else pool.trade_y) * size // 1_000
        if amount <= 0:
            return
        with suppress(InsufficientLiquidity):  # that trader found no liquidity: no trade
            pool.state = amm.swap(amm.settle(pool.state, slot), x_to_y, amount, slot).state
