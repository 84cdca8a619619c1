"""``python -m localaws`` as a subprocess: start, wait until ready, stop, kill, restart.

Its output goes to a log file; it is ready when its "order engine ready" line is logged and
``GET /api/health`` answers 200 (``health_path=None`` for an app without that route). A
restart keeps the port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness import http
from localaws.servers import free_port

PROJECT_DIR = Path(__file__).resolve().parents[1]
READY = re.compile(r"order engine ready: http=(?P<http>\S+) ws=(?P<ws>\S+) .*sqs=(?P<sqs>\S+)")
ZERO_LATENCY = {
    "QUOTE_LATENCY_MS": "0",
    "EXEC_LATENCY_MIN_MS": "0",
    "EXEC_LATENCY_MAX_MS": "0",
    "CONGESTION": "false",
}
# The engine's defaults (chalicelib.config), spelled out: a caller's environment can't change them.
DEFAULT_LATENCY = {
    "QUOTE_LATENCY_MS": "200",
    "EXEC_LATENCY_MIN_MS": "2000",
    "EXEC_LATENCY_MAX_MS": "3000",
}
# Environment variables of the engine that must not leak from the caller into a runtime.
_ENGINE_VARS = {
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "LOCALSTACK_HOST",
    "PORT",
    "WORKER_CONCURRENCY",
    "WS_MANAGEMENT_ENDPOINT",
}


def engine_env(**overrides: str) -> dict[str, str]:
    """The caller's environment without any engine setting, plus ``overrides``."""
    from chalicelib import config

    names = config.environment_names() | _ENGINE_VARS
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env["PYTHONUNBUFFERED"] = "1"
    # Every test socket comes from 127.0.0.1: the per-address $connect limits are for the
    # tests that set them.
    env.update(WS_CONNECT_RATE_PER_S="100000", WS_CONNECT_BURST="100000")
    env["WS_MAX_CONNECTIONS_PER_SOURCE"] = "100000"
    env.update(overrides)
    return env


class RuntimeFailed(AssertionError):
    """The runtime did not start or stop (an AssertionError, so pytest shows it plainly)."""


class Runtime:
    """One ``python -m localaws`` process; same port across restarts."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        port: int | None = None,
        concurrency: int | None = None,
        poll_wait: int = 1,
        schedule_interval: float = 30,
        drain_timeout: float = 10,
        data_dir: Path | None = None,
        log_path: Path | None = None,
        health_path: str | None = "/api/health",
        extra_args: tuple[str, ...] = (),
        module: str = "localaws",  # or a launcher taking the same arguments
    ):
        self.env = env
        self.module = module
        self.port = port or free_port()
        # A folder of its own (its API key, management secret, embedded data), kept across
        # restarts: runtimes of other runs on the machine must not share it.
        data_dir = data_dir or Path(tempfile.mkdtemp(prefix="order-engine-runtime-"))
        self.data_dir = data_dir
        self.api_key: str | None = None  # the development key, read once it is ready
        self.management_secret: str | None = None
        self.args = (
            "--port",
            str(self.port),
            *(("--concurrency", str(concurrency)) if concurrency is not None else ()),
            "--poll-wait",
            str(poll_wait),
            "--schedule-interval",
            str(schedule_interval),
            "--drain-timeout",
            str(drain_timeout),
            "--data-dir",
            str(data_dir),
            *extra_args,
        )
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="order-engine-runtime-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = log_path
        self.health_path = health_path
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.urls: dict[str, str] = {}  # http, ws and sqs, from the ready line
        self._log_offset = 0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        """The orders WebSocket URL."""
        return f"{self.ws_base}/api/orders/execute"

    def start(self, timeout_s: float = 60) -> Runtime:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.urls = {}
        with open(self.log_path, "a") as log:
            log.write(f"--- start {self.starts + 1} ---\n")
            log.flush()
            self._log_offset = log.tell()
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of ours reaches it only through stop()
            )
        self.starts += 1
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeFailed(f"the runtime exited ({code}):\n{self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeFailed(f"the runtime did not become ready:\n{self.tail()}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        if not self.urls:
            match = READY.search(self.log())
            if match is None:
                return False
            self.urls = match.groupdict()
            self.management_secret = (self.data_dir / "management-secret").read_text().strip()
            key_path = self.data_dir / "dev-api-key"
            if key_path.exists():  # an app without the engine's tables has none
                self.api_key = key_path.read_text().strip()
                http.use_key(self.http, self.api_key)
        if self.health_path is None:
            return True
        try:
            with urllib.request.urlopen(f"{self.http}{self.health_path}", timeout=5) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 40) -> int | None:
        """SIGTERM (a clean shutdown, as Ctrl-C); SIGKILL after ``timeout_s``."""
        if not self.alive():
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup, as a crashed Lambda host."""
        if self.alive():
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        """What the runtime logged since its last start."""
        try:
            with open(self.log_path, errors="replace") as f:
                f.seek(self._log_offset)
                return f.read()
        except OSError:
            return ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
