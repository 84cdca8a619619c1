"""``GET /api/quote`` latency with two-hop routing, in-process through the Chalice test
client against the bench's Postgres and Redis: every listed pair at $100, $50k and $2M,
once as ``onlyDirectRoutes`` and once as the default (direct, split, two hops, two hops with
splits). Zero venue latency, so the figure is the engine's own work: the key check, the
rate limit, pool reads through the cache, the plan, the quote kept in Redis. Run alone with
``python -m bench --only quote``.
"""

from __future__ import annotations

import os
import statistics
import time
from urllib.parse import urlencode

from bench.limits import _engine
from bench.report import say
from bench.router import EVERY_PAIR, SIZES_USD
from harness.servers import Servers, fresh_database

UI = {"SOL": 1, "USDC": 150, "USDT": 150, "JUP": 200, "BONK": 7_000_000}  # about $150 each


def _paths(direct: bool) -> list[str]:
    paths = []
    for usd in SIZES_USD.values():
        for a, b in EVERY_PAIR:
            query = {"tokenIn": a, "tokenOut": b, "amount": str(UI[a] * usd // 150 or 1)}
            if direct:
                query["onlyDirectRoutes"] = "true"
            paths.append("/api/quote?" + urlencode(query))
    return paths


def _latencies(client, auth: dict, paths: list[str], rounds: int) -> dict:
    samples, refused = [], 0
    for path in paths:  # warm-up: the market's pools, the process cache
        client.http.get(path, headers=auth)
    for _ in range(rounds):
        for path in paths:
            started = time.perf_counter()
            answer = client.http.get(path, headers=auth)
            samples.append((time.perf_counter() - started) * 1000)
            refused += answer.status_code != 200  # a $2M order past the impact cap: 422
    cuts = statistics.quantiles(samples, n=100)
    return {"calls": len(samples), "p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2),
            "refused": refused}  # fmt: skip


def run(args, services: Servers, rounds: int = 3) -> dict:
    os.environ.update(RATE_LIMIT_PER_S="100000", RATE_LIMIT_BURST="100000", LOG_LEVEL="WARNING")
    with fresh_database(services.admin_url) as db:
        _engine(db, services)
        from chalicelib.orders import store

        store.migrate(db)
        from chalice.test import Client

        import app
        from chalicelib.access import keys

        auth = {"Authorization": f"Bearer {keys.create('quote-bench').key}"}
        with Client(app.app, stage_name="local") as client:
            result = {
                "direct": _latencies(client, auth, _paths(direct=True), rounds),
                "multihop": _latencies(client, auth, _paths(direct=False), rounds),
            }
    say(f"GET /api/quote: {result}")
    return result
