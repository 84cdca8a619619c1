"""Answers: the one place an ``EngineError`` becomes an HTTP response, and the JSON views of
the engine's records.

Every answer is JSON. Errors are ``{"error": {"code", "message", "details"}}``: bad input is a
400/413/415/422, never a 500, and a dependency that is down is a 503, never a hang.
"""

import functools
import logging

from chalice import Response
from pydantic import BaseModel

from chalicelib import tokens
from chalicelib.errors import DependencyUnavailable, EngineError
from chalicelib.orders.models import HistoryEntry, Order, OrderAccepted, OrderDetail
from chalicelib.orders.oco import OcoAccepted
from chalicelib.orders.records import HistoryRecord, OrderRecord

log = logging.getLogger(__name__)


def error_response(error: EngineError) -> Response:
    return Response(body=error.body(), status_code=error.status, headers=dict(error.headers))


def answers(view):
    """Turn an ``EngineError`` into its JSON answer, and anything else into a logged 500 that
    leaks no traceback."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except DependencyUnavailable as e:
            log.warning("dependency unavailable in %s: %s", view.__name__, e)
            return error_response(e)
        except EngineError as e:
            return error_response(e)
        except Exception:
            log.exception("unexpected error in %s", view.__name__)
            return error_response(EngineError("internal error"))

    return wrapper


def chalice_errors(event, get_response):
    """Middleware: Chalice's own errors (405, 415...) in the project's error shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        code = "".join(f"_{c.lower()}" if c.isupper() else c for c in body["Code"]).lstrip("_")
        response.body = {"error": {"code": code, "message": body.get("Message"), "details": None}}
    return response


def json_response(model: BaseModel, status: int = 200) -> Response:
    return Response(body=model.model_dump(mode="json"), status_code=status)


def _text(value) -> str | None:
    return None if value is None else format(value, "f")


def order_view(order: OrderRecord) -> Order:
    amount_out, token_out = order.amount_out, order.token_out
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
        executedPrice=None if order.executed_price is None else str(order.executed_price),
        amountOut=None if amount_out is None else str(amount_out),
        amountOutUi=None if amount_out is None else tokens.to_ui(amount_out, token_out),
        failureReason=order.failure_reason,
        clientOrderId=order.client_order_id,
        limitPrice=_text(order.limit_price),
        maxPrice=_text(order.max_price),
        expiresAt=None if order.expires_at is None else order.expires_at.isoformat(),
        triggerPrice=_text(order.trigger_price),
        direction=order.trigger_direction,
        triggeredAt=None if order.triggered_at is None else order.triggered_at.isoformat(),
        linkedOrderId=None if order.linked_order_id is None else str(order.linked_order_id),
        createdAt=order.created_at.isoformat(),
        updatedAt=order.updated_at.isoformat(),
    )


def detail_view(order: OrderRecord, history: list[HistoryRecord]) -> OrderDetail:
    entries = [
        HistoryEntry(
            seq=h.seq, status=h.status, payload=h.payload, createdAt=h.created_at.isoformat()
        )
        for h in history
    ]
    return OrderDetail(order=order_view(order), history=entries)


def accepted(order: OrderRecord, created: bool, ws_url: str) -> Response:
    """202 for a new order, 200 for the replay of an Idempotency-Key."""
    return json_response(accepted_view(order, ws_url), 202 if created else 200)


def accepted_view(order: OrderRecord, ws_url: str) -> OrderAccepted:
    return OrderAccepted(
        orderId=str(order.id),
        status=order.status,
        wsUrl=f"{ws_url}?orderId={order.id}",
        clientOrderId=order.client_order_id,
    )


def oco_accepted(pair, ws_url: str) -> OcoAccepted:
    return OcoAccepted(
        takeProfit=accepted_view(pair.take_profit, ws_url),
        stopLoss=accepted_view(pair.stop_loss, ws_url),
    )
