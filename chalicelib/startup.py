"""Start-up and shut-down of the engine outside a request: what a runtime (the local emulator,
``python -m chalicelib.store migrate``, the benchmarks, the tests) does before serving and
after.

- ``migrate()``: the database and its migrations;
- ``check_dependencies()``: Postgres, Redis and SQS each answer, else one ``StartupError``
  that names the service and the setting that points at it;
- ``ensure_queues()``: the orders queue and its DLQ, as ``queue_setup`` defines them;
- ``requeue_open_orders()``: put every open order on the queue again (a new, empty queue);
- ``close_clients()``: close this process' Postgres pool and Redis client.

``main`` is ``python -m chalicelib.store migrate`` (``make migrate``).
"""

import logging
import sys

import psycopg
import redis
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import cache, queue, store
from chalicelib.aws import sqs_client
from chalicelib.config import Settings, get_settings
from chalicelib.queue_setup import QueueUrls, create_or_update

log = logging.getLogger(__name__)

POSTGRES = ("Postgres", "DATABASE_URL")
REDIS = ("Redis", "REDIS_URL")
SQS = ("SQS", "AWS_ENDPOINT_URL")


class StartupError(RuntimeError):
    """A service the engine needs does not answer."""

    def __init__(self, service: tuple[str, str], cause: Exception):
        self.service, self.setting = service
        super().__init__(f"{self.service} ({self.setting}) does not answer: {cause}")


def migrate(database_url: str | None = None) -> list[str]:
    """Create the database when missing and apply pending migrations; what was applied."""
    try:
        return store.migrate(database_url)
    except psycopg.OperationalError as e:
        raise StartupError(POSTGRES, e) from None


def check_dependencies() -> None:
    """Postgres (its database must exist: ``migrate`` first), Redis and SQS answer."""
    try:
        store.ping()
    except psycopg.OperationalError as e:
        raise StartupError(POSTGRES, e) from None
    try:
        cache.redis_client().ping()
    except redis.RedisError as e:
        raise StartupError(REDIS, e) from None
    try:
        sqs_client().list_queues(MaxResults=1)
    except (BotoCoreError, ClientError) as e:
        raise StartupError(SQS, e) from None


def ensure_queues(settings: Settings | None = None) -> QueueUrls:
    """Create (or update) the orders queue and its DLQ; idempotent."""
    try:
        return create_or_update(sqs_client(), settings or get_settings())
    except (BotoCoreError, ClientError) as e:
        raise StartupError(SQS, e) from None


def requeue_open_orders() -> int:
    """Send every order not yet terminal to the queue again; how many were sent."""
    order_ids = store.open_order_ids()
    for order_id in order_ids:
        queue.send_order(order_id)
    return len(order_ids)


def close_clients() -> None:
    """Close the Postgres pool and the Redis client, if this process opened them."""
    store.close()
    cache.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["migrate"]:
        print("usage: python -m chalicelib.store migrate", file=sys.stderr)
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
