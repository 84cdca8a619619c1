"""The orders in Postgres: orders, their status history, idempotency, leases.

Every status change is one transaction (shared with the other orders of its SQS batch:
``commit_group``, each change in a savepoint of its own) that moves ``orders.last_seq``
forward by one (only from the status and seq the caller read) and inserts the matching
history row, with ``UNIQUE(order_id, seq)`` behind it: a redelivered or concurrent worker can
never write a status twice or out of order, and a terminal order never changes again. A move
``lifecycle.TRANSITIONS`` does not have is refused before any SQL runs.

The migrations are in ``sql/`` (``python -m chalicelib migrate``).
"""

import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from chalicelib.backends import postgres
from chalicelib.backends.drivers import unavailable_as
from chalicelib.config import get_settings
from chalicelib.errors import DuplicateClientOrderId, InvalidInput, TooManyOpenOrders
from chalicelib.orders import commit_group, lifecycle
from chalicelib.orders.lifecycle import Actor, OrderStatus
from chalicelib.orders.models import OrderSpec
from chalicelib.orders.records import HistoryRecord, OrderRecord, StatusChange, routing_to_json

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "sql"
# Columns a status change (or ``update_fields``) may set besides status itself.
ORDER_FIELDS = (
    "route",
    "min_out",
    "tx_hash",
    "tx_lands_at",
    "executed_price",
    "amount_out",
    "failure_reason",
    "last_error",
    "limit_price",  # an amendment's (``amend``)
    "max_price",
    "expires_at",
    "trigger_price",
    "amount_in",  # an exact-output order's, once it confirmed: what it spent
    "fee_lamports",  # a sent transaction's landing (``records.landing_columns``)
    "compute_units",
    "landing_slots",
    "triggered_at",  # a stop order's trigger (``limit_check``)
    "next_slice",  # a parent's schedule (``parents``)
    "next_slice_at",
)


def _statuses(statuses: frozenset[OrderStatus]) -> str:
    # In the enum's order, as the partial indexes of migrations 005 and 007 name them: the
    # planner uses such an index for a query whose clause is the index's own.
    return ", ".join(f"'{s.value}'" for s in OrderStatus if s in statuses)


LIVE = f"status NOT IN ({_statuses(lifecycle.TERMINAL)})"  # the orders that may still change
IN_FLIGHT = f"status IN ({_statuses(lifecycle.IN_FLIGHT)})"  # what the queue and workers carry
PARENT_TYPES = ", ".join(f"'{t.value}'" for t in lifecycle.PARENT_TYPES)
ADMISSION_LOCK = 7132  # pg_advisory_xact_lock(ADMISSION_LOCK, client): one admission at a time


def _fetch(conn, query, params, one: bool):
    cur = conn.execute(query, params)
    return cur.fetchone() if one else cur.fetchall()


def _query(query, params=(), *, one=False):
    with postgres.connection() as conn:
        return _fetch(conn, query, params, one)


def _write(work: commit_group.Work):
    """``work(conn)``, one statement: in the batch's shared transaction when this thread's
    order is one of an SQS batch's (``commit_group``), else committed alone."""
    group = commit_group.current()
    if group is None:
        with postgres.connection() as conn:
            return work(conn)
    with unavailable_as("database"):
        return group.run(work)


def _write_query(query, params=(), *, one=False):
    return _write(lambda conn: _fetch(conn, query, params, one))


def new_commit_group() -> commit_group.CommitGroup:
    """A group for the writes of an SQS batch's orders (``worker.process_batch``)."""
    return commit_group.CommitGroup(postgres.transaction, postgres.connection)


def query(statement, params=()) -> list[dict]:
    """Rows of a read-only statement, as dicts (for reports such as ``chalicelib.orders.stats``)."""
    return _query(statement, params)


def write_rows(statement, params=()) -> list[dict]:
    """Rows a writing statement returns (one statement: it commits alone)."""
    return _write_query(statement, params)


def _order(row: dict | None) -> OrderRecord | None:
    return None if row is None else OrderRecord.from_row(row)


# -- migrations ---------------------------------------------------------------------------


def migrate(database_url: str | None = None) -> list[str]:
    """Create the database when missing and apply pending migrations; what was applied."""
    url = database_url or get_settings().storage.database_url
    return postgres.apply_migrations(url, MIGRATIONS)


# -- orders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    """The limits a new order is admitted under (``TooManyOpenOrders`` beyond)."""

    max_in_flight: int  # engine-wide, orders in flight
    max_live_per_client: int  # per client, orders not yet terminal
    retry_after_s: int  # what the 429 tells the client to wait


