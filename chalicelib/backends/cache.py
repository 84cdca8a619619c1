"""Redis: the shared client and the quote cache.

WebSocket subscriptions live in Redis too (see ``chalicelib/push/subscriptions.py``).
"""

import json
import logging
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


def cached_snapshot(venue: str, token_in, token_out, fetch: Callable):
    """The venue's pool state for the pair, from Redis when a recent one is there.

    The cache holds pool snapshots per (venue, pair), not quotes per size bucket: a
    snapshot prices every size exactly, so a burst of orders on one pair pays the venue's
    latency once per few slots whatever their sizes. Redis being down only costs latency.
    """
    settings = get_settings()
    ttl_ms = settings.market.quote_cache_slots * settings.market.slot_ms
    if not ttl_ms:
        return fetch(venue, token_in, token_out)
    key = _snapshot_key(venue, token_in.mint, token_out.mint)
    try:
        raw = redis_client().get(key)
        if raw:
            return PoolSnapshot.from_dict(json.loads(raw))
    except redis.RedisError as e:
        log.warning("quote cache read failed: %r", e)
    snapshot = fetch(venue, token_in, token_out)
    try:
        redis_client().set(key, json.dumps(snapshot.to_dict()), px=ttl_ms)
    except redis.RedisError as e:
        log.warning("quote cache write failed: %r", e)
    return snapshot


def close() -> None:
    """Close the client if this process made one (before its server goes away)."""
    if redis_client.cache_info().currsize:
        redis_client().close()
        redis_client.cache_clear()
