"""``python -m bench`` (``make bench``): the engine's numbers on this machine.

Starts its own Postgres (a throwaway cluster with ``pg_stat_statements``), Redis and SQS
(moto, in a process of its own) on free ports, runs the local runtime against them, and
measures, after a warm-up, over several runs (medians reported):

- ``POST /api/orders/execute``: latency p50/p99 and requests/s, 10 closed-loop clients;
- end to end with zero simulated latency (the engine's own overhead): orders/s and
  submit -> confirmed latency of a burst, the latency of one order alone, and the
  workers' drain rate from a pre-filled queue;
- end to end with the default latency (quote 200 ms, execution 2-3 s) at 10 concurrent
  invocations, against the 100 orders/minute target;
- WebSocket push latency: status recorded in Postgres -> received by a client;
- Postgres statements and transactions per order;
- the router micro-benchmark (``bench/router.py``).

Results: a table on stdout, ``bench/results/bench-<time>.json`` (and ``latest.json``), a
PNG of the distributions when matplotlib is installed. See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg

from bench import client
from bench.client import MARK, percentile
from bench.runtime import DEFAULT_LATENCY, ZERO_LATENCY, Runtime, fresh_database
from bench.services import Services, machine

RESULTS = Path(__file__).parent / "results"
TARGET_PER_MIN = 100  # the reference design: 100 orders/minute at 10 concurrent workers


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", type=int, default=3, help="measured runs per phase (median kept)")
    p.add_argument("--orders", type=int, default=300, help="orders per zero-latency burst")
    p.add_argument(
        "--latency-orders",
        type=int,
        default=200,
        help="orders per default-latency burst (each followed over WebSocket)",
    )
    p.add_argument("--single-orders", type=int, default=20, help="orders sent one at a time")
    p.add_argument("--drain-orders", type=int, default=200, help="orders pre-queued per drain")
    p.add_argument(
        "--concurrency",
        type=int,
        default=10,
        help="HTTP clients, and the runtime's concurrent SQS invocations",
    )
    p.add_argument("--router-seconds", type=float, default=3.0)
    p.add_argument("--quick", action="store_true", help="one run, small batches (a smoke test)")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["zero", "single", "drain", "default", "statements", "router"],
    )
    p.add_argument(
        "--database-url",
        help="an admin URL of an existing Postgres to use instead "
        "of a private cluster (statements then come from pg_stat_database)",
    )
    p.add_argument(
        "--redis-url", help="an existing Redis (its db is flushed) instead of a private one"
    )
    p.add_argument(
        "--embedded-sqs",
        action="store_true",
        help="the runtime's own in-process moto server instead of a separate process",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for a batch")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.orders, args.latency_orders = 1, 60, 40
        args.single_orders, args.drain_orders, args.router_seconds = 5, 60, 1.0
    return args


# -- measurements ----------------------------------------------------------------------------


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def peak_in_flight(times: list[dict]) -> int:
    """Most orders between ``routing`` and their terminal status at one instant."""
    edges = []
    for o in times:
        start, end = o["at"].get("routing"), o["at"].get(o["status"])
        if start is not None and end is not None:
            edges += [(start, 1), (end, -1)]
    peak = current = 0
    for _, delta in sorted(edges, key=lambda e: (e[0], e[1])):
        current += delta
        peak = max(peak, current)
    return peak


def e2e_stats(times: list[dict], expected: int) -> dict:
    finished = [o for o in times if o["status"] in ("confirmed", "failed")]
    confirmed = [o["at"]["confirmed"] - o["at"]["pending"] for o in times if "confirmed" in o["at"]]
    if not finished:
        return {"terminal": 0, "expected": expected}
    span = max(o["at"][o["status"]] for o in finished) - min(o["at"]["pending"] for o in finished)
    return {
        "expected": expected,
        "terminal": len(finished),
        "confirmed": len(confirmed),
        "failed": sum(o["status"] == "failed" for o in finished),
        "orders_per_s": round(len(finished) / span, 2) if span > 0 else None,
        "latency_p50_ms": ms(percentile(confirmed, 50)),
        "latency_p99_ms": ms(percentile(confirmed, 99)),
        "peak_in_flight": peak_in_flight(finished),
        "_latencies_s": confirmed,
    }


def submit_stats(answers: list[client.Submitted], wall: float) -> dict:
    latencies = [a.latency_s for a in answers]
    codes: dict[str, int] = {}
    for a in answers:
        codes[str(a.status)] = codes.get(str(a.status), 0) + 1
    return {
        "requests": len(answers),
        "status_codes": codes,
        "req_per_s": round(len(answers) / wall, 1),
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "_latencies_s": latencies,
    }


async def burst(rt: Runtime, db: str, n: int, concurrency: int, offset: int, timeout: float):
    answers, wall = await client.submit_many(rt.http, n, concurrency, offset)
    ids = [a.order_id for a in answers if a.status == 202]
    await client.wait_terminal(db, ids, timeout)
    return submit_stats(answers, wall), e2e_stats(client.lifecycle_times(db, ids), len(ids))


async def single_orders(rt: Runtime, db: str, n: int, timeout: float) -> dict:
    """One order at a time: the engine's latency with nothing queued."""
    latencies = []
    async with client.http_session(1) as session:
        for i in range(n):
            answer = await client.submit(session, rt.http, client.order_body(i))
            if answer.status != 202:
                continue
            await client.wait_terminal(db, [answer.order_id], timeout, interval_s=0.01)
            times = client.lifecycle_times(db, [answer.order_id])
            if times and "confirmed" in times[0]["at"]:
                latencies.append(times[0]["at"]["confirmed"] - times[0]["at"]["pending"])
    return {
        "orders": n,
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "_latencies_s": latencies,
    }


