"""The REST API behind the routes in ``app.py``: validation, answers and error shapes.

Every answer is JSON. Errors are ``{"error": {"code", "message", "details"}}``: bad input
is a 400/413/422, never a 500, and a dependency that is down is a 503, never a hang.
"""

import email.message
import functools
import json
import logging
import math
import re
import uuid
from decimal import Decimal

import pydantic
from chalice import Response

from chalicelib import logs, metrics, tokens
from chalicelib.access import keys, ratelimit
from chalicelib.backends import cache, queue
from chalicelib.config import get_settings
from chalicelib.errors import (
    DependencyUnavailable,
    DuplicateClientOrderId,
    IdempotencyConflict,
    TooManyOpenOrders,
)
from chalicelib.http import openapi
from chalicelib.orders import quotes, stats, store
from chalicelib.orders.models import (
    CLIENT_ORDER_ID_PATTERN,
    FieldError,
    HistoryEntry,
    Order,
    OrderAccepted,
    OrderDetail,
    OrderPage,
    OrderRequest,
    OrderStatus,
)
from chalicelib.orders.records import OrderRecord

log = logging.getLogger(__name__)

ACCEPTED_CONTENT_TYPES = ["application/json"]
MAX_IDEMPOTENCY_KEY = 255
MAX_JSON_DEPTH = 32  # an order nests 2 deep; Python's parser gives up near 1,000 (or never)
MAX_ECHO = 64  # characters of a client's value repeated in an error
# Only the canonical form of an order id is one: lowercase, hyphenated, nothing around it.
ORDER_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
LIMIT_RE = re.compile(r"[0-9]{1,3}", re.ASCII)
CLIENT_ORDER_ID_RE = re.compile(CLIENT_ORDER_ID_PATTERN)


def clip(value, limit: int = MAX_ECHO) -> str:
    """A client's value as it may appear in an answer: at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def canonical_order_id(value) -> str | None:
    return value if isinstance(value, str) and ORDER_ID_RE.fullmatch(value) else None


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.details, self.headers = status, code, details, headers


def error_response(status: int, code: str, message: str, details=None, headers=None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(body=body, status_code=status, headers=headers or {})


def json_errors(view):
    """Turn ``ApiError`` into its JSON answer, a dependency fault into a 503, and anything
    else into a logged 500 that leaks no traceback."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except ApiError as e:
            return error_response(e.status, e.code, str(e), e.details, e.headers)
        except DependencyUnavailable as e:
            log.warning("dependency unavailable in %s: %s", view.__name__, e)
            return error_response(503, "dependency_unavailable", "a dependency is unavailable")
        except Exception:
            log.exception("unexpected error in %s", view.__name__)
            return error_response(500, "internal_error", "internal error")

    return wrapper


