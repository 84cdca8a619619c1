"""Test settings for every test: zero simulated latency, queues and names of the run's own.

The environment is set here, before anything imports ``app.py`` or reads settings. Nothing
here starts or reaches a service: the tests that need Postgres, Redis or SQS get them from
``tests/services.py``, through their folder's conftest.
"""

import logging
import os
import uuid

import pytest
from hypothesis import settings as hypothesis_settings

from localaws.servers import free_port

# Property and fuzz tests draw the same examples on every run, so a red CI is reproducible;
# HYPOTHESIS_PROFILE=explore draws new ones (and more) each time, to hunt for new cases.
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", max_examples=500)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

RUN_ID = os.environ.setdefault("TEST_RUN_ID", uuid.uuid4().hex[:8])
TEST_ENV = {
    # TEST_AWS_ENDPOINT_URL: a running LocalStack (or other SQS) instead of our moto server.
    "AWS_ENDPOINT_URL": os.environ.get("TEST_AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}"),
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "ORDERS_QUEUE_NAME": f"orders-{RUN_ID}",
    "ORDERS_DLQ_NAME": f"orders-dlq-{RUN_ID}",
    "QUOTE_LATENCY_MS": "0",
    "EXEC_LATENCY_MIN_MS": "0",
    "EXEC_LATENCY_MAX_MS": "0",
    # Transactions land at once, for free; the congestion model's own tests turn it on.
    "CONGESTION": "false",
    "DRIFT_TRADES_PER_SLOT": "0",
    "RETRY_BASE_DELAY_S": "0",
    "VISIBILITY_TIMEOUT_S": "5",
    "LEASE_S": "5",
    # Tests post hundreds of orders a second; the rate limit's own test lowers these.
    "RATE_LIMIT_PER_S": "100000",
    "RATE_LIMIT_BURST": "100000",
    # A revoked key is refused at once (tests/unit/test_auth_cache.py tests the cache itself).
    "AUTH_CACHE_TTL_S": "0",
}
os.environ.update(TEST_ENV)
# Until tests/services.py points them at the run's services: nowhere that could answer.
os.environ["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:9/unit_tests_reach_no_database"
os.environ["REDIS_URL"] = "redis://127.0.0.1:9/0"
os.environ.pop("LOCALSTACK_HOST", None)
os.environ.pop("WS_MANAGEMENT_ENDPOINT", None)
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server's access log


@pytest.fixture
def emf():
    """The EMF documents the metrics writer emits meanwhile, parsed."""
    import json

    from chalicelib import metrics

    written: list[str] = []
    metrics.configure(enabled=True, sink=written.append)
    yield lambda: [json.loads(line) for line in written]
    metrics.configure(enabled=False)
