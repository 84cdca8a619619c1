"""Start-up and shut-down of the engine outside a request: what a runtime (the local emulator,
the command line, the benchmarks, the tests) does before serving and after.

- ``migrate()``: the database and its migrations;
- ``check_dependencies()``: Postgres, Redis and SQS each answer, else one ``StartupError``
  that names the service and the setting that points at it;
- ``ensure_queues()``: the orders queue and its DLQ, as ``backends.queue_setup`` defines them;
- ``requeue_live_orders()``: put every live order on the queue again (a new, empty queue);
- ``dev_api_key(path)``: the development API key kept at ``path``, created when missing;
- ``warm_up(session)``: create this process's AWS clients before its first invocation;
- ``close_clients()``: close this process' Postgres pool and Redis client.

Like ``app.py`` and ``__main__``, this module sits above every wing: no wing imports it.
"""

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chalicelib.access import keys
from chalicelib.backends import cache, postgres, queue
from chalicelib.backends.aws import load_management_models, sqs_client
from chalicelib.backends.drivers import Dependency, unavailable_as
from chalicelib.backends.queue_setup import QueueUrls, create_or_update
from chalicelib.config import Settings, get_settings
from chalicelib.errors import DependencyUnavailable
from chalicelib.orders import store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    name: str
    setting: str  # the environment variable that points at it
    dependency: Dependency


POSTGRES = Service("Postgres", "DATABASE_URL", "database")
REDIS = Service("Redis", "REDIS_URL", "redis")
SQS = Service("SQS", "AWS_ENDPOINT_URL", "queue")


class StartupError(DependencyUnavailable):
    """A service the engine needs does not answer."""

    def __init__(self, service: Service, cause: BaseException | str):
        super().__init__(service.dependency, cause)
        self.service = service

    def __str__(self) -> str:
        return f"{self.service.name} ({self.service.setting}) does not answer: {self.cause}"


@contextlib.contextmanager
def _answering(service: Service) -> Iterator[None]:
    """Its driver's connection errors (raw or as ``DependencyUnavailable``) as one
    ``StartupError`` that names the service and its setting."""
    try:
        with unavailable_as(service.dependency):
            yield
    except DependencyUnavailable as e:
        raise StartupError(service, e.__cause__ or e.cause) from None


def migrate(database_url: str | None = None) -> list[str]:
    """Create the database when missing and apply pending migrations; what was applied."""
    with _answering(POSTGRES):
        return store.migrate(database_url)


def check_dependencies() -> None:
    """Postgres (its database must exist: ``migrate`` first), Redis and SQS answer."""
    with _answering(POSTGRES):
        store.ping()
    with _answering(REDIS):
        cache.redis_client().ping()
    with _answering(SQS):
        sqs_client().list_queues(MaxResults=1)


def ensure_queues(settings: Settings | None = None) -> QueueUrls:
    """Create (or update) the orders queue and its DLQ; idempotent."""
    with _answering(SQS):
        return create_or_update(sqs_client(), settings or get_settings())


def requeue_live_orders() -> int:
    """Send every order not yet terminal to the queue again; how many were sent."""
    order_ids = store.live_order_ids()
    for order_id in order_ids:
        queue.send_order(order_id)
    return len(order_ids)


def dev_api_key(path: Path) -> tuple[str, bool]:
    """The development key at ``path`` (a new one when missing or no longer valid); whether
    it was created."""
    with _answering(POSTGRES):
        return keys.dev_key(path)


def warm_up(management_session) -> None:
    """What an execution environment's init phase does once, before its first invocation:
    the SQS client and the WebSocket management API's models. Created lazily instead, they
    appear during the first burst of pushes or replays, by several handler threads at once,
    and stay: memory that looks like a leak after the first WebSocket flood."""
    sqs_client()
    if management_session is not None:  # an app without WebSocket pushes
        load_management_models(management_session)


def close_clients() -> None:
    """Close the Postgres pool and the Redis client, if this process opened them."""
    postgres.close()
    cache.close()
