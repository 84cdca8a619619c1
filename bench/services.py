"""The machine, and the services a benchmark or load run talks to."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import psycopg

from bench.runtime import MotoServer, PrivatePostgres, PrivateRedis, Runtime, engine_env

# -- the machine ------------------------------------------------------------------------------


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = os.getloadavg()
    return info


# -- services ---------------------------------------------------------------------------------


class Services(contextlib.ExitStack):
    """Postgres, Redis and SQS for the runtimes: private ones unless told otherwise."""

    def __init__(self, args):
        super().__init__()
        self.args = args
        self.info: dict = {}

    def __enter__(self):
        super().__enter__()
        a = self.args
        if a.database_url:
            self.admin_url, self.stats = a.database_url, False
            self.info["postgres"] = "given: " + a.database_url.split("@")[-1]
        else:
            pg = PrivatePostgres()
            self.callback(pg.close)
            pg.start()
            self.admin_url, self.stats = pg.admin_url, pg.stats
            self.info["postgres"] = f"private cluster ({pg.bindir}), default config"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            self.info["postgres_version"] = conn.execute("SHOW server_version").fetchone()[0]
        if a.redis_url:
            self.redis_url = a.redis_url
            self.info["redis"] = "given: " + a.redis_url
        else:
            redis = PrivateRedis()
            self.callback(redis.close)
            redis.start()
            self.redis_url = redis.url
            self.info["redis"] = redis.version().split(" sha=")[0]
        if a.embedded_sqs:
            self.sqs_url = None
            self.info["sqs"] = "moto, in the runtime's process"
        else:
            moto = MotoServer()
            self.callback(moto.close)
            moto.start()
            self.sqs_url = moto.url
            self.info["sqs"] = "moto server, a process of its own"
        return self

    def runtime(self, database_url: str, settings: dict, log: Path, **kwargs) -> Runtime:
        import redis as redis_lib

        client_ = redis_lib.Redis.from_url(self.redis_url)
        client_.flushdb()
        client_.close()
        env = engine_env(DATABASE_URL=database_url, REDIS_URL=self.redis_url, **settings)
        if self.sqs_url:
            env["AWS_ENDPOINT_URL"] = self.sqs_url
            # A queue of this runtime's own on the shared moto server.
            suffix = Path(database_url).name[-8:]
            env["ORDERS_QUEUE_NAME"] = f"bench-orders-{suffix}"
            env["ORDERS_DLQ_NAME"] = f"bench-orders-dlq-{suffix}"
        return Runtime(env, log_path=log, **kwargs)
