"""The whole engine under the local runtime, over real HTTP and WebSocket connections:
submit, stream to ``confirmed``, history in Postgres; 20 orders at once."""

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets

from harness.http import auth_headers, request, submit
from harness.orders import FLOW, TERMINAL, order_body
from harness.runtime import PROJECT_DIR, ZERO_LATENCY, Runtime
from harness.verify import history_in_postgres
from localaws.servers import free_port

pytestmark = pytest.mark.integration


async def follow(ws_url: str, timeout_s: float = 30) -> list[dict]:
    """Status events until a terminal one; each seq must come once, in order."""
    events: list[dict] = []
    async with websockets.connect(ws_url, additional_headers=auth_headers(ws_url)) as socket:
        while not events or events[-1]["status"] not in TERMINAL:
            event = json.loads(await asyncio.wait_for(socket.recv(), timeout_s))
            if event.get("type") == "status":
                events.append(event)
    return events


@pytest.fixture(scope="module")
def engine(runtime_env, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    runtime = Runtime(runtime_env(**ZERO_LATENCY), data_dir=folder, log_path=folder / "log")
    yield runtime.start()
    assert runtime.stop() == 0, runtime.log()


def test_an_order_streams_to_confirmed(engine, runtime_database):
    answer = submit(engine.http, order_body())
    assert answer["status"] == "pending"
    public_ws = f"ws://localhost:{engine.port}/api/orders/execute"  # the default WS_PUBLIC_URL
    assert answer["wsUrl"] == f"{public_ws}?orderId={answer['orderId']}"

    events = asyncio.run(follow(answer["wsUrl"]))

    assert [e["status"] for e in events] == FLOW  # pending comes from the replay of history
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert {e["orderId"] for e in events} == {answer["orderId"]}
    confirmed = events[-1]
    assert len(confirmed["txHash"]) in (87, 88)
    assert confirmed["executedPrice"] and int(confirmed["amountOut"]) > 0
    assert confirmed["route"]["legs"]
    status, _, body = request("GET", f"{engine.http}/api/orders/{answer['orderId']}")
    assert status == 200 and [h["status"] for h in json.loads(body)["history"]] == FLOW
    assert history_in_postgres(runtime_database, answer["orderId"]) == list(
        enumerate(FLOW, start=1)
    )


def test_twenty_orders_at_once(engine):
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: submit(engine.http, order_body(i)), range(20)))

    async def follow_all():
        return await asyncio.gather(*(follow(a["wsUrl"]) for a in answers))

    streams = asyncio.run(follow_all())
    for answer, events in zip(answers, streams, strict=True):
        assert [e["status"] for e in events] == FLOW, answer["orderId"]
        assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]


def test_websocket_rejects_an_unknown_order(engine):
    async def connect():
        url = f"{engine.ws_base}/ws?orderId=00000000-0000-0000-0000-000000000000"
        async with websockets.connect(url, additional_headers=auth_headers(url)):
            pass

    with pytest.raises(websockets.InvalidStatus) as rejected:
        asyncio.run(connect())
    assert rejected.value.response.status_code == 404


def test_the_demo_client(engine):
    demo = subprocess.run(
        [sys.executable, "-m", "localaws.demo", "--url", engine.http, "--count", "5",
         "--timeout", "30"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "160", "ORDER_ENGINE_API_KEY": engine.api_key},
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    results = demo.stdout[demo.stdout.rindex("results") :]
    assert results.count("→") == 5 and "USDC" in results and "…" in results  # tx hashes


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:{port}/order_engine"),
        ("REDIS_URL", "redis://127.0.0.1:{port}/0"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:{port}"),
    ],
)
def test_a_named_service_that_does_not_answer(runtime_env, tmp_path, name, url):
    """A URL set by the user is used as it is: when nothing answers there, the runtime
    exits with one line that names it, not a traceback (and starts nothing in its place)."""
    env = runtime_env()
    env[name] = url.format(port=free_port())
    done = subprocess.run(
        [sys.executable, "-m", "localaws", "--port", "0", "--data-dir", str(tmp_path)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"({name}) does not answer" in output
    assert "Traceback" not in output