def create_order(
    spec: OrderSpec,
    idempotency_key: str | None,
    request_hash: str,
    *,
    client_id: uuid.UUID,
    limits: Admission,
) -> tuple[OrderRecord, bool]:
    """Insert the client's order and its ``pending`` history row in one transaction.

    Returns ``(order, created)``. A reused idempotency key (the client's own) returns the
    order it made first (``created`` False; ``intake`` compares the bodies). The unique index
    decides between concurrent duplicates, not a read before the write.
    Only a new order counts against the limits (``TooManyOpenOrders``): a retry of an
    accepted one still gets its answer. The client's count is exact: its admissions take
    one transaction-scoped lock in turn: it counts every order of the client not yet terminal,
    waiting ones too. ``limits.max_in_flight`` is an engine-wide ceiling on the orders in flight
    (``IN_FLIGHT``), the backlog of the queue and the workers; orders waiting in ``open``
    take neither, so they never keep another client's market order out. It is counted
    without that lock: concurrent clients may pass it by the number admitted at the same
    moment (and far below it the count may be a second old: ``_over_ceiling``).
    """
    duplicate = DuplicateClientOrderId(spec.client_order_id)
    values = _admit_values(spec, uuid.uuid4(), idempotency_key, request_hash, client_id)
    # (A replay of the same Idempotency-Key never meets that index: the other one is the
    # insert's arbiter.) One round trip: the statements are pipelined.
    with (
        postgres.unique_violation_as("orders_client_order_id_idx", duplicate),
        postgres.transaction(pipeline=True) as conn,
    ):
        # The lock first, in a statement of its own: the next one's snapshot, taken once
        # it is held, sees every admission of the client before it.
        conn.execute("SELECT pg_advisory_xact_lock(%(lock)s, hashtext(%(client)s))", values)
        row = conn.execute(ADMIT, values).fetchone()
        if row["id"] is None:  # the key's order exists
            existing = conn.execute(
                "SELECT * FROM orders WHERE client_id = %s AND idempotency_key = %s",
                (client_id, idempotency_key),
            ).fetchone()
            return OrderRecord.from_row(existing), False
        if row["live"] > limits.max_live_per_client:  # the order's own counted: rolls back
            raise TooManyOpenOrders(limits.max_live_per_client, "client", limits.retry_after_s)
        if _over_ceiling(conn, limits.max_in_flight):
            raise TooManyOpenOrders(limits.max_in_flight, "engine", limits.retry_after_s)
    return OrderRecord.from_row(row), True


def create_linked_pair(
    first: OrderSpec,
    second: OrderSpec,
    idempotency_key: str | None,
    request_hash: str,
    *,
    client_id: uuid.UUID,
    limits: Admission,
) -> tuple[OrderRecord, OrderRecord, bool]:
    """Insert two orders that name each other (one-cancels-the-other) in one transaction,
    under the same admission as ``create_order``. The key is the first order's; a replay
    returns the pair it made (``created`` False)."""
    first_id, second_id = uuid.uuid4(), uuid.uuid4()
    values = _admit_values(first, first_id, idempotency_key, request_hash, client_id, second_id)
    other = _admit_values(second, second_id, None, request_hash, client_id, first_id)
    with (
        postgres.unique_violation_as(
            "orders_client_order_id_idx", DuplicateClientOrderId(first.client_order_id)
        ),
        postgres.transaction() as conn,
    ):
        conn.execute("SELECT pg_advisory_xact_lock(%(lock)s, hashtext(%(client)s))", values)
        row = conn.execute(ADMIT, values).fetchone()
        if row["id"] is None:
            existing = OrderRecord.from_row(conn.execute(
                "SELECT * FROM orders WHERE client_id = %s AND idempotency_key = %s",
                (client_id, idempotency_key),
            ).fetchone())  # fmt: skip
            linked = conn.execute(
                "SELECT * FROM orders WHERE id = %s", (existing.linked_order_id,)
            ).fetchone()
            return existing, OrderRecord.from_row(linked), False
        second_row = conn.execute(ADMIT, other).fetchone()
        if second_row["live"] > limits.max_live_per_client:
            raise TooManyOpenOrders(limits.max_live_per_client, "client", limits.retry_after_s)
        if _over_ceiling(conn, limits.max_in_flight):
            raise TooManyOpenOrders(limits.max_in_flight, "engine", limits.retry_after_s)
    return OrderRecord.from_row(row), OrderRecord.from_row(second_row), True


def _admit_values(
    spec: OrderSpec, order_id: uuid.UUID, idempotency_key: str | None, request_hash: str,
    client_id: uuid.UUID, linked_id: uuid.UUID | None = None,
) -> dict:  # fmt: skip
    pending = StatusChange.pending(spec)
    return {
        "id": order_id, "client_id": client_id, "token_in": spec.token_in.symbol,
        "token_out": spec.token_out.symbol, "mint_in": spec.token_in.mint,
        "mint_out": spec.token_out.mint, "amount_in": spec.amount_in,
        "slippage_bps": spec.slippage_bps, "venues": list(spec.venues),
        "idempotency_key": idempotency_key, "request_hash": request_hash,
        "min_out": spec.min_out, "type": str(spec.type), "client_order_id": spec.client_order_id,
        "limit_price": spec.limit_price, "expires_at": spec.expires_at,
        "max_price": spec.max_price, "payload": Jsonb(pending.payload),
        "trigger_price": spec.trigger_price, "trigger_direction": spec.trigger_direction,
        "linked_order_id": linked_id, "lock": ADMISSION_LOCK, "client": str(client_id),
        "slices": spec.slices, "interval_s": spec.interval_s, "slice_amount": spec.slice_amount,
        "band_min": spec.band_min, "band_max": spec.band_max,
        "route_options": _jsonb(routing_to_json(spec.route_options, spec.max_priority_lamports)),
        "swap_mode": spec.swap_mode, "amount_out_wanted": spec.amount_out_wanted,
    }  # fmt: skip


