"""The state of newly listed pools, shared by every process that runs the market.

The mock market lives in each process (a Lambda execution environment, a local worker process).
Its seeded pools need no sharing: background trades and arbitrage pull every copy back to the
same oracle. A newly listed token's pool has neither: only orders move it, so a fill in one
process must be seen by the next order wherever it runs, as the chain would show it. Its state
is kept in Redis; a landing on it holds a lock, reads the state, swaps and writes it back.
"""

import contextlib
import json
from collections.abc import Iterator

from chalicelib.backends.cache import redis_client
from chalicelib.backends.drivers import unavailable_as

LOCK_TIMEOUT_S = 10  # a crashed holder's lock runs out after this


def _key(pool_id: str) -> str:
    return f"market:listed:{pool_id}"


class RedisListedPools:
    def load(self, pool_id: str) -> dict | None:
        """The pool's state as last landed, or None before its first fill."""
        with unavailable_as("redis"):
            raw = redis_client().get(_key(pool_id))
        return None if raw is None else json.loads(raw)

    def save(self, pool_id: str, state: dict) -> None:
        with unavailable_as("redis"):
            redis_client().set(_key(pool_id), json.dumps(state))

    @contextlib.contextmanager
    def locked(self, pool_ids: list[str]) -> Iterator[None]:
        """Hold the pools' landing locks (sorted: two routes never wait on each other)."""
        with contextlib.ExitStack() as held, unavailable_as("redis"):
            for pool_id in sorted(set(pool_ids)):
                lock = redis_client().lock(
                    f"{_key(pool_id)}:lock", timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_TIMEOUT_S
                )
                held.enter_context(lock)
            yield
