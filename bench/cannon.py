"""``POST /api/orders/execute`` and ``GET /api/orders/{id}`` under autocannon (npm), with the
workers running: requests/s and latency as a load tool outside Python sees them, and the CPU
each confirmed order costs over every process on its path.

autocannon is pinned in ``bench/node/package.json`` and installed there on first use
(``npm ci``); without Node.js and npm the phase reports an error and the others still run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import psycopg

from bench.cpu import CpuMeter
from bench.postgres import MARK, wait_terminal
from bench.report import say
from harness import client, http
from harness.orders import order_body
from harness.servers import Servers, fresh_database

NODE_DIR = Path(__file__).parent / "node"
AUTOCANNON = NODE_DIR / "node_modules" / ".bin" / "autocannon"


def autocannon() -> Path:
    """The pinned autocannon, installed on first use."""
    if not AUTOCANNON.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found: the POST/GET phase needs Node.js and npm")
        say("installing autocannon (npm ci in bench/node)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True)
    return AUTOCANNON


def cannon(url: str, *, method: str, connections: int, seconds: float, body=None) -> dict:
    """One autocannon run against ``url``: its JSON summary, reduced to what we report."""
    command = [str(autocannon()), "--json", "-c", str(connections), "-d", str(seconds)]
    command += ["-m", method, "-H", "content-type=application/json"]
    for name, value in http.auth_headers(url).items():
        command += ["-H", f"{name}={value}"]
    if body is not None:
        command += ["-b", json.dumps(body)]
    done = subprocess.run(command + [url], capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout)
    latency = summary["latency"]
    return {
        "req_per_s": round(summary["requests"]["average"], 1),
        "requests": summary["requests"]["total"],
        "latency_p50_ms": latency["p50"],
        "latency_p99_ms": latency["p99"],
        "non_2xx": summary["non2xx"],
        "errors": summary["errors"],
        "timeouts": summary["timeouts"],
    }


def _orders_since(db: str, since_id_count: int) -> list[str]:
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute(MARK + "SELECT id::text FROM orders ORDER BY created_at").fetchall()
    return [r[0] for r in rows[since_id_count:]]


async def run(args, services: Servers, log_dir: Path, settings: dict) -> dict:
    """POST for ``args.cannon_seconds`` then GET as long, 10 connections each by default."""
    seconds, connections = args.cannon_seconds, args.concurrency
    with fresh_database(services.admin_url) as db:
        log = log_dir / "runtime-cannon.log"
        with services.runtime(db, settings, log, concurrency=args.concurrency) as rt:
            http.use_key(rt.http, rt.api_key)
            say("POST/GET under autocannon: warm-up")
            answers, _ = await client.submit_many(rt.http, 60, connections)
            await wait_terminal(db, [a.order_id for a in answers], args.timeout)
            before = len(_orders_since(db, 0))
            meter = CpuMeter.of(services, rt)
            url = f"{rt.http}/api/orders/execute"
            say(f"POST under autocannon: {connections} connections, {seconds:g}s")
            post = await asyncio.to_thread(
                cannon,
                url,
                method="POST",
                connections=connections,
                seconds=seconds,
                body=order_body(0),
            )
            ids = _orders_since(db, before)
            await wait_terminal(db, ids, args.timeout)
            post["cpu_ms_per_order"] = meter.per_item_ms(len(ids))
            post["orders"] = len(ids)
            say(f"GET under autocannon: {connections} connections, {seconds:g}s")
            get = await asyncio.to_thread(
                cannon,
                f"{rt.http}/api/orders/{ids[-1]}",
                method="GET",
                connections=connections,
                seconds=seconds,
            )
    ratio = round(post["req_per_s"] / get["req_per_s"], 2) if get["req_per_s"] else None
    say(f"POST {post['req_per_s']} req/s p99 {post['latency_p99_ms']} ms; GET {get['req_per_s']}")
    return {"post": post, "get": get, "post_over_get": ratio, "connections": connections}
