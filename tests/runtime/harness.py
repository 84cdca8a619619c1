"""Start ``python -m localaws`` as a subprocess and talk to it."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from chalicelib.config import Settings

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/13"  # a db index of the runtime tests' own
PROJECT_DIR = Path(__file__).resolve().parents[2]
READY = re.compile(r"order engine ready: http=(?P<http>\S+) ws=(?P<ws>\S+) .*sqs=(?P<sqs>\S+)")
FLOW = ["pending", "routing", "building", "submitted", "confirmed"]
PAIRS = [("SOL", "USDC", "1.5"), ("USDC", "SOL", "250"), ("SOL", "USDT", "0.75"),
         ("JUP", "USDC", "400"), ("BONK", "SOL", "25000000")]  # fmt: skip
ZERO_LATENCY = {"QUOTE_LATENCY_MS": "0", "EXEC_LATENCY_MIN_MS": "0", "EXEC_LATENCY_MAX_MS": "0"}


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment without any engine setting of the test process, plus ``overrides``."""
    names = {name.upper() for name in Settings.model_fields} | {
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "LOCALSTACK_HOST",
        "PORT",
        "WORKER_CONCURRENCY",
    }
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(overrides)
    return env


class Runtime:
    """One runtime process on a free port; its output is kept in ``lines``."""

    def __init__(self, env: dict[str, str], *args: str, data_dir: Path):
        command = [
            sys.executable,
            "-m",
            "localaws",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            *args,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.urls: dict[str, str] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            match = READY.search(line)
            if match:
                self.urls = match.groupdict()
                self._ready.set()
        self._ready.set()  # the process ended

    def wait_ready(self, timeout_s: float = 30) -> "Runtime":
        if not self._ready.wait(timeout_s) or not self.urls:
            self.kill()
            raise AssertionError("the runtime did not start:\n" + self.output)
        return self

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def http(self) -> str:
        """``http://localhost:<port>`` (the banner's URL without ``/api``)."""
        return self.urls["http"].removesuffix("/api")

    @property
    def ws(self) -> str:
        return self.http.replace("http://", "ws://", 1)

    def stop(self, timeout_s: float = 40) -> int:
        """SIGTERM, as Ctrl-C would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the runtime did not stop:\n" + self.output) from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def request(method: str, url: str, body=None, headers=None) -> tuple[int, dict, bytes]:
    """One HTTP request: (status, headers, body), whatever the status."""
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and not req.has_header("Content-type"):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_for(predicate, timeout_s: float = 20, interval_s: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval_s)


def order(i: int = 0) -> dict:
    """The i-th order body, across pairs."""
    token_in, token_out, amount = PAIRS[i % len(PAIRS)]
    return {"type": "market", "tokenIn": token_in, "tokenOut": token_out, "amount": amount,
            "slippageBps": 100}  # fmt: skip


def submit(runtime: Runtime, body: dict) -> dict:
    status, _, answer = request("POST", f"{runtime.http}/api/orders/execute", body)
    assert status == 202, answer
    return json.loads(answer)


def history_in_postgres(database_url: str, order_id: str) -> list[tuple[int, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT seq, status FROM order_status_history WHERE order_id = %s ORDER BY seq",
            (order_id,),
        ).fetchall()
