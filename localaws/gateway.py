"""One HTTP server playing API Gateway: REST routes, the WebSocket API, its management API.

REST requests go through Chalice's own local gateway (``chalice.local.LocalGateway``: route
matching, the Lambda proxy event, authorizers, CORS preflight), as ``chalice local`` does,
inside a worker process (``localaws.workers``): this process's event loop only moves bytes
and serves the management API. The HTTP server is aiohttp, which also speaks WebSocket; an
upgrade request on a WebSocket path goes to ``websocket.WebSocketGateway`` instead.

Slow and large requests: a connection whose request headers are not all in
``local_header_timeout_s`` after it opened (or after its last answer) is answered 408 and
closed; so is a body not all in ``local_body_timeout_s`` after its headers. A body longer
than the app's ``max_body_bytes`` is refused 413 before it is read when its Content-Length
says so, and as soon as it passes the limit when it is chunked; the connection is closed.
"""

import asyncio
import base64
import logging
import time
from http import HTTPStatus

from aiohttp import web, web_protocol
from multidict import CIMultiDict

from chalicelib.config import get_settings
from chalicelib.errors import PayloadTooLarge
from localaws import management
from localaws.functions import Functions
from localaws.websocket import Connections, Limits, WebSocketGateway
from localaws.workers import WorkerPool

log = logging.getLogger(__name__)

# Where clients open WebSockets: the order endpoint upgrades, as in the design; /ws as well.
WEBSOCKET_PATHS = frozenset({"/api/orders/execute", "/ws"})
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit (the management API's)
TIMED_OUT = b"".join(
    (
        b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n",
        b"Content-Length: 30\r\nConnection: close\r\n\r\n",
        b'{"message": "Request Timeout"}',
    )
)


class _Refused(Exception):
    def __init__(self, response: web.Response):
        self.response = response


def _closing(body: dict, status: int) -> web.Response:
    response = web.json_response(body, status=status)
    response.force_close()  # the rest of the body is never read
    return response


async def read_body(request: web.Request) -> bytes:
    """The request's body, within the app's limit and the body timeout; else ``_Refused``."""
    settings = get_settings().access
    limit = settings.max_body_bytes
    too_large = PayloadTooLarge(f"body exceeds {limit} bytes").body()
    if (request.content_length or 0) > limit:
        raise _Refused(_closing(too_large, 413))
    body = bytearray()
    try:
        async with asyncio.timeout(settings.local_body_timeout_s):
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise _Refused(_closing(too_large, 413))
    except TimeoutError:
        raise _Refused(_closing({"message": "Request Timeout"}, 408)) from None
    return bytes(body)


class RestGateway:
    def __init__(self, pool: WorkerPool):
        self._pool = pool

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await read_body(request)
        except _Refused as refused:
            return refused.response
        call = self._pool.submit(
            "rest",
            request.method,
            request.raw_path,  # with the query string, still URL-encoded, as API Gateway
            dict(request.headers),
            body or None,
        )
        try:
            response = _response(await asyncio.wrap_future(call))
        except Exception:
            log.exception("%s %s failed", request.method, request.raw_path)
            response = web.json_response({"message": "Internal server error"}, status=502)
        log.info(
            "%s %s %d %.0fms",
            request.method,
            request.raw_path,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return response


def _response(answer: dict) -> web.Response:
    headers = CIMultiDict(answer.get("headers") or {})
    for key, values in (answer.get("multiValueHeaders") or {}).items():
        headers.popall(key, None)
        for value in values:
            headers.add(key, value)
    headers.setdefault("Content-Type", "application/json")  # as chalice local does
    body = answer.get("body")
    if body is not None and answer.get("isBase64Encoded"):
        body = base64.b64decode(body)
    elif isinstance(body, str):
        body = body.encode()
    return web.Response(status=answer["statusCode"], body=body, headers=headers)


def create_app(
    functions: Functions,
    rest_pool: WorkerPool,
    websocket_pool: WorkerPool,
    connections: Connections,
    management_secret: str,
    limits: Limits | None = None,
):
    """The aiohttp application, and its WebSocket gateway (to drain on shutdown).

    REST and WebSocket invocations run in separate pools: no WebSocket flood can hold up
    order submission."""
    rest = RestGateway(rest_pool)
    websockets = WebSocketGateway(functions, websocket_pool, connections, limits or Limits())

    async def dispatch(request: web.Request) -> web.StreamResponse:
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if upgrade and request.method == "GET" and request.path in WEBSOCKET_PATHS:
            return await websockets.handle(request)
        return await rest.handle(request)

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_headers_in])
    management.add_routes(app.router, connections, functions.api_stage, management_secret)
    app.router.add_route("*", "/{path:(?s:.*)}", dispatch)  # (?s): a path may hold %0A
    return app, websockets


@web.middleware
async def _headers_in(request: web.Request, handler):
    """A request's headers are in: its connection's header timer stops until it is answered."""
    protocol = request.protocol
    if not isinstance(protocol, _JsonErrors):
        return await handler(request)
    protocol.stop_header_timer()
    try:
        response = await handler(request)
    except BaseException:
        protocol.start_header_timer()
        raise
    if response.keep_alive is not False:  # a closing answer waits for nothing more
        protocol.start_header_timer()
    return response


class _JsonErrors(web_protocol.RequestHandler):
    """What aiohttp answers a request it cannot parse (a bad request line or header) before
    any handler sees it: API Gateway's JSON error body, not aiohttp's plain text echoing the
    offending bytes back. And a header timeout: a connection whose next request's headers
    are not all in ``local_header_timeout_s`` is answered 408 and closed."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.start_header_timer()

    def connection_lost(self, exc) -> None:
        self.stop_header_timer()
        super().connection_lost(exc)

    def start_header_timer(self) -> None:
        self.stop_header_timer()
        timeout_s = get_settings().access.local_header_timeout_s
        self._header_timer = asyncio.get_running_loop().call_later(timeout_s, self._timed_out)

    def stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _timed_out(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            log.info("closing a connection whose request headers did not come in time")
            self.transport.write(TIMED_OUT)
            self.transport.close()

    def handle_error(self, request, status=500, exc=None, message=None):
        super().handle_error(request, status, exc, message)  # logs it; its answer is dropped
        response = web.json_response({"message": HTTPStatus(status).phrase}, status=status)
        response.force_close()
        return response


class _JsonErrorsServer(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _JsonErrors(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparseable requests in JSON, time out
    slow headers, and close at once after a closing answer (no lingering read of a body
    that was refused)."""

    def __init__(self, app: web.Application, **kwargs):
        super().__init__(app, lingering_time=0, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorsServer
        return server
