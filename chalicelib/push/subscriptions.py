"""WebSocket subscriptions in Redis.

Keys (every one with the subscription TTL, refreshed on subscribe and on delivery):

- ``ws:order:{order}``     set of connection ids subscribed to the order
- ``ws:conn:{conn}``       set of order ids the connection is subscribed to
- ``ws:seq:{conn}``        hash order id -> last seq delivered to the connection
- ``ws:born:{conn}``       when ``$connect`` was called (epoch seconds), deleted once the
                           connection is known to be open: a post to a connection still in
                           its grace period may fail only because ``$connect`` has not
                           returned yet, so it is not treated as gone
- ``ws:client:{conn}``     the client whose key opened the connection, and that key's
                           prefix (``<client> <prefix>``): it may watch that client's orders
                           only, while the key is not revoked
- ``ws:clientconns:{client}`` sorted set of the client's open connection ids, scored by
                           when each stops counting (``$connect`` + the TTL: a lost
                           ``$disconnect`` frees its place then)
- ``ws:source:{conn}``     the source IP the connection came from, once it took a place in
- ``ws:sourceconns:{ip}``  this sorted set of the source's open connection ids (as
                           ``ws:clientconns``)
- ``ws:endpoint``          hash of the WebSocket API's ``apiId``/``domain``/``stage``, recorded
                           by the handlers so the worker can configure ``app.websocket_api``
- ``ws:lock:{order}``      short lock: one publisher per order at a time
"""

import contextlib
import time
import uuid
from collections.abc import Iterator

from redis.exceptions import LockError

from chalicelib.backends.cache import redis_client
from chalicelib.config import get_settings
from chalicelib.errors import DependencyUnavailable

ENDPOINT_KEY = "ws:endpoint"


def _order_key(order_id: str) -> str:
    return f"ws:order:{order_id}"


def _conn_key(connection_id: str) -> str:
    return f"ws:conn:{connection_id}"


def _seq_key(connection_id: str) -> str:
    return f"ws:seq:{connection_id}"


def _born_key(connection_id: str) -> str:
    return f"ws:born:{connection_id}"


def _client_key(connection_id: str) -> str:
    return f"ws:client:{connection_id}"


def _client_conns_key(client_id: uuid.UUID | str) -> str:
    return f"ws:clientconns:{client_id}"


def _source_key(connection_id: str) -> str:
    return f"ws:source:{connection_id}"


def _source_conns_key(source_ip: str) -> str:
    return f"ws:sourceconns:{source_ip}"


def _ttl() -> int:
    return get_settings().push.ws_subscription_ttl_s


def seen(
    connection_id: str, client_id: uuid.UUID | None = None, key_prefix: str | None = None
) -> None:
    """Note when ``$connect`` was called (until it returned, posts are refused as Gone) and
    the client (and key) it was opened for."""
    pipe = redis_client().pipeline()
    pipe.set(_born_key(connection_id), f"{time.time():.3f}", ex=_ttl(), nx=True)
    if client_id is not None:
        value = f"{client_id} {key_prefix}" if key_prefix else str(client_id)
        pipe.set(_client_key(connection_id), value, ex=_ttl())
    pipe.execute()


# Take a place among the client's open connections, in one step so that concurrent
# $connects cannot all pass the count: drop the places that expired, then add this one
# unless the client already holds ARGV[3].
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""


def admit(connection_id: str, client_id: uuid.UUID, limit: int) -> bool:
    """Count the connection among its client's open ones; False when it holds ``limit``."""
    return _admit(_client_conns_key(client_id), connection_id, limit)


def admit_source(connection_id: str, source_ip: str, limit: int) -> bool:
    """Count the connection among its source IP's open ones; False when it holds ``limit``."""
    if not _admit(_source_conns_key(source_ip), connection_id, limit):
        return False
    redis_client().set(_source_key(connection_id), source_ip, ex=_ttl())
    return True


def _admit(key: str, connection_id: str, limit: int) -> bool:
    now = time.time()
    return bool(
        redis_client().register_script(_ADMIT)(
            keys=[key], args=[f"{now:.3f}", f"{now + _ttl():.3f}", limit, connection_id]
        )
    )


def owner(connection_id: str) -> tuple[uuid.UUID | None, str | None]:
    """The client the connection was opened for and its key's prefix; None when unknown."""
    value = redis_client().get(_client_key(connection_id))
    if value is None:
        return None, None
    client_id, _, prefix = value.partition(" ")
    return uuid.UUID(client_id), prefix or None


def client(connection_id: str) -> uuid.UUID | None:
    """The client the connection was opened for; None when unknown."""
    return owner(connection_id)[0]


def opened(connection_id: str) -> None:
    """The connection is known to be open (it sent a message, or a post went through)."""
    redis_client().delete(_born_key(connection_id))


def age_s(connection_id: str) -> float | None:
    """Seconds since the connection was first seen; None when unknown."""
    born = redis_client().get(_born_key(connection_id))
    return None if born is None else time.time() - float(born)


