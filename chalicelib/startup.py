"""Start-up and shut-down of the engine outside a request: what a runtime (the local emulator,
``python -m chalicelib.orders.store migrate``, the benchmarks, the tests) does before serving and
after.

- ``migrate()``: the database and its migrations;
- ``check_dependencies()``: Postgres, Redis and SQS each answer, else one ``StartupError``
  that names the service and the setting that points at it;
- ``ensure_queues()``: the orders queue and its DLQ, as ``queue_setup`` defines them;
- ``requeue_open_orders()``: put every open order on the queue again (a new, empty queue);
- ``dev_api_key(path)``: the development API key kept at ``path``, created when missing;
- ``warm_up(session)``: create this process's AWS clients before its first invocation;
- ``close_clients()``: close this process' Postgres pool and Redis client.

``main`` is ``python -m chalicelib.orders.store migrate`` (``make migrate``).
"""

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chalicelib.access import keys
from chalicelib.backends import cache, queue
from chalicelib.backends.aws import load_management_models, sqs_client
from chalicelib.backends.queue_setup import QueueUrls, create_or_update
from chalicelib.config import Settings, get_settings
from chalicelib.errors import DependencyUnavailable, unavailable_as
from chalicelib.orders import store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    name: str
    setting: str  # the environment variable that points at it
    dependency: str  # its name in ``chalicelib.errors``


POSTGRES = Service("Postgres", "DATABASE_URL", "database")
REDIS = Service("Redis", "REDIS_URL", "redis")
SQS = Service("SQS", "AWS_ENDPOINT_URL", "queue")


class StartupError(RuntimeError):
    """A service the engine needs does not answer."""

    def __init__(self, service: Service, cause: BaseException | None):
        self.service = service
        super().__init__(f"{service.name} ({service.setting}) does not answer: {cause}")


@contextlib.contextmanager
def _answering(service: Service) -> Iterator[None]:
    """Its driver's connection errors (raw or as ``DependencyUnavailable``) as one
    ``StartupError`` that names the service and its setting."""
    try:
        with unavailable_as(service.dependency):
            yield
    except DependencyUnavailable as e:
        raise StartupError(service, e.__cause__ or e) from None


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


def requeue_open_orders() -> int:
    """Send every order not yet terminal to the queue again; how many were sent."""
    order_ids = store.open_order_ids()
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
    store.close()
    cache.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["migrate"]:
        print("usage: python -m chalicelib.orders.store migrate", file=sys.stderr)
        return 2
    logging.basicConfig(level="INFO", format="%(message)s")
    try:
        applied = migrate()
    except StartupError as e:
        print(e, file=sys.stderr)
        return 1
    print("applied:", ", ".join(applied) or "nothing (up to date)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
