"""Postgres and Redis for ``make test``: the machine's, else private ones, as ``make run`` does.

``TEST_POSTGRES_URL`` / ``TEST_REDIS_SERVER`` name a server to use (a base URL without a
database). Unset, the test run uses the one answering on the default local port (Postgres
5432, Redis 6379); when nothing answers there it starts a private server on a free port
(``localaws.servers``, as ``make run`` starts its own) and stops it when the run ends. So
a laptop without services passes too.
"""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass

from localaws.servers import PostgresCluster, RedisServer, answers

log = logging.getLogger(__name__)

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379"


@dataclass(frozen=True)
class TestServices:
    postgres: str  # base URL: append /<database>
    redis: str  # base URL: append /<db index>
    private: bool  # started for this run

    def database_url(self, database: str) -> str:
        return f"{self.postgres}/{database}"

    def redis_url(self, db: int) -> str:
        return f"{self.redis}/{db}"


def find_or_start() -> TestServices:
    started = []
    postgres = os.environ.get("TEST_POSTGRES_URL")
    if not postgres:
        postgres = DEFAULT_POSTGRES
        if not answers("127.0.0.1", 5432):
            server = PostgresCluster(preload_stats=False).start()
            started.append(server)
            postgres = server.admin_url.rsplit("/", 1)[0]
    redis = os.environ.get("TEST_REDIS_SERVER")
    if not redis:
        redis = DEFAULT_REDIS
        if not answers("127.0.0.1", 6379):
            server = RedisServer().start()
            started.append(server)
            redis = server.url.rsplit("/", 1)[0]
    for server in started:
        atexit.register(server.close)
    if started:
        print(f"no services on the default ports: private ones at {postgres} and {redis}")
    return TestServices(postgres.rstrip("/"), redis.rstrip("/"), bool(started))
