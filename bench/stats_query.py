"""``python -m bench.stats_query``: the cost of ``GET /api/stats`` at a million orders, and
the latency of ``GET /api/quote``.

Fills a scratch database (dropped and made again; never the engine's) with synthetic orders
spread over 7 days and their history rows, made by ``generate_series`` in Postgres, then
times each stats statement with ``EXPLAIN ANALYZE`` for a 24h and a 7d window, without and
with the indexes of ``chalicelib/orders/sql/004_stats.sql`` (its derived columns stay). Then calls
``GET /api/quote`` through the Chalice test client (with an API key made in the scratch
database; Redis is ``REDIS_URL``) and reports p50/p99.
"""

import argparse
import os
import re
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# 002_clients_and_keys.sql's client: it owns every synthetic order, so the scoped statements
# read a million orders of one client (the worst case).
LEGACY_CLIENT = uuid.UUID(int=0)
SCRATCH_URL = "postgresql://postgres@127.0.0.1:5432/order_engine_stats_bench"
INDEX_RE = re.compile(r"CREATE INDEX (\w+)[^;]*;")  # the indexes of 004_stats.sql

# 90% confirmed, 5% failed, 5% still open; a fifth of the confirmed ones split.
FILL_ORDERS = """
INSERT INTO orders (id, client_id, status, token_in, token_out, mint_in, mint_out, amount_in,
                    slippage_bps, venues, last_seq, attempts, route, min_out, amount_out,
                    failure_reason, created_at, updated_at)
SELECT gen_random_uuid(), %(client)s, s.status, 'SOL', 'USDC',
       'So11111111111111111111111111111111111111112',
       'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v',
       1500000000, 100, ARRAY['meteora', 'raydium'],
       CASE s.status WHEN 'confirmed' THEN 5 WHEN 'failed' THEN 3 ELSE 2 END, 1,
       CASE WHEN s.status = 'confirmed' THEN jsonb_build_object(
           'kind', CASE WHEN mod(i, 5) = 0 THEN 'split' ELSE 'single' END,
           'outAmount', (220000000::bigint + mod(i, 1000))::text,
           'minOut', ((220000000::bigint + mod(i, 1000)) * 99 / 100)::text,
           'considered', jsonb_build_object('raydium', (219990000 + mod(i, 997))::text,
                                            'meteora', (219980000 + mod(i, 991))::text),
           'legs', CASE WHEN mod(i, 5) = 0
               THEN jsonb_build_array(jsonb_build_object('venue', 'raydium'),
                                      jsonb_build_object('venue', 'meteora'))
               ELSE jsonb_build_array(jsonb_build_object(
                   'venue', CASE WHEN mod(i, 2) = 0 THEN 'raydium' ELSE 'meteora' END)) END)
       END,
       CASE WHEN s.status = 'confirmed' THEN (220000000::bigint + mod(i, 1000)) * 99 / 100 END,
       CASE WHEN s.status = 'confirmed' THEN 220000000::bigint + mod(i, 1000) - mod(i, 300) END,
       CASE WHEN s.status = 'failed' THEN
           (ARRAY['price_impact_too_high: moved', 'output 1 is below the minimum 2'])[mod(i, 2) + 1]
       END,
       now() - (i * interval '7 days' / %(n)s), now() - (i * interval '7 days' / %(n)s)
  FROM generate_series(1, %(n)s) AS i,
       LATERAL (SELECT CASE WHEN mod(i, 20) = 0 THEN 'failed' WHEN mod(i, 20) = 1 THEN 'routing'
                            ELSE 'confirmed' END AS status) AS s
"""
# Every status an order went through, a second or so apart (submit -> confirmed 1-4 s).
FILL_HISTORY = """
INSERT INTO order_status_history (order_id, seq, status, created_at)
SELECT o.id, step.seq, step.status,
       o.created_at + step.seq * (0.2 + (abs(hashtext(o.id::text)) % 60) / 100.0) * interval '1 s'
  FROM orders o
  CROSS JOIN LATERAL unnest(
      CASE o.status
          WHEN 'confirmed' THEN ARRAY['pending', 'routing', 'building', 'submitted', 'confirmed']
          WHEN 'failed' THEN ARRAY['pending', 'routing', 'failed']
          ELSE ARRAY['pending', 'routing'] END
  ) WITH ORDINALITY AS step(status, seq)
"""


