"""The WebSocket handlers behind ``app.py``: ``$connect``, ``$default`` and ``$disconnect``.

- ``$connect`` needs an API key: ``Authorization: Bearer <key>``, or ``?apiKey=<key>`` where
  a client cannot set headers (browsers); an unknown or revoked key is refused with 401. An
  ``Origin`` header, when sent, must be one of ``ws_allowed_origins`` (else 403). The
  connection may then watch its client's orders only; another client's is 404, as unknown.
- ``$connect`` with ``?orderId=<id>[&since=<seq>]`` subscribes the connection and queues a
  replay (API Gateway refuses posts to a connection until ``$connect`` returned); an unknown
  order is rejected with 404, a bad ``since`` with 400, both with a JSON error body. Without
  ``orderId`` the connection is accepted and subscribes by message.
- ``$default`` messages: ``{"action":"subscribe","orderId","since"}`` (answered
  ``{"type":"subscribed",...}``, then the history after ``since`` at once, then live
  statuses), ``{"action":"unsubscribe","orderId"}`` (``{"type":"unsubscribed",...}``) and
  ``{"action":"ping"}`` (``{"type":"pong"}``). A bad message gets
  ``{"type":"error","error":{"code","message","details"}}`` and the connection stays usable.
  A connection watches at most ``ws_max_subscriptions`` orders (``too_many_subscriptions``).
  Each subscribe re-checks the key that opened the connection (cached for
  ``auth_cache_ttl_s``, like the authorizer): once revoked, the subscribe is answered
  ``key_revoked`` and the socket is closed.
- A client holds at most ``ws_max_connections_per_client`` open connections (counted in
  Redis, across environments); ``$connect`` beyond is refused with 429
  ``too_many_connections``.
- Before its key is looked up, a source IP may try ``ws_connect_rate_per_s`` ``$connect`` a
  second (bursts of ``ws_connect_burst``; 429 ``connect_rate_limited`` beyond, with
  ``Retry-After``), so fake keys are refused cheaply; and it holds at most
  ``ws_max_connections_per_source`` open connections (429 ``too_many_connections``).
- ``$disconnect`` drops the connection's subscriptions and its place among its client's.
"""

import json
import logging
from collections.abc import Callable

import pydantic

from chalicelib import logs, strict_json
from chalicelib.access import keys, ratelimit
from chalicelib.backends import queue
from chalicelib.config import get_settings
from chalicelib.errors import (
    BadRequest,
    DependencyUnavailable,
    EngineError,
    Forbidden,
    InvalidInput,
    OrderNotFound,
    TooManyRequests,
    Unauthorized,
    clip,
)
from chalicelib.orders import store
from chalicelib.orders.models import canonical_order_id
from chalicelib.orders.records import OrderRecord
from chalicelib.push import subscriptions as subs
from chalicelib.push.messages import SubscribeMessage
from chalicelib.push.notify import Delivery, Notifier

log = logging.getLogger(__name__)

ACCEPT = {"statusCode": 200}


def _refusal(error: EngineError) -> dict:
    """A ``$connect`` answer that refuses the connection with the error."""
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": "application/json", **error.headers},
        "body": json.dumps(error.body()),
    }


def _frame(error: EngineError) -> dict:
    """An error answered on the socket; the connection stays usable."""
    return {"type": "error", **error.body()}


class InvalidMessage(InvalidInput):
    code = "invalid_message"


def _header(headers: dict, name: str) -> str | None:
    """A request header, whatever the case the client sent it in."""
    return next((v for k, v in (headers or {}).items() if k.lower() == name), None)


def _check_origin(raw: dict) -> None:
    origin = _header(raw.get("headers") or {}, "origin")
    if origin is not None and origin not in get_settings().push.ws_allowed_origins:
        raise Forbidden(f"Origin {clip(origin)!r} is not allowed", code="origin_not_allowed")


def _key_of(raw: dict) -> str | None:
    """The key the upgrade request carries (header first, then ``apiKey``)."""
    params = raw.get("queryStringParameters") or {}
    return keys.bearer(_header(raw.get("headers"), "authorization")) or params.get("apiKey")


class KeyRevoked(Unauthorized):
    code = "key_revoked"


def _parse_since(raw) -> int | None:
    """A non-negative integer, or None when malformed."""
    if raw is None:
        return 0
    try:
        since = int(str(raw).strip())
    except ValueError:
        return None
    return since if since >= 0 else None


