"""Lambda's execution environments, locally: worker processes that run the app's handlers.

The gateway's process only moves bytes; every invocation (a REST request through Chalice's
``LocalGateway``, a WebSocket route, an SQS batch, a schedule) is shipped as plain JSON-able
data to a worker process, which imported the app once when it started. A ``WorkerPool`` is
``processes`` such processes, each running up to ``threads`` invocations side by side (the
handlers mostly wait on Postgres, Redis and SQS), so the runtime uses every core.

A worker process that dies fails the invocations it was running (``WorkerCrashed``) and is
replaced; the pool goes on.
"""

import contextlib
import itertools
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Spawned, not forked: the parent runs threads and an event loop.
_CONTEXT = multiprocessing.get_context("spawn")


class WorkerCrashed(RuntimeError):
    """The worker process running the invocation died."""


@dataclass(frozen=True)
class AppSpec:
    """What a worker process imports: the app of a Chalice stage."""

    project_dir: Path
    stage: str
    app: str = "app"


# -- inside a worker process ------------------------------------------------------------------


def _name_process(name: str) -> None:
    """Show ``name`` (e.g. ``websocket-1``) as the process's name in ``ps`` and ``/proc``."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name[:15])  # Linux keeps 15 bytes


def _serve(spec: AppSpec, conn: Connection, threads: int, log_level: int, name: str) -> None:
    import signal
    import sys

    _name_process(name)

    # Ctrl-C, or a SIGTERM to the whole process group (a service manager, `timeout`), reaches
    # us too: the gateway drains us when it stops, and a gateway that dies closes our pipe.
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)

    logging.basicConfig(
        level=log_level,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    for noisy in ("botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.path.insert(0, str(spec.project_dir))
    from chalice.local import LocalGateway

    from localaws.functions import load, stage_config

    functions = load(stage_config(spec.project_dir, spec.stage), spec.app)
    gateway = LocalGateway(functions.app, functions.config)
    from chalicelib import startup

    # As Lambda's init phase: clients made here are in the idle baseline, not made by the
    # first burst of invocations (several threads at once) and kept ever after.
    startup.warm_up(functions.app.websocket_api.session)
    send_lock = threading.Lock()

    report = logging.getLogger("localaws.report")

    def run(kind: str, args: tuple) -> Any:
        started = time.perf_counter()
        try:
            if kind == "call":
                return functions.call(*args)
            return _rest(gateway, *args)
        finally:  # as Lambda's REPORT line: what an invocation is billed for
            name = args[0] if kind == "call" else f"rest:{args[0]}"
            report.info("REPORT %s Duration: %.1f ms", name, (time.perf_counter() - started) * 1000)

    def done(call_id: int, future: Future) -> None:
        error = future.exception()
        if error is not None:
            reply = (call_id, False, f"{type(error).__name__}: {error}")
        else:
            reply = (call_id, True, future.result())
        with send_lock:
            try:
                conn.send(reply)
            except Exception as e:  # an answer that cannot be pickled: still an answer
                conn.send((call_id, False, f"unsendable answer: {e!r}"))

    pool = ThreadPoolExecutor(threads, thread_name_prefix="invoke")
    _start_all(pool, threads)
    with send_lock:
        conn.send((0, True, "ready"))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the gateway died: so does its host, mid-invocation
            os._exit(1)
        if request is None:  # drain: finish what runs, then exit
            break
        call_id, kind, args = request
        pool.submit(run, kind, args).add_done_callback(lambda f, call_id=call_id: done(call_id, f))
    pool.shutdown(wait=True)
    # Close the app's Postgres pool and Redis client now, while the interpreter is whole: left
    # to exit, Python 3.13 cannot join the pool's threads and waits 5 s for each.
    startup.close_clients()


def _start_all(pool: ThreadPoolExecutor, threads: int) -> None:
    """Start every thread of the pool now (it starts them one per busy submit): their stacks
    and malloc arenas are then part of the idle process, not added by its first burst."""
    started = threading.Barrier(threads + 1)
    for _ in range(threads):
        pool.submit(started.wait)
    started.wait()


def _rest(gateway, method: str, path: str, headers: dict, body: bytes | None) -> dict:
    """``LocalGateway.handle_request``; its refusals (no route, authorizer) as answers too."""
    from chalice.local import LocalGatewayException

    try:
        return gateway.handle_request(method=method, path=path, headers=headers, body=body)
    except LocalGatewayException as e:
        return {
            "statusCode": e.CODE,
            "headers": {"Content-Type": "application/json", **e.headers},
            "body": e.body.decode() if isinstance(e.body, bytes) else e.body,
        }


# -- in the gateway's process -----------------------------------------------------------------


class _Worker:
    def __init__(self, pool: "WorkerPool", index: int):
        self.pool = pool
        self.name = f"{pool.name}-{index}"
        self.pending: dict[int, Future] = {}
        self.conn, child = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(
            target=_serve,
            args=(pool.spec, child, pool.threads, logging.getLogger().level, self.name),
            name=self.name,
            daemon=True,
        )
        self.process.start()
        child.close()
        self.ready = Future()
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=self.name, daemon=True)
        self._reader.start()

    def submit(self, call_id: int, kind: str, args: tuple, future: Future) -> None:
        self.pending[call_id] = future
        try:
            with self._send_lock:
                self.conn.send((call_id, kind, args))
        except (OSError, ValueError) as e:
            self.pending.pop(call_id, None)
            future.set_exception(WorkerCrashed(f"{self.name}: {e!r}"))

    def drain(self) -> None:
        try:
            with self._send_lock:
                self.conn.send(None)
        except (OSError, ValueError):
            pass

    def _read(self) -> None:
        while True:
            try:
                call_id, ok, value = self.conn.recv()
            except (EOFError, OSError):
                break
            if call_id == 0:
                self.ready.set_result(True)
                continue
            future = self.pending.pop(call_id, None)
            if future is None:
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(RuntimeError(value))
        self.process.join(1)
        crashed = WorkerCrashed(f"worker process {self.name} exited ({self.process.exitcode})")
        if not self.ready.done():
            self.ready.set_exception(crashed)
        for future in list(self.pending.values()):
            if not future.done():
                future.set_exception(crashed)
        self.pending.clear()
        self.pool._exited(self)


class WorkerPool:
    """``processes`` worker processes of ``threads`` invocations each."""

    def __init__(self, name: str, spec: AppSpec, *, processes: int, threads: int):
        self.name = name
        self.spec = spec
        self.threads = threads
        self._ids = itertools.count(1)
        self._closing = False
        self._lock = threading.Lock()
        self._serial = itertools.count()
        self._workers = [_Worker(self, next(self._serial)) for _ in range(processes)]

    def wait_ready(self, timeout_s: float = 120) -> None:
        for worker in list(self._workers):
            worker.ready.result(timeout_s)

    def submit(self, kind: str, *args) -> Future:
        """``kind`` "call" (function name, event) or "rest" (method, path, headers, body)."""
        future: Future = Future()
        with self._lock:
            live = [w for w in self._workers if w.process.is_alive()]
            if self._closing or not live:
                future.set_exception(WorkerCrashed(f"{self.name}: no worker process"))
                return future
            worker = min(live, key=lambda w: len(w.pending))  # the least busy
        worker.submit(next(self._ids), kind, args, future)
        return future

    def call(self, name: str, event: dict) -> Any:
        """Invoke a handler and wait for its answer (for the event source threads)."""
        return self.submit("call", name, event).result()

    def shutdown(self, timeout_s: float = 10) -> None:
        """Let the invocations under way finish, then stop the processes."""
        with self._lock:
            self._closing = True
            workers = list(self._workers)
        for worker in workers:
            worker.drain()
        for worker in workers:
            worker.process.join(timeout_s)
            if worker.process.is_alive():
                worker.process.kill()

    def _exited(self, worker: _Worker) -> None:
        with self._lock:
            if self._closing or worker not in self._workers:
                return
            log.error("worker process %s died: starting another", worker.name)
            index = self._workers.index(worker)
            self._workers[index] = _Worker(self, next(self._serial))
