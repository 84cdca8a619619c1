"""The engine's own exceptions, raised at its edges so callers need no driver imports.

``store``, ``queue``, ``cache`` and ``subscriptions`` turn their drivers' connection errors
(psycopg, psycopg_pool, redis, botocore) into ``DependencyUnavailable``; the HTTP layer maps
it to 503 and the WebSocket handlers to a ``dependency_unavailable`` error frame.
"""

import contextlib
from collections.abc import Iterator
from typing import Literal

import botocore.exceptions
import psycopg
import psycopg_pool
import redis


class DependencyUnavailable(Exception):
    """Postgres, Redis or SQS did not answer, or answered with an error."""

    def __init__(self, dependency: str, cause: BaseException):
        super().__init__(f"{dependency} unavailable: {cause!r}")
        self.dependency = dependency


class IdempotencyConflict(Exception):
    """The idempotency key was used before with another request body."""

    def __init__(self, order_id: str):
        super().__init__(order_id)
        self.order_id = order_id


class DuplicateClientOrderId(Exception):
    """The client already has an order with this client order id."""

    def __init__(self, client_order_id: str | None):
        super().__init__(client_order_id)
        self.client_order_id = client_order_id


class TooManyOpenOrders(Exception):
    """Admitting one more order would exceed a limit: the client's open orders (``scope``
    "client") or the orders in flight engine-wide ("engine")."""

    def __init__(self, limit: int, scope: Literal["client", "engine"]):
        super().__init__(limit, scope)
        self.limit = limit
        self.scope = scope


_DRIVER_ERRORS = {
    "database": (psycopg.OperationalError, psycopg_pool.PoolTimeout),
    "redis": (redis.RedisError,),
    "queue": (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError),
}


@contextlib.contextmanager
def unavailable_as(dependency: str) -> Iterator[None]:
    """Re-raise the dependency's driver errors as ``DependencyUnavailable``."""
    try:
        yield
    except _DRIVER_ERRORS[dependency] as e:
        raise DependencyUnavailable(dependency, e) from e
