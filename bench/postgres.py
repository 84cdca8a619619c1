"""Postgres, as the benchmarks read it: when each order reached each status, and the
statements, transactions and rows one order costs."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import psycopg

from harness import client
from harness.orders import TERMINAL
from harness.runtime import Runtime
from localaws.sqs_server import CALLS_PATH

IDLE_S = 6.0  # the quiet stretch that gives the idle rate of transactions
MARK = "/* bench */ "  # the benchmark's own queries, told apart in pg_stat_statements
# pg_stat_statements rows of this database's statements, the benchmark's own left out.
ENGINE_STATEMENTS = (
    " FROM pg_stat_statements"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND query NOT LIKE '/* bench */%%'"
)


# Transactions the bench itself ran (each of its statements is one, in autocommit): taken
# off pg_stat_database's count, which has every client's.
own_transactions = 0


def count_terminal(database_url: str, ids: list[str]) -> int:
    global own_transactions
    own_transactions += 2  # a connection's start-up is a transaction too
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            MARK + "SELECT count(*) FROM orders WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)",
            (ids, list(TERMINAL)),
        ).fetchone()[0]


async def wait_terminal(database_url: str, ids: list[str], timeout_s: float, interval_s=0.25):
    """Wait until every order is terminal; returns how many are (bounded by ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    done = 0
    while time.monotonic() < deadline:
        done = await asyncio.to_thread(count_terminal, database_url, ids)
        if done >= len(ids):
            break
        await asyncio.sleep(interval_s)
    return done


def lifecycle_times(database_url: str, ids: list[str]) -> list[dict]:
    """Per order: its final status and when each status was recorded (Postgres' clock)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            MARK + "SELECT h.order_id::text, o.status, h.status, "
            "extract(epoch FROM h.created_at)::float8 "
            "FROM order_status_history h JOIN orders o ON o.id = h.order_id "
            "WHERE h.order_id = ANY(%s::uuid[]) ORDER BY h.order_id, h.seq",
            (ids,),
        ).fetchall()
    orders: dict[str, dict] = {}
    for order_id, final, status, at in rows:
        entry = orders.setdefault(order_id, {"id": order_id, "status": final, "at": {}})
        entry["at"][status] = at
    return list(orders.values())


def pg_counters(db: str) -> dict:
    global own_transactions
    own_transactions += 4
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(MARK + "SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            MARK + "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
            " tup_fetched, sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        tables = conn.execute(
            MARK + "SELECT relname, n_tup_ins, n_tup_upd, seq_scan, idx_scan"
            " FROM pg_stat_user_tables"
        ).fetchall()
    names = (
        "xact_commit",
        "xact_rollback",
        "tup_inserted",
        "tup_updated",
        "tup_deleted",
        "tup_fetched",
        "sessions",
    )
    counters = dict(zip(names, row, strict=True))
    for relname, ins, upd, seq, idx in tables:
        counters[f"{relname}.ins"] = ins
        counters[f"{relname}.upd"] = upd
        counters[f"{relname}.scans"] = (seq or 0) + (idx or 0)
    return counters


def statements_reset(db: str, stats: bool) -> None:
    if not stats:
        return
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(MARK + "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(MARK + "SELECT pg_stat_statements_reset()")


def statements_read(db: str) -> list[tuple[str, int]]:
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute(
            MARK + "SELECT query, calls" + ENGINE_STATEMENTS + " ORDER BY calls DESC"
        ).fetchall()


def redis_commands(redis_url: str | None) -> dict[str, int] | None:
    """Commands the Redis server has processed (all clients), by command and in all
    (``"total"``), or None without a URL."""
    if redis_url is None:
        return None
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        counts = {
            name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in client.info("commandstats").items()
        }
        counts["total"] = int(client.info("stats")["total_commands_processed"])
        return counts
    finally:
        client.close()


def sqs_calls(sqs_url: str | None) -> dict[str, int] | None:
    """SQS calls the runtime's SQS server has served, by call, or None without one that counts
    them (the runtime's own, or LocalStack)."""
    if sqs_url is None:
        return None
    try:
        with urllib.request.urlopen(sqs_url.rstrip("/") + CALLS_PATH, timeout=5) as answer:
            return json.load(answer)
    except urllib.error.HTTPError:  # not our moto server
        return None


async def statements_per_order(
    rt: Runtime,
    db: str,
    n: int,
    stats: bool,
    timeout: float,
    redis_url: str | None = None,
    sqs_url: str | None = None,
    clients: int = 10,
    offset: int = 0,
):
    await asyncio.sleep(11.0)  # earlier work's counters reach pg_stat_database first
    # The idle rate (scheduled jobs, autovacuum) over a quiet stretch, taken off the window's.
    idle_from, idle_started = pg_counters(db), time.monotonic()
    await asyncio.sleep(IDLE_S)
    statements_reset(db, stats)
    before, started = pg_counters(db), time.monotonic()
    own_before = own_transactions
    idle_per_s = (before["xact_commit"] - idle_from["xact_commit"] - 4) / (started - idle_started)
    redis_before = redis_commands(redis_url)
    sqs_before = sqs_calls(sqs_url)
    answers, _ = await client.submit_many(rt.http, n, min(clients, n), offset=offset)
    ids = [a.order_id for a in answers if a.status == 202]
    await wait_terminal(db, ids, timeout)
    # An idle backend flushes its pg_stat_database counters within 10 s (PostgreSQL 15's
    # PGSTAT_IDLE_INTERVAL); pg_stat_statements counts at once.
    await asyncio.sleep(11.0)
    after, ended = pg_counters(db), time.monotonic()
    redis_after = redis_commands(redis_url)
    sqs_after = sqs_calls(sqs_url)
    per_order = {k: round((after[k] - before.get(k, 0)) / len(ids), 2) for k in after}
    own = own_transactions - own_before - 4  # the "after" read's are not in its own count
    window = after["xact_commit"] - before["xact_commit"]
    engine = window - own - max(0.0, idle_per_s) * (ended - started)
    result = {
        "orders": len(ids),
        "clients": min(clients, n),
        "source": "pg_stat_database + pg_stat_user_tables deltas",
        # The window's, less the bench's own and the idle rate (the orders' work alone).
        "transactions_per_order": round(engine / len(ids), 2),
        "transactions_window_per_order": round(window / len(ids), 2),
        "idle_transactions_per_s": round(idle_per_s, 2),
        "rows_inserted_per_order": per_order["tup_inserted"],
        "rows_updated_per_order": per_order["tup_updated"],
        "counters_per_order": per_order,
    }
    if redis_before is not None and redis_after is not None:
        # Every client's commands over the window (the bench's own INFO calls included).
        per = {
            name: round((calls - redis_before.get(name, 0)) / len(ids), 2)
            for name, calls in redis_after.items()
            if calls != redis_before.get(name, 0)
        }
        result["redis_commands_per_order"] = round(per.pop("total", 0), 1)
        result["redis_commands_by_name"] = dict(sorted(per.items(), key=lambda kv: -kv[1]))
    if sqs_before is not None and sqs_after is not None:
        # Every caller's: the HTTP function's sends, the pollers' receives and deletes (Lambda's
        # event source mapping in AWS), the worker's own sends (landing checks, retries).
        per = {
            name: round((calls - sqs_before.get(name, 0)) / len(ids), 2)
            for name, calls in sqs_after.items()
            if calls != sqs_before.get(name, 0)
        }
        idle = per.pop("receive_message_empty", 0)
        result["sqs_calls_per_order"] = round(sum(per.values()), 2)
        result["sqs_empty_receives_per_order"] = idle
        result["sqs_calls_by_name"] = dict(sorted(per.items(), key=lambda kv: -kv[1]))
    if stats:
        merged: dict[str, int] = {}
        for query, calls in statements_read(db):  # one text may have several query ids
            text = " ".join(query.split())[:160]
            merged[text] = merged.get(text, 0) + calls
        rows = sorted(merged.items(), key=lambda r: -r[1])
        total = sum(merged.values())
        result["source"] = "pg_stat_statements (BEGIN/COMMIT included) + pg_stat_database"
        result["statements_per_order"] = round(total / len(ids), 2)
        result["top_statements"] = [
            {"calls_per_order": round(calls / len(ids), 2), "query": query}
            for query, calls in rows[:16]
        ]
    return result
