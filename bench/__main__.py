"""``python -m bench`` (``make bench``): the engine's numbers on this machine.

Starts its own Postgres (a throwaway cluster with ``pg_stat_statements``), Redis and SQS
(moto, in a process of its own; LocalStack with ``LOCALAWS_SQS=localstack``, docs/LOCAL.md)
on free ports, runs the local runtime against them, and
measures, after a warm-up, over several runs (medians reported):

- ``POST /api/orders/execute``: latency p50/p99 and requests/s, 10 closed-loop clients;
- end to end with zero simulated latency (the engine's own overhead): orders/s and
  submit -> confirmed latency of a burst, the latency of one order alone, and the
  workers' drain rate from a pre-filled queue;
- end to end with the default latency (quote 200 ms, execution 2-3 s) at 10 concurrent
  invocations, against the 100 orders/minute target;
- WebSocket push latency: status recorded in Postgres -> received by a client;
- Postgres statements and transactions per order;
- ``POST /api/orders/execute`` then ``GET /api/orders/{id}`` under autocannon (npm, pinned in
  ``bench/node``) with the workers running, and the CPU per order over every process
  (``bench/cannon.py``);
- the router micro-benchmark (``bench/router.py``);
- ``GET /api/quote`` p50/p99, direct and two-hop, over every listed pair (``bench/quote.py``);
- invocation-seconds per order (handler durations the runtime logs / orders);
- capacity (``bench/capacity.py``): a burst with one WebSocket client per order, many
  connections open at once, many POSTs at once, a flood of frames on one socket;
- limit orders (``bench/limits.py``): market-order p99 without and with 10,000 open limit
  orders over 20 pairs, and one limit check's cost as the triggered and the open orders grow.

``--only PHASE`` runs one phase alone (repeatable); ``--baseline REV`` also runs the bench of
commit REV (in a temporary git worktree) and reports new / old per metric.

Results: a table on stdout, ``bench/results/bench-<time>.json`` (and ``latest.json``), a
PNG of the distributions when matplotlib is installed. See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import baseline, cannon, capacity, limits, pipeline, push
from bench.report import (
    machine,
    plot,
    print_baseline,
    print_table,
    say,
    strip_private,
    summary_rows,
)
from harness.runtime import DEFAULT_LATENCY, ZERO_LATENCY
from harness.servers import Servers

RESULTS = Path(__file__).parent / "results"
PHASES = ["zero", "single", "drain", "default", "statements", "cannon", "router", "quote"]
CAPACITY = ["burst", "connections", "posts", "flood", "limits"]


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
    p.add_argument(
        "--cannon-seconds", type=float, default=10, help="autocannon: seconds of POST, then GET"
    )
    p.add_argument("--burst-orders", type=int, default=300, help="burst: orders, one socket each")
    p.add_argument("--connections", type=int, default=1000, help="WebSocket connections at once")
    p.add_argument("--posts", type=int, default=500, help="POSTs sent at once")
    p.add_argument("--flood-frames", type=int, default=3000, help="frames on the flooding socket")
    p.add_argument("--flood-orders", type=int, default=100, help="orders submitted per flood half")
    p.add_argument(
        "--limit-check-interval",
        type=float,
        default=2,
        help="limits: seconds between runs of the runtime's schedules (the limit check job)",
    )
    p.add_argument("--quick", action="store_true", help="one run, small batches (a smoke test)")
    p.add_argument("--skip", action="append", default=[], choices=PHASES + CAPACITY)
    p.add_argument(
        "--only", action="append", default=[], choices=PHASES + CAPACITY, help="run only PHASE"
    )
    p.add_argument("--baseline", metavar="REV", help="also run REV's bench; new / old per metric")
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
        args.burst_orders, args.connections, args.posts = 60, 200, 100
        args.flood_frames, args.flood_orders = 600, 40
        args.cannon_seconds = 3
    if args.only:
        args.skip = [p for p in PHASES + CAPACITY if p not in args.only]
    return args


def forwarded_options(argv: list[str]) -> list[tuple[str, str | None]]:
    """The command line's (flag, value) pairs, for the baseline's bench."""
    options: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        flag, _, value = argv[i].partition("=")
        if not value and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value, i = argv[i + 1], i + 1
        if flag not in ("--baseline", "--out"):
            options.append((flag, value or None))
        i += 1
    return options


async def run_all(args, services: Servers, log_dir: Path) -> dict:
    # Every socket of a scenario is opened with the one bench key: no per-client cap.
    sockets = {
        "WS_MAX_CONNECTIONS_PER_CLIENT": "100000",
        "WS_MAX_CONNECTIONS_PER_SOURCE": "100000",
        "WS_CONNECT_BURST": "100000",
    }
    settings_zero = {**ZERO_LATENCY, "WORKER_CONCURRENCY": str(args.concurrency), **sockets}
    settings_default = {**DEFAULT_LATENCY, "WORKER_CONCURRENCY": str(args.concurrency), **sockets}
    results: dict = {"phases": {}}
    results["settings"] = {
        "zero_latency_runtime": settings_zero,
        "default_latency_runtime": settings_default,
        "engine_defaults": _engine_defaults(),
        "http_clients": args.concurrency,
        "runs": args.runs,
    }
    phases = results["phases"]
    if {"zero", "single", "drain", "statements"} - set(args.skip):
        phases.update(await pipeline.zero_latency(args, services, log_dir, settings_zero))
    if "default" not in args.skip:
        offset = args.runs * args.orders if "zero" in phases else 0  # next order bodies
        phases["default"] = await push.default_latency(
            args, services, log_dir, settings_default, offset
        )
    if "cannon" not in args.skip:
        try:
            phases["cannon"] = await cannon.run(args, services, log_dir, settings_zero)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            phases["cannon"] = {"error": repr(e)}  # no npm here: the other numbers still count
    if "router" not in args.skip:
        say(f"router micro-benchmark ({args.router_seconds:g}s)")
        try:
            from bench import router

            with contextlib.redirect_stdout(sys.stderr):  # it prints a table of its own
                phases["router"] = router.run(args.router_seconds)
        except Exception as e:  # a broken router bench must not cost the other numbers
            phases["router"] = {"error": repr(e)}
    if "quote" not in args.skip:
        say("GET /api/quote, direct and two-hop, every listed pair")
        from bench import quote

        phases["quote"] = await asyncio.to_thread(quote.run, args, services)
    scenarios = {
        "burst": (capacity.burst, settings_default),
        "connections": (capacity.connections, settings_zero),
        "posts": (capacity.concurrent_posts, settings_zero),
        "flood": (capacity.flood, settings_zero),
        "limits": (limits.run, settings_zero),
    }
    for name, (scenario, settings) in scenarios.items():
        if name not in args.skip:
            phases[name] = await scenario(args, services, log_dir, settings)
    return results


def _engine_defaults() -> dict:
    from chalicelib import config

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
    defaults = {k: config.default(k) for k in keep}
    return defaults


def main(argv=None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = args.out / f"logs-{stamp}"
    log_dir.mkdir()
    started = time.monotonic()
    old: dict | None = None
    if args.baseline:
        argv = sys.argv[1:] if argv is None else argv
        old = baseline.run(args.baseline, forwarded_options(argv), timeout_s=3600)
    results = {"started_at": stamp, "machine": machine(), "command": " ".join(sys.argv)}
    with Servers(args.database_url, args.redis_url, args.embedded_sqs) as services:
        results["services"] = services.info
        results.update(asyncio.run(run_all(args, services, log_dir)))
    results["duration_s"] = round(time.monotonic() - started, 1)
    results["summary"] = [
        {"metric": m, "median": v, "runs": r, "note": n} for m, v, r, n in summary_rows(results)
    ]
    if old is not None:
        results["baseline"] = {
            "rev": args.baseline,
            "found": bool(old),
            "ratios": baseline.ratios(results["summary"], old.get("summary", [])),
        }
    picture = plot(results, args.out / f"bench-{stamp}.png")
    clean = strip_private(results)
    if picture:
        clean["plot"] = str(picture)
    for name in (f"bench-{stamp}.json", "latest.json"):
        (args.out / name).write_text(json.dumps(clean, indent=2, default=str))
    print_table(results)
    if "baseline" in results:
        print_baseline(results["baseline"])
    print(
        f"JSON: {args.out / f'bench-{stamp}.json'}"
        + (f"; plot: {picture}" if picture else "")
        + f"; runtime logs: {log_dir}; {results['duration_s']}s in all"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