def scratch_database(url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    from chalicelib.orders.store import migrate

    migrate(url)


def fill(url: str, n: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(FILL_ORDERS, {"n": n, "client": LEGACY_CLIENT})
        conn.execute(FILL_HISTORY)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE orders")
        conn.execute("VACUUM ANALYZE order_status_history")
    return time.perf_counter() - started


def explain(url: str, window: timedelta) -> dict[str, tuple[float, float]]:
    """Milliseconds of each stats statement: as EXPLAIN ANALYZE measures it (TIMING OFF:
    per-node clocks cost more than the query here), and run for real, at the client (best
    of 3 each)."""
    from chalicelib.orders.stats import statements

    since = datetime.now(UTC) - window
    times = {}
    with psycopg.connect(url) as conn:
        for name, (query, params) in statements(since, LEGACY_CLIENT).items():
            analyzed, wall = [], []
            for _ in range(3):
                plan = conn.execute(
                    sql.SQL("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ") + query, params
                ).fetchone()[0][0]
                analyzed.append(plan["Execution Time"])
                started = time.perf_counter()
                conn.execute(query, params).fetchall()
                wall.append((time.perf_counter() - started) * 1000)
            times[name] = (min(analyzed), min(wall))
    return times


def _indexes_004() -> dict[str, str]:
    from chalicelib.orders.store import MIGRATIONS

    text = (MIGRATIONS / "004_stats.sql").read_text()
    return {m[1]: m[0] for m in INDEX_RE.finditer(text)}


def drop_indexes(url: str) -> None:
    """The columns of 004 stay (the statements read them), its indexes go."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in _indexes_004():
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))


def create_indexes(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for ddl in _indexes_004().values():
            conn.execute(ddl)
        conn.execute("VACUUM ANALYZE orders")
        conn.execute("VACUUM ANALYZE order_status_history")


def quote_latency(calls: int) -> tuple[float, float]:
    """p50 and p99 in ms of ``GET /api/quote`` through the Chalice test client."""
    # A rate limit that never throttles the bench (set before the settings are read).
    os.environ.setdefault("RATE_LIMIT_PER_S", "100000")
    os.environ.setdefault("RATE_LIMIT_BURST", "100000")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # a log line per quote would be timed too
    from chalice.test import Client

    import app
    from chalicelib.access import keys

    auth = {"Authorization": f"Bearer {keys.create('stats-bench').key}"}
    path = "/api/quote?tokenIn=SOL&tokenOut=USDC&amount=1.5&slippageBps=100"
    with Client(app.app, stage_name="local") as client:
        client.http.get(path, headers=auth)  # warm-up: the market, Redis, the key's check
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            answer = client.http.get(path, headers=auth)
            samples.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.json_body
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=SCRATCH_URL)
    parser.add_argument("--quote-calls", type=int, default=200)
    parser.add_argument("--skip-fill", action="store_true", help="reuse the scratch database")
    args = parser.parse_args(argv)
    os.environ.setdefault("DATABASE_URL", args.database_url)
    if not args.skip_fill:
        scratch_database(args.database_url)
        took = fill(args.database_url, args.orders)
        print(f"filled {args.orders} orders and their history in {took:.1f} s")
    windows = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
    drop_indexes(args.database_url)
    before = {w: explain(args.database_url, d) for w, d in windows.items()}
    create_indexes(args.database_url)
    after = {w: explain(args.database_url, d) for w, d in windows.items()}
    print(f"{'statement':<16}{'window':>7}  {'no 004: analyze / wall ms':>26}  {'with 004':>18}")
    for w in windows:
        for name in [*before[w], "total"]:
            b = before[w].get(name) or tuple(map(sum, zip(*before[w].values(), strict=True)))
            a = after[w].get(name) or tuple(map(sum, zip(*after[w].values(), strict=True)))
            print(f"{name:<16}{w:>7}  {b[0]:>16.1f} / {b[1]:>7.1f}  {a[0]:>8.1f} / {a[1]:>7.1f}")
    if args.quote_calls:
        p50, p99 = quote_latency(args.quote_calls)
        latency = os.environ.get("QUOTE_LATENCY_MS", "200 (default)")
        print(
            f"GET /api/quote x{args.quote_calls}: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            f" (QUOTE_LATENCY_MS={latency})"
        )


if __name__ == "__main__":
    main()
