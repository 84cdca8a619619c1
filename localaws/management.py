"""API Gateway's management API for WebSocket connections: ``/@connections/{id}``.

``app.websocket_api`` (boto3's ``apigatewaymanagementapi``) reaches it through the session
``chalicelib.backends.aws.management_session`` points at ``WS_MANAGEMENT_ENDPOINT``. As in AWS:

- ``POST`` sends the raw body to the client as one frame (200);
- ``GET`` answers ``{"connectedAt","identity":{"sourceIp","userAgent"},"lastActiveAt"}``;
- ``DELETE`` closes the connection (204), which then runs ``$disconnect``;
- an unknown, closed or still-connecting connection is ``410`` with
  ``x-amzn-ErrorType: GoneException``, which botocore turns into ``GoneException``.

Only the engine may call it: every call must carry ``X-Management-Secret`` with the secret
the emulator generated at start (``WS_MANAGEMENT_SECRET``, which the app's management session
sends, see ``chalicelib.backends.aws.management_session``); anything else is 403, as an
unsigned call to AWS is. It is served on the public port, as in AWS, so nobody else forges a
push or a disconnect.

Connection ids arrive URL-encoded (``abc%3D``); aiohttp's router decodes path segments.
Served at ``/@connections/{id}`` and at ``/{stage}/@connections/{id}`` (the endpoint AWS
documents, ``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}``).
"""

import functools
import hmac
from datetime import UTC, datetime

from aiohttp import web

from localaws.websocket import MAX_MESSAGE_BYTES, Connections, new_id

SECRET_HEADER = "X-Management-Secret"


def add_routes(
    router: web.UrlDispatcher, connections: Connections, stage: str, secret: str
) -> None:
    api = ManagementApi(connections, secret)
    for prefix in ("", f"/{stage}"):
        path = prefix + "/@connections/{connection_id}"
        router.add_post(path, api.post)
        router.add_get(path, api.get, allow_head=False)
        router.add_delete(path, api.delete)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, error_type: str, message: str | None) -> web.Response:
    return web.json_response(
        {"message": message},
        status=status,
        headers={"x-amzn-ErrorType": error_type, "x-amzn-RequestId": new_id()},
    )


def _gone() -> web.Response:
    return _error(410, "GoneException", None)


def _allowed(handler):
    """The handler, for a call that carries the secret; a 403 for any other."""

    @functools.wraps(handler)
    async def checked(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret.encode()):
            return _error(403, "ForbiddenException", "Forbidden")
        return await handler(self, request)

    return checked


class ManagementApi:
    def __init__(self, connections: Connections, secret: str):
        self._connections = connections
        self._secret = secret

    @_allowed
    async def post(self, request: web.Request) -> web.Response:
        connection = self._connections.open(request.match_info["connection_id"])
        if connection is None:
            return _gone()
        data = await request.read()
        if len(data) > MAX_MESSAGE_BYTES:
            return _error(413, "PayloadTooLargeException", "Message too long")
        if not await connection.send(data):
            return _gone()
        return web.Response(status=200)

    @_allowed
    async def get(self, request: web.Request) -> web.Response:
        connection = self._connections.open(request.match_info["connection_id"])
        if connection is None:
            return _gone()
        return web.json_response(
            {
                "connectedAt": _iso(connection.connected_at),
                "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                "lastActiveAt": _iso(connection.last_active_at),
            }
        )

    @_allowed
    async def delete(self, request: web.Request) -> web.Response:
        connection = self._connections.open(request.match_info["connection_id"])
        if connection is None:
            return _gone()
        await connection.close()
        return web.Response(status=204)
