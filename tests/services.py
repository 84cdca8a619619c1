"""Real Postgres, Redis and SQS for the tests that need them, and their fixtures.

Imported by the conftest of each folder whose tests talk to the services (integration,
runtime, web): the unit tests never start or reach one. The first use finds the machine's
Postgres (127.0.0.1:5432) and Redis (:6379), else starts private ones for the run
(``harness.test_services``), and points the engine's settings at them: a database of the run's
own (dropped at the end), Redis db 9, and a moto SQS server started by the ``sqs`` fixture.
"""

import os
import uuid
from functools import cache

import pytest

from harness.test_services import TestServices, find_or_start

RUN_ID = os.environ["TEST_RUN_ID"]  # tests/conftest.py


@cache
def services() -> TestServices:
    """The run's Postgres and Redis, found or started once; the engine is pointed at them."""
    from chalicelib.backends import cache as redis_cache
    from chalicelib.backends import postgres
    from chalicelib.config import get_settings

    found = find_or_start()
    os.environ.setdefault("TEST_POSTGRES_ADMIN_URL", found.database_url("postgres"))
    os.environ.setdefault("TEST_RUNTIME_REDIS_URL", found.redis_url(13))
    os.environ["DATABASE_URL"] = os.environ.get(
        "TEST_DATABASE_URL", found.database_url(f"order_engine_test_{RUN_ID}")
    )
    os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", found.redis_url(9))
    # Whatever read the settings before (a unit test) read them without the services.
    get_settings.cache_clear()
    postgres.close()
    redis_cache.close()
    # Read the settings now: chalice's test client patches a stage's environment variables
    # around each request, and must not change what the engine was configured with.
    get_settings()
    return found


@pytest.fixture(scope="session")
def sqs():
    """A real SQS emulator (the runtime's moto server, LocalStack with ``LOCALAWS_SQS=localstack``,
    or TEST_AWS_ENDPOINT_URL's) with the configured orders queue and its DLQ."""
    services()
    from chalicelib import startup

    if os.environ.get("TEST_AWS_ENDPOINT_URL"):
        yield startup.ensure_queues()
        return
    port = int(os.environ["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    if os.environ.get("LOCALAWS_SQS") == "localstack":  # make test-localstack
        from localaws.servers import LocalStackServer

        server = LocalStackServer(port).start()
        yield startup.ensure_queues()
        server.close()
        return
    from localaws.sqs_server import serve  # in this process: tests may look inside moto

    server = serve(port)
    yield startup.ensure_queues()
    server.shutdown()


@pytest.fixture
def queues(sqs, monkeypatch):
    """A fresh queue and DLQ for one test (SQS allows one purge a minute), used by the engine."""
    from chalicelib import startup
    from chalicelib.backends import queue
    from chalicelib.config import get_settings

    suffix = uuid.uuid4().hex[:8]
    settings = get_settings().updated(
        orders_queue_name=f"orders-{suffix}", orders_dlq_name=f"orders-dlq-{suffix}"
    )
    urls = startup.ensure_queues(settings)
    monkeypatch.setattr(queue, "queue_url", lambda: urls.queue)
    monkeypatch.setattr(queue, "dlq_url", lambda: urls.dlq)
    return urls


@pytest.fixture(scope="session")
def database():
    """A database of this run's own, migrated; dropped at the end."""
    services()
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from chalicelib import startup
    from chalicelib.backends import postgres

    url = os.environ["DATABASE_URL"]
    startup.migrate(url)
    yield url
    postgres.close()
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def redis_db():
    services()
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

    from chalicelib.backends import cache, postgres
    from chalicelib.config import get_settings

    monkeypatch.setattr(TestHTTPClient, "request", with_key(TestHTTPClient.request, api_key))
    with postgres.connection() as conn:
        conn.execute("TRUNCATE order_status_history, orders")
    redis_db.flushdb()
    cache.forget_snapshots()
    return get_settings()