async def burst_with_websockets(
    rt: Runtime, db: str, n: int, concurrency: int, offset: int, timeout: float
):
    """Submit ``n`` orders; a WebSocket client follows each one from its 202 answer."""
    answers: list[client.Submitted] = []
    watchers: list[asyncio.Task] = []
    counter = iter(range(n))
    ws_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def submitter(session) -> None:
        for i in counter:
            answer = await client.submit(session, rt.http, client.order_body(offset + i))
            answers.append(answer)
            if answer.status == 202:
                url = answer.ws_url.replace("//localhost:", "//127.0.0.1:", 1)
                watchers.append(
                    asyncio.create_task(client.watch(ws_session, url, answer.order_id, timeout))
                )

    async with ws_session, client.http_session(concurrency) as session:
        started = time.perf_counter()
        await asyncio.gather(*(submitter(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
        watches = await asyncio.gather(*watchers)
    ids = [a.order_id for a in answers if a.status == 202]
    await client.wait_terminal(db, ids, timeout)
    e2e = e2e_stats(client.lifecycle_times(db, ids), len(ids))
    pushes = [(s, lat) for w in watches for s, lat in w.live_push_latencies()]
    by_status: dict[str, list[float]] = {}
    for status, latency in pushes:
        by_status.setdefault(status, []).append(latency)
    anomalies = sum(
        1
        for w in watches
        if [e["seq"] for e in w.events] != sorted({e["seq"] for e in w.events})
        or len(set(w.statuses)) != len(w.statuses)
    )
    ws = {
        "sockets": len(watches),
        "followed_to_terminal": sum(
            bool(w.events) and w.events[-1]["status"] in ("confirmed", "failed") for w in watches
        ),
        "errors": sum(w.error is not None for w in watches),
        "seq_anomalies": anomalies,
        "live_events": len(pushes),
        "push_p50_ms": ms(percentile([lat for _, lat in pushes], 50)),
        "push_p99_ms": ms(percentile([lat for _, lat in pushes], 99)),
        "by_status_p50_ms": {s: ms(percentile(v, 50)) for s, v in sorted(by_status.items())},
        "_by_status_s": by_status,
    }
    return submit_stats(answers, wall), e2e, ws


# -- Postgres counters --------------------------------------------------------------------------


def pg_counters(db: str) -> dict:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(MARK + "SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            MARK + "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
            " tup_fetched FROM pg_stat_database WHERE datname = current_database()"
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
            MARK + "SELECT query, calls FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND query NOT LIKE '/* bench */%%' ORDER BY calls DESC"
        ).fetchall()


async def statements_per_order(rt: Runtime, db: str, n: int, stats: bool, timeout: float):
    await asyncio.sleep(11.0)  # earlier work's counters reach pg_stat_database first
    statements_reset(db, stats)
    before = pg_counters(db)
    answers, _ = await client.submit_many(rt.http, n, min(10, n), offset=0)
    ids = [a.order_id for a in answers if a.status == 202]
    await client.wait_terminal(db, ids, timeout)
    # An idle backend flushes its pg_stat_database counters within 10 s (PostgreSQL 15's
    # PGSTAT_IDLE_INTERVAL); pg_stat_statements counts at once.
    await asyncio.sleep(11.0)
    after = pg_counters(db)
    per_order = {k: round((after[k] - before.get(k, 0)) / len(ids), 2) for k in after}
    result = {
        "orders": len(ids),
        "source": "pg_stat_database + pg_stat_user_tables deltas",
        "transactions_per_order": per_order["xact_commit"],
        "rows_inserted_per_order": per_order["tup_inserted"],
        "rows_updated_per_order": per_order["tup_updated"],
        "counters_per_order": per_order,
    }
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


# -- the run ----------------------------------------------------------------------------------


def median_of(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def spread(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs if r.get(key) is not None]
    return f"{min(values):g}..{max(values):g}" if len(values) > 1 else ""


async def run_all(args, services: Services, log_dir: Path) -> dict:
    results: dict = {"phases": {}}
    phases = results["phases"]
    settings_zero = {**ZERO_LATENCY, "WORKER_CONCURRENCY": str(args.concurrency)}
    settings_default = {**DEFAULT_LATENCY, "WORKER_CONCURRENCY": str(args.concurrency)}
    results["settings"] = {
        "zero_latency_runtime": settings_zero,
        "default_latency_runtime": settings_default,
        "engine_defaults": _engine_defaults(),
        "http_clients": args.concurrency,
        "runs": args.runs,
    }
    offset = 0
    need_zero = {"zero", "single", "drain", "statements"} - set(args.skip)
    if need_zero:
        with fresh_database(services.admin_url) as db:
            rt = services.runtime(
                db, settings_zero, log_dir / "runtime-zero.log", concurrency=args.concurrency
            )
            with rt:
                _say("zero latency: warm-up")
                await burst(
                    rt, db, max(30, args.concurrency * 3), args.concurrency, 0, args.timeout
                )
                if "zero" not in args.skip:
                    runs = []
                    for i in range(args.runs):
                        offset += args.orders
                        submit, e2e = await burst(
                            rt, db, args.orders, args.concurrency, offset, args.timeout
                        )
                        runs.append({"submit": submit, "e2e": e2e})
                        _say(
                            f"zero latency run {i + 1}: {submit['req_per_s']} req/s, "
                            f"{e2e.get('orders_per_s')} orders/s"
                        )
                    phases["zero"] = runs
                if "single" not in args.skip:
                    _say("zero latency: one order at a time")
                    phases["single"] = await single_orders(rt, db, args.single_orders, args.timeout)
                if "statements" not in args.skip:
                    _say("Postgres statements per order")
                    phases["statements"] = await statements_per_order(
                        rt, db, 50 if not args.quick else 20, services.stats, args.timeout
                    )
            if "drain" not in args.skip:
                phases["drain"] = await drain_runs(args, services, db, log_dir, settings_zero)
    if "default" not in args.skip:
        with fresh_database(services.admin_url) as db:
            rt = services.runtime(
                db, settings_default, log_dir / "runtime-default.log", concurrency=args.concurrency
            )
            with rt:
                _say("default latency: warm-up")
                await burst_with_websockets(rt, db, 20, args.concurrency, 0, args.timeout)
                runs = []
                for i in range(args.runs):
                    offset += args.latency_orders
                    submit, e2e, ws = await burst_with_websockets(
                        rt, db, args.latency_orders, args.concurrency, offset, args.timeout
                    )
                    runs.append({"submit": submit, "e2e": e2e, "ws": ws})
                    _say(
                        f"default latency run {i + 1}: {e2e.get('orders_per_s')} orders/s, "
                        f"push p50 {ws['push_p50_ms']} ms"
                    )
                phases["default"] = runs
    if "router" not in args.skip:
        _say(f"router micro-benchmark ({args.router_seconds:g}s)")
        try:
            from bench import router

            with contextlib.redirect_stdout(sys.stderr):  # it prints a table of its own
                phases["router"] = router.run(args.router_seconds)
        except Exception as e:  # a broken router bench must not cost the other numbers
            phases["router"] = {"error": repr(e)}
    return results


async def drain_runs(args, services, db, log_dir, settings) -> list[dict]:
    """Orders accepted while no worker runs, then the workers start: their drain rate."""
    runs = []
    for i in range(args.runs):
        log = log_dir / "runtime-drain.log"
        with services.runtime(db, settings, log, concurrency=0) as rt:
            answers, _ = await client.submit_many(
                rt.http, args.drain_orders, args.concurrency, offset=i * args.drain_orders
            )
        ids = [a.order_id for a in answers if a.status == 202]
        port = rt.port
        with services.runtime(db, settings, log, concurrency=args.concurrency, port=port):
            await client.wait_terminal(db, ids, args.timeout)
            times = client.lifecycle_times(db, ids)
        finished = [
            o for o in times if o["status"] in ("confirmed", "failed") and "routing" in o["at"]
        ]
        span = (
            max(o["at"][o["status"]] for o in finished) - min(o["at"]["routing"] for o in finished)
            if finished
            else 0
        )
        runs.append(
            {
                "orders": len(ids),
                "terminal": len(finished),
                "orders_per_s": round(len(finished) / span, 2) if span > 0 else None,
                "peak_in_flight": peak_in_flight(finished),
            }
        )
        _say(f"drain run {i + 1}: {runs[-1]['orders_per_s']} orders/s")
    return runs


def _engine_defaults() -> dict:
    from chalicelib.config import Settings

    keep = (
        "worker_batch_size",
        "db_pool_max",
        "max_attempts",
        "retry_base_delay_s",
        "visibility_timeout_s",
        "quote_cache_slots",
        "slot_ms",
        "drift_trades_per_slot",
        "venue_timeout_rate",
        "blockhash_expiry_rate",
        "order_engine_seed",
        "log_level",
    )
    defaults = {k: Settings.model_fields[k].default for k in keep}
    return defaults


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- the report -------------------------------------------------------------------------------


def summary_rows(results: dict) -> list[tuple[str, object, str, str]]:
    """(metric, median, spread over runs, note)."""
    p = results["phases"]
    rows: list[tuple[str, object, str, str]] = []
    if "zero" in p:
        sub = [r["submit"] for r in p["zero"]]
        e2e = [r["e2e"] for r in p["zero"]]
        rows += [
            (
                "POST /api/orders/execute p50 (ms)",
                median_of(sub, "latency_p50_ms"),
                spread(sub, "latency_p50_ms"),
                f"{p['zero'][0]['submit']['requests']} requests/run",
            ),
            (
                "POST /api/orders/execute p99 (ms)",
                median_of(sub, "latency_p99_ms"),
                spread(sub, "latency_p99_ms"),
                "10 closed-loop clients",
            ),
            (
                "POST requests/s",
                median_of(sub, "req_per_s"),
                spread(sub, "req_per_s"),
                "workers run meanwhile",
            ),
            (
                "zero latency: orders/s (burst)",
                median_of(e2e, "orders_per_s"),
                spread(e2e, "orders_per_s"),
                "first pending -> last terminal",
            ),
            (
                "zero latency: submit->confirmed p50 (ms)",
                median_of(e2e, "latency_p50_ms"),
                spread(e2e, "latency_p50_ms"),
                "in a burst (queueing included)",
            ),
            (
                "zero latency: submit->confirmed p99 (ms)",
                median_of(e2e, "latency_p99_ms"),
                spread(e2e, "latency_p99_ms"),
                "",
            ),
        ]
    if "single" in p:
        rows.append(
            (
                "zero latency: one order alone p50 (ms)",
                p["single"]["latency_p50_ms"],
                "",
                f"{p['single']['orders']} orders, one at a time",
            )
        )
    if "drain" in p:
        rows.append(
            (
                "zero latency: worker drain orders/s",
                median_of(p["drain"], "orders_per_s"),
                spread(p["drain"], "orders_per_s"),
                "queue pre-filled, HTTP idle",
            )
        )
    if "default" in p:
        e2e = [r["e2e"] for r in p["default"]]
        ws = [r["ws"] for r in p["default"]]
        per_s = median_of(e2e, "orders_per_s")
        per_min = per_s * 60 if per_s else None
        rows += [
            (
                "default latency: orders/s",
                per_s,
                spread(e2e, "orders_per_s"),
                f"= {per_min:.0f}/min, {per_min / TARGET_PER_MIN:.1f}x the 100/min target"
                if per_min
                else "",
            ),
            (
                "default latency: submit->confirmed p50 (ms)",
                median_of(e2e, "latency_p50_ms"),
                spread(e2e, "latency_p50_ms"),
                "execution 2-3 s simulated",
            ),
            (
                "default latency: submit->confirmed p99 (ms)",
                median_of(e2e, "latency_p99_ms"),
                spread(e2e, "latency_p99_ms"),
                "",
            ),
            (
                "default latency: peak orders in flight",
                median_of(e2e, "peak_in_flight"),
                spread(e2e, "peak_in_flight"),
                "10 invocations x batch of up to 10",
            ),
            (
                "WebSocket push p50 (ms)",
                median_of(ws, "push_p50_ms"),
                spread(ws, "push_p50_ms"),
                "recorded in Postgres -> received",
            ),
            (
                "WebSocket push p99 (ms)",
                median_of(ws, "push_p99_ms"),
                spread(ws, "push_p99_ms"),
                f"{sum(w['live_events'] for w in ws)} live events",
            ),
        ]
    if "statements" in p:
        s = p["statements"]
        if "statements_per_order" in s:
            rows.append(
                (
                    "Postgres statements per order",
                    s["statements_per_order"],
                    "",
                    "pg_stat_statements, BEGIN/COMMIT included",
                )
            )
        rows += [
            (
                "Postgres transactions per order",
                s["transactions_per_order"],
                "",
                "pg_stat_database xact_commit",
            ),
            (
                "Postgres rows inserted / updated per order",
                f"{s['rows_inserted_per_order']} / {s['rows_updated_per_order']}",
                "",
                "pg_stat_database tup_*",
            ),
        ]
    if "router" in p and "routes_per_s" in p["router"]:
        r = p["router"]
        rows.append(
            (
                "router: routes/s (one core)",
                r["routes_per_s"],
                "",
                f"{r.get('quotes_per_s')} venue quotes/s; bench/router.py",
            )
        )
    return rows


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    m = results["machine"]
    title = (
        f"order engine on {m.get('cpus')} CPUs ({m.get('cpu_model', '?')}), "
        f"{m.get('memory_gib')} GiB, Python {m['python']}"
    )
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("metric", "left"),
        ("median", "right"),
        ("runs min..max", "right"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify)
    for metric, value, rng, note in summary_rows(results):
        table.add_row(metric, _fmt(value), rng, note)
    console = Console(width=140)
    console.print(table)
    services = results["services"]
    console.print(
        f"services: Postgres {services.get('postgres_version')} ({services.get('postgres')}); "
        f"{services.get('redis')}; SQS {services.get('sqs')}. "
        f"Runs: {results['settings']['runs']} after a warm-up."
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    return "-" if value is None else str(value)


def strip_private(obj):
    """The JSON without the raw samples (keys starting with ``_``)."""
    if isinstance(obj, dict):
        return {k: strip_private(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [strip_private(v) for v in obj]
    return obj


def plot(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    p = results["phases"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))

    def cdf(ax, samples, label, style="-", color=None):
        if samples:
            xs = sorted(s * 1000 for s in samples)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.plot(xs, ys, style, color=color, label=label)

    for i, run in enumerate(p.get("zero", [])):
        color = f"C{i}"
        cdf(axes[0], run["submit"].get("_latencies_s"), f"POST, run {i + 1}", "-", color)
        cdf(axes[0], run["e2e"].get("_latencies_s"), f"to confirmed, run {i + 1}", "--", color)
    axes[0].set(
        title="zero simulated latency: POST and submit->confirmed", xlabel="ms", ylabel="fraction"
    )
    for i, run in enumerate(p.get("default", [])):
        cdf(axes[1], run["e2e"].get("_latencies_s"), f"run {i + 1}")
    axes[1].set(title="submit->confirmed, default latency (2-3 s)", xlabel="ms")
    by_status: dict[str, list[float]] = {}
    for run in p.get("default", []):
        for status, values in run["ws"].get("_by_status_s", {}).items():
            by_status.setdefault(status, []).extend(v * 1000 for v in values)
    if by_status:
        names = [
            s for s in ("routing", "building", "submitted", "confirmed", "failed") if s in by_status
        ]
        axes[2].boxplot([by_status[s] for s in names], tick_labels=names, showfliers=False)
    axes[2].set(title="WebSocket push latency by status", ylabel="ms")
    for ax in axes[:2]:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = args.out / f"logs-{stamp}"
    log_dir.mkdir()
    started = time.monotonic()
    results = {"started_at": stamp, "machine": machine(), "command": " ".join(sys.argv)}
    with Services(args) as services:
        results["services"] = services.info
        results.update(asyncio.run(run_all(args, services, log_dir)))
    results["duration_s"] = round(time.monotonic() - started, 1)
    results["summary"] = [
        {"metric": m, "median": v, "runs": r, "note": n} for m, v, r, n in summary_rows(results)
    ]
    picture = plot(results, args.out / f"bench-{stamp}.png")
    clean = strip_private(results)
    if picture:
        clean["plot"] = str(picture)
    for name in (f"bench-{stamp}.json", "latest.json"):
        (args.out / name).write_text(json.dumps(clean, indent=2, default=str))
    print_table(results)
    print(
        f"JSON: {args.out / f'bench-{stamp}.json'}"
        + (f"; plot: {picture}" if picture else "")
        + f"; runtime logs: {log_dir}; {results['duration_s']}s in all"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
