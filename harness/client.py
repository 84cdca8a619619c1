"""A bounded asyncio client: submit orders over HTTP, follow them over WebSocket.

Every loop here is bounded in count and in time; nothing retries forever.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from harness import http
from harness.orders import TERMINAL, order_body


@dataclass
class Submitted:
    status: int
    order_id: str | None
    ws_url: str | None
    latency_s: float
    sent_at: float  # time.time()


async def submit(session: aiohttp.ClientSession, base: str, body: dict) -> Submitted:
    sent_at, started = time.time(), time.perf_counter()
    url = f"{base}/api/orders/execute"
    async with session.post(url, json=body, headers=http.auth_headers(url)) as response:
        raw = await response.read()
        latency = time.perf_counter() - started
        answer = json.loads(raw) if raw else {}
    return Submitted(response.status, answer.get("orderId"), answer.get("wsUrl"), latency, sent_at)


def http_session(limit: int, timeout_s: float = 30) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
    )


async def submit_many(
    base: str, count: int, concurrency: int, offset: int = 0, make_body=None
) -> tuple[list[Submitted], float]:
    """``count`` orders by ``concurrency`` closed-loop clients; (answers, wall seconds)."""
    make_body = make_body or order_body
    answers: list[Submitted] = []
    counter = iter(range(count))

    async def client(session) -> None:
        for i in counter:
            answers.append(await submit(session, base, make_body(offset + i)))

    async with http_session(concurrency) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return answers, wall


@dataclass
class Watch:
    """The status events one WebSocket client received for one order."""

    order_id: str
    opened_at: float | None = None  # time.time() when the socket was open
    events: list[dict] = field(default_factory=list)  # each with "_received" (time.time())
    error: str | None = None

    @property
    def statuses(self) -> list[str]:
        return [e["status"] for e in self.events]

    def live_push_latencies(self) -> list[tuple[str, float]]:
        """(status, seconds from recorded to received) for events recorded after the socket
        opened: the others were replayed history, not pushes."""
        out = []
        for e in self.events:
            created = e.get("createdAt")
            if created is None or self.opened_at is None:
                continue
            recorded = datetime.fromisoformat(created).timestamp()
            if recorded >= self.opened_at:
                out.append((e["status"], e["_received"] - recorded))
        return out


async def watch(session: aiohttp.ClientSession, ws_url: str, order_id: str, timeout_s: float):
    """Follow one order until its terminal status or ``timeout_s``."""
    result = Watch(order_id)
    try:
        async with asyncio.timeout(timeout_s):
            async with session.ws_connect(
                ws_url, heartbeat=None, autoping=True, headers=http.auth_headers(ws_url)
            ) as socket:
                result.opened_at = time.time()
                async for frame in socket:
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        break
                    event = json.loads(frame.data)
                    if event.get("type") != "status":
                        continue
                    event["_received"] = time.time()
                    result.events.append(event)
                    if event["status"] in TERMINAL:
                        break
    except TimeoutError:
        result.error = "timeout"
    except (aiohttp.ClientError, OSError) as e:
        result.error = repr(e)
    return result
