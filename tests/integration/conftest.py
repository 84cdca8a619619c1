"""Fixtures shared by the integration tests: the Chalice app on real Postgres, Redis and SQS."""

import json

import pytest
from chalice.test import Client

from tests.services import (  # noqa: F401 - fixtures
    api_key,
    database,
    queues,
    redis_db,
    settings_env,
    sqs,
)


@pytest.fixture
def app_module(settings_env):  # noqa: F811 - the fixture imported above
    import app

    return app


@pytest.fixture
def client(app_module):
    with Client(app_module.app, stage_name="local") as c:
        yield c


def post(client, body: dict, key: str | None = None):
    headers = {"content-type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    return client.http.post("/api/orders/execute", headers=headers, body=json.dumps(body))
