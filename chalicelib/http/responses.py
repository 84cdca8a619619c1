"""Answers: the one place an ``EngineError`` becomes an HTTP response, and the JSON views of
the engine's records.

Every answer is JSON. Errors are ``{"error": {"code", "message", "details"}}``: bad input is a
400/413/415/422, never a 500, and a dependency that is down is a 503, never a hang.
"""

import functools
import logging
from decimal import Decimal

from chalice import Response
from pydantic import BaseModel

from chalicelib import tokens
from chalicelib.errors import DependencyUnavailable, EngineError
from chalicelib.orders.models import (
    HistoryEntry,
    Order,
    OrderAccepted,
    OrderDetail,
    ParentFill,
    ParentSchedule,
)
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
        parentOrderId=None if order.parent_order_id is None else str(order.parent_order_id),
        sliceIndex=order.slice_index,
        schedule=_schedule(order),
        feeLamports=None if order.fee_lamports is None else str(order.fee_lamports),
        computeUnits=order.compute_units,
        slotsToLand=order.landing_slots,
        createdAt=order.created_at.isoformat(),
        updatedAt=order.updated_at.isoformat(),
    )


def _schedule(order: OrderRecord) -> ParentSchedule | None:
    if not order.is_parent:
        return None
    return ParentSchedule(
        slices=order.slices,
        intervalSeconds=order.interval_s,
        slicesDone=order.next_slice,
        nextSliceAt=None if order.next_slice_at is None else order.next_slice_at.isoformat(),
        amountPerSlice=None if order.slice_amount is None else str(order.slice_amount),
        minPrice=_text(order.band_min),
        maxPrice=_text(order.band_max),
    )


def fill_view(order: OrderRecord, fill: dict) -> ParentFill:
    """What a parent's children filled: amounts in base units, the average price in UI units."""
    filled_in, filled_out = int(fill["filled_in"]), int(fill["filled_out"])
    average = None
    if filled_in:
        ui_in = Decimal(filled_in).scaleb(-order.token_in.decimals)
        ui_out = Decimal(filled_out).scaleb(-order.token_out.decimals)
        average = format((ui_out / ui_in).quantize(Decimal(1).scaleb(-12)).normalize(), "f")
    return ParentFill(
        children=fill["children"],
        confirmed=fill["confirmed"],
        failed=fill["failed"],
        skipped=order.next_slice - fill["children"],
        filledAmountIn=str(filled_in),
        filledAmountOut=str(filled_out),
        filledAmountInUi=tokens.to_ui(filled_in, order.token_in),
        filledAmountOutUi=tokens.to_ui(filled_out, order.token_out),
        averagePrice=average,
    )


def detail_view(
    order: OrderRecord,
    history: list[HistoryRecord],
    children: list[OrderRecord] | None = None,
    fill: dict | None = None,
) -> OrderDetail:
    entries = [
        HistoryEntry(
            seq=h.seq, status=h.status, payload=h.payload, createdAt=h.created_at.isoformat()
        )
        for h in history
    ]
    return OrderDetail(
        order=order_view(order),
        history=entries,
        children=None if children is None else [order_view(c) for c in children],
        fill=None if fill is None else fill_view(order, fill),
    )


def accepted(order: OrderRecord, created: bool, ws_url: str) -> Response:
    """202 for a new order, 200 for the replay of an Idempotency-Key."""
    return json_response(accepted_view(order, ws_url), 202 if created else 200)


def accepted_view(order: OrderRecord, ws_url: str) -> OrderAccepted:
    return OrderAccepted(
        orderId=str(order.id),
        status=order.status,
        wsUrl=f"{ws_url}?orderId={order.id}",
        slippageBps=order.slippage_bps,
        clientOrderId=order.client_order_id,
    )


def oco_accepted(pair, ws_url: str) -> OcoAccepted:
    return OcoAccepted(
        takeProfit=accepted_view(pair.take_profit, ws_url),
        stopLoss=accepted_view(pair.stop_loss, ws_url),
    )
