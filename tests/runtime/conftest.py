"""Fixtures for tests that run the local runtime as a subprocess (``harness.runtime``).

They use the Postgres and Redis tests/services.py found or started: a fresh database per
run, dropped at the end, and a Redis db index of their own. SQS is the runtime's own
embedded moto server.
"""

import os

import pytest
import redis

from harness.runtime import engine_env
from harness.servers import fresh_database
from tests.services import services

# The servers tests/services.py found or started; a Redis db index of the runtime tests' own.
services()
ADMIN_URL = os.environ["TEST_POSTGRES_ADMIN_URL"]
REDIS_URL = os.environ["TEST_RUNTIME_REDIS_URL"]


@pytest.fixture(scope="session")
def runtime_database():
    """The URL of a database created for this run (the runtime migrates it)."""
    with fresh_database(ADMIN_URL, "order_engine_runtime") as url:
        yield url


@pytest.fixture(scope="session")
def runtime_redis():
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def runtime_env(runtime_database, runtime_redis):
    """``runtime_env(**settings)``: a runtime's environment on this run's database and Redis."""
    return lambda **settings: engine_env(
        DATABASE_URL=runtime_database, REDIS_URL=REDIS_URL, **settings
    )
