"""The moves made from outside an order's delivery: cancel, fail, expire.

Each reads the order, records one status from the seq it read (``store.advance``, checked
against ``lifecycle.TRANSITIONS`` for its actor), and reads again when a concurrent status
change won the race, so exactly one terminal status is ever recorded. Then the subscribers
are caught up (``Publisher``: the push wing's ``Notifier``, passed in by the app).
"""

import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

from chalicelib import logs, metrics
from chalicelib.errors import Conflict, OrderNotFound
from chalicelib.orders import lifecycle, store
from chalicelib.orders.lifecycle import Actor, OrderStatus
from chalicelib.orders.records import HistoryRecord, OrderRecord, StatusChange

log = logging.getLogger(__name__)

RACE_RETRIES = 3  # a concurrent status change moves last_seq: read it again this often


class Publisher(Protocol):
    """What pushes an order's statuses to its subscribers (never raises)."""

    def publish(self, order_id, latest: Sequence[HistoryRecord] = ()) -> None:
        """Catch every subscriber of the order up with its history (``latest``: the rows just
        recorded, in seq order, which need not be read back)."""

    def replay(self, order_id, connection_id: str) -> bool:
        """Catch one subscriber up; False to try again later."""


class NotCancellable(Conflict):
    code = "not_cancellable"

    def __init__(self, status: OrderStatus):
        super().__init__(
            f"the order is {status}: only an order not yet submitted can be cancelled",
            {"status": status.value},
        )


def cancel(order_id: str, client_id: uuid.UUID, publisher: Publisher) -> OrderRecord:
    """Cancel the client's order unless it has reached ``submitted``; the order as it is now.
    The one ``advance`` from the seq read decides against a worker; a lost race reads again,
    and refuses once the order has reached ``submitted``."""
    while True:
        order = store.get_order(order_id, client_id)
        if order is None:
            raise OrderNotFound(order_id)
        if not order.status.cancellable:
            raise NotCancellable(order.status)
        change = StatusChange.cancelled(order.status)
        entry = store.advance(order.id, order.status, order.last_seq, change, Actor.CANCEL)
        if entry is not None:
            break
    logs.update(orderId=order_id, status=OrderStatus.CANCELLED)
    log.info("order %s cancelled seq=%d (was %s)", order_id, entry.seq, order.status)
    metrics.count("OrdersCancelled")
    publisher.publish(order_id, [entry])
    if order.linked_order_id is not None:  # one-cancels-the-other: the pair goes together
        cancel_linked(order.linked_order_id, client_id, publisher)
    if order.is_parent:  # its slices not yet sent go with it; later slice messages are no-ops
        for child in store.children(order.id):
            cancel_linked(child.id, client_id, publisher)
    publish_parent(order, publisher)
    return store.get_order(order_id, client_id)


def publish_parent(order: OrderRecord, publisher: Publisher) -> None:
    """A child's end is a history row of its parent's (written with it): push it."""
    if order.parent_order_id is not None:
        publisher.publish(str(order.parent_order_id))


def cancel_linked(order_id, client_id: uuid.UUID, publisher: Publisher) -> None:
    """Cancel the other order of a one-cancels-the-other pair (or a cancelled parent's
    child), if it is still cancellable."""
    for _ in range(RACE_RETRIES):
        order = store.get_order(order_id, client_id)
        if order is None or not order.status.cancellable:
            return
        change = StatusChange.cancelled(order.status)
        entry = store.advance(order.id, order.status, order.last_seq, change, Actor.CANCEL)
        if entry is not None:
            log.info("order %s cancelled with its pair or parent seq=%d", order_id, entry.seq)
            metrics.count("OrdersCancelled")
            publisher.publish(str(order_id), [entry])
            return


def fail(order_id: str, reason: str, code: str, actor: Actor, publisher: Publisher) -> None:
    """Record ``failed`` with the reason (``code``: its short form, for the metric), unless
    the order is already terminal or unknown."""
    with logs.bind(orderId=order_id):
        for _ in range(RACE_RETRIES):
            order = store.get_order(order_id)
            if order is None or order.status.terminal:
                return
            change = StatusChange.failed(reason, order.attempts)
            entry = store.advance(order.id, order.status, order.last_seq, change, actor)
            if entry is not None:
                logs.update(attempt=order.attempts, status=OrderStatus.FAILED, reason=code)
                log.info("order %s failed seq=%d: %s", order_id, entry.seq, reason)
                metrics.count("OrdersFailed", Reason=code)
                publisher.publish(order_id, [entry])
                publish_parent(order, publisher)
                return
        log.error("order %s could not be failed (%s)", order_id, reason)


def trigger(order: OrderRecord, oracle_price, publisher: Publisher) -> bool:
    """Record a stop order's trigger (it stays ``open``, now executable); False when it
    moved on since it was read (amended, cancelled, expired): the next check looks again."""
    change = StatusChange.triggered(order, oracle_price)
    entry = store.advance(order.id, order.status, order.last_seq, change, Actor.LIMIT_CHECK)
    if entry is None:
        return False
    log.info("order %s triggered seq=%d at %s", order.id, entry.seq, oracle_price)
    metrics.count("StopsTriggered")
    publisher.publish(str(order.id), [entry])
    return True


def expire(order_id: str, actor: Actor, publisher: Publisher) -> bool:
    """Record ``expired`` for a waiting order past its expiry; False when it moved on (it
    triggered, or was cancelled) in the meantime."""
    with logs.bind(orderId=order_id):
        for _ in range(RACE_RETRIES):
            order = store.get_order(order_id)
            if order is None or not lifecycle.allowed(order.status, OrderStatus.EXPIRED, actor):
                return False
            change = StatusChange.expired(order.expires_at)
            entry = store.advance(order.id, order.status, order.last_seq, change, actor)
            if entry is not None:
                log.info("order %s expired seq=%d", order_id, entry.seq)
                metrics.count("OrdersExpired")
                publisher.publish(order_id, [entry])
                return True
        return False
