"""Seeded failure injection for one attempt at one order.

Each kind of draw has its own random stream derived from ``seed:order_id:attempt``, so what
happens to an attempt does not depend on the order in which threads make their draws (the
two venues are quoted concurrently).
"""

import random
import threading

import base58

from ..config import MarketSettings


def new_signature(random_bytes: bytes) -> str:
    """A Solana-like transaction signature: 64 bytes in base58 (87 or 88 characters)."""
    return base58.b58encode(random_bytes).decode()


class Faults:
    def __init__(self, key: str, settings: MarketSettings):
        self.key = key
        self.settings = settings
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_attempt(
        cls,
        seed: int,
        order_id: str,
        attempt: int,
        settings: MarketSettings,
        waiting_checks: int = 0,
    ) -> "Faults":
        """``waiting_checks``: how often a waiting order was checked before (each check of a
        waiting order is attempt 1 again, so without it every check would draw alike)."""
        suffix = f":w{waiting_checks}" if waiting_checks else ""
        return cls(f"{seed}:{order_id}:{attempt}{suffix}", settings)

    def _stream(self, purpose: str) -> random.Random:
        with self._lock:
            if purpose not in self._streams:
                self._streams[purpose] = random.Random(f"{self.key}:{purpose}")
            return self._streams[purpose]

    def venue_times_out(self, venue: str, pool_id: str | None = None) -> bool:
        """One draw per venue read. With ``pool_id`` the draw is the pool's own: a planner
        reading several pools of one venue at once then gets the same timeouts whatever
        order its threads draw in."""
        purpose = f"timeout:{venue}" if pool_id is None else f"timeout:{venue}:{pool_id}"
        return self._stream(purpose).random() < self.settings.venue_timeout_rate

    def blockhash_expires(self) -> bool:
        return self._stream("blockhash").random() < self.settings.blockhash_expiry_rate

    def landing(self) -> random.Random:
        """The stream of the congestion model's landing draws (``chain.Chain.land_slot``)."""
        return self._stream("landing")

    def exec_latency_s(self) -> float:
        low, high = self.settings.exec_latency_min_ms, self.settings.exec_latency_max_ms
        return self._stream("latency").uniform(low, high) / 1000

    def signature(self) -> str:
        return new_signature(self._stream("signature").randbytes(64))
