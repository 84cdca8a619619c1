"""One HTTP server playing API Gateway: REST routes, the WebSocket API, its management API.

REST requests go through Chalice's own local gateway (``chalice.local.LocalGateway``: route
matching, the Lambda proxy event, authorizers, CORS preflight), as ``chalice local`` does,
inside a worker process (``localaws.workers``): this process's event loop only moves bytes
and serves the management API. The HTTP server is aiohttp, which also speaks WebSocket; an
upgrade request on a WebSocket path goes to ``websocket.WebSocketGateway`` instead.
"""

import asyncio
import base64
import logging
import time
from http import HTTPStatus

from aiohttp import web, web_protocol
from multidict import CIMultiDict

from localaws import management
from localaws.functions import Functions
from localaws.websocket import Connections, Limits, WebSocketGateway
from localaws.workers import WorkerPool

log = logging.getLogger(__name__)

# Where clients open WebSockets: the order endpoint upgrades, as in the design; /ws as well.
WEBSOCKET_PATHS = frozenset({"/api/orders/execute", "/ws"})
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


class RestGateway:
    def __init__(self, pool: WorkerPool):
        self._pool = pool

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"message": "Request Too Long"}, status=413)  # as AWS
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

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    management.add_routes(app.router, connections, functions.api_stage, management_secret)
    app.router.add_route("*", "/{path:(?s:.*)}", dispatch)  # (?s): a path may hold %0A
    return app, websockets


class _JsonErrors(web_protocol.RequestHandler):
    """What aiohttp answers a request it cannot parse (a bad request line or header) before
    any handler sees it: API Gateway's JSON error body, not aiohttp's plain text echoing the
    offending bytes back."""

    def handle_error(self, request, status=500, exc=None, message=None):
        super().handle_error(request, status, exc, message)  # logs it; its answer is dropped
        response = web.json_response({"message": HTTPStatus(status).phrase}, status=status)
        response.force_close()
        return response


class _JsonErrorsServer(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _JsonErrors(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparseable requests in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorsServer
        return server
