"""A landing transaction's legs, filled on copies of the pools' states: the market commits
them only when every leg of every hop has filled and the route's bound holds.

A second hop trades what the first one actually produced at landing (not what was quoted),
shared among its legs pro rata to the plan. An exact-output route is filled backwards: the
last hop buys exactly the wanted output, each hop before it exactly what the next needs,
and the route fails if the input that takes exceeds its ``max_in``.
"""

from collections.abc import Sequence

from ..tokens import by_mint
from .errors import InsufficientLiquidity, SlippageExceeded
from .listing import Pool
from .slippage import input_rose_message, output_fell_message
from .snapshot import AMMS


def pro_rata(total: int, planned: Sequence[int]) -> list[int]:
    """``total`` shared in proportion to ``planned``, floored, the rest to the largest share:
    the shares add up to ``total`` exactly."""
    whole = sum(planned)
    shares = [total * part // whole for part in planned]
    largest = max(range(len(planned)), key=planned.__getitem__)
    shares[largest] += total - sum(shares)
    return shares


class StagedFills:
    def __init__(self, route, pools: Sequence[Pool], slot: int):
        self.route, self.slot = route, slot
        self._pools = {pool.pool_id: pool for pool in pools}
        self.states = {pool.pool_id: pool.state for pool in pools}

    def _amm(self, leg):
        pool = self._pools[leg.pool_id]
        return pool, AMMS[pool.venue], leg.mint_in == pool.mint_x

    def _ran_out(self, pool: Pool) -> SlippageExceeded:
        return SlippageExceeded(
            f"{pool.venue} ran out of liquidity before the order landed",
            min_out=self.route.min_out,
        )

    def _sell(self, leg, amount_in: int) -> int:
        pool, amm, x_to_y = self._amm(leg)
        try:
            swap = amm.swap(self.states[pool.pool_id], x_to_y, amount_in, self.slot)
        except InsufficientLiquidity:
            raise self._ran_out(pool) from None
        self.states[pool.pool_id] = swap.state
        return swap.amount_out

    def _buy(self, leg, amount_out: int) -> int:
        pool, amm, x_to_y = self._amm(leg)
        try:
            swap = amm.swap_exact_out(self.states[pool.pool_id], x_to_y, amount_out, self.slot)
        except InsufficientLiquidity:
            raise self._ran_out(pool) from None
        self.states[pool.pool_id] = swap.state
        return swap.amount_in

    def exact_in(self) -> int:
        """Fill the route's input hop by hop; its output, at least ``min_out``."""
        route, produced = self.route, 0
        for hop in range(route.hops):
            legs = route.hop_legs(hop)
            planned = [leg.in_amount for leg in legs]
            inputs = planned if hop == 0 else pro_rata(produced, planned)
            produced = sum(
                self._sell(leg, amount) for leg, amount in zip(legs, inputs, strict=True)
            )
        if produced < route.min_out:
            moved = output_fell_message(
                route.out_amount, produced, route.slippage_bps, by_mint(route.mint_out)
            )
            raise SlippageExceeded(
                f"{moved}: output {produced} is below the minimum {route.min_out}",
                amount_out=produced,
                min_out=route.min_out,
            )
        return produced

    def exact_out(self) -> int:
        """Buy the route's exact output, last hop first; the input spent, at most ``max_in``."""
        route, needed = self.route, 0
        last = route.hops - 1
        for hop in range(last, -1, -1):
            legs = route.hop_legs(hop)
            planned = [leg.out_amount for leg in legs]
            outputs = planned if hop == last else pro_rata(needed, planned)
            needed = sum(self._buy(leg, amount) for leg, amount in zip(legs, outputs, strict=True))
        most = route.in_amount if route.max_in is None else route.max_in
        if needed > most:
            raise SlippageExceeded(
                input_rose_message(route.in_amount, needed, most),
                amount_in=needed,
                max_in=most,
            )
        return needed
