"""The reaper: no accepted order stays open forever.

Runs every minute (a schedule in AWS, a timer in the local runtime). An order that was
never enqueued (the send failed) or that nobody has touched past the deadline (its worker
died) is sent to the queue again, to resume from its recorded status; one that has used
all its attempts is failed with the reason. A TWAP or DCA parent whose next slice is overdue
(its message was lost) is sent again, to place it.
"""

import logging

from chalicelib import logs
from chalicelib.backends import queue
from chalicelib.config import get_settings
from chalicelib.orders import moves, parents, store
from chalicelib.orders.lifecycle import Actor
from chalicelib.orders.moves import Publisher

log = logging.getLogger(__name__)

STUCK = "stuck"  # the failure reason's code


def run(publisher: Publisher) -> int:
    """Returns how many orders it acted on."""
    settings = get_settings().lifecycle
    stale = store.stale_orders(settings.reaper_deadline_s, settings.unsent_after_s)
    for order in stale:
        order_id = str(order.id)
        with logs.bind(orderId=order_id, attempt=order.attempts, status=order.status):
            # An order in flight has a sent transaction to check, which spends no attempt.
            if order.attempts >= settings.max_attempts and not order.tx_in_flight:
                reason = order.last_error or f"no progress after {order.attempts} attempts"
                moves.fail(order_id, f"stuck: {reason}", STUCK, Actor.REAPER, publisher)
            else:
                log.info("reaper: re-enqueueing order %s (%s)", order_id, order.status)
                queue.send_order(order_id)
                store.touch(order_id)
    return len(stale) + parents.reap(settings.unsent_after_s)
