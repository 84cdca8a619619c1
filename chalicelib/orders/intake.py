"""Taking an order in: admission, the idempotent replay, and the first send to the queue.

``submit`` is what ``POST /api/orders/execute`` does once the body is parsed. An
Idempotency-Key names at most one order per client: the same key with the same body answers
that order again (``created`` False), with another body ``IdempotencyConflict`` (``_replay``,
the one place that decides).
"""

import hashlib
import json
import logging
import math
import uuid
from dataclasses import dataclass

from chalicelib import logs, metrics
from chalicelib.backends import queue
from chalicelib.config import get_settings
from chalicelib.errors import DependencyUnavailable, IdempotencyConflict, InvalidInput
from chalicelib.orders import auto_slippage, quotes, store
from chalicelib.orders.models import OrderSpec
from chalicelib.orders.records import OrderRecord, routing_to_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admitted:
    order: OrderRecord
    created: bool  # False: the replay of an Idempotency-Key used before


def fingerprint(spec: OrderSpec) -> str:
    """What makes two bodies the same order, hashed: a replay must match it."""
    routing = routing_to_json(spec.route_options, spec.max_priority_lamports)
    body = {
        "in": [spec.token_in.symbol, spec.token_in.mint],
        "out": [spec.token_out.symbol, spec.token_out.mint],
        "amount": spec.amount,
        **({"swapMode": spec.swap_mode} if spec.amount_out_wanted is not None else {}),
        "bps": spec.slippage_asked,
        "venues": sorted(spec.venues),  # a set: [a, b] and [b, a] are one order
        "quote": spec.quote_id,
        "minOut": spec.min_out,
        "type": spec.type,
        "clientOrderId": spec.client_order_id,
        "limitPrice": spec.limit_price,
        "expiry": spec.expiry,
        "maxPrice": spec.max_price,
        **({"routing": routing} if routing else {}),  # orders of before it hash as they did
        **({"trigger": [spec.trigger_price, spec.trigger_direction]} if spec.trigger_price else {}),
        **(
            {
                "schedule": [
                    spec.slices,
                    spec.interval_s,
                    spec.slice_amount,
                    spec.band_min,
                    spec.band_max,
                ]
            }
            if spec.slices
            else {}
        ),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _replay(order: OrderRecord, request_hash: str) -> Admitted:
    check_replay(order, request_hash)
    return Admitted(order, created=False)


def check_replay(order: OrderRecord, request_hash: str) -> None:
    """``IdempotencyConflict`` unless the key's order was made by the same body."""
    if order.request_hash != request_hash:
        raise IdempotencyConflict(str(order.id))


def retry_after_s() -> int:
    """How long an order usually stays in flight: when a slot may have freed."""
    market = get_settings().market
    return max(1, math.ceil((market.quote_latency_ms + market.exec_latency_max_ms) / 1000))


def submit(spec: OrderSpec, client_id: uuid.UUID, idempotency_key: str | None) -> Admitted:
    request_hash = fingerprint(spec)
    try:
        spec = quotes.bind(spec, client_id)
    except InvalidInput:
        # A key used before answers as it would with a live quote: the retry of an accepted
        # order gets its answer even once its quote has expired, another body a 409.
        known = idempotency_key and store.order_by_idempotency_key(client_id, idempotency_key)
        if known is None:
            raise
        return _replay(known, request_hash)
    spec = quotes.budget(auto_slippage.choose(spec))
    access = get_settings().access
    order, created = store.create_order(
        spec,
        idempotency_key,
        request_hash,
        client_id=client_id,
        limits=store.Admission(
            access.max_orders_in_flight, access.max_open_orders_per_client, retry_after_s()
        ),
    )
    if not created:
        return _replay(order, request_hash)
    logs.update(orderId=str(order.id), status=order.status)
    log.info("order %s accepted", order.id)
    metrics.count("OrdersAccepted")
    enqueue(str(order.id), slice_index=0 if order.is_parent else None)
    return Admitted(order, created=True)


def enqueue(order_id: str, slice_index: int | None = None) -> None:
    """Send the order to the queue. A failed send loses nothing: the order is stored (as
    enqueued, optimistically: ``store.ADMIT``) and is marked unsent for the reaper, which
    sends it again; should that mark fail too, the reaper still finds it untouched, later."""
    try:
        if slice_index is None:
            queue.send_order(order_id)
        else:  # a parent's first slice
            queue.send_order(order_id, slice_index=slice_index)
    except DependencyUnavailable as e:
        log.warning("order %s stored but not enqueued (%s); the reaper will send it", order_id, e)
        try:
            store.mark_unsent(order_id)
        except DependencyUnavailable as again:
            log.warning("order %s not marked unsent (%s)", order_id, again)