def error_middleware(event, get_response):
    """Give Chalice's own errors (405, 415...) the project's error shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        code = "".join(f"_{c.lower()}" if c.isupper() else c for c in body["Code"]).lstrip("_")
        response.body = {"error": {"code": code, "message": body.get("Message"), "details": None}}
    return response


# -- callers -------------------------------------------------------------------------------


# The principal of a request whose key could not be checked (the database is down): let
# through the gateway only to be answered 503 by ``caller``, instead of the authorizer's own 500.
UNVERIFIED = "unverified"


def authorize(auth_request):
    """The API Gateway authorizer: the key's client becomes the request's principal.
    A key that is unknown, revoked or malformed is refused (403); no header is a 401."""
    from chalice import AuthResponse

    try:
        client_id = keys.client_of(keys.bearer(auth_request.token))
    except DependencyUnavailable as e:
        log.warning("API key not checked: %s", e)
        return AuthResponse(routes=["*"], principal_id=UNVERIFIED)
    if client_id is None:
        return AuthResponse(routes=[], principal_id="anonymous")
    return AuthResponse(routes=["*"], principal_id=str(client_id))


def caller(request) -> uuid.UUID:
    """The client the authorizer admitted, once its rate limit allows the request."""
    principal = request.context["authorizer"]["principalId"]
    if principal == UNVERIFIED:
        raise DependencyUnavailable("database", RuntimeError("the API key was not checked"))
    client_id = uuid.UUID(principal)
    wait_s = ratelimit.take(client_id)
    if wait_s:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests; retry after the Retry-After seconds",
            headers={"Retry-After": str(wait_s)},
        )
    return client_id


# -- orders -------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ApiError(400, "duplicate_key", f"the key {clip(twice)!r} appears twice")
    return body


def _check_content_type(headers) -> None:
    """A real media type, not a header that merely mentions one (``text/plain;application/json``
    is text/plain: the kind a cross-site form sends without a preflight)."""
    message = email.message.Message()
    message["content-type"] = headers.get("content-type", "")
    if message.get_content_type() != "application/json" or message.defects:
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json")


def _nesting(value) -> int:
    """How deep arrays and objects nest, counted without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            todo.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def _parse_body(raw: bytes | None) -> dict:
    settings = get_settings()
    if raw is not None and len(raw) > settings.max_body_bytes:
        raise ApiError(413, "body_too_large", f"body exceeds {settings.max_body_bytes} bytes")
    try:
        body = json.loads(raw or b"", parse_float=Decimal, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep (3.11, 3.12)
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    if _nesting(body) > MAX_JSON_DEPTH:  # the same answer where the parser does not recurse
        raise ApiError(400, "malformed_json", f"the body nests deeper than {MAX_JSON_DEPTH}")
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_order", "the body must be a JSON object")
    return body


def _field_of(error) -> str:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return cause.field
    return ".".join(str(p) for p in error["loc"]) or "body"


def _validate(body: dict, what: str = "order"):
    try:
        return OrderRequest.model_validate(body).to_spec(get_settings().slot_ms)
    except pydantic.ValidationError as e:
        details = [
            {"field": _field_of(err), "message": err["msg"]}
            for err in e.errors(include_input=False, include_url=False)
        ]
        raise ApiError(422, "invalid_order", f"the {what} is invalid", details) from None
    except tokens.TokenError as e:
        details = [{"field": e.field, "message": str(e)}]
        raise ApiError(422, "invalid_order", str(e), details) from None


def _idempotency_key(headers) -> str | None:
    key = headers.get("idempotency-key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ApiError(
            422,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} printable characters",
        )
    return key


def ws_url(order_id) -> str:
    return f"{get_settings().ws_public_url}?orderId={order_id}"


@json_errors
def submit_order(request) -> Response:
    client_id = caller(request)
    _check_content_type(request.headers)
    spec = _validate(_parse_body(request.raw_body))
    key = _idempotency_key(request.headers)
    fingerprint = store.request_fingerprint(
        {
            "in": [spec.token_in.symbol, spec.token_in.mint],
            "out": [spec.token_out.symbol, spec.token_out.mint],
            "amount": spec.amount_in,
            "bps": spec.slippage_bps,
            "venues": sorted(spec.venues),  # a set: [a, b] and [b, a] are one order
            "quote": spec.quote_id,
            "minOut": spec.min_out,
            "type": spec.type,
            "clientOrderId": spec.client_order_id,
            "limitPrice": spec.limit_price,
            "expiry": spec.expiry,
            "maxPrice": spec.max_price,
        }
    )
    try:
        spec = quotes.bind(spec)
    except quotes.QuoteError as e:
        # A key used before answers as it would with a live quote: the retry of an accepted
        # order gets its answer even once its quote has expired, another body a 409.
        row = store.order_by_idempotency_key(client_id, key) if key else None
        if row is None:
            raise ApiError(e.status, e.code, str(e), e.details) from None
        if row.request_hash != fingerprint:
            raise ApiError(
                409,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different body",
                {"orderId": str(row.id)},
            ) from None
        return _accepted(row, created=False)
    try:
        settings = get_settings()
        row, created = store.create_order(
            spec,
            key,
            fingerprint,
            max_in_flight=settings.max_orders_in_flight,
            client_id=client_id,
            max_open_per_client=settings.max_open_orders_per_client,
        )
    except IdempotencyConflict as e:
        raise ApiError(
            409,
            "idempotency_conflict",
            "this Idempotency-Key was used with a different body",
            {"orderId": e.order_id},
        ) from None
    except DuplicateClientOrderId as e:
        raise ApiError(
            409,
            "duplicate_client_order_id",
            "you already have an order with this clientOrderId",
            {"clientOrderId": e.client_order_id},
        ) from None
    except TooManyOpenOrders as e:
        raise ApiError(
            429,
            "too_many_open_orders",
            f"you have {e.limit} open orders, the most a client may hold; retry when one ends"
            if e.scope == "client"
            else f"{e.limit} orders are being executed; retry shortly",
            {"limit": e.limit, "scope": e.scope},  # client: cancelling a waiting order frees one
            headers={"Retry-After": str(_order_duration_s())},
        ) from None
    order_id = str(row.id)
    logs.update(orderId=order_id, status=row.status)
    if created:
        log.info("order %s accepted", order_id)
        metrics.count("OrdersAccepted")
        _enqueue(order_id)
    return _accepted(row, created)


