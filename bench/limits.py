"""Limit orders at scale (``--only limits``).

(a) Do open limit orders slow market orders? Bursts of market orders at zero simulated
latency, submit -> confirmed p99, alternately without and with 10,000 open limit orders across
20 pairs (written straight to Postgres, far from triggering, and deleted again), the limit
check job running every ``--limit-check-interval`` seconds all along (and the reaper as
often): 2 by default, a check during every burst (AWS runs it once a minute, in a Lambda of its
own; here it shares a worker process and the two cores with the orders).

(b) What does one check cost? ``limit_check.run`` in this process on the same database, with
10,000 open orders of which 0 / 10 / 100 / 1,000 trigger, and with 1,000 / 10,000 open of which
100 trigger: wall time, the rows its range queries read (``CheckResult.candidates``), and
from ``pg_stat_statements`` every statement's rows and shared buffers touched. The enqueue
of a triggered order (one SQS SendMessage each) is left out: it is counted, not sent.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import psycopg

from bench.pipeline import burst
from bench.postgres import ENGINE_STATEMENTS, MARK, statements_reset
from bench.report import say
from chalicelib.backends import postgres
from harness.servers import Servers, fresh_database

OPEN_ORDERS = 10_000
SYMBOLS = ("WSOL", "USDC", "USDT", "JUP", "BONK")
PAIRS = [(a, b) for a in SYMBOLS for b in SYMBOLS if a != b]  # 20 directed pairs
LEGACY_CLIENT = "00000000-0000-0000-0000-000000000000"  # the migrations' own client
NEVER = 10**12  # a limit price no pool pays (tokenOut per tokenIn, UI units)
ALWAYS = "0.000000000001"  # one any pool pays
COST_RUNS = 5


def insert_open_orders(db: str, total: int, triggered: int) -> None:
    """``total`` waiting limit orders spread over the 20 pairs (a history row each for
    ``pending`` and ``open``), ``triggered`` of them (round the pairs) met by any price."""
    from chalicelib.tokens import resolve

    rows = []
    for i in range(total):
        token_in, token_out = (resolve(s) for s in PAIRS[i % len(PAIRS)])
        price = ALWAYS if i < triggered else str(NEVER + i)
        rows.append((token_in.symbol, token_out.symbol, token_in.mint, token_out.mint,
                     10**token_in.decimals, price))  # fmt: skip
    with psycopg.connect(db, autocommit=True) as conn:
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY orders (id, client_id, type, status, token_in, token_out, mint_in, mint_out,"
                " amount_in, slippage_bps, venues, limit_price, expires_at, last_seq)"
                " FROM STDIN"
            ) as copy,
        ):
            for token_in, token_out, mint_in, mint_out, amount, price in rows:
                copy.write_row((_uuid(), LEGACY_CLIENT, "limit", "open", token_in, token_out,
                                mint_in, mint_out, amount, 100, ["raydium", "meteora"], price,
                                "2100-01-01T00:00:00Z", 2))  # fmt: skip
        conn.execute(
            MARK + "INSERT INTO order_status_history (order_id, seq, status, payload)"
            " SELECT id, s.seq, s.status, '{}'::jsonb FROM orders,"
            " (VALUES (1, 'pending'), (2, 'open')) AS s(seq, status)"
            " WHERE orders.status = 'open' AND orders.client_id = %s"
            " ON CONFLICT DO NOTHING",
            (LEGACY_CLIENT,),
        )
        # Now, not in autovacuum's time during the next burst (30,000 rows just written).
        conn.execute(MARK + "VACUUM ANALYZE orders, order_status_history")


def _uuid():
    import uuid

    return uuid.uuid4()


def clear_open_orders(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            MARK + "DELETE FROM order_status_history WHERE order_id IN"
            " (SELECT id FROM orders WHERE client_id = %s)",
            (LEGACY_CLIENT,),
        )
        conn.execute(MARK + "DELETE FROM orders WHERE client_id = %s", (LEGACY_CLIENT,))
        conn.execute(MARK + "VACUUM ANALYZE orders, order_status_history")


async def market_p99(args, services: Servers, log_dir: Path, settings: dict, db: str) -> dict:
    """(a): bursts of market orders without, then with, the open limit orders."""
    log = log_dir / "runtime-limit_check.log"
    runs: dict[str, list] = {"without": [], "with": []}
    interval = args.limit_check_interval
    with services.runtime(
        db, settings, log, concurrency=args.concurrency, schedule_interval=interval
    ) as rt:
        say("limits: warm-up")
        await burst(rt, db, max(30, args.concurrency * 3), args.concurrency, 0, args.timeout)
        offset = 10_000
        # Runs alternate (without, with, without, ...): the machine's noise drifts over a
        # minute, and alternation spreads it over both sides.
        for i in range(args.runs):
            for label in ("without", "with"):
                if label == "with":
                    await asyncio.to_thread(insert_open_orders, db, OPEN_ORDERS, 0)
                    await asyncio.sleep(min(interval, 5) * 2)  # a check or two has met them
                else:
                    await asyncio.to_thread(clear_open_orders, db)
                offset += args.orders
                statements_reset(db, services.stats)
                _, e2e = await burst(rt, db, args.orders, args.concurrency, offset, args.timeout)
                e2e["top_statements"] = _top_statements(db, services.stats)
                runs[label].append(e2e)
                say(f"limits: market burst {label} open orders, run {i + 1}: "
                    f"p99 {e2e.get('latency_p99_ms')} ms")  # fmt: skip
    p99 = {k: statistics.median(r["latency_p99_ms"] for r in v) for k, v in runs.items()}
    p50 = {k: statistics.median(r["latency_p50_ms"] for r in v) for k, v in runs.items()}
    return {
        "orders_per_burst": args.orders,
        "open_limit_orders": OPEN_ORDERS,
        "pairs": len(PAIRS),
        "check_interval_s": interval,
        "p50_ms": p50,
        "p99_ms": p99,
        "p99_ratio": round(p99["with"] / p99["without"], 3) if p99["without"] else None,
        "runs": {k: [_public(r) for r in v] for k, v in runs.items()},
    }


def _public(e2e: dict) -> dict:
    return {k: v for k, v in e2e.items() if not k.startswith("_")}


def _engine(db: str, services: Servers) -> None:
    """Point this process's engine (settings, Postgres pool, Redis client) at the bench's."""
    from harness.runtime import ZERO_LATENCY

    os.environ.update(DATABASE_URL=db, REDIS_URL=services.redis_url, **ZERO_LATENCY)
    from chalicelib.backends import cache
    from chalicelib.config import get_settings

    postgres.close()
    get_settings.cache_clear()
    cache.redis_client.cache_clear()


def _statements(db: str, stats: bool) -> dict | None:
    if not stats:
        return None
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            MARK + "SELECT coalesce(sum(calls), 0), coalesce(sum(rows), 0),"
            " coalesce(sum(shared_blks_hit + shared_blks_read), 0)" + ENGINE_STATEMENTS
        ).fetchone()
    return {"statements": int(row[0]), "rows": int(row[1]), "buffers": int(row[2])}


def _top_statements(db: str, stats: bool, n: int = 6) -> list[dict]:
    """The statements that took the most Postgres time since the last reset."""
    if not stats:
        return []
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute(
            MARK
            + "SELECT query, calls, total_exec_time, rows, shared_blks_hit + shared_blks_read"
            + ENGINE_STATEMENTS
            + " ORDER BY total_exec_time DESC LIMIT %s",
            (n,),
        ).fetchall()
    return [
        {
            "query": " ".join(q.split())[:140],
            "calls": c,
            "total_ms": round(t, 1),
            "rows": r,
            "buffers": b,
        }  # fmt: skip
        for q, c, t, r, b in rows
    ]


def one_check_cost(db: str, stats: bool) -> dict:
    """``limit_check.run`` ``COST_RUNS`` times, every pair's price taken as moved: medians."""
    from chalicelib.backends import queue
    from chalicelib.backends.cache import redis_client
    from chalicelib.orders import limit_check

    class Notifier:  # nothing expires here: nobody to tell
        def publish(self, order_id) -> None:
            pass

    sent: list[str] = []
    real_send, queue.send_order = (
        queue.send_order,
        lambda order_id, delay_s=0: sent.append(order_id),
    )
    try:
        limit_check.run(Notifier())  # warm: the pools' snapshots in the quote cache
        walls, results, pg = [], [], []
        for _ in range(COST_RUNS):
            redis_client().delete(limit_check.LAST_PRICES)  # every pair's price has moved
            statements_reset(db, stats)
            started = time.perf_counter()
            results.append(limit_check.run(Notifier()))
            walls.append(time.perf_counter() - started)
            pg.append(_statements(db, stats))
    finally:
        queue.send_order = real_send
    cost = {
        "wall_ms": round(statistics.median(walls) * 1000, 1),
        "pairs_moved": results[-1].pairs_moved,
        "candidates": results[-1].candidates,
        "enqueued": results[-1].enqueued,
    }
    if pg[0] is not None:
        for key in pg[0]:
            cost[f"pg_{key}"] = int(statistics.median(p[key] for p in pg))
    return cost


def check_costs(db: str, services: Servers) -> list[dict]:
    """(b): the cost of one check as the triggered orders grow, and as the open ones do."""
    _engine(db, services)
    cases = [(OPEN_ORDERS, k) for k in (0, 10, 100, 1000)] + [(1000, 100)]
    table = []
    for total, triggered in cases:
        clear_open_orders(db)
        insert_open_orders(db, total, triggered)
        cost = one_check_cost(db, services.stats)
        table.append({"open": total, "triggered": triggered, **cost})
        say(f"limits: check with {total} open, {triggered} triggered: {cost}")
    clear_open_orders(db)
    return table


async def run(args, services: Servers, log_dir: Path, settings: dict) -> dict:
    with fresh_database(services.admin_url) as db:
        result = await market_p99(args, services, log_dir, settings, db)
        clear_open_orders(db)
        result["check_cost"] = await asyncio.to_thread(check_costs, db, services)
    return result
