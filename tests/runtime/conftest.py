"""Fixtures for tests that run the local runtime as a subprocess.

They need the machine's Postgres (127.0.0.1:5432) and Redis (127.0.0.1:6379): a fresh
database per run, dropped at the end, and a Redis db index of their own. SQS is the
runtime's own embedded moto server.
"""

import uuid

import psycopg
import pytest
import redis
from psycopg import sql

from tests.runtime.harness import ADMIN_URL, REDIS_URL


@pytest.fixture(scope="session")
def runtime_database():
    """The URL of a database created for this run (the runtime migrates it)."""
    name = f"order_engine_runtime_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def runtime_redis():
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
