"""Redis: the shared client and the quote cache.

WebSocket subscriptions live in Redis too (see ``chalicelib/push/subscriptions.py``).
"""

import json
import logging
import time
from collections.abc import Callable
from functools import lru_cache

import redis

from chalicelib.backends import secrets
from chalicelib.backends.drivers import unavailable_as
from chalicelib.config import get_settings
from chalicelib.dex import PoolSnapshot

log = logging.getLogger(__name__)


@lru_cache
def redis_client() -> redis.Redis:
    """One client (and connection pool) per process, reused across Lambda invocations."""
    settings = get_settings()
    password = secrets.redis_password()  # the AUTH token, from Secrets Manager in AWS
    return redis.Redis.from_url(
        settings.storage.redis_url,
        **({"password": password} if password else {}),
        decode_responses=True,
        socket_timeout=settings.storage.redis_timeout_s,
        socket_connect_timeout=settings.storage.redis_timeout_s,
        health_check_interval=30,
    )


def ping() -> None:
    with unavailable_as("redis"):
        redis_client().ping()


def _snapshot_key(venue: str, mint_a: str, mint_b: str) -> str:
    return f"pool:{venue}:{':'.join(sorted((mint_a, mint_b)))}"


# This process's copies of the snapshots it read, with the expiry their Redis copy has: a
# burst on a pair reads Redis once per process and cache period, not once per order (and
# the router's per-snapshot quoters are built once, not per order).
_local: dict[str, tuple[float, PoolSnapshot]] = {}


def cached_snapshot(venue: str, token_in, token_out, fetch: Callable):
    """The venue's pool state for the pair, from this process's copy or Redis when a recent
    one is there (at most ``quote_cache_slots`` old, wherever it was read).

    The cache holds pool snapshots per (venue, pair), not quotes per size bucket: a
    snapshot prices every size exactly, so a burst of orders on one pair pays the venue's
    latency once per few slots whatever their sizes. Redis being down only costs latency.
    """
    market = get_settings().market
    ttl_ms = market.quote_cache_slots * market.slot_ms
    if not ttl_ms:
        return fetch(venue, token_in, token_out)
    key = _snapshot_key(venue, token_in.mint, token_out.mint)
    now = time.time()
    expires, snapshot = _local.get(key, (0.0, None))
    if now < expires:
        return snapshot
    try:
        raw = redis_client().get(key)
        if raw:
            cached = json.loads(raw)
            snapshot = PoolSnapshot.from_dict(cached["snapshot"])
            _local[key] = (cached["expiresAt"], snapshot)
            return snapshot
    except (redis.RedisError, KeyError, TypeError) as e:  # down, or an older entry's shape
        log.warning("quote cache read failed: %r", e)
    snapshot = fetch(venue, token_in, token_out)
    expires = now + ttl_ms / 1000
    _local[key] = (expires, snapshot)
    try:
        value = json.dumps({"snapshot": snapshot.to_dict(), "expiresAt": expires})
        redis_client().set(key, value, px=ttl_ms)
    except redis.RedisError as e:
        log.warning("quote cache write failed: %r", e)
    return snapshot


def forget_snapshots() -> None:
    """Drop this process's copies (tests that move a pool by hand)."""
    _local.clear()


def close() -> None:
    """Close the client if this process made one (before its server goes away)."""
    if redis_client.cache_info().currsize:
        redis_client().close()
        redis_client.cache_clear()
