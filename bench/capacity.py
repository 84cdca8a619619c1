"""Capacity scenarios: a burst with one WebSocket client per order, many open connections,
many POSTs at once, and a flood of frames on one socket while clients submit.

Every loop is bounded in count and time, and everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import invocations
from bench.http import submit_stats
from bench.postgres import wait_terminal
from bench.push import burst_with_websockets
from bench.report import say
from bench.rss import rss_by_process
from bench.stats import ms, percentile
from harness import client
from harness.http import auth_headers
from harness.orders import order_body
from harness.servers import Servers, fresh_database

BURST_CLIENTS = 30  # HTTP clients of the burst: as fast as the gateway takes them
HANDSHAKES_AT_ONCE = 100  # WebSocket handshakes in flight at one time
HOLD_S = 3.0  # how long the many connections stay open together
RSS_BACK_S = 30.0  # the target: back to the idle RSS within this after a flood
RSS_STEP_S = 5.0
WARM_UP_FRAMES = 300  # enough to reach the in-flight cap, as the flood does


def _ws(url: str) -> str:
    return url.replace("//localhost:", "//127.0.0.1:", 1)


async def burst(args, services: Servers, log_dir: Path, settings: dict) -> dict:
    """``args.burst_orders`` orders at the default latency, each followed over WebSocket
    from its 202 answer: sockets opened, clients that saw the terminal status, p99."""
    with fresh_database(services.admin_url) as db:
        log = log_dir / "runtime-burst.log"
        with services.runtime(
            db, settings, log, concurrency=args.concurrency, module=invocations.LAUNCHER
        ) as rt:
            say(f"burst: {args.burst_orders} orders, one WebSocket client each")
            mark = len(rt.log())
            submit, e2e, ws = await burst_with_websockets(
                rt, db, args.burst_orders, BURST_CLIENTS, 10_000, args.timeout
            )
            text = await invocations.settled_log(rt, mark)
            cost = invocations.per_order(text, e2e["expected"])
    return {"submit": submit, "e2e": e2e, "ws": ws, "invocations": cost}


@dataclass
class Held:
    opened: bool = False
    connect_s: float | None = None
    replayed: bool = False  # its order's history arrived
    dropped: bool = False  # closed by the server while held
    error: str | None = None


class Tally:
    """Counts sockets that are settled (open with their replay, or failed)."""

    def __init__(self, n: int):
        self.n, self.count, self.all = n, 0, asyncio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.n:
            self.all.set()


async def _hold(session, url: str, gate: asyncio.Semaphore, tally: Tally, release, timeout):
    held = Held()
    settled = False
    try:
        async with asyncio.timeout(timeout):
            async with gate:
                started = time.perf_counter()
                socket = await session.ws_connect(url, heartbeat=None, headers=auth_headers(url))
                held.opened, held.connect_s = True, time.perf_counter() - started
            async with socket:
                release_wait = asyncio.ensure_future(release.wait())
                while not release.is_set():
                    receive = asyncio.ensure_future(socket.receive())
                    await asyncio.wait([receive, release_wait], return_when="FIRST_COMPLETED")
                    if not receive.done():
                        receive.cancel()
                        break
                    frame = receive.result()
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        held.dropped = True
                        break
                    if json.loads(frame.data).get("type") == "status" and not settled:
                        held.replayed = settled = True
                        tally.add()
                release_wait.cancel()
    except TimeoutError:
        held.error = "timeout"
    except (aiohttp.ClientError, OSError) as e:
        held.error = repr(e)
    if not settled:
        tally.add()
    return held


async def connections(args, services: Servers, log_dir: Path, settings: dict) -> dict:
    """``args.connections`` WebSocket connections open at once, each subscribed to an order
    (round robin over up to 200 confirmed ones), held ``HOLD_S`` seconds once all are open."""
    with fresh_database(services.admin_url) as db:
        log = log_dir / "runtime-connections.log"
        with services.runtime(db, settings, log, concurrency=args.concurrency) as rt:
            n_orders = min(200, args.connections)
            say(f"connections: {n_orders} orders, then {args.connections} sockets at once")
            answers, _ = await client.submit_many(rt.http, n_orders, args.concurrency)
            urls = [_ws(a.ws_url) for a in answers if a.status == 202]
            await wait_terminal(db, [a.order_id for a in answers if a.status == 202], 60)
            gate, release = asyncio.Semaphore(HANDSHAKES_AT_ONCE), asyncio.Event()
            tally = Tally(args.connections)
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                started = time.perf_counter()
                tasks = [
                    asyncio.create_task(
                        _hold(session, urls[i % len(urls)], gate, tally, release, args.timeout)
                    )
                    for i in range(args.connections)
                ]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tally.all.wait(), args.timeout)
                open_s = time.perf_counter() - started
                await asyncio.sleep(HOLD_S)  # all held together: any drop shows up here
                release.set()
                held = await asyncio.gather(*tasks)
    connects = [h.connect_s for h in held if h.connect_s is not None]
    return {
        "connections": args.connections,
        "opened": sum(h.opened for h in held),
        "replayed": sum(h.replayed for h in held),
        "dropped": sum(h.dropped for h in held),
        "errors": sum(h.error is not None for h in held),
        "all_open_after_s": round(open_s, 2),
        "connect_p99_ms": ms(percentile(connects, 99)),
    }


async def _post_once(session, base: str, i: int) -> client.Submitted:
    try:
        return await client.submit(session, base, order_body(i))
    except (aiohttp.ClientError, OSError, TimeoutError):
        return client.Submitted(0, None, None, 0.0, time.time())


async def concurrent_posts(args, services: Servers, log_dir: Path, settings: dict) -> dict:
    """``args.posts`` POSTs sent at the same instant, each on a connection of its own."""
    with fresh_database(services.admin_url) as db:
        log = log_dir / "runtime-posts.log"
        with services.runtime(db, settings, log, concurrency=args.concurrency) as rt:
            say(f"concurrent POSTs: {args.posts} at once")
            async with client.http_session(args.posts, timeout_s=args.timeout) as session:
                started = time.perf_counter()
                answers = await asyncio.gather(
                    *(_post_once(session, rt.http, 20_000 + i) for i in range(args.posts))
                )
                wall = time.perf_counter() - started
    stats = submit_stats(list(answers), wall)
    stats["errors"] = sum(a.status != 202 for a in answers)
    return stats


async def _flood(url: str, frames: int, order_id: str, timeout: float) -> dict:
    """Send ``frames`` subscribe messages without reading, then read what came back."""
    message = json.dumps({"action": "subscribe", "orderId": order_id})
    sent = answers = throttled = 0
    closed_by_server = False
    try:
        async with (
            aiohttp.ClientSession() as session,
            asyncio.timeout(timeout),
            session.ws_connect(url, heartbeat=None, headers=auth_headers(url)) as socket,
        ):
            for _ in range(frames):
                await socket.send_str(message)
                sent += 1
            read_until = time.monotonic() + 10
            while time.monotonic() < read_until:
                try:
                    frame = await asyncio.wait_for(socket.receive(), 2)
                except TimeoutError:
                    break
                if frame.type != aiohttp.WSMsgType.TEXT:
                    closed_by_server = True
                    break
                answer = json.loads(frame.data)
                answers += answer.get("type") == "subscribed"
                throttled += (answer.get("error") or {}).get("code") == "throttled"
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        return {"sent": sent, "answers": answers, "throttled": throttled, "error": repr(e)}
    return {
        "sent": sent,
        "answers": answers,
        "throttled": throttled,
        "closed_by_server": closed_by_server,
    }


async def _sample_rss(pid: int, stop: asyncio.Event, samples: list[dict[str, int]]) -> None:
    while not stop.is_set():
        samples.append(rss_by_process(pid))
        await asyncio.sleep(0.5)


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


async def flood(args, services: Servers, log_dir: Path, settings: dict) -> dict:
    """Submit p99 of 10 clients alone, then again while one socket sends ``args.flood_frames``
    frames; the resident memory of each runtime process before, at peak and every
    ``RSS_STEP_S`` up to ``RSS_BACK_S`` after, and whether the total is back within the
    tolerance (``_tolerance_kib``) by then."""
    n = args.flood_orders
    with fresh_database(services.admin_url) as db:
        log = log_dir / "runtime-flood.log"
        with services.runtime(db, settings, log, concurrency=args.concurrency) as rt:
            pid = rt.process.pid
            say(f"flood: {n} orders alone, then with {args.flood_frames} frames on one socket")
            warm, _ = await client.submit_many(rt.http, 30, args.concurrency, offset=30_000)
            # The warm-up takes the WebSocket path too, as it takes the order path: the first
            # flood after start also fills the worker processes' connection pools, once.
            cold = rss_by_process(pid)
            await _flood(_ws(warm[0].ws_url), WARM_UP_FRAMES, warm[0].order_id, args.timeout)
            warmed = rss_by_process(pid)
            quiet, wall = await client.submit_many(rt.http, n, args.concurrency, offset=30_100)
            without = submit_stats(quiet, wall)
            idle = [rss_by_process(pid)]
            await asyncio.sleep(RSS_STEP_S)
            idle.append(rss_by_process(pid))
            target = quiet[0]
            samples: list[dict[str, int]] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_rss(pid, stop, samples))
            flooding = asyncio.create_task(
                _flood(_ws(target.ws_url), args.flood_frames, target.order_id, args.timeout)
            )
            loud, wall = await client.submit_many(rt.http, n, args.concurrency, offset=31_000)
            with_flood = submit_stats(loud, wall)
            socket = await flooding
            stop.set()
            await sampler
            after = [rss_by_process(pid)]
            for _ in range(int(RSS_BACK_S / RSS_STEP_S)):
                await asyncio.sleep(RSS_STEP_S)
                after.append(rss_by_process(pid))
    before = idle[-1]
    names = sorted(set(before).union(*samples, *after))
    per_process = {
        name: {
            "before_mib": _mib(before.get(name, 0)),
            "peak_mib": _mib(max(s.get(name, 0) for s in [before, *samples, *after])),
            "after_mib": [_mib(s.get(name, 0)) for s in after],
        }
        for name in names
    }
    totals_after = [sum(s.values()) for s in after]
    tolerance = _tolerance_kib(idle)
    back = [
        i * RSS_STEP_S for i, t in enumerate(totals_after) if t <= sum(before.values()) + tolerance
    ]
    return {
        "orders": n,
        "frames": args.flood_frames,
        "socket": socket,
        "submit_p99_ms_without_flood": without["latency_p99_ms"],
        "submit_p99_ms_with_flood": with_flood["latency_p99_ms"],
        "submit_errors_with_flood": sum(a.status != 202 for a in loud),
        "rss_warm_up_flood_mib": [_mib(sum(cold.values())), _mib(sum(warmed.values()))],
        "rss_idle_mib": [_mib(sum(s.values())) for s in idle],
        "rss_tolerance_mib": _mib(tolerance),
        "rss_before_mib": _mib(sum(before.values())),
        "rss_peak_mib": _mib(max(sum(s.values()) for s in [before, *samples])),
        "rss_after_mib": [_mib(t) for t in totals_after],
        "rss_end_mib": _mib(totals_after[-1]),
        "rss_back_after_s": back[0] if back else None,
        "rss_back": bool(back) and totals_after[-1] <= sum(before.values()) + tolerance,
        "rss_per_process": per_process,
    }


def _tolerance_kib(idle: list[dict[str, int]]) -> int:
    """How far from "before" still counts as back: the larger of 2 MiB and twice the drift of
    the idle runtime between two samples ``RSS_STEP_S`` apart with no flood."""
    drift = abs(sum(idle[-1].values()) - sum(idle[0].values()))
    return max(2048, 2 * drift)
