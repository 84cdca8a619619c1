"""API Gateway's WebSocket API in front of the app's ``on_ws_*`` handlers.

- The upgrade request becomes a ``$connect`` event (headers, query string). A non-2xx
  answer rejects the handshake with that status and body. Until the handler has returned
  the connection is not open: the management API answers 410 for it, as API Gateway does.
- Each text frame becomes a ``$default`` event. API Gateway invokes one Lambda per message
  with no ordering guarantee, so messages are handled side by side; a handler error sends
  the client API Gateway's ``{"message": "Internal server error", ...}``. A binary frame
  closes the connection with 1003: API Gateway accepts text frames only.
- The close, by either side, becomes a ``$disconnect`` event.

Handlers run in worker processes (``localaws.workers``): never in the event loop.

Limits, like API Gateway's route throttling: each connection has a token bucket of inbound
frames (``Limits.rate`` a second, bursts of ``Limits.burst``) and at most
``Limits.in_flight`` ``$default`` invocations at once. A frame beyond either is not invoked:
the client gets ``{"type":"error","error":{"code":"throttled",...}}``; after
``Limits.refusals_to_close`` refused frames the connection is closed with 1008.
"""

import asyncio
import base64
import json
import logging
import os
import time
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web
from chalice.local import LocalARNBuilder

from chalicelib.config import get_settings
from localaws.functions import Functions
from localaws.workers import WorkerPool

log = logging.getLogger(__name__)

API_ID = LocalARNBuilder.LOCAL_API_ID  # the id chalice local gives its REST API
CLOSE_TIMEOUT_S = 5
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message limit (1009 beyond)


def new_id() -> str:
    """An API-Gateway-like id (``L0SM9cOFvHcCIhw=``): the '=' must be URL-encoded in paths."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


def _ms(t: float) -> int:
    return int(t * 1000)


def _multi(pairs) -> dict[str, list[str]]:
    """A multidict's items as API Gateway's ``multiValue...`` maps."""
    values: dict[str, list[str]] = {}
    for key, value in pairs.items():
        values.setdefault(key, []).append(value)
    return values


@dataclass(frozen=True)
class Limits:
    # A closed-loop client (one message at a time) is never throttled; a flood is: the
    # in-flight cap refuses it at once, the rate soon after.
    rate: float = 100.0  # inbound frames a second, per connection
    burst: int = 200
    in_flight: int = 10  # $default invocations at once, per connection
    refusals_to_close: int = 200  # refused frames before the connection is closed (1008)


class TokenBucket:
    def __init__(self, rate: float, burst: int):
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _throttled(message: str) -> str:
    return json.dumps(
        {"type": "error", "error": {"code": "throttled", "message": message, "details": None}}
    )


@dataclass(eq=False)
class Connection:
    id: str
    domain_name: str
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)
    socket: web.WebSocketResponse | None = None  # set once ``$connect`` accepted it
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    too_slow: bool = False  # a send timed out: being closed, gone to the management API
    _closing: asyncio.Task | None = None  # that close, referenced until it is done
    in_flight: int = 0  # $default invocations running
    refused: int = 0  # frames throttled so far
    # A push to a client that does not read gives up after this: below the management
    # client's read timeout (chalicelib.backends.aws), so the worker hears 410, not a timeout.
    send_timeout_s: float = field(
        default_factory=lambda: get_settings().push.ws_client_send_timeout_s
    )

    @property
    def is_open(self) -> bool:
        return self.socket is not None and not self.socket.closed and not self.too_slow

    async def send(self, data: bytes) -> bool:
        """One frame (text when the data is UTF-8, as API Gateway posts it); False when gone.

        A client that stops reading fills its buffers and the send waits: after
        ``send_timeout_s`` (queueing behind other sends included) the connection is closed
        and reported gone, so a push never holds the worker (and the order's publish lock)
        for long."""
        try:
            async with asyncio.timeout(self.send_timeout_s), self._send_lock:
                if not self.is_open:
                    return False
                try:
                    text = data.decode()
                except UnicodeDecodeError:
                    await self.socket.send_bytes(data)
                else:
                    await self.socket.send_str(text)
        except ConnectionError:
            return False
        except TimeoutError:
            log.warning("connection %s is not reading: closing it", self.id)
            self.too_slow = True
            self._closing = asyncio.get_running_loop().create_task(
                self.close(WSCloseCode.POLICY_VIOLATION, "client too slow")
            )
            return False
        self.last_active_at = time.time()
        return True

    async def close(self, code: int = WSCloseCode.OK, reason: str = "") -> None:
        if self.socket is not None and not self.socket.closed:
            await self.socket.close(code=code, message=reason.encode())


class Connections:
    """Every connection from its upgrade request until its ``$disconnect`` has run."""

    def __init__(self) -> None:
        self._all: dict[str, Connection] = {}

    def add(self, connection: Connection) -> None:
        self._all[connection.id] = connection

    def discard(self, connection: Connection) -> None:
        self._all.pop(connection.id, None)

    def open(self, connection_id: str) -> Connection | None:
        """The connection when it is open; None when unknown, still connecting or closed."""
        connection = self._all.get(connection_id)
        return connection if connection is not None and connection.is_open else None

    async def close_all(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Close every socket (1001, going away) and wait for their ``$disconnect``."""
        connections = list(self._all.values())
        await asyncio.gather(
            *(c.close(WSCloseCode.GOING_AWAY, "server shutting down") for c in connections),
            return_exceptions=True,
        )
        waits = [asyncio.create_task(c.closed.wait()) for c in connections]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout_s)
            for task in pending:
                task.cancel()


