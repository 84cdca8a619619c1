"""``python -m bench.load`` (``make load``): 10x the 100 orders/minute target, then proof.

An open-loop client submits orders at a fixed rate (default 1000/minute) for a fixed time
(default 60 s) to a local runtime with the default simulated latency (quote 200 ms,
execution 2-3 s) and 10 concurrent SQS invocations; a WebSocket client follows every
``--watch-every``-th order. Then it waits (bounded) for the queue to drain and checks in
Postgres: zero lost orders, zero duplicated statuses (seq 1..n, each status at most once,
in lifecycle order), every order terminal; and that each WebSocket client saw seq
strictly increasing, each status once, up to the terminal one.

Exit status 0 only when all of that holds. Results: a table, and
``bench/results/load-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.postgres import lifecycle_times, wait_terminal
from bench.report import machine
from bench.stats import percentile
from harness import client
from harness.orders import TERMINAL, order_body
from harness.runtime import DEFAULT_LATENCY, ZERO_LATENCY
from harness.servers import Servers, fresh_database
from harness.verify import verify

RESULTS = Path(__file__).parent / "results"
MAX_OPEN_REQUESTS = 200  # HTTP requests in flight at once, at most


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rate", type=float, default=1000, help="orders per minute (default 1000)")
    p.add_argument("--seconds", type=float, default=60, help="how long to submit (default 60)")
    p.add_argument("--latency", choices=["default", "zero"], default="default")
    p.add_argument("--concurrency", type=int, default=10, help="concurrent SQS invocations")
    p.add_argument(
        "--watch-every",
        type=int,
        default=10,
        help="follow every n-th order over WebSocket (0: none)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=180,
        help="seconds to wait for every order to finish after the last submit",
    )
    p.add_argument("--database-url", help="admin URL of an existing Postgres (else a private one)")
    p.add_argument("--redis-url", help="an existing Redis (its db is flushed)")
    p.add_argument("--embedded-sqs", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0:
        p.error("--rate and --seconds must be positive")
    return args


async def drive(args, base: str) -> dict:
    """Submit at the fixed rate; follow a sample over WebSocket. Bounded in count and time."""
    total = int(args.rate * args.seconds / 60)
    interval = 60 / args.rate
    answers: list[client.Submitted] = []
    lags: list[float] = []
    watchers: list[asyncio.Task] = []
    gate = asyncio.Semaphore(MAX_OPEN_REQUESTS)
    watch_timeout = args.seconds + args.drain_timeout
    ws_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def one(session, i: int, due: float) -> None:
        async with gate:
            lags.append(time.monotonic() - due)
            try:
                answer = await client.submit(session, base, order_body(i))
            except (aiohttp.ClientError, TimeoutError) as e:
                answer = client.Submitted(0, None, None, 0.0, time.time())
                answer.error = repr(e)
            answers.append(answer)
        if answer.status == 202 and args.watch_every and i % args.watch_every == 0:
            url = answer.ws_url.replace("//localhost:", "//127.0.0.1:", 1)
            watchers.append(
                asyncio.create_task(client.watch(ws_session, url, answer.order_id, watch_timeout))
            )

    async with ws_session, client.http_session(MAX_OPEN_REQUESTS) as session:
        started = time.monotonic()
        tasks = []
        for i in range(total):
            due = started + i * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, i, due)))
        await asyncio.gather(*tasks)
        submit_s = time.monotonic() - started
        watches = await asyncio.gather(*watchers)
    return {
        "total": total,
        "answers": answers,
        "lags": lags,
        "submit_s": submit_s,
        "watches": watches,
    }


def ws_report(watches: list[client.Watch]) -> dict:
    bad = []
    for w in watches:
        seqs = [e["seq"] for e in w.events]
        statuses = w.statuses
        ok = (
            w.error is None
            and bool(statuses)
            and statuses[-1] in TERMINAL
            and all(a < b for a, b in zip(seqs, seqs[1:], strict=False))
            and len(set(statuses)) == len(statuses)
        )
        if not ok:
            bad.append({"orderId": w.order_id, "statuses": statuses, "error": w.error})
    pushes = [lat for w in watches for _, lat in w.live_push_latencies()]
    return {
        "followed": len(watches),
        "complete": len(watches) - len(bad),
        "problems": bad[:10],
        "push_p50_ms": None if not pushes else round(percentile(pushes, 50) * 1000, 1),
        "push_p99_ms": None if not pushes else round(percentile(pushes, 99) * 1000, 1),
    }


async def run(args, services: Servers, log_dir: Path) -> dict:
    settings = {
        **(DEFAULT_LATENCY if args.latency == "default" else ZERO_LATENCY),
        "WORKER_CONCURRENCY": str(args.concurrency),
        "WS_MAX_CONNECTIONS_PER_CLIENT": "100000",
        "WS_MAX_CONNECTIONS_PER_SOURCE": "100000",
        "WS_CONNECT_BURST": "100000",  # every socket is the one bench key's
    }
    with fresh_database(services.admin_url, "order_engine_load") as db:
        rt = services.runtime(
            db, settings, log_dir / "runtime-load.log", concurrency=args.concurrency
        )
        with rt:
            print(
                f"[load] {args.rate:g} orders/min for {args.seconds:g}s "
                f"({int(args.rate * args.seconds / 60)} orders), latency={args.latency}",
                file=sys.stderr,
                flush=True,
            )
            driven = await drive(args, rt.http)
            accepted = [a.order_id for a in driven["answers"] if a.status in (200, 202)]
            print(
                f"[load] submitted in {driven['submit_s']:.1f}s; waiting for "
                f"{len(accepted)} orders to finish",
                file=sys.stderr,
                flush=True,
            )
            finished = await wait_terminal(db, accepted, args.drain_timeout, 0.5)
            verdict = verify(db, accepted)
            times = lifecycle_times(db, accepted)
    codes: dict[str, int] = {}
    for a in driven["answers"]:
        codes[str(a.status)] = codes.get(str(a.status), 0) + 1
    latencies = [a.latency_s for a in driven["answers"] if a.status]
    confirmed = [o["at"]["confirmed"] - o["at"]["pending"] for o in times if "confirmed" in o["at"]]
    ends = [o["at"][o["status"]] for o in times if o["status"] in TERMINAL]
    starts = [o["at"]["pending"] for o in times]
    return {
        "settings": settings,
        "target_per_min": args.rate,
        "seconds": args.seconds,
        "orders_sent": driven["total"],
        "status_codes": codes,
        "accepted": len(accepted),
        "achieved_submit_per_min": round(driven["total"] / driven["submit_s"] * 60, 1),
        "send_lag_p99_ms": round(percentile(driven["lags"], 99) * 1000, 1),
        "submit_p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "submit_p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "terminal": finished,
        # Postgres' clock: the last order accepted -> the last one finished.
        "drain_after_last_submit_s": round(max(ends) - max(starts), 1) if ends else None,
        "completed_per_min": round(len(ends) / (max(ends) - min(starts)) * 60, 1) if ends else None,
        "e2e_p50_ms": round(percentile(confirmed, 50) * 1000, 1) if confirmed else None,
        "e2e_p99_ms": round(percentile(confirmed, 99) * 1000, 1) if confirmed else None,
        "verdict": {
            "ok": verdict.ok and not verdict.unexpected,
            "summary": verdict.summary(),
            "final_statuses": verdict.statuses,
            "lost": len(verdict.lost),
            "duplicated_statuses": len(verdict.duplicated),
            "gaps": len(verdict.gaps),
            "out_of_order": len(verdict.out_of_order),
            "not_terminal": len(verdict.open),
            "rows_not_accepted": len(verdict.unexpected),
            "examples": verdict.problems(),
        },
        "websocket": ws_report(driven["watches"]),
    }


def print_report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    v, ws = result["verdict"], result["websocket"]
    rows = [
        (
            "orders sent / accepted",
            f"{result['orders_sent']} / {result['accepted']}",
            f"HTTP {result['status_codes']}",
        ),
        (
            "submit rate achieved (orders/min)",
            result["achieved_submit_per_min"],
            f"target {result['target_per_min']:g}; send lag p99 {result['send_lag_p99_ms']} ms",
        ),
        (
            "POST latency p50 / p99 (ms)",
            f"{result['submit_p50_ms']} / {result['submit_p99_ms']}",
            "",
        ),
        ("completed (orders/min)", result["completed_per_min"], "first pending -> last terminal"),
        (
            "submit->confirmed p50 / p99 (ms)",
            f"{result['e2e_p50_ms']} / {result['e2e_p99_ms']}",
            "",
        ),
        ("drain after the last submit (s)", result["drain_after_last_submit_s"], ""),
        ("final statuses", v["final_statuses"], ""),
        ("lost orders", v["lost"], "accepted (2xx) but no row"),
        ("duplicated statuses", v["duplicated_statuses"], "a status twice in one history"),
        (
            "history gaps / out of order",
            f"{v['gaps']} / {v['out_of_order']}",
            "seq 1..n, lifecycle order",
        ),
        ("not terminal", v["not_terminal"], ""),
        (
            "WebSocket clients complete",
            f"{ws['complete']} / {ws['followed']}",
            f"push p50 {ws['push_p50_ms']} ms, p99 {ws['push_p99_ms']} ms",
        ),
    ]
    table = Table(
        title=f"load: {result['target_per_min']:g} orders/min for {result['seconds']:g}s",
        title_justify="left",
    )
    for name in ("check", "value", "note"):
        table.add_column(name)
    for check, value, note in rows:
        table.add_row(check, str(value), note)
    console = Console(width=140)
    console.print(table)
    console.print("[bold green]PASS[/]" if passed(result) else "[bold red]FAIL[/]")


def passed(result: dict) -> bool:
    return (
        result["verdict"]["ok"]
        and result["accepted"] == result["orders_sent"]
        and result["terminal"] == result["accepted"]
        and result["websocket"]["complete"] == result["websocket"]["followed"]
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = args.out / f"logs-load-{stamp}"
    log_dir.mkdir()
    with Servers(args.database_url, args.redis_url, args.embedded_sqs) as services:
        result = asyncio.run(run(args, services, log_dir))
        result["services"] = services.info
    result["machine"] = machine()
    result["passed"] = passed(result)
    path = args.out / f"load-{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print_report(result)
    print(f"JSON: {path}; runtime log: {log_dir}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
