"""The runtime under load, over real sockets: a WebSocket flood is throttled and closed without
holding up order submission; many subscribers of one order each get every status."""

import asyncio
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets

from harness.http import auth_headers, request, submit, wait_for
from harness.orders import FLOW, TERMINAL, order_body
from harness.runtime import ZERO_LATENCY, Runtime

pytestmark = pytest.mark.integration

FLOOD = 3000


@pytest.fixture(scope="module")
def engine(runtime_env, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    env = runtime_env(
        **{
            **ZERO_LATENCY,
            "EXEC_LATENCY_MIN_MS": "1500",
            "EXEC_LATENCY_MAX_MS": "2000",
            "WS_MAX_CONNECTIONS_PER_CLIENT": "200",  # a hundred sockets of one key at once
        }
    )
    runtime = Runtime(env, data_dir=folder, log_path=folder / "log", extra_args=("--workers", "2"))
    yield runtime.start()
    assert runtime.stop() == 0, runtime.log()


async def flood(ws_url: str) -> tuple[list[dict], int | None]:
    """``FLOOD`` pings as fast as the socket takes them, reading all along: (answers, close
    code)."""
    answers: list[dict] = []
    async with websockets.connect(
        ws_url, max_queue=None, additional_headers=auth_headers(ws_url)
    ) as socket:

        async def read():
            try:
                async for raw in socket:
                    answers.append(json.loads(raw))
            except websockets.ConnectionClosed:  # 1008 is an error close
                pass

        reader = asyncio.create_task(read())
        try:
            for _ in range(FLOOD):
                await socket.send('{"action":"ping"}')
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(reader, 30)
        return answers, socket.close_code


def test_a_websocket_flood_is_throttled_and_closed_while_orders_are_still_taken(engine):
    with ThreadPoolExecutor(1) as pool:
        flooding = pool.submit(asyncio.run, flood(f"{engine.ws_base}/ws"))
        answer = submit(engine.http, order_body())  # while the flood runs
        answers, close_code = flooding.result(60)

    assert answer["status"] == "pending" and answer["orderId"]
    throttled = [a for a in answers if a.get("type") == "error"]
    assert throttled and {a["error"]["code"] for a in throttled} == {"throttled"}
    assert close_code == 1008
    status, _, _ = request("GET", f"{engine.http}/api/health")
    assert status == 200
    assert asyncio.run(ping(f"{engine.ws_base}/ws")) == {"type": "pong"}  # others still served


async def ping(ws_url: str) -> dict:
    async with websockets.connect(ws_url, additional_headers=auth_headers(ws_url)) as socket:
        await socket.send('{"action":"ping"}')
        return json.loads(await asyncio.wait_for(socket.recv(), 30))


async def follow(ws_url: str, timeout_s: float = 60) -> list[dict]:
    messages: list[dict] = []
    async with websockets.connect(ws_url, additional_headers=auth_headers(ws_url)) as socket:
        async with asyncio.timeout(timeout_s):
            while not messages or messages[-1].get("status") not in TERMINAL:
                message = json.loads(await socket.recv())
                if message.get("type") in ("status", "error"):
                    messages.append(message)
                if message.get("type") == "error":
                    break
    return messages


def test_a_hundred_subscribers_of_one_order_each_get_every_status(engine):
    answer = submit(engine.http, order_body(1))

    async def everyone():
        return await asyncio.gather(*(follow(answer["wsUrl"]) for _ in range(100)))

    streams = asyncio.run(everyone())
    for messages in streams:
        assert [m.get("status") for m in messages] == FLOW, messages
        assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5]


def worker_processes(pid: int) -> list[int]:
    """The runtime's worker processes (spawned by multiprocessing)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and b"spawn_main" in cmdline:
            children.append(int(entry))
    return children


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_a_killed_worker_process_is_replaced_and_the_runtime_goes_on(engine):
    workers = worker_processes(engine.process.pid)
    assert len(workers) == 6  # --workers 2, for REST, WebSocket and event sources
    for pid in workers:
        os.kill(pid, signal.SIGKILL)

    def new_workers_serve():
        status, _, _ = request("GET", f"{engine.http}/api/health")
        return status == 200

    wait_for(new_workers_serve, 60, what="replaced worker processes")
    assert engine.alive()
    assert not set(worker_processes(engine.process.pid)) & set(workers)
    answer = submit(engine.http, order_body(2))
    assert answer["status"] == "pending"
    assert asyncio.run(ping(f"{engine.ws_base}/ws")) == {"type": "pong"}
