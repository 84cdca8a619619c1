"""Stopping the runtime (SIGTERM, as Ctrl-C) with orders in flight and starting it again
loses none of them: the invocations under way finish, the orders still queued (in the
embedded, in-memory queue) are enqueued again on start, and a client that reconnects
with ``since`` sees every status once."""

import asyncio
import json
import threading
import time

import psycopg
import pytest
import websockets

from harness.http import auth_headers, submit, wait_for
from harness.orders import FLOW, TERMINAL, order_body
from harness.runtime import Runtime
from harness.verify import history_in_postgres

pytestmark = pytest.mark.integration


class ResumingClient(threading.Thread):
    """Follows one order across restarts: reconnects and resumes after its last seq."""

    def __init__(self, ws_url: str, timeout_s: float = 60):
        super().__init__(daemon=True)
        self.ws_url, self.timeout_s = ws_url, timeout_s
        self.events: list[dict] = []
        self.connections = 0

    def run(self) -> None:
        asyncio.run(self._follow())

    async def _follow(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            since = self.events[-1]["seq"] if self.events else 0
            try:
                url = f"{self.ws_url}&since={since}"
                async with websockets.connect(url, additional_headers=auth_headers(url)) as socket:
                    self.connections += 1
                    async for frame in socket:
                        event = json.loads(frame)
                        if event.get("type") == "status":
                            self.events.append(event)
                            if event["status"] in TERMINAL:
                                return
            except (OSError, websockets.WebSocketException):
                pass
            await asyncio.sleep(0.2)


def test_a_restart_with_orders_in_flight_loses_none(runtime_env, runtime_database, tmp_path):
    env = runtime_env(
        QUOTE_LATENCY_MS="100",
        EXEC_LATENCY_MIN_MS="1500",
        EXEC_LATENCY_MAX_MS="2000",
        WORKER_BATCH_SIZE="1",
    )
    # The same port both times (a Runtime keeps it), so the clients' wsUrl stays valid.
    runtime = Runtime(env, concurrency=3, data_dir=tmp_path, log_path=tmp_path / "log")
    runtime.start()
    ids, watchers = [], []
    for i in range(8):
        answer = submit(runtime.http, order_body(i))
        ids.append(answer["orderId"])
        watchers.append(ResumingClient(answer["wsUrl"]))
        watchers[-1].start()

    def statuses() -> dict[str, str]:
        with psycopg.connect(runtime_database) as conn:
            rows = conn.execute(
                "SELECT id::text, status FROM orders WHERE id::text = ANY(%s)", (ids,)
            ).fetchall()
        return dict(rows)

    wait_for(lambda: "submitted" in statuses().values(), what="an order in flight")
    assert runtime.stop() == 0, runtime.log()
    left = [i for i, s in statuses().items() if s not in TERMINAL]
    assert left, "every order finished before the stop: none was left in the queue"

    runtime.start()
    try:
        assert f"enqueued {len(left)} open order(s) again" in runtime.log()
        wait_for(
            lambda: set(statuses().values()) == {"confirmed"},
            timeout_s=40,
            what="every order confirmed after the restart",
        )
        for order_id in ids:
            assert history_in_postgres(runtime_database, order_id) == list(enumerate(FLOW, start=1))
        for watcher in watchers:
            watcher.join(20)
            assert [e["status"] for e in watcher.events] == FLOW  # none missed, none twice
        assert any(w.connections >= 2 for w in watchers)  # sockets closed with the first run
    finally:
        assert runtime.stop() == 0, runtime.log()
