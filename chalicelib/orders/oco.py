"""One-cancels-the-other: a take-profit limit order and a stop-loss stop order on the same
amount, placed together; whichever starts executing first cancels the other.

``POST /api/orders/execute`` with ``{"type": "oco", ..., "takeProfit": {limit fields},
"stopLoss": {stop fields}}`` makes the two orders (``store.create_linked_pair``), each of
its own type, naming each other, both waiting in ``open``. The worker's move of either to
``routing`` is ``start``: in one transaction, both rows locked, the order moves and the other
is ``cancelled`` (by ``oco``), so exactly one of them executes even when both trigger at once.
A client's cancel of either cancels both.
"""

import logging
import uuid
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, StrictInt, StrictStr

from chalicelib import logs, metrics
from chalicelib.config import get_settings
from chalicelib.orders import intake, store
from chalicelib.orders.lifecycle import Actor, OrderStatus
from chalicelib.orders.models import (
    LIMIT_PRICE_PATTERN,
    MAX_EXPIRY_SLOTS,
    OrderAccepted,
    OrderRequest,
    OrderSpec,
    _Camel,
)
from chalicelib.orders.moves import Publisher
from chalicelib.orders.records import HistoryRecord, OrderRecord, StatusChange

log = logging.getLogger(__name__)


class TakeProfit(_Camel):
    limit_price: StrictStr = Field(alias="limitPrice", pattern=LIMIT_PRICE_PATTERN)
    expires_at: AwareDatetime | None = Field(None, alias="expiresAt")
    expires_in_slots: StrictInt | None = Field(
        None, alias="expiresInSlots", ge=1, le=MAX_EXPIRY_SLOTS
    )


class StopLoss(_Camel):
    trigger_price: StrictStr = Field(alias="triggerPrice", pattern=LIMIT_PRICE_PATTERN)
    direction: Literal["below", "above"]
    limit_price: StrictStr | None = Field(None, alias="limitPrice", pattern=LIMIT_PRICE_PATTERN)


class OcoRequest(_Camel):
    """Body of ``POST /api/orders/execute`` for a one-cancels-the-other pair: the take
    profit's expiry is the pair's."""

    type: Literal["oco"]
    token_in: str = Field(alias="tokenIn", min_length=1, max_length=64)
    token_out: str = Field(alias="tokenOut", min_length=1, max_length=64)
    amount: StrictStr | StrictInt = Field(description="UI units of tokenIn, for each leg")
    slippage_bps: StrictInt = Field(50, alias="slippageBps", ge=1, le=5000)
    venues: list[str] | None = None
    take_profit: TakeProfit = Field(alias="takeProfit")
    stop_loss: StopLoss = Field(alias="stopLoss")

    def legs(self, slot_ms: int) -> tuple[OrderSpec, OrderSpec]:
        """Each leg as an order of its own type, validated as one."""
        common = {"tokenIn": self.token_in, "tokenOut": self.token_out, "amount": self.amount,
                  "slippageBps": self.slippage_bps, "venues": self.venues}  # fmt: skip
        expiry = self.take_profit.model_dump(by_alias=True, exclude={"limit_price"})
        take = {**common, "type": "limit", "limitPrice": self.take_profit.limit_price, **expiry}
        stop = {**common, "type": "stop", **self.stop_loss.model_dump(by_alias=True), **expiry}
        take_spec, stop_spec = (
            OrderRequest.model_validate({k: v for k, v in leg.items() if v is not None}).to_spec(
                slot_ms
            )
            for leg in (take, stop)
        )
        return take_spec, replace(stop_spec, expires_at=take_spec.expires_at)  # one expiry


class OcoAccepted(BaseModel):
    takeProfit: OrderAccepted
    stopLoss: OrderAccepted


@dataclass(frozen=True)
class AdmittedPair:
    take_profit: OrderRecord
    stop_loss: OrderRecord
    created: bool


def submit(request: OcoRequest, client_id: uuid.UUID, idempotency_key: str | None) -> AdmittedPair:
    take, stop = request.legs(get_settings().market.slot_ms)
    request_hash = intake.fingerprint(take) + intake.fingerprint(stop)
    access = get_settings().access
    first, second, created = store.create_linked_pair(
        take, stop, idempotency_key, request_hash, client_id=client_id,
        limits=store.Admission(access.max_orders_in_flight, access.max_open_orders_per_client,
                               intake.retry_after_s()),
    )  # fmt: skip
    if not created:
        intake.check_replay(first, request_hash)
        return AdmittedPair(first, second, created=False)
    log.info("oco pair %s / %s accepted", first.id, second.id)
    metrics.count("OrdersAccepted", 2)
    for order in (first, second):
        intake.enqueue(str(order.id))
    return AdmittedPair(first, second, created=True)


def start(
    order_id: str, linked_id, from_status: OrderStatus, from_seq: int, change: StatusChange,
    publisher: Publisher,
) -> HistoryRecord | None:  # fmt: skip
    """Move the order to ``routing`` and cancel the other in one transaction; None when the
    other one started first."""
    entry, cancelled = store.advance_linked(
        order_id, linked_id, from_status, from_seq, change, Actor.WORKER
    )
    if cancelled is not None:
        with logs.bind(orderId=str(linked_id)):
            log.info("order %s cancelled seq=%d: %s executes", linked_id, cancelled.seq, order_id)
        metrics.count("OrdersCancelled")
        publisher.publish(str(linked_id), [cancelled])
    return entry
