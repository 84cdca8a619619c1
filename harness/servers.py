"""Servers the runtime runs against, for the benchmarks and tests.

The servers themselves start as ``make run`` starts its embedded ones (``localaws.servers``);
here, on top of them:

- ``fresh_database``: a new database on a server, dropped afterwards;
- ``Servers``: Postgres, Redis and SQS together, private ones unless URLs are given (the
  benchmarks), and runtimes on them.

Nothing here outlives the process that started it: every ``close`` is idempotent and the
context managers close on the way out.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from harness.runtime import Runtime, engine_env
from localaws.servers import PostgresCluster, RedisServer, sqs_server

# -- databases ------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "order_engine_bench") -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``; dropped on the way out."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield as_url(make_conninfo(admin_url, dbname=name))
    finally:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn,
        ):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def as_url(conninfo: str) -> str:
    """A ``postgresql://`` URL from a conninfo string or URL (the engine wants a URL)."""
    if conninfo.startswith(("postgresql://", "postgres://")):
        return conninfo
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(conninfo)
    user = p.get("user", "postgres")
    auth = f"{user}:{p['password']}@" if p.get("password") else f"{user}@"
    return f"postgresql://{auth}{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}"


# -- the three together -----------------------------------------------------------------------


# The bench and load test are many users sending with one key: the per-client request rate
# and open-order limits would measure themselves, not the engine.
ONE_CLIENT_AT_SCALE = {
    "RATE_LIMIT_PER_S": "100000",
    "RATE_LIMIT_BURST": "100000",
    "MAX_OPEN_ORDERS_PER_CLIENT": "100000",
}


class Servers(contextlib.ExitStack):
    """Postgres, Redis and SQS for runtimes: private ones unless URLs are given.

    ``database_url`` is an admin URL (each runtime gets a fresh database on it); ``redis_url``
    a Redis whose db is flushed; ``embedded_sqs`` leaves SQS to the runtime's own moto.
    """

    def __init__(
        self,
        database_url: str | None = None,
        redis_url: str | None = None,
        embedded_sqs: bool = False,
    ):
        super().__init__()
        self.given = (database_url, redis_url, embedded_sqs)
        self.info: dict = {}
        self.pids: dict[str, int] = {}  # the private servers' main processes (bench.cpu)

    def __enter__(self) -> Servers:
        import psycopg

        super().__enter__()
        database_url, redis_url, embedded_sqs = self.given
        if database_url:
            self.admin_url, self.stats = database_url, False
            self.info["postgres"] = "given: " + database_url.split("@")[-1]
        else:
            pg = PostgresCluster()
            self.callback(pg.close)
            pg.start()
            self.admin_url, self.stats = pg.admin_url, pg.stats
            self.pids["postgres"] = pg.pid()
            self.info["postgres"] = f"private cluster ({pg.bindir}), default config"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            self.info["postgres_version"] = conn.execute("SHOW server_version").fetchone()[0]
        if redis_url:
            self.redis_url = redis_url
            self.info["redis"] = "given: " + redis_url
        else:
            redis = RedisServer()
            self.callback(redis.close)
            redis.start()
            self.redis_url = redis.url
            self.pids["redis"] = redis.process.pid
            self.info["redis"] = redis.version().split(" sha=")[0]
        if embedded_sqs:
            self.sqs_url = None
            self.info["sqs"] = "moto, in the runtime's process"
        else:
            sqs = sqs_server()
            self.callback(sqs.close)
            sqs.start()
            self.sqs_url = sqs.url
            self.pids["sqs"] = sqs.process.pid
            self.info["sqs"] = f"{type(sqs).__name__}, a process of its own"
        return self

    def runtime(self, database_url: str, settings: dict, log: Path, **kwargs):
        """A runtime (not started) on ``database_url``, an emptied Redis and queues of its own."""
        import redis as redis_lib

        client = redis_lib.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()
        env = engine_env(
            DATABASE_URL=database_url,
            REDIS_URL=self.redis_url,
            **{**ONE_CLIENT_AT_SCALE, **settings},
        )
        if self.sqs_url:
            env["AWS_ENDPOINT_URL"] = self.sqs_url
            # A queue of this runtime's own on the shared moto server.
            suffix = Path(database_url).name[-8:]
            env["ORDERS_QUEUE_NAME"] = f"bench-orders-{suffix}"
            env["ORDERS_DLQ_NAME"] = f"bench-orders-dlq-{suffix}"
        return Runtime(env, log_path=log, **kwargs)