def _jsonb(value: dict | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


# The order, its ``pending`` history row and the client's live orders, counted with the new
# one, in one statement. ``enqueued_at`` is set now, optimistically: a failed send clears it
# (``mark_unsent``), so the reaper sends it after ``unsent_after_s``; a crash before the send
# leaves an order nobody touches, which the reaper sends after ``reaper_deadline_s``.
ADMIT = f"""
WITH live AS (
    SELECT count(*) + 1 AS n FROM orders WHERE client_id = %(client_id)s AND {LIVE}
), admitted AS (
    INSERT INTO orders (id, client_id, status, token_in, token_out, mint_in, mint_out,
                        amount_in, slippage_bps, venues, idempotency_key, request_hash,
                        min_out, type, client_order_id, limit_price, expires_at, max_price,
                        trigger_price, trigger_direction, linked_order_id, slices, interval_s,
                        slice_amount, band_min, band_max, route_options, swap_mode,
                        amount_out_wanted, enqueued_at)
    VALUES (%(id)s, %(client_id)s, 'pending', %(token_in)s, %(token_out)s, %(mint_in)s,
            %(mint_out)s, %(amount_in)s, %(slippage_bps)s, %(venues)s, %(idempotency_key)s,
            %(request_hash)s, %(min_out)s, %(type)s, %(client_order_id)s, %(limit_price)s,
            %(expires_at)s, %(max_price)s, %(trigger_price)s, %(trigger_direction)s,
            %(linked_order_id)s, %(slices)s, %(interval_s)s, %(slice_amount)s, %(band_min)s,
            %(band_max)s, %(route_options)s, %(swap_mode)s, %(amount_out_wanted)s, now())
    ON CONFLICT (client_id, idempotency_key) DO NOTHING
    RETURNING *
), pending AS (
    INSERT INTO order_status_history (order_id, seq, status, payload)
    SELECT id, 1, 'pending', %(payload)s FROM admitted
)
SELECT admitted.*, live.n AS live FROM live LEFT JOIN admitted ON true
"""


# The engine-wide ceiling is approximate (concurrent admissions may pass it together). Far
# below it, a count read in this process within IN_FLIGHT_COUNT_TTL_S stands in for counting
# every order in flight at each admission: during a burst of thousands that count reads as
# many index entries, inside the client's admission lock, and so held up every admission of
# the client behind it. Within a margin of the ceiling (a tenth of it, at least MIN_MARGIN
# orders) it counts each time.
IN_FLIGHT_COUNT_TTL_S = 1.0
MIN_MARGIN = 100
_in_flight_count: tuple[int, float] = (0, float("-inf"))  # (count, time.monotonic() read)


def _over_ceiling(conn, max_in_flight: int) -> bool:
    global _in_flight_count
    count, read_at = _in_flight_count
    margin = max(max_in_flight // 10, MIN_MARGIN)
    if time.monotonic() - read_at < IN_FLIGHT_COUNT_TTL_S and count + margin < max_in_flight:
        return False
    count = _count_in_flight(conn)
    _in_flight_count = (count, time.monotonic())
    return count > max_in_flight


def order_by_idempotency_key(client_id: uuid.UUID, key: str) -> OrderRecord | None:
    return _order(
        _query(
            "SELECT * FROM orders WHERE client_id = %s AND idempotency_key = %s",
            (client_id, key),
            one=True,
        )
    )


def _insert_history(conn, order_id: uuid.UUID, seq: int, change: StatusChange) -> None:
    conn.execute(
        "INSERT INTO order_status_history (order_id, seq, status, payload) VALUES (%s, %s, %s, %s)",
        (order_id, seq, change.status.value, Jsonb(change.payload)),
    )


def mark_unsent(order_id) -> None:
    """The order's first send failed: the reaper sends it after ``unsent_after_s``."""
    _query("UPDATE orders SET enqueued_at = NULL WHERE id = %s RETURNING id", (order_id,))


def _uuid(order_id) -> uuid.UUID | None:
    try:
        return order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(str(order_id))
    except ValueError:
        return None


def watch(order_id) -> None:
    """Mark the order watched (``orders.watched``), committed before the caller records a
    subscription: from then on its status writes say so, and their pushes look for
    subscribers."""
    _write_query(
        "UPDATE orders SET watched = true WHERE id = %s AND NOT watched RETURNING id",
        (_uuid(order_id),),
        one=True,
    )


def get_order(order_id, client_id: uuid.UUID | None = None) -> OrderRecord | None:
    """The order (the client's, when one is given), or None for an unknown or malformed id."""
    oid = _uuid(order_id)
    if oid is None:
        return None
    if client_id is None:
        return _order(_query("SELECT * FROM orders WHERE id = %s", (oid,), one=True))
    return _order(
        _query("SELECT * FROM orders WHERE id = %s AND client_id = %s", (oid, client_id), one=True)
    )


def history(order_id, since: int = 0) -> list[HistoryRecord]:
    oid = _uuid(order_id)
    if oid is None:
        return []
    rows = _query(
        "SELECT seq, status, payload, created_at FROM order_status_history"
        " WHERE order_id = %s AND seq > %s ORDER BY seq",
        (oid, since),
    )
    return [HistoryRecord.from_row(r) for r in rows]


# A page's cursor: the last order's created_at (microseconds since the epoch) and id, as
# "<micros>.<hex id>". Any value of this shape is a valid cursor, so the API's schema says
# exactly what is accepted.
CURSOR_PATTERN = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
_CURSOR_RE = re.compile(CURSOR_PATTERN, re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_cursor(order: OrderRecord) -> str:
    micros = (order.created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{order.id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """``InvalidInput`` for a value that is not a cursor."""
    if not _CURSOR_RE.fullmatch(cursor):
        raise InvalidInput("malformed cursor", code="invalid_query")
    micros, oid = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=oid)


def list_orders(
    status: str | None,
    limit: int,
    cursor: str | None,
    client_id: uuid.UUID | None = None,
    client_order_id: str | None = None,
) -> tuple[list[OrderRecord], str | None]:
    """Newest first (the client's, when one is given), keyset-paged on (created_at, id)."""
    where, params = [], []
    if client_id is not None:
        where.append("client_id = %s")
        params.append(client_id)
    if client_order_id is not None:
        where.append("client_order_id = %s")
        params.append(client_order_id)
    if status:
        where.append("status = %s")
        params.append(status)
    if cursor is not None:  # an empty one is malformed too
        where.append("(created_at, id) < (%s, %s)")
        params.extend(decode_cursor(cursor))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = _query(
        f"SELECT * FROM orders {clause} ORDER BY created_at DESC, id DESC LIMIT %s",
        (*params, limit + 1),
    )
    orders = [OrderRecord.from_row(r) for r in rows]
    next_cursor = _encode_cursor(orders[limit - 1]) if len(orders) > limit else None
    return orders[:limit], next_cursor


def live_order_ids() -> list[str]:
    """Every order not yet terminal, oldest first."""
    rows = _query(f"SELECT id FROM orders WHERE {LIVE} ORDER BY created_at")
    return [str(r["id"]) for r in rows]


def _count_in_flight(conn) -> int:
    return conn.execute(f"SELECT count(*) AS n FROM orders WHERE {IN_FLIGHT}").fetchone()["n"]


def _count_live(conn, client_id: uuid.UUID) -> int:
    return conn.execute(
        f"SELECT count(*) AS n FROM orders WHERE client_id = %s AND {LIVE}", (client_id,)
    ).fetchone()["n"]


# -- the worker's side ---------------------------------------------------------------------


def is_leased(order_id) -> bool:
    """A worker holds the order right now (its lease has not run out)."""
    row = _query(
        "SELECT lease_until > now() AS leased FROM orders WHERE id = %s",
        (_uuid(order_id),),
        one=True,
    )
    return bool(row and row["leased"])


def claim(order_id, lease_s: int) -> OrderRecord | None:
    """Take the order and hold a lease: for one more attempt (``attempts`` bumped), or, while
    its transaction is in flight, to check whether it landed (no attempt spent).

    None when the order is terminal, unknown, or leased by another worker.
    """
    claimed = claim_and_start(order_id, lease_s, max_attempts=0)
    return None if claimed is None else claimed[0]


def claim_and_start(
    order_id, lease_s: int, max_attempts: int
) -> tuple[OrderRecord, HistoryRecord | None] | None:
    """``claim``; and a market order still ``pending``, with attempts left, moves to
    ``routing`` in the same statement (the first status of its attempt: one commit fewer).
    The ``routing`` history row comes back with the order (None when it did not move)."""
    lifecycle.check(OrderStatus.PENDING, OrderStatus.ROUTING, Actor.WORKER)
    row = _write_query(CLAIM, {"lease_s": lease_s, "id": _uuid(order_id),
                               "max_attempts": max_attempts}, one=True)  # fmt: skip
    if row is None:
        return None
    started = row["routing_seq"] is not None
    entry = HistoryRecord(
        row["routing_seq"], OrderStatus.ROUTING, row["routing_payload"], row["routing_at"],
        row["watched"],
    ) if started else None  # fmt: skip
    return OrderRecord.from_row(row), entry


# A claim; for a market order's first attempt, with its ``routing`` status and history row.
CLAIM = f"""
WITH target AS (
    SELECT id, status = 'pending' AND type = 'market' AND attempts < %(max_attempts)s AS starts
      FROM orders
     WHERE id = %(id)s AND {LIVE} AND (lease_until IS NULL OR lease_until < now())
       AND type NOT IN ({PARENT_TYPES})
       FOR UPDATE
), claimed AS (
    UPDATE orders o
       SET lease_until = now() + make_interval(secs => %(lease_s)s),
           attempts = attempts + (tx_lands_at IS NULL)::int, updated_at = now(),
           status = CASE WHEN target.starts THEN 'routing' ELSE status END,
           last_seq = last_seq + target.starts::int
      FROM target
     WHERE o.id = target.id
 RETURNING o.*, target.starts
), routing AS (
    INSERT INTO order_status_history (order_id, seq, status, payload)
    SELECT id, last_seq, 'routing',
           jsonb_build_object('venues', to_jsonb(venues), 'attempt', attempts)
      FROM claimed WHERE starts
 RETURNING seq, payload, created_at
)
SELECT claimed.*, routing.seq AS routing_seq, routing.payload AS routing_payload,
       routing.created_at AS routing_at
  FROM claimed LEFT JOIN routing ON true
"""


def _assignments(columns: dict[str, Any]) -> tuple[list[sql.Composable], list[Any]]:
    unknown = set(columns) - set(ORDER_FIELDS) - {"lease_until"}
    if unknown:
        raise ValueError(f"not an order field: {unknown}")
    sets = [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in columns]
    values = [Jsonb(v) if k == "route" else v for k, v in columns.items()]
    return sets, values


def advance(
    order_id, from_status: OrderStatus, from_seq: int, change: StatusChange, actor: Actor
) -> HistoryRecord | None:
    """Record one status change, made by ``actor``, and its history row; returns the row.

    ``IllegalTransition`` when ``lifecycle.TRANSITIONS`` has no such move for the actor.
    None when the order moved on since ``from_seq`` was read, or is terminal: the caller lost
    a race with another delivery and must stop.
    """
    lifecycle.check(from_status, change.status, actor)
    if not change.status.terminal:
        return _write(lambda conn: _advance_in(conn, order_id, from_status, from_seq, change))

    def work(conn):  # a child's end settles its parent in the same transaction
        with conn.transaction():
            return _advance_in(conn, order_id, from_status, from_seq, change)

    return _write(work)


def _advance_in(
    conn, order_id, from_status: OrderStatus, from_seq: int, change: StatusChange
) -> HistoryRecord | None:
    """The order's row and its history row in one statement (one commit alone)."""
    columns = dict(change.columns)
    if change.status.terminal:
        columns["lease_until"] = None
    sets, values = _assignments(columns)
    statement = sql.SQL(
        "WITH moved AS (UPDATE orders SET status = %s, last_seq = last_seq + 1,"
        " updated_at = now(){extra} WHERE id = %s AND last_seq = %s AND status = %s"
        " RETURNING id, last_seq, watched, parent_order_id, slice_index, amount_in,"
        " amount_out, executed_price, failure_reason),"
        " written AS (INSERT INTO order_status_history (order_id, seq, status, payload)"
        " SELECT id, last_seq, %s, %s FROM moved RETURNING seq, status, payload, created_at)"
        " SELECT written.*, moved.* FROM written, moved"
    ).format(extra=sql.SQL("").join(sql.SQL(", ") + s for s in sets))
    status, payload = change.status.value, Jsonb(change.payload)
    params = (status, *values, _uuid(order_id), from_seq, from_status.value, status, payload)
    row = conn.execute(statement, params).fetchone()
    if row is None:
        return None
    if change.status.terminal and row["parent_order_id"] is not None:
        _child_ended(conn, row)
    return HistoryRecord.from_row(row)


def advance_linked(
    order_id, linked_id, from_status: OrderStatus, from_seq: int, change: StatusChange,
    actor: Actor,
) -> tuple[HistoryRecord | None, HistoryRecord | None]:  # fmt: skip
    """``advance`` for an order of a one-cancels-the-other pair starting to execute: in one
    transaction, with both rows locked (in id order, so two such moves never deadlock), the
    order moves and the other, still waiting, is ``cancelled`` (by ``oco``). Returns both
    history rows; (None, None) when the order moved on since ``from_seq`` (the other one
    started first, and cancelled it) or the other is executing already."""
    lifecycle.check(from_status, change.status, actor)
    oid, lid = _uuid(order_id), _uuid(linked_id)

    def work(conn):
        with conn.transaction():
            rows = conn.execute(
                "SELECT id, status, last_seq FROM orders WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                ([oid, lid],),
            ).fetchall()
            other = next((r for r in rows if r["id"] == lid), None)
            other_status = None if other is None else OrderStatus(other["status"])
            cancels = other_status is not None and lifecycle.allowed(
                other_status, OrderStatus.CANCELLED, Actor.OCO
            )
            if other_status is not None and not cancels and not other_status.terminal:
                return None, None  # the other one is executing
            entry = _advance_in(conn, oid, from_status, from_seq, change)
            if entry is None or not cancels:
                return entry, None
            cancel = StatusChange(
                OrderStatus.CANCELLED, {"from": other_status.value, "ocoExecuted": str(oid)}
            )
            return entry, _advance_in(conn, lid, other_status, other["last_seq"], cancel)

    return _write(work)


# -- parent orders (TWAP, DCA) ------------------------------------------------------------

# What a parent's children did: counted and summed over its children (one index range).
PARENT_FILL = f"""
SELECT count(*) AS children,
       count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE {LIVE}) AS live,
       coalesce(sum(amount_in) FILTER (WHERE status = 'confirmed'), 0)::bigint AS filled_in,
       coalesce(sum(amount_out) FILTER (WHERE status = 'confirmed'), 0)::bigint AS filled_out
  FROM orders WHERE parent_order_id = %s
"""

# Slice ``slice`` of a parent as a market order of its own (its client, pair, slippage,
# venues and routing choices), with its ``pending`` row; nothing when the slice exists already.
PLACE_CHILD = """
WITH child AS (
    INSERT INTO orders (id, client_id, status, token_in, token_out, mint_in, mint_out,
                        amount_in, slippage_bps, venues, type, parent_order_id, slice_index,
                        route_options, enqueued_at)
    SELECT %(id)s, client_id, 'pending', token_in, token_out, mint_in, mint_out, %(amount)s,
           slippage_bps, venues, 'market', id, %(slice)s, route_options, now()
      FROM orders WHERE id = %(parent)s
    ON CONFLICT ON CONSTRAINT orders_parent_slice_key DO NOTHING
    RETURNING *
), pending AS (
    INSERT INTO order_status_history (order_id, seq, status, payload)
    SELECT id, 1, 'pending', %(payload)s FROM child
)
SELECT * FROM child
"""


def place_slice(
    parent: OrderRecord, index: int, change: StatusChange, child_payload: dict | None
) -> tuple[list[HistoryRecord], OrderRecord | None] | None:
    """Slice ``index`` of ``parent`` in one transaction: the parent moves to ``working``
    (its first slice), records ``change`` (the slice placed, or skipped: the next slice and
    when, in its columns) from the seq read, and, with a ``child_payload``, its child is
    inserted, unless one exists for the slice. A parent whose last slice is skipped and whose
    children all ended is settled in it too. None when the parent moved on since it was read
    (another delivery placed the slice, or it was cancelled): nothing is written."""
    lifecycle.check(OrderStatus.PENDING, OrderStatus.WORKING, Actor.WORKER)
    lifecycle.check(OrderStatus.WORKING, OrderStatus.WORKING, Actor.WORKER)
    result = None

    def work(conn):
        nonlocal result
        with conn.transaction():
            entries, status, seq = [], parent.status, parent.last_seq
            if status == OrderStatus.PENDING:
                start = StatusChange(
                    OrderStatus.WORKING,
                    {"slices": parent.slices, "intervalSeconds": parent.interval_s},
                )
                entry = _advance_in(conn, parent.id, status, seq, start)
                if entry is None:
                    raise psycopg.Rollback()
                entries.append(entry)
                status, seq = OrderStatus.WORKING, entry.seq
            entry = _advance_in(conn, parent.id, status, seq, change)
            if entry is None:
                raise psycopg.Rollback()
            entries.append(entry)
            child = None
            if child_payload is not None:
                row = conn.execute(PLACE_CHILD, {
                    "id": uuid.UUID(child_payload["orderId"]), "parent": parent.id,
                    "slice": index, "amount": int(child_payload["amountIn"]),
                    "payload": Jsonb(child_payload),
                }).fetchone()  # fmt: skip
                if row is None:  # the slice has its child already: the parent's row lied
                    log.error("parent %s slice %d placed twice; refused", parent.id, index)
                    raise psycopg.Rollback()
                child = OrderRecord.from_row(row)
            else:
                settled = _settle_in(conn, parent.id, Actor.WORKER)
                entries.extend([settled] if settled else [])
            result = entries, child

    _write(work)
    return result


def settle(parent_id) -> HistoryRecord | None:
    """Record a parent's end (``completed``, or ``failed`` when every child failed) if every
    slice was placed and every child ended; None otherwise, or when it ended already."""
    lifecycle.check(OrderStatus.WORKING, OrderStatus.COMPLETED, Actor.WORKER)

    def work(conn):
        with conn.transaction():
            return _settle_in(conn, _uuid(parent_id), Actor.WORKER)

    return _write(work)


def _settle_in(conn, parent_id, actor: Actor) -> HistoryRecord | None:
    parent = conn.execute(
        "SELECT status, last_seq, next_slice, slices FROM orders WHERE id = %s FOR UPDATE",
        (parent_id,),
    ).fetchone()
    if parent["status"] != OrderStatus.WORKING or parent["next_slice"] < parent["slices"]:
        return None
    fill = conn.execute(PARENT_FILL, (parent_id,)).fetchone()
    if fill["live"]:
        return None
    every_failed = fill["children"] > 0 and fill["failed"] == fill["children"]
    ended = OrderStatus.FAILED if every_failed else OrderStatus.COMPLETED
    lifecycle.check(OrderStatus.WORKING, ended, actor)
    payload = {
        "children": fill["children"], "confirmed": fill["confirmed"], "failed": fill["failed"],
        "skipped": parent["next_slice"] - fill["children"],
        "filledAmountIn": str(fill["filled_in"]), "filledAmountOut": str(fill["filled_out"]),
    }  # fmt: skip
    columns = {"amount_out": fill["filled_out"]}
    if every_failed:
        payload["reason"] = columns["failure_reason"] = "every child order failed"
    change = StatusChange(ended, payload, columns)
    return _advance_in(conn, parent_id, OrderStatus.WORKING, parent["last_seq"], change)


def _child_ended(conn, child: dict) -> None:
    """A child's terminal status, in its transaction: a history row of the parent's with the
    fill (or the failure), and the parent settled if that was the last. A parent that ended
    (cancelled) records nothing more."""
    parent = conn.execute(
        "SELECT id, status, last_seq FROM orders WHERE id = %s FOR UPDATE",
        (child["parent_order_id"],),
    ).fetchone()
    if parent is None or parent["status"] != OrderStatus.WORKING:
        return
    lifecycle.check(OrderStatus.WORKING, OrderStatus.WORKING, Actor.CHILD)
    ended = {"orderId": str(child["id"]), "slice": child["slice_index"],
             "status": child["status"], "amountIn": str(child["amount_in"])}  # fmt: skip
    if child["amount_out"] is not None:
        ended["amountOut"] = str(child["amount_out"])
    if child["executed_price"] is not None:
        ended["executedPrice"] = format(child["executed_price"], "f")
    if child["failure_reason"] is not None:
        ended["reason"] = child["failure_reason"]
    change = StatusChange(OrderStatus.WORKING, {"child": ended})
    _advance_in(conn, parent["id"], OrderStatus.WORKING, parent["last_seq"], change)
    _settle_in(conn, parent["id"], Actor.CHILD)


def children(parent_id) -> list[OrderRecord]:
    rows = _query(
        "SELECT * FROM orders WHERE parent_order_id = %s ORDER BY slice_index", (_uuid(parent_id),)
    )
    return [OrderRecord.from_row(r) for r in rows]


def parent_fill(parent_id) -> dict:
    return _query(PARENT_FILL, (_uuid(parent_id),), one=True)


def overdue_parents(grace_s: int, limit: int = 100) -> list[str]:
    """Parents working whose next slice is overdue by ``grace_s`` (its message was lost: a
    worker died between the slice's commit and its send), or all of whose slices are placed
    and still not settled: each is marked due now (so the next run waits again)."""
    rows = _write_query(
        "UPDATE orders SET next_slice_at = now() WHERE id IN (SELECT id FROM orders"
        " WHERE status = 'working' AND next_slice_at < now() - make_interval(secs => %s)"
        " ORDER BY next_slice_at LIMIT %s) RETURNING id",
        (grace_s, limit),
    )
    return [str(r["id"]) for r in rows]


def release_waiting(order_id, lease: datetime, error: str | None = None) -> bool:
    """A waiting order checked and still waiting (its limit unmet, its pool not trading, or a
    venue's transient fault, ``error``): give up the lease and the attempt the claim counted
    (waiting is no attempt), and count the check, and the faults in a row (a check without
    one starts them over). False when the order is no longer ``open``
    (it moved on to ``routing``, or ended), or ``lease`` (the claim's ``lease_until``) is no
    longer held: then the caller's attempt was a real one, or is another's now."""
    row = _write_query(
        "UPDATE orders SET lease_until = NULL, attempts = greatest(attempts - 1, 0),"
        " waiting_checks = waiting_checks + 1, last_error = coalesce(%s, last_error),"
        " waiting_faults = CASE WHEN %s::text IS NULL THEN 0 ELSE waiting_faults + 1 END,"
        " updated_at = now() WHERE id = %s AND status = 'open' AND lease_until = %s"
        " RETURNING id",
        (error, error, _uuid(order_id), lease),
        one=True,
    )
    return row is not None


def waiting_pairs() -> list[tuple[str, str]]:
    """The (mint_in, mint_out) pairs with limit orders waiting: a loose index scan, one
    probe of ``orders_waiting_limit_idx`` per pair, not a read of every waiting order."""
    rows = _query(
        """
        WITH RECURSIVE pairs AS (
            (SELECT mint_in, mint_out FROM orders WHERE status = 'open'
              ORDER BY mint_in, mint_out LIMIT 1)
            UNION ALL
            SELECT next.mint_in, next.mint_out FROM pairs, LATERAL (
                SELECT mint_in, mint_out FROM orders
                 WHERE status = 'open' AND (mint_in, mint_out) > (pairs.mint_in, pairs.mint_out)
                 ORDER BY mint_in, mint_out LIMIT 1) AS next
        )
        SELECT mint_in, mint_out FROM pairs
        """
    )
    return [(r["mint_in"], r["mint_out"]) for r in rows]


# The limit orders of a pair that a price meets (limit_price <= price), one page in index
# order after the (limit_price, id) the last page ended at: one range read of
# orders_waiting_limit_idx (mint_in, mint_out, limit_price, id) that starts where the last one
# stopped, so paging through every triggered order reads each row once.
TRIGGERED_SQL = """
    SELECT * FROM orders
     WHERE status = 'open' AND mint_in = %(mint_in)s AND mint_out = %(mint_out)s
       AND limit_price <= %(price)s AND (trigger_price IS NULL OR triggered_at IS NOT NULL)
       AND (mint_in, mint_out, limit_price, id)
           > (%(mint_in)s, %(mint_out)s, %(after_price)s, %(after_id)s)
     ORDER BY mint_in, mint_out, limit_price, id
     LIMIT %(limit)s
"""
TRIGGERED_PAGE = 1000


def triggered_orders(
    mint_in: str, mint_out: str, price, page: int | None = None
) -> Iterator[list[OrderRecord]]:
    """Every waiting limit order of the pair that ``price`` meets, in pages of ``page``."""
    page = page or TRIGGERED_PAGE
    after_price, after_id = 0, uuid.UUID(int=0)  # limit_price > 0 (a CHECK constraint)
    while True:
        params = {"mint_in": mint_in, "mint_out": mint_out, "price": price,
                  "after_price": after_price, "after_id": after_id, "limit": page}  # fmt: skip
        orders = [OrderRecord.from_row(r) for r in _query(TRIGGERED_SQL, params)]
        if orders:
            yield orders
        if len(orders) < page:
            return
        after_price, after_id = orders[-1].limit_price, orders[-1].id


# The stop orders of a pair the oracle price has crossed, one direction: one range read of
# orders_waiting_stop_idx (mint_in, mint_out, trigger_direction, trigger_price, id).
_STOPS_CROSSED = {
    "below": "trigger_price >= %(price)s",  # the price fell to the trigger (or below)
    "above": "trigger_price <= %(price)s",
}
STOPS_SQL = """
    SELECT * FROM orders
     WHERE status = 'open' AND triggered_at IS NULL AND trigger_price IS NOT NULL
       AND mint_in = %(mint_in)s AND mint_out = %(mint_out)s AND trigger_direction = %(direction)s
       AND {crossed}
     ORDER BY mint_in, mint_out, trigger_direction, trigger_price, id
     LIMIT %(limit)s
"""


def crossed_stops(mint_in: str, mint_out: str, price, limit: int = 1000) -> list[OrderRecord]:
    """The waiting stop orders of the pair whose trigger ``price`` has crossed (at most
    ``limit`` per direction: each is triggered, so the next run reads the rest)."""
    found = []
    for direction, crossed in _STOPS_CROSSED.items():
        params = {"mint_in": mint_in, "mint_out": mint_out, "direction": direction,
                  "price": price, "limit": limit}  # fmt: skip
        rows = _query(STOPS_SQL.format(crossed=crossed), params)
        found.extend(OrderRecord.from_row(r) for r in rows)
    return found


def sniper_line_head(mint_out: str) -> OrderRecord | None:
    """The oldest sniper order for the token that has not finished: its turn, or the one
    whose turn it is (pending, or executing)."""
    return _order(
        _query(
            "SELECT * FROM orders WHERE type = 'sniper' AND mint_out = %s"
            " AND status IN ('pending', 'open', 'routing', 'building', 'submitted')"
            " ORDER BY created_at, id LIMIT 1",
            (mint_out,),
            one=True,
        )
    )


def expired_orders(limit: int = 1000) -> list[OrderRecord]:
    """Waiting limit orders whose time has run out."""
    rows = _query(
        "SELECT * FROM orders WHERE status = 'open' AND expires_at <= now()"
        " ORDER BY expires_at LIMIT %s",
        (limit,),
    )
    return [OrderRecord.from_row(r) for r in rows]


def update_fields(order_id, lease: datetime, **columns) -> bool:
    """Set columns of an open order without a status change (e.g. a resubmitted
    transaction's hash) while the caller holds ``lease`` (its claim's ``lease_until``): a
    worker whose lease ran out and was taken by another delivery changes nothing, and a
    terminal order never changes. False when nothing changed."""
    sets, values = _assignments(columns)
    rows = _write_query(
        sql.SQL(
            f"UPDATE orders SET {{}}, updated_at = now() WHERE id = %s AND {LIVE}"
            " AND lease_until = %s RETURNING id"
        ).format(sql.SQL(", ").join(sets)),
        (*values, _uuid(order_id), lease),
    )
    return bool(rows)


def release(order_id, lease: datetime, error: str | None = None) -> bool:
    """Give up the lease of an open order (the next delivery may claim at once), if the
    caller still holds it (``lease``: its claim's ``lease_until``). With an ``error`` the
    attempt failed: it is noted, and a transaction in flight is given up on. False when
    nothing changed (the order ended, or another delivery holds it now)."""
    rows = _write_query(
        "UPDATE orders SET lease_until = NULL, last_error = coalesce(%s, last_error),"
        " tx_lands_at = CASE WHEN %s::text IS NULL THEN tx_lands_at END,"
        f" updated_at = now() WHERE id = %s AND {LIVE} AND lease_until = %s RETURNING id",
        (error, error, _uuid(order_id), lease),
    )
    return bool(rows)


def stale_orders(deadline_s: int, unsent_after_s: int, limit: int = 100) -> list[OrderRecord]:
    """Open orders nobody is working on: never enqueued, or untouched past the deadline.
    A limit order waiting in ``open`` is the limit check job's (it enqueues or expires it)."""
    rows = _query(
        f"""
        SELECT * FROM orders
         WHERE {IN_FLIGHT}
           AND (lease_until IS NULL OR lease_until < now())
           AND ((enqueued_at IS NULL AND created_at < now() - make_interval(secs => %s))
                OR updated_at < now() - make_interval(secs => %s))
         ORDER BY updated_at
         LIMIT %s
        """,
        (unsent_after_s, deadline_s, limit),
    )
    return [OrderRecord.from_row(r) for r in rows]


def touch(order_id) -> None:
    """Note that an open order was sent again (the reaper); a terminal order never changes."""
    _query(
        "UPDATE orders SET updated_at = now(), enqueued_at = coalesce(enqueued_at, now())"
        f" WHERE id = %s AND {LIVE} RETURNING id",
        (_uuid(order_id),),
    )


def ping() -> None:
    _query("SELECT 1", one=True)
