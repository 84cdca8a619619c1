"""The engine's one error tree: every error a client can be answered with.

An ``EngineError`` carries what the answer needs: a ``code``, an HTTP ``status``, a message and
``details``. The HTTP boundary (``chalicelib.http.responses``) turns one into
``{"error": {"code", "message", "details"}}`` with its status, the WebSocket handlers into an
error frame of the same shape. Each kind of answer is a small class here; a module raises the
one that fits, or a subclass of its own with a narrower ``code`` (``TokenError``,
``DexError``, ``IllegalTransition``...).

Driver errors (psycopg, redis, botocore) never leave ``chalicelib.backends``: they become
``DependencyUnavailable`` there (``chalicelib.backends.drivers``).
"""

from typing import Any, ClassVar

MAX_ECHO = 64  # characters of a client's value repeated in an error


def clip(value: Any, limit: int = MAX_ECHO) -> str:
    """A client's value as it may appear in an answer: at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class EngineError(Exception):
    status: ClassVar[int] = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        details: Any = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message, self.details, self.headers = message, details, headers or {}
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(EngineError):
    status = 400
    code = "bad_request"


class Unauthorized(EngineError):
    status = 401
    code = "unauthorized"


class Forbidden(EngineError):
    status = 403
    code = "forbidden"


class NotFound(EngineError):
    status = 404
    code = "not_found"


class Conflict(EngineError):
    status = 409
    code = "conflict"


class PayloadTooLarge(EngineError):
    status = 413
    code = "body_too_large"


class UnsupportedMediaType(EngineError):
    status = 415
    code = "unsupported_media_type"


class InvalidInput(EngineError):
    status = 422
    code = "invalid_input"


class InvalidField(InvalidInput, ValueError):
    """One input field is at fault (a ValueError too, so pydantic validators may raise it)."""

    def __init__(self, field: str, message: str, *, code: str | None = None):
        super().__init__(message, [{"field": field, "message": message}], code=code)
        self.field = field


class TooManyRequests(EngineError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int, details: Any = None, **kwargs):
        headers = {"Retry-After": str(retry_after_s)}
        super().__init__(message, details, headers=headers, **kwargs)
        self.retry_after_s = retry_after_s


class DependencyUnavailable(EngineError):
    """Postgres, Redis or SQS did not answer, or answered with an error."""

    status = 503
    code = "dependency_unavailable"

    def __init__(self, dependency: str, cause: BaseException | str):
        super().__init__("a dependency is unavailable")
        self.dependency, self.cause = dependency, cause

    def __str__(self) -> str:
        return f"{self.dependency} unavailable: {self.cause!r}"


# -- what orders may be refused for --------------------------------------------------------


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"

    def __init__(self, order_id: str):
        super().__init__(
            "this Idempotency-Key was used with a different body", {"orderId": order_id}
        )
        self.order_id = order_id


class DuplicateClientOrderId(Conflict):
    code = "duplicate_client_order_id"

    def __init__(self, client_order_id: str | None):
        super().__init__(
            "you already have an order with this clientOrderId",
            {"clientOrderId": client_order_id},
        )
        self.client_order_id = client_order_id


class TooManyOpenOrders(TooManyRequests):
    """Admitting one more order would exceed a limit: the client's live orders (``scope``
    "client") or the orders in flight engine-wide ("engine")."""

    code = "too_many_open_orders"

    def __init__(self, limit: int, scope: str, retry_after_s: int = 1):
        message = (
            f"you have {limit} open orders, the most a client may hold; retry when one ends"
            if scope == "client"
            else f"{limit} orders are being executed; retry shortly"
        )
        super().__init__(message, retry_after_s, {"limit": limit, "scope": scope})
        self.limit, self.scope = limit, scope


class OrderNotFound(NotFound):
    code = "order_not_found"

    def __init__(self, order_id: Any):
        super().__init__(f"no order {clip(order_id)}")
