"""End to end through HTTP, the queue and the workers, with zero simulated latency: a
burst's orders/s and submit -> confirmed latency, one order alone, and the workers'
drain rate from a pre-filled queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.http import submit_stats
from bench.postgres import lifecycle_times, pg_counters, statements_per_order, wait_terminal
from bench.report import say
from bench.stats import ms, percentile
from harness import client
from harness.orders import TERMINAL, order_body
from harness.runtime import Runtime
from harness.servers import Servers, fresh_database


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
    finished = [o for o in times if o["status"] in TERMINAL]
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


async def burst(rt: Runtime, db: str, n: int, concurrency: int, offset: int, timeout: float):
    answers, wall = await client.submit_many(rt.http, n, concurrency, offset)
    ids = [a.order_id for a in answers if a.status == 202]
    await wait_terminal(db, ids, timeout)
    return submit_stats(answers, wall), e2e_stats(lifecycle_times(db, ids), len(ids))


async def single_orders(rt: Runtime, db: str, n: int, timeout: float) -> dict:
    """One order at a time: the engine's latency with nothing queued."""
    latencies = []
    async with client.http_session(1) as session:
        for i in range(n):
            answer = await client.submit(session, rt.http, order_body(i))
            if answer.status != 202:
                continue
            await wait_terminal(db, [answer.order_id], timeout, interval_s=0.01)
            times = lifecycle_times(db, [answer.order_id])
            if times and "confirmed" in times[0]["at"]:
                latencies.append(times[0]["at"]["confirmed"] - times[0]["at"]["pending"])
    return {
        "orders": n,
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "_latencies_s": latencies,
    }


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
        # A backend's counters reach pg_stat_database when it exits: the runtimes' have.
        before = pg_counters(db)
        with services.runtime(db, settings, log, concurrency=args.concurrency, port=port):
            await wait_terminal(db, ids, args.timeout)
            times = lifecycle_times(db, ids)
        await asyncio.sleep(1)
        commits = pg_counters(db)["xact_commit"] - before["xact_commit"]
        finished = [o for o in times if o["status"] in TERMINAL and "routing" in o["at"]]
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
                # The workers' own: full batches, whose status writes share commits.
                "commits_per_order": round(commits / len(ids), 2) if ids else None,
            }
        )
        say(
            f"drain run {i + 1}: {runs[-1]['orders_per_s']} orders/s, "
            f"{runs[-1]['commits_per_order']} commits/order"
        )
    return runs


async def zero_latency(args, services: Servers, log_dir: Path, settings: dict) -> dict:
    """The zero-latency phases not skipped: bursts, one order alone, Postgres statements per
    order (``bench.postgres``), then the drain runs; on one database."""
    phases: dict = {}
    with fresh_database(services.admin_url) as db:
        log = log_dir / "runtime-zero.log"
        with services.runtime(db, settings, log, concurrency=args.concurrency) as rt:
            say("zero latency: warm-up")
            await burst(rt, db, max(30, args.concurrency * 3), args.concurrency, 0, args.timeout)
            if "zero" not in args.skip:
                runs = []
                for i in range(args.runs):
                    offset = (i + 1) * args.orders
                    submit, e2e = await burst(
                        rt, db, args.orders, args.concurrency, offset, args.timeout
                    )
                    runs.append({"submit": submit, "e2e": e2e})
                    say(
                        f"zero latency run {i + 1}: {submit['req_per_s']} req/s, "
                        f"{e2e.get('orders_per_s')} orders/s"
                    )
                phases["zero"] = runs
            if "single" not in args.skip:
                say("zero latency: one order at a time")
                phases["single"] = await single_orders(rt, db, args.single_orders, args.timeout)
            if "statements" not in args.skip:
                say("Postgres statements per order")
                phases["statements"] = await statements_per_order(
                    rt,
                    db,
                    50 if not args.quick else 20,
                    services.stats,
                    args.timeout,
                    services.redis_url,
                    services.sqs_url,
                )
                say("Postgres statements per order, light load (one client)")
                phases["statements_light"] = await statements_per_order(
                    rt,
                    db,
                    20 if not args.quick else 10,
                    services.stats,
                    args.timeout,
                    services.redis_url,
                    services.sqs_url,
                    clients=1,
                    offset=100_000,
                )
        if "drain" not in args.skip:
            phases["drain"] = await drain_runs(args, services, db, log_dir, settings)
    return phases
