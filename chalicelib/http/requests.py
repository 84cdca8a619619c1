"""Strict parsing of what a request carries: its media type, JSON body, headers and query.

Anything malformed is refused with the error that names it (400, 413, 415, 422); nothing here
touches a dependency.
"""

import email.message
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pydantic

from chalicelib import strict_json
from chalicelib.config import get_settings
from chalicelib.errors import (
    InvalidField,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
    clip,
)
from chalicelib.orders.lifecycle import OrderStatus
from chalicelib.orders.models import CLIENT_ORDER_ID_PATTERN, OrderRequest, OrderSpec

T = TypeVar("T")
ACCEPTED_CONTENT_TYPES = ["application/json"]
MAX_IDEMPOTENCY_KEY = 255
LIMIT_RE = re.compile(r"[0-9]{1,3}", re.ASCII)
CLIENT_ORDER_ID_RE = re.compile(CLIENT_ORDER_ID_PATTERN)


def _check_content_type(headers) -> None:
    """A real media type, not a header that merely mentions one (``text/plain;application/json``
    is text/plain: the kind a cross-site form sends without a preflight)."""
    message = email.message.Message()
    message["content-type"] = headers.get("content-type", "")
    if message.get_content_type() != "application/json" or message.defects:
        raise UnsupportedMediaType("Content-Type must be application/json")


def json_object(request) -> dict:
    """The request's body: an ``application/json`` object, each key once, not too deep."""
    _check_content_type(request.headers)
    raw, limit = request.raw_body, get_settings().access.max_body_bytes
    if raw is not None and len(raw) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes")
    body = strict_json.loads(raw)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", code="invalid_order")
    return body


def _field_of(error) -> str:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidField):
        return cause.field
    return ".".join(str(p) for p in error["loc"] if not _union_tag(p)) or "body"


def _union_tag(part) -> bool:
    """A union member pydantic names in an error's path (``constrained-int``,
    ``literal['auto']``, a model's class name), not a field: fields are camelCase."""
    return isinstance(part, str) and (part[:1].isupper() or any(c in part for c in "-['("))


def order_spec(body: dict, what: str = "order") -> OrderSpec:
    """The validated order (or quote request) a body describes."""
    return parsed(
        lambda: OrderRequest.model_validate(body).to_spec(get_settings().market.slot_ms), what
    )


def parsed(parse: Callable[[], T], what: str, code: str = "invalid_order") -> T:
    """``parse()``, its validation errors as one 422 naming each field."""
    try:
        return parse()
    except pydantic.ValidationError as e:
        details = [
            {"field": _field_of(err), "message": err["msg"]}
            for err in e.errors(include_input=False, include_url=False)
        ]
        raise InvalidInput(f"the {what} is invalid", details, code=code) from None
    except InvalidField as e:
        raise InvalidInput(str(e), e.details, code=code) from None


def idempotency_key(headers) -> str | None:
    key = headers.get("idempotency-key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} printable characters",
            code="invalid_idempotency_key",
        )
    return key


def _invalid_query(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_query")


@dataclass(frozen=True)
class OrdersQuery:
    """``GET /api/orders?status=&limit=&cursor=&clientOrderId=``"""

    status: OrderStatus | None
    limit: int
    cursor: str | None
    client_order_id: str | None


def orders_query(params: dict | None) -> OrdersQuery:
    params = params or {}
    status = params.get("status")
    if status is not None and status not in OrderStatus.__members__.values():
        raise _invalid_query(f"unknown status {clip(status)!r}")
    raw_limit = params.get("limit", "20")
    limit = int(raw_limit) if LIMIT_RE.fullmatch(raw_limit) else 0
    if not 1 <= limit <= 100:
        raise _invalid_query("limit must be an integer from 1 to 100")
    client_order_id = params.get("clientOrderId")
    if client_order_id is not None and not CLIENT_ORDER_ID_RE.fullmatch(client_order_id):
        raise _invalid_query("clientOrderId must be 1..64 printable ASCII")
    return OrdersQuery(
        None if status is None else OrderStatus(status), limit, params.get("cursor"),
        client_order_id,
    )  # fmt: skip


def stats_window(params: dict | None) -> str:
    params = params or {}
    no_query({name: value for name, value in params.items() if name != "window"})
    return params.get("window", "24h")


def no_query(params: dict | None) -> None:
    """A route that takes no query parameters refuses any."""
    if params:
        raise _invalid_query(f"unknown parameter {clip(sorted(params)[0])!r}")
