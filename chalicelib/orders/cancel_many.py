"""Cancel many of a client's orders at once: those named, or all (optionally of one pair or
type), in one statement.

The statement locks the client's cancellable orders it selects and moves each to
``cancelled`` with its history row (seq moved on by one): a worker that read the order
before loses its next ``advance`` (it moves only from the seq it read), as against a single
cancel, so exactly one terminal status is ever recorded. An order that reached ``submitted``
first is reported ``not_cancellable`` with its status.
"""

import logging
import uuid
from dataclasses import dataclass

from chalicelib import metrics, tokens
from chalicelib.errors import OrderNotFound
from chalicelib.orders import lifecycle, moves, store
from chalicelib.orders.changes import CancelManyRequest, CancelOutcome, CancelOutcomeKind
from chalicelib.orders.lifecycle import Actor, OrderStatus, OrderType
from chalicelib.orders.models import canonical_order_id
from chalicelib.orders.moves import Publisher
from chalicelib.orders.records import HistoryRecord

log = logging.getLogger(__name__)

CANCELLABLE = [s.value for s in OrderStatus if s in lifecycle.CANCELLABLE]


@dataclass(frozen=True)
class Selection:
    """Which of the client's orders: ``order_ids``, or every one matching the filters."""

    order_ids: tuple[uuid.UUID, ...] | None = None
    mint_in: str | None = None
    mint_out: str | None = None
    type: OrderType | None = None

    @classmethod
    def of(cls, request: CancelManyRequest) -> tuple["Selection", list[str]]:
        """The selection and, in the order given, the ids asked for (each once)."""
        if request.order_ids is not None:
            asked = list(dict.fromkeys(request.order_ids))
            ids = tuple(uuid.UUID(i) for i in asked if canonical_order_id(i))
            return cls(order_ids=ids), asked
        mint_in = request.token_in and tokens.resolve(request.token_in, "tokenIn").mint
        mint_out = request.token_out and tokens.resolve(request.token_out, "tokenOut").mint
        return cls(mint_in=mint_in, mint_out=mint_out, type=request.type), []


_MATCH = """
    client_id = %(client_id)s
    AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
    AND (%(mint_in)s::text IS NULL OR mint_in = %(mint_in)s)
    AND (%(mint_out)s::text IS NULL OR mint_out = %(mint_out)s)
    AND (%(type)s::text IS NULL OR type = %(type)s)
"""

# The locked row is the latest version (READ COMMITTED re-reads a row a concurrent writer
# changed), so ``was`` is the status the cancel moves from.
CANCEL_MANY = f"""
WITH target AS (
    SELECT id, status AS was FROM orders
     WHERE {_MATCH} AND status = ANY(%(cancellable)s) AND NOT {{family}}
     ORDER BY id
       FOR UPDATE
), moved AS (
    UPDATE orders o
       SET status = 'cancelled', last_seq = o.last_seq + 1, lease_until = NULL,
           updated_at = now()
      FROM target
     WHERE o.id = target.id AND o.status = ANY(%(cancellable)s)
 RETURNING o.id, o.last_seq, target.was
)
INSERT INTO order_status_history (order_id, seq, status, payload)
SELECT id, last_seq, 'cancelled', jsonb_build_object('from', was) FROM moved
RETURNING order_id, seq, status, payload, created_at
"""

# A parent (TWAP, DCA) or its child: cancelled one by one, as by its own route (a parent's
# children go with it, a child's end is a row of its parent's).
FAMILY = f"(type IN ({store.PARENT_TYPES}) OR parent_order_id IS NOT NULL)"
CANCEL_MANY = CANCEL_MANY.format(family=FAMILY)
FAMILY_SQL = f"""
    SELECT id FROM orders WHERE {_MATCH} AND status = ANY(%(cancellable)s) AND {FAMILY}
     ORDER BY parent_order_id NULLS FIRST, id
"""

OTHERS = f"SELECT id, status FROM orders WHERE {_MATCH} AND NOT (id = ANY(%(done)s::uuid[]))"


def cancel_many(
    request: CancelManyRequest, client_id: uuid.UUID, publisher: Publisher
) -> list[CancelOutcome]:
    """Cancel the selected orders of the client; one outcome per order asked for (for
    ``all``: per order cancelled, and per live order matched that could not be)."""
    for status in lifecycle.CANCELLABLE:
        lifecycle.check(status, OrderStatus.CANCELLED, Actor.CANCEL)
    selection, asked = Selection.of(request)
    params = {
        "client_id": client_id,
        "ids": None if selection.order_ids is None else list(selection.order_ids),
        "mint_in": selection.mint_in,
        "mint_out": selection.mint_out,
        "type": None if selection.type is None else str(selection.type),
        "cancellable": CANCELLABLE,
    }
    rows = store.write_rows(CANCEL_MANY, params)
    done = {str(r["order_id"]): HistoryRecord.from_row(r) for r in rows}
    for order_id, entry in done.items():
        publisher.publish(order_id, [entry])
    done |= _cancel_family(params, client_id, publisher)
    others = _others(params, list(done), everything=selection.order_ids is not None)
    _cancel_pairs(list(done), client_id, publisher)
    if done:
        metrics.count("OrdersCancelled", len(done))
        log.info("cancelled %d orders of client %s", len(done), client_id)
    cancelled = [CancelOutcome(orderId=i, outcome=CancelOutcomeKind.CANCELLED,
                               status=OrderStatus.CANCELLED) for i in done]  # fmt: skip
    refused = {
        i: CancelOutcome(orderId=i, outcome=CancelOutcomeKind.NOT_CANCELLABLE, status=s)
        for i, s in others.items()
    }
    if not asked:  # all: what was cancelled, then what could not be
        return cancelled + list(refused.values())
    by_id = {o.orderId: o for o in cancelled} | refused
    missing = CancelOutcomeKind.NOT_FOUND
    return [by_id.get(i) or CancelOutcome(orderId=i, outcome=missing) for i in asked]


def _cancel_family(params: dict, client_id: uuid.UUID, publisher: Publisher) -> dict:
    """The selected parents (with their children) and children, each by ``moves.cancel``."""
    done = {}
    for row in store.query(FAMILY_SQL, params):
        order_id = str(row["id"])
        if order_id in done:
            continue
        try:
            order = moves.cancel(order_id, client_id, publisher)
        except (moves.NotCancellable, OrderNotFound):
            continue
        done[order_id] = store.history(order.id, since=order.last_seq - 1)[0]
        if order.is_parent:
            for child in store.children(order.id):
                if child.status == OrderStatus.CANCELLED:
                    done.setdefault(str(child.id), store.history(child.id, child.last_seq - 1)[0])
    return done


def _cancel_pairs(done: list[str], client_id: uuid.UUID, publisher: Publisher) -> None:
    """The other order of each one-cancels-the-other pair cancelled here goes with it."""
    rows = store.query(
        "SELECT linked_order_id FROM orders WHERE id = ANY(%s::uuid[])"
        " AND linked_order_id IS NOT NULL",
        (done,),
    )
    for row in rows:
        moves.cancel_linked(row["linked_order_id"], client_id, publisher)


def _others(params: dict, done: list[str], everything: bool) -> dict[str, OrderStatus]:
    """The selected orders not cancelled, with their statuses: every one named, or (for
    ``all``) the live ones."""
    query = OTHERS if everything else f"{OTHERS} AND {store.LIVE}"
    rows = store.query(query, {**params, "done": done})
    return {str(r["id"]): OrderStatus(r["status"]) for r in rows}
