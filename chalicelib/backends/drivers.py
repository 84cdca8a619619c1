"""The one boundary where driver errors become the engine's: ``unavailable_as``.

Every call into psycopg, redis or botocore runs inside ``unavailable_as(dependency)`` (the
pool, client and queue helpers of this package do it), so nothing above ``backends`` handles
a driver exception: a connection error is ``DependencyUnavailable``, which the HTTP layer
answers 503 and the WebSocket handlers as a ``dependency_unavailable`` error frame.
"""

import contextlib
from collections.abc import Iterator
from typing import Literal

import botocore.exceptions
import psycopg
import psycopg_pool
import redis

from chalicelib.errors import DependencyUnavailable

Dependency = Literal["database", "redis", "queue"]

_DRIVER_ERRORS: dict[str, tuple[type[BaseException], ...]] = {
    "database": (psycopg.OperationalError, psycopg_pool.PoolTimeout),
    "redis": (redis.RedisError,),
    "queue": (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError),
}


@contextlib.contextmanager
def unavailable_as(dependency: Dependency) -> Iterator[None]:
    """Re-raise the dependency's driver errors as ``DependencyUnavailable``."""
    try:
        yield
    except _DRIVER_ERRORS[dependency] as e:
        raise DependencyUnavailable(dependency, e) from e
