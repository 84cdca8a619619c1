"""Small views of engine state that only tests need."""

from chalicelib.backends.cache import redis_client


def subscribed_orders(connection_id: str) -> list[str]:
    """The orders a WebSocket connection is subscribed to (its ``ws:conn:`` set in Redis)."""
    return sorted(redis_client().smembers(f"ws:conn:{connection_id}"))