def _subscribe(
    connection_id: str, order: OrderRecord, since: int, announce=lambda: None, locked=True
) -> bool:
    """Record the subscription; True when the caller still has to catch it up (False: nothing
    left to deliver, ever, or a replay job already queued).

    ``announce`` (the ``subscribed`` answer) runs just before the subscription is recorded,
    under the same lock, so no status can reach the client ahead of it, and a lock that
    cannot be had fails before anything was announced."""
    order_id = str(order.id)
    if order.status.terminal and since >= order.last_seq:
        announce()
        subs.remove(connection_id, order_id)
        return False
    if not order.watched:
        store.watch(order_id)  # before the subscription: see ``store.watch``
    if not locked:
        announce()
        subs.add(connection_id, order_id, since)
        return True
    # Under the order's lock: a delivery under way must not record its cursor over the
    # (possibly lower) one this subscription asks for.
    try:
        with subs.order_lock(order_id):
            announce()
            subs.add(connection_id, order_id, since)
        return True
    except subs.LockBusy:
        # Busy (many subscribers, a long delivery): record it anyway and let a replay job
        # catch it up under the lock. At worst a delivery under way raised the cursor we
        # lower here, and the replay sends a status twice; never one lost.
        log.warning("subscribing %s to order %s: lock busy, replay queued", connection_id, order_id)
        announce()
        subs.add(connection_id, order_id, since)
        queue.send_replay(connection_id, order_id, since)
        return False


def _check_since(order: OrderRecord, since: int, error: Callable[..., EngineError]) -> None:
    """Refuse a ``since`` that names a seq the order never had: nothing after it would ever
    be delivered, the terminal status included."""
    if since > order.last_seq:
        beyond = f"since {since} is beyond the order's last seq {order.last_seq}"
        raise error(beyond, [{"field": "since", "message": beyond}])


def _source_of(raw: dict) -> str:
    return ((raw.get("requestContext") or {}).get("identity") or {}).get("sourceIp") or "unknown"


def _check_connect_rate(source_ip: str) -> None:
    """Before any key is looked up: a flood of ``$connect`` (fake keys or not) is cheap."""
    wait_s = ratelimit.take_connect(source_ip)
    if wait_s:
        raise TooManyRequests(
            "too many connection attempts from this address", wait_s, code="connect_rate_limited"
        )


def _too_many(who: str, limit: int) -> TooManyRequests:
    return TooManyRequests(
        f"{who} may hold at most {limit} open connections", 0, code="too_many_connections"
    )


def _admit(connection_id: str, client_id, source_ip: str) -> None:
    """Take a place among the source's and the client's open connections, the last check
    of ``$connect``."""
    push = get_settings().push
    if not subs.admit_source(connection_id, source_ip, push.ws_max_connections_per_source):
        raise _too_many("an address", push.ws_max_connections_per_source)
    if not subs.admit(connection_id, client_id, push.ws_max_connections_per_client):
        subs.remove_connection(connection_id)  # gives back its place among the source's
        raise _too_many("a client", push.ws_max_connections_per_client)


def connect(event) -> dict:
    """``$connect``: the return value is the handler's answer (200 accepts)."""
    try:
        _connect(event)
    except EngineError as e:
        if isinstance(e, DependencyUnavailable):
            log.warning("$connect %s: %s", event.connection_id, e)
        return _refusal(e)
    except Exception:
        log.exception("$connect %s failed", event.connection_id)
        return _refusal(DependencyUnavailable("unknown", "unexpected error"))
    return ACCEPT


def _connect(event) -> None:
    raw = event.to_dict()
    context = raw.get("requestContext") or {}
    params = raw.get("queryStringParameters") or {}
    connection_id = event.connection_id
    source_ip = _source_of(raw)
    _check_connect_rate(source_ip)
    _check_origin(raw)
    key = _key_of(raw)
    client_id = keys.client_of(key)
    if client_id is None:
        raise Unauthorized("a valid API key is required")
    prefix = keys.prefix_of(key)
    order_param, since_param = params.get("orderId"), params.get("since")
    logs.update(orderId=order_param)
    since = _parse_since(since_param)
    if since is None:
        raise BadRequest("since must be a non-negative integer", code="invalid_query")
    if order_param is None:
        if since_param is not None:
            raise BadRequest("since needs an orderId", code="invalid_query")
        subs.save_endpoint(context.get("apiId"), event.domain_name, event.stage)
        _admit(connection_id, client_id, source_ip)
        subs.seen(connection_id, client_id, prefix)
        return
    canonical = canonical_order_id(order_param)
    order = None if canonical is None else store.get_order(canonical, client_id)
    if order is None:
        raise OrderNotFound(order_param)
    _check_since(order, since, lambda message, _: BadRequest(message, code="invalid_query"))
    try:
        subs.save_endpoint(context.get("apiId"), event.domain_name, event.stage)
        _admit(connection_id, client_id, source_ip)
        subs.seen(connection_id, client_id, prefix)
        # No lock: nothing can be delivered to a connection before its $connect returned
        # (posts to it are refused), so no cursor can be raised under this one; the replay
        # job catches it up under the lock. Many clients of one order connect at once.
        if _subscribe(connection_id, order, since, locked=False):
            queue.send_replay(connection_id, str(order.id), since)
    except Exception:
        try:  # a rejected $connect gets no $disconnect
            subs.remove_connection(connection_id)
        except Exception:
            log.exception("$connect %s: could not drop its subscriptions", connection_id)
        raise


