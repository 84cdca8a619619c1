"""Amend a waiting order: new bounds (limit price, max price, expiry) for an order in ``open``.

An amendment is a move of its own (``open → open`` by ``amend`` in ``lifecycle.TRANSITIONS``):
``store.advance`` sets the new columns and records a history row with the next seq, from the
seq read, so it and a worker taking the order to ``routing`` cannot both win: the worker's
move from the seq it read fails once the amendment is recorded, and an amendment that finds
the order moved on reads again and is refused (409 ``not_amendable``). The order is then sent
to the worker, which checks the new bounds now rather than at the next price move.
"""

import logging
import uuid
from decimal import Decimal

from chalicelib import logs, metrics
from chalicelib.backends import queue
from chalicelib.errors import Conflict, InvalidField, OrderNotFound
from chalicelib.orders import store
from chalicelib.orders.changes import AmendRequest
from chalicelib.orders.lifecycle import Actor, OrderStatus, OrderType
from chalicelib.orders.moves import Publisher
from chalicelib.orders.records import OrderRecord, StatusChange

log = logging.getLogger(__name__)

# Which bounds each waiting type has, by API name and column.
BOUNDS = {
    OrderType.LIMIT: {"limitPrice": "limit_price"},
    OrderType.SNIPER: {"maxPrice": "max_price"},
    OrderType.STOP: {"triggerPrice": "trigger_price", "limitPrice": "limit_price"},
}
COLUMNS = {"limitPrice": "limit_price", "maxPrice": "max_price", "triggerPrice": "trigger_price"}


class NotAmendable(Conflict):
    code = "not_amendable"

    def __init__(self, status: OrderStatus):
        super().__init__(
            f"the order is {status}: only an order waiting in open can be amended",
            {"status": status.value},
        )


def _change(order: OrderRecord, request: AmendRequest, slot_ms: int) -> StatusChange:
    allowed = BOUNDS.get(order.type, {})
    amended, previous, columns = {}, {}, {}
    for name, value in request.prices().items():
        column = COLUMNS[name]
        before = getattr(order, column)
        if name not in allowed or (order.type == OrderType.STOP and before is None):
            raise InvalidField(name, f"this {order.type} order has no {name}")
        amended[name], previous[name] = value, None if before is None else format(before, "f")
        columns[column] = Decimal(value)
    expiry = request.new_expiry(slot_ms)
    if expiry is not None:
        before = order.expires_at
        amended["expiresAt"] = expiry.isoformat()
        previous["expiresAt"] = None if before is None else before.isoformat()
        columns["expires_at"] = expiry
    return StatusChange(OrderStatus.OPEN, {"amended": amended, "previous": previous}, columns)


def amend(
    order_id: str, client_id: uuid.UUID, request: AmendRequest, slot_ms: int,
    publisher: Publisher,
) -> OrderRecord:  # fmt: skip
    """Amend the client's waiting order; the order as it is now."""
    while True:
        order = store.get_order(order_id, client_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.status != OrderStatus.OPEN:
            raise NotAmendable(order.status)
        change = _change(order, request, slot_ms)
        entry = store.advance(order.id, order.status, order.last_seq, change, Actor.AMEND)
        if entry is not None:
            break
    logs.update(orderId=order_id)
    log.info("order %s amended seq=%d: %s", order_id, entry.seq, change.payload["amended"])
    metrics.count("OrdersAmended")
    publisher.publish(order_id, [entry])
    queue.send_order(order_id)  # the new bounds may be met now
    return store.get_order(order_id, client_id)