def add(connection_id: str, order_id: str, since: int) -> None:
    """Subscribe: deliver every status of the order with seq > ``since`` from now on."""
    ttl = _ttl()
    pipe = redis_client().pipeline()
    pipe.sadd(_order_key(order_id), connection_id)
    pipe.sadd(_conn_key(connection_id), order_id)
    pipe.hset(_seq_key(connection_id), order_id, since)
    for key in (_order_key(order_id), _conn_key(connection_id), _seq_key(connection_id)):
        pipe.expire(key, ttl)
    pipe.expire(_client_key(connection_id), ttl)
    pipe.execute()


def remove(connection_id: str, order_id: str) -> None:
    pipe = redis_client().pipeline()
    pipe.srem(_order_key(order_id), connection_id)
    pipe.srem(_conn_key(connection_id), order_id)
    pipe.hdel(_seq_key(connection_id), order_id)
    pipe.execute()


def remove_connection(connection_id: str) -> list[str]:
    """Drop every subscription of a connection (disconnected or gone); returns its orders."""
    client = redis_client()
    read = client.pipeline()
    read.smembers(_conn_key(connection_id))
    read.get(_client_key(connection_id))
    read.get(_source_key(connection_id))
    members, owner_value, source_ip = read.execute()
    orders = sorted(members)
    pipe = client.pipeline()
    for order_id in orders:
        pipe.srem(_order_key(order_id), connection_id)
    if owner_value:  # its place among the client's open connections
        pipe.zrem(_client_conns_key(owner_value.partition(" ")[0]), connection_id)
    if source_ip:  # and among its source's
        pipe.zrem(_source_conns_key(source_ip), connection_id)
    pipe.delete(
        _conn_key(connection_id),
        _seq_key(connection_id),
        _born_key(connection_id),
        _client_key(connection_id),
        _source_key(connection_id),
    )
    pipe.execute()
    return orders


def subscribed(connection_id: str, order_id: str) -> tuple[bool, int]:
    """Whether the connection watches the order, and how many orders it watches."""
    pipe = redis_client().pipeline()
    pipe.sismember(_conn_key(connection_id), order_id)
    pipe.scard(_conn_key(connection_id))
    member, count = pipe.execute()
    return bool(member), int(count)


def connections(order_id: str) -> list[str]:
    return sorted(redis_client().smembers(_order_key(order_id)))


def cursors(order_id: str, connection_ids: list[str]) -> dict[str, int]:
    """Last seq delivered per connection, for the connections still subscribed to the order."""
    if not connection_ids:
        return {}
    pipe = redis_client().pipeline()
    for connection_id in connection_ids:
        pipe.hget(_seq_key(connection_id), order_id)
    values = pipe.execute()
    return {c: int(v) for c, v in zip(connection_ids, values, strict=True) if v is not None}


# Raise a connection's cursor for an order, never lower it, and only while it is subscribed:
# in one step, so neither a slower publisher nor a concurrent unsubscribe can undo it, and
# no key of a dropped subscription comes back.
_RAISE_CURSOR = """
redis.call('DEL', KEYS[4])
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > last then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return 1
"""


def delivered(connection_id: str, order_id: str, seq: int, *, done: bool = False) -> None:
    """Record the last seq delivered, unless the subscription was dropped meanwhile; the
    connection is open, then. ``done`` (a terminal status delivered) ends the subscription."""
    client = redis_client()
    if not done:
        keys = [_conn_key(connection_id), _seq_key(connection_id), _order_key(order_id)]
        client.register_script(_RAISE_CURSOR)(
            keys=[*keys, _born_key(connection_id)], args=[order_id, seq, _ttl()]
        )
        return
    pipe = client.pipeline()
    pipe.srem(_order_key(order_id), connection_id)
    pipe.srem(_conn_key(connection_id), order_id)
    pipe.hdel(_seq_key(connection_id), order_id)
    pipe.delete(_born_key(connection_id))
    pipe.execute()


class LockBusy(DependencyUnavailable):
    """An order's publish lock was not had in time (or was lost while held)."""

    def __init__(self, order_id: str):
        super().__init__("redis", f"the publish lock of order {order_id} is busy")


@contextlib.contextmanager
def order_lock(order_id: str) -> Iterator[None]:
    """Hold the order's publish lock; ``LockBusy`` when not had within ``ws_lock_wait_s``.
    A publisher holding it past ``ws_lock_lease_s`` is presumed dead."""
    settings = get_settings().push
    lock = redis_client().lock(
        f"ws:lock:{order_id}",
        timeout=settings.ws_lock_lease_s,
        blocking_timeout=settings.ws_lock_wait_s,
        sleep=settings.ws_lock_poll_s,
    )
    try:
        with lock:
            yield
    except LockError:
        raise LockBusy(order_id) from None


def save_endpoint(api_id: str | None, domain: str | None, stage: str | None) -> None:
    """Remember where the WebSocket API lives (the worker is not a WebSocket handler)."""
    fields = {k: v for k, v in (("apiId", api_id), ("domain", domain), ("stage", stage)) if v}
    if not fields:
        return
    client = redis_client()
    if client.hgetall(ENDPOINT_KEY) != fields:
        client.pipeline().delete(ENDPOINT_KEY).hset(ENDPOINT_KEY, mapping=fields).execute()


def endpoint() -> dict[str, str]:
    return redis_client().hgetall(ENDPOINT_KEY)