def _accepted(row: OrderRecord, created: bool) -> Response:
    order_id = str(row.id)
    answer = OrderAccepted(
        orderId=order_id,
        status=row.status,
        wsUrl=ws_url(order_id),
        clientOrderId=row.client_order_id,
    )
    return Response(body=answer.model_dump(mode="json"), status_code=202 if created else 200)


def _order_duration_s() -> int:
    """How long an order usually stays open: when one of the client's may have finished."""
    settings = get_settings()
    return max(1, math.ceil((settings.quote_latency_ms + settings.exec_latency_max_ms) / 1000))


def _enqueue(order_id: str) -> None:
    """Send the order to the queue. A failed send loses nothing: the order is stored and
    the reaper enqueues orders that were never sent."""
    try:
        queue.send_order(order_id)
    except DependencyUnavailable as e:
        log.warning("order %s stored but not enqueued (%s); the reaper will send it", order_id, e)
        return
    try:
        store.mark_enqueued(order_id)
    except DependencyUnavailable as e:
        # Stored and queued: the client gets its 202, not a 503 that invites a duplicate
        # order. At worst the reaper sends it once more, which the worker shrugs off.
        log.warning("order %s enqueued but not marked so (%s)", order_id, e)


def order_view(order: OrderRecord) -> Order:
    amount_out, price, token_out = order.amount_out, order.executed_price, order.token_out
    return Order(
        id=str(order.id),
        type=order.type,
        status=order.status,
        tokenIn=order.token_in.symbol,
        tokenOut=token_out.symbol,
        mintIn=order.token_in.mint,
        mintOut=token_out.mint,
        amountIn=str(order.amount_in),
        amountInUi=tokens.to_ui(order.amount_in, order.token_in),
        slippageBps=order.slippage_bps,
        venues=list(order.venues),
        attempts=order.attempts,
        lastSeq=order.last_seq,
        route=order.route.to_dict() if order.route else None,
        txHash=order.tx_hash,
        executedPrice=None if price is None else str(price),
        amountOut=None if amount_out is None else str(amount_out),
        amountOutUi=None if amount_out is None else tokens.to_ui(amount_out, token_out),
        failureReason=order.failure_reason,
        clientOrderId=order.client_order_id,
        limitPrice=None if order.limit_price is None else format(order.limit_price, "f"),
        maxPrice=None if order.max_price is None else format(order.max_price, "f"),
        expiresAt=None if order.expires_at is None else order.expires_at.isoformat(),
        createdAt=order.created_at.isoformat(),
        updatedAt=order.updated_at.isoformat(),
    )


@json_errors
def get_order(request, order_id: str) -> Response:
    client_id = caller(request)
    canonical = canonical_order_id(order_id)
    order = None if canonical is None else store.get_order(canonical, client_id)
    if order is None:  # another client's order is no more found than a missing one
        raise ApiError(404, "order_not_found", f"no order {clip(order_id)}")
    entries = [
        HistoryEntry(
            seq=h.seq, status=h.status, payload=h.payload, createdAt=h.created_at.isoformat()
        )
        for h in store.history(order.id)
    ]
    detail = OrderDetail(order=order_view(order), history=entries)
    return Response(body=detail.model_dump(mode="json"), status_code=200)


