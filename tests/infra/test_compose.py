"""docker-compose.yml, for users with Docker (no engine runs here, so it is read, not run):
the services it starts are where the engine looks by default, and LocalStack is one that starts
without an auth token."""

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from chalicelib.config import default

COMPOSE = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def published(service: str) -> set[tuple[str, int]]:
    """(host address, host port) of each port the service publishes."""
    found = set()
    for mapping in SERVICES[service]["ports"]:
        host, port, _ = mapping.rsplit(":", 2)
        found.add((host, int(port)))
    return found


def test_postgres_and_redis_are_where_the_engine_looks_by_default():
    database = urlsplit(default("database_url"))
    assert published("postgres") == {("127.0.0.1", database.port)}
    environment = SERVICES["postgres"]["environment"]
    assert environment["POSTGRES_DB"] == database.path.lstrip("/")
    assert environment["POSTGRES_USER"] == database.username
    assert published("redis") == {("127.0.0.1", urlsplit(default("redis_url")).port)}


def test_localstack_serves_sqs_on_the_documented_port_from_a_tokenless_release():
    localstack = SERVICES["localstack"]
    assert published("localstack") == {("127.0.0.1", 4566)}  # AWS_ENDPOINT_URL in LOCAL.md
    assert "sqs" in localstack["environment"]["SERVICES"].split(",")
    # 4.14.0: the last image that starts without LOCALSTACK_AUTH_TOKEN; a newer one is chosen
    # with LOCALSTACK_IMAGE, never by a moving tag.
    assert localstack["image"] == "${LOCALSTACK_IMAGE:-localstack/localstack:4.14.0}"


def test_every_service_is_published_on_loopback_only_and_has_a_healthcheck():
    """``docker compose up --wait`` waits for the health checks; nothing listens beyond the host."""
    for name, service in SERVICES.items():
        assert all(host == "127.0.0.1" for host, _ in published(name)), name
        assert service["healthcheck"]["test"], name
