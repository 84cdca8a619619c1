"""The default simulated latency, every order followed over WebSocket from its 202 answer:
throughput against the target, and the push latency, status recorded -> client received."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from bench import invocations
from bench.http import submit_stats
from bench.pipeline import e2e_stats
from bench.postgres import lifecycle_times, wait_terminal
from bench.report import say
from bench.stats import ms, percentile
from harness import client
from harness.orders import TERMINAL, order_body
from harness.runtime import Runtime
from harness.servers import Servers, fresh_database


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
            answer = await client.submit(session, rt.http, order_body(offset + i))
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
    await wait_terminal(db, ids, timeout)
    e2e = e2e_stats(lifecycle_times(db, ids), len(ids))
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
        "opened": sum(w.opened_at is not None for w in watches),
        "followed_to_terminal": sum(
            bool(w.events) and w.events[-1]["status"] in TERMINAL for w in watches
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


async def default_latency(
    args, services: Servers, log_dir: Path, settings: dict, offset: int
) -> list[dict]:
    """Bursts at the default latency, after a warm-up; order bodies from ``offset`` on."""
    with fresh_database(services.admin_url) as db:
        log = log_dir / "runtime-default.log"
        with services.runtime(
            db, settings, log, concurrency=args.concurrency, module=invocations.LAUNCHER
        ) as rt:
            say("default latency: warm-up")
            await burst_with_websockets(rt, db, 20, args.concurrency, 0, args.timeout)
            runs = []
            for i in range(args.runs):
                offset += args.latency_orders
                mark = len(rt.log())
                submit, e2e, ws = await burst_with_websockets(
                    rt, db, args.latency_orders, args.concurrency, offset, args.timeout
                )
                text = await invocations.settled_log(rt, mark)
                cost = invocations.per_order(text, e2e["expected"])
                runs.append({"submit": submit, "e2e": e2e, "ws": ws, "invocations": cost})
                say(
                    f"default latency run {i + 1}: {e2e.get('orders_per_s')} orders/s, "
                    f"push p50 {ws['push_p50_ms']} ms, "
                    f"{cost['invocation_s_per_order']} invocation-s/order"
                )
    return runs