class WebSocketGateway:
    def __init__(
        self,
        functions: Functions,
        pool: WorkerPool,
        connections: Connections,
        limits: Limits = Limits(),
    ):
        self._functions = functions
        self._pool = pool
        self._connections = connections
        self._limits = limits
        self._names = {key: cfg.name for key, cfg in functions.app.websocket_handlers.items()}
        self._tasks: set[asyncio.Task] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """An upgrade request: ``$connect``, then frames until either side closes."""
        socket = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
        if not socket.can_prepare(request).ok:  # not a valid handshake: no $connect
            return web.json_response({"message": "Bad Request"}, status=400)
        connection = Connection(
            id=new_id(),
            domain_name=request.host,
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
        )
        self._connections.add(connection)
        try:
            answer = await self._invoke("$connect", self._connect_event(request, connection))
        except Exception:
            log.exception("$connect handler failed")
            self._connections.discard(connection)
            return web.json_response({"message": "Internal server error"}, status=500)
        answer = answer or {"statusCode": 200}
        status = int(answer.get("statusCode", 200))
        if not 200 <= status < 300:
            self._connections.discard(connection)
            return web.Response(
                status=status, body=answer.get("body"), headers=answer.get("headers")
            )

        try:
            await socket.prepare(request)
            connection.socket = socket
            log.debug("connection %s open", connection.id)
            bucket = TokenBucket(self._limits.rate, self._limits.burst)
            async for frame in socket:
                connection.last_active_at = time.time()
                if frame.type == WSMsgType.TEXT:
                    if not bucket.take():
                        await self._refuse(connection, "too many messages: slow down")
                    elif connection.in_flight >= self._limits.in_flight:
                        await self._refuse(connection, "too many messages in flight")
                    else:
                        connection.in_flight += 1
                        self._spawn(self._message(connection, frame.data))
                elif frame.type == WSMsgType.BINARY:
                    await socket.close(
                        code=WSCloseCode.UNSUPPORTED_DATA,
                        message=b"Binary frames are not supported",
                    )
        finally:
            await self._disconnect(connection, socket.close_code or WSCloseCode.ABNORMAL_CLOSURE)
        return socket

    async def drain(self) -> None:
        """Wait for the ``$default`` invocations still running."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- invocations ------------------------------------------------------------------------

    async def _invoke(self, route_key: str, event: dict):
        name = self._names.get(route_key)
        if name is None:
            return None
        return await asyncio.wrap_future(self._pool.submit("call", name, event))

    async def _refuse(self, connection: Connection, message: str) -> None:
        """A frame beyond the limits: not invoked; repeated abuse closes the connection."""
        connection.refused += 1
        if connection.refused >= self._limits.refusals_to_close:
            log.warning(
                "connection %s: %d frames refused, closing", connection.id, connection.refused
            )
            await connection.close(WSCloseCode.POLICY_VIOLATION, "throttled")
            return
        # In line, before reading on: the answer goes out ahead of the close. A flooding client
        # that does not read is closed by the send's own timeout.
        await connection.send(_throttled(message).encode())

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _message(self, connection: Connection, body: str) -> None:
        event = self._message_event(connection, body)
        try:
            await self._invoke("$default", event)
        except Exception:
            log.exception("$default handler failed for connection %s", connection.id)
            error = {
                "message": "Internal server error",
                "connectionId": connection.id,
                "requestId": event["requestContext"]["requestId"],
            }
            await connection.send(json.dumps(error).encode())
        finally:
            connection.in_flight -= 1

    async def _disconnect(self, connection: Connection, code: int) -> None:
        self._connections.discard(connection)
        log.debug("connection %s closed (%s)", connection.id, code)
        try:
            await self._invoke("$disconnect", self._disconnect_event(connection, int(code)))
        except Exception:
            log.exception("$disconnect handler failed for connection %s", connection.id)
        finally:
            connection.closed.set()

    # -- API Gateway's event shapes ---------------------------------------------------------

    def _context(self, connection: Connection, route_key: str, event_type: str) -> dict:
        now = time.time()
        request_id = new_id()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "messageDirection": "IN",
            "stage": self._functions.api_stage,
            "connectedAt": _ms(connection.connected_at),
            "requestTimeEpoch": _ms(now),
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "requestId": request_id,
            "domainName": connection.domain_name,
            "connectionId": connection.id,
            "apiId": API_ID,
        }

    def _connect_event(self, request: web.Request, connection: Connection) -> dict:
        forwarded = {"X-Forwarded-For": connection.source_ip, "X-Forwarded-Proto": request.scheme}
        event = {
            "headers": {**request.headers, **forwarded},
            "multiValueHeaders": {**_multi(request.headers), **_multi(forwarded)},
            "requestContext": self._context(connection, "$connect", "CONNECT"),
            "isBase64Encoded": False,
        }
        if request.query:  # API Gateway leaves both out when there is no query string
            multi_query = _multi(request.query)
            event["queryStringParameters"] = {k: v[-1] for k, v in multi_query.items()}
            event["multiValueQueryStringParameters"] = multi_query
        return event

    def _message_event(self, connection: Connection, body: str) -> dict:
        context = self._context(connection, "$default", "MESSAGE")
        context["messageId"] = new_id()
        return {"requestContext": context, "body": body, "isBase64Encoded": False}

    def _disconnect_event(self, connection: Connection, code: int) -> dict:
        context = self._context(connection, "$disconnect", "DISCONNECT")
        context["disconnectStatusCode"] = code
        context["disconnectReason"] = "" if code == WSCloseCode.GOING_AWAY else f"code {code}"
        headers = {"Host": connection.domain_name, "X-Forwarded-For": connection.source_ip}
        return {
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "requestContext": context,
            "isBase64Encoded": False,
        }
