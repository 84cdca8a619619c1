"""Test settings: one fresh database per run, a Redis db of its own, zero simulated latency.

The environment is set here, before anything imports ``app.py`` or reads settings.
Integration tests use the Postgres and Redis of the machine (127.0.0.1:5432, :6379) when
they answer, else private servers started for the run (``harness.test_services``); SQS is a
moto server started by the ``sqs`` fixture.
"""

import logging
import os
import uuid

import pytest
from hypothesis import settings as hypothesis_settings

from harness.servers import free_port
from harness.test_services import find_or_start

# Property and fuzz tests draw the same examples on every run, so a red CI is reproducible;
# HYPOTHESIS_PROFILE=explore draws new ones (and more) each time, to hunt for new cases.
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", max_examples=500)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

RUN_ID = uuid.uuid4().hex[:8]
SQS_PORT = free_port()
SERVICES = find_or_start()
# What tests/runtime's runtimes use: the same servers, a Redis db of their own.
os.environ.setdefault("TEST_POSTGRES_ADMIN_URL", SERVICES.database_url("postgres"))
os.environ.setdefault("TEST_RUNTIME_REDIS_URL", SERVICES.redis_url(13))
TEST_ENV = {
    "DATABASE_URL": os.environ.get(
        "TEST_DATABASE_URL", SERVICES.database_url(f"order_engine_test_{RUN_ID}")
    ),
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", SERVICES.redis_url(9)),
    # TEST_AWS_ENDPOINT_URL: a running LocalStack (or other SQS) instead of our moto server.
    "AWS_ENDPOINT_URL": os.environ.get("TEST_AWS_ENDPOINT_URL", f"http://127.0.0.1:{SQS_PORT}"),
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "ORDERS_QUEUE_NAME": f"orders-{RUN_ID}",
    "ORDERS_DLQ_NAME": f"orders-dlq-{RUN_ID}",
    "QUOTE_LATENCY_MS": "0",
    "EXEC_LATENCY_MIN_MS": "0",
    "EXEC_LATENCY_MAX_MS": "0",
    "DRIFT_TRADES_PER_SLOT": "0",
    "RETRY_BASE_DELAY_S": "0",
    "VISIBILITY_TIMEOUT_S": "5",
    "LEASE_S": "5",
    # Tests post hundreds of orders a second; the rate limit's own test lowers these.
    "RATE_LIMIT_PER_S": "100000",
    "RATE_LIMIT_BURST": "100000",
}
os.environ.update(TEST_ENV)
os.environ.pop("LOCALSTACK_HOST", None)
os.environ.pop("WS_MANAGEMENT_ENDPOINT", None)

# Read the settings now: chalice's test client patches a stage's environment variables
# around each request, and must not change what the engine was configured with.
from chalicelib.config import get_settings  # noqa: E402

get_settings()
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server's access log


@pytest.fixture(scope="session")
def sqs():
    """A real SQS emulator (the runtime's moto server, or TEST_AWS_ENDPOINT_URL's) with the
    configured orders queue and its DLQ."""
    from chalicelib import startup
    from localaws.sqs_server import serve

    if os.environ.get("TEST_AWS_ENDPOINT_URL"):
        yield startup.ensure_queues()
        return
    server = serve(SQS_PORT)
    yield startup.ensure_queues()
    server.shutdown()


@pytest.fixture
def queues(sqs, monkeypatch):
    """A fresh queue and DLQ for one test (SQS allows one purge a minute), used by the engine."""
    from chalicelib import startup
    from chalicelib.backends import queue

    suffix = uuid.uuid4().hex[:8]
    settings = get_settings().model_copy(
        update={
            "orders_queue_name": f"orders-{suffix}",
            "orders_dlq_name": f"orders-dlq-{suffix}",
        }
    )
    urls = startup.ensure_queues(settings)
    monkeypatch.setattr(queue, "queue_url", lambda: urls.queue)
    monkeypatch.setattr(queue, "dlq_url", lambda: urls.dlq)
    return urls


@pytest.fixture(scope="session")
def database():
    """A database of this run's own, migrated; dropped at the end."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from chalicelib import startup
    from chalicelib.orders import store

    url = os.environ["DATABASE_URL"]
    startup.migrate(url)
    yield url
    store.close()
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def redis_db():
    from chalicelib.backends.cache import redis_client

    client = redis_client()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(scope="session")
def api_key(database) -> str:
    """The default client's API key; every chalice test client request carries it."""
    from chalicelib.access import keys

    return keys.create(f"tests-{RUN_ID}").key


def with_key(request, key: str):
    """``chalice.test``'s ``TestHTTPClient.request`` sending ``Authorization: Bearer <key>``
    unless the test sets its own (``{"Authorization": None}`` sends none)."""

    def request_with_key(self, method, path, headers=None, body=b""):
        headers = dict(headers or {})
        if not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {key}"
        headers = {k: v for k, v in headers.items() if v is not None}
        return request(self, method, path, headers=headers, body=body)

    return request_with_key


@pytest.fixture
def settings_env(database, redis_db, queues, api_key, monkeypatch):
    """Everything real: Postgres, Redis and SQS; empty tables and queues for each test;
    the chalice test client authenticated as the default client."""
    from chalice.test import TestHTTPClient

    from chalicelib.orders import store

    monkeypatch.setattr(TestHTTPClient, "request", with_key(TestHTTPClient.request, api_key))
    with store.pool().connection() as conn:
        conn.execute("TRUNCATE order_status_history, orders")
    redis_db.flushdb()
    return get_settings()


@pytest.fixture
def emf():
    """The EMF documents the metrics writer emits meanwhile, parsed."""
    import json

    from chalicelib import metrics

    written: list[str] = []
    metrics.configure(enabled=True, sink=written.append)
    yield lambda: [json.loads(line) for line in written]
    metrics.configure(enabled=False)