def disconnect(event) -> None:
    try:
        subs.remove_connection(event.connection_id)
    except Exception:
        log.exception("$disconnect %s: could not drop its subscriptions", event.connection_id)


def message(event, notifier: Notifier) -> None:
    """``$default``: answers go back on the socket; nothing here raises."""
    connection_id = event.connection_id
    try:
        _handle(event, notifier, connection_id)
        return
    except EngineError as e:
        if isinstance(e, DependencyUnavailable):
            log.warning("message from %s: %s", connection_id, e)
        answer = _frame(e)
    except Exception:
        log.exception("message from %s failed", connection_id)
        answer = _frame(DependencyUnavailable("unknown", "unexpected error"))
    try:
        _reply(notifier, connection_id, answer)
    except Exception:  # Redis down while dropping a gone connection
        log.exception("could not answer %s", connection_id)


def _end_revoked(notifier: Notifier, connection_id: str) -> None:
    """The key that opened the connection was revoked: say so, drop it and close it."""
    log.info("connection %s: its key was revoked; closing it", connection_id)
    _reply(notifier, connection_id, _frame(KeyRevoked("the API key was revoked")))
    subs.remove_connection(connection_id)
    notifier.close(connection_id)


def _reply(notifier: Notifier, connection_id: str, body: dict) -> None:
    if notifier.send(connection_id, json.dumps(body)) == Delivery.GONE:
        subs.remove_connection(connection_id)


def _handle(event, notifier: Notifier, connection_id: str) -> None:
    body = strict_json.loads(event.body, "the message", too_deep="invalid_frame")
    if not isinstance(body, dict):
        raise InvalidMessage("the message must be a JSON object")
    action = body.get("action")
    if action == "ping":
        return _reply(notifier, connection_id, {"type": "pong"})
    if action not in ("subscribe", "unsubscribe"):
        raise InvalidInput(
            f"unknown action {clip(repr(action))}; use subscribe, unsubscribe or ping",
            code="unknown_action",
        )
    try:
        request = SubscribeMessage.model_validate(body)
    except pydantic.ValidationError as e:
        details = [{"field": ".".join(map(str, x["loc"])), "message": x["msg"]} for x in e.errors()]
        raise InvalidMessage(f"invalid {action} message", details) from None

    if request.action == "unsubscribe":
        order_id = canonical_order_id(request.order_id)
        if order_id is not None:
            subs.remove(connection_id, order_id)
        return _reply(
            notifier,
            connection_id,
            {"type": "unsubscribed", "orderId": order_id or request.order_id},
        )

    logs.update(orderId=clip(request.order_id))
    client_id, prefix = subs.owner(connection_id)
    if client_id is not None and (prefix is None or not keys.active(prefix)):
        return _end_revoked(notifier, connection_id)
    canonical = canonical_order_id(request.order_id)
    order = None
    if client_id is not None and canonical is not None:
        order = store.get_order(canonical, client_id)
    if order is None:  # another client's order is as unknown as a missing one
        raise OrderNotFound(request.order_id)
    _check_since(order, request.since, InvalidMessage)
    order_id = str(order.id)
    already, count = subs.subscribed(connection_id, order_id)
    limit = get_settings().push.ws_max_subscriptions
    if not already and count >= limit:
        raise TooManyRequests(
            f"a connection may watch at most {limit} orders", 0, code="too_many_subscriptions"
        )
    subs.save_endpoint(
        (event.to_dict().get("requestContext") or {}).get("apiId"), event.domain_name, event.stage
    )
    subs.opened(connection_id)  # it sent a message: posts to it go through
    answer = {"type": "subscribed", "orderId": order_id, "since": request.since}
    pending = _subscribe(
        connection_id,
        order,
        request.since,
        announce=lambda: _reply(notifier, connection_id, answer),
    )
    if pending and not notifier.replay(order_id, connection_id):
        queue.send_replay(connection_id, order_id, request.since)