@json_errors
def list_orders(request) -> Response:
    client_id = caller(request)
    params = request.query_params or {}
    status = params.get("status")
    if status is not None and status not in OrderStatus.__members__.values():
        raise ApiError(422, "invalid_query", f"unknown status {clip(status)!r}")
    raw_limit = params.get("limit", "20")
    limit = int(raw_limit) if LIMIT_RE.fullmatch(raw_limit) else 0
    if not 1 <= limit <= 100:
        raise ApiError(422, "invalid_query", "limit must be an integer from 1 to 100")
    client_order_id = params.get("clientOrderId")
    if client_order_id is not None and not CLIENT_ORDER_ID_RE.fullmatch(client_order_id):
        raise ApiError(422, "invalid_query", "clientOrderId must be 1..64 printable ASCII")
    try:
        rows, cursor = store.list_orders(
            status, limit, params.get("cursor"), client_id, client_order_id
        )
    except ValueError:
        raise ApiError(422, "invalid_query", "malformed cursor") from None
    page = OrderPage(orders=[order_view(r) for r in rows], nextCursor=cursor)
    return Response(body=page.model_dump(mode="json"), status_code=200)


# -- quotes and stats ----------------------------------------------------------------------


@json_errors
def get_quote(request) -> Response:
    caller(request)
    params = request.query_params
    try:
        body = quotes.query_to_body({k: params.getlist(k) for k in params} if params else {})
        answer = quotes.quote(_validate(body, "quote"))
    except quotes.QuoteError as e:
        details = (
            [{"field": e.details, "message": str(e)}] if isinstance(e.details, str) else e.details
        )
        raise ApiError(e.status, e.code, str(e), details) from None
    return Response(body=answer.model_dump(mode="json"), status_code=200)


@json_errors
def get_stats(request) -> Response:
    """Execution quality of the caller's orders over ``?window=``."""
    client_id = caller(request)
    params = request.query_params or {}
    unknown = set(params) - {"window"}
    if unknown:
        raise ApiError(422, "invalid_query", f"unknown parameter {clip(sorted(unknown)[0])!r}")
    try:
        answer = stats.execution_stats(params.get("window", "24h"), client_id=client_id)
    except ValueError as e:
        raise ApiError(422, "invalid_query", str(e)) from None
    return Response(body=answer.model_dump(mode="json"), status_code=200)


@json_errors
def cancel_order(request, order_id: str, notifier) -> Response:
    """Cancel the caller's order while nothing has been sent for it; 409 once it has."""
    client_id = caller(request)
    canonical = canonical_order_id(order_id)
    order, seq = (None, None) if canonical is None else store.cancel(canonical, client_id)
    if order is None:
        raise ApiError(404, "order_not_found", f"no order {clip(order_id)}")
    if seq is None:
        raise ApiError(
            409,
            "not_cancellable",
            f"the order is {order.status}: only an order not yet submitted can be cancelled",
            {"status": order.status.value},
        )
    logs.update(orderId=canonical, status=OrderStatus.CANCELLED)
    log.info("order %s cancelled seq=%d (was %s)", canonical, seq, order.status)
    metrics.count("OrdersCancelled")
    notifier.publish(canonical)
    fresh = store.get_order(canonical, client_id)
    return Response(body=order_view(fresh).model_dump(mode="json"), status_code=200)


@json_errors
def health() -> Response:
    checks = {}
    for name, ping in (
        ("database", store.ping),
        ("redis", cache.ping),
        ("queue", queue.ping),
    ):
        try:
            ping()
            checks[name] = "ok"
        except Exception as e:  # report every dependency, whatever its failure
            checks[name] = f"error: {type(e).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return Response(
        body={"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


def openapi_document() -> Response:
    return Response(body=openapi.document(), status_code=200)
