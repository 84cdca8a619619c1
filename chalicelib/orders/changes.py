"""Request and answer models of the routes that change orders already placed: cancel many
(``POST /api/orders/cancel``) and amend (``PATCH /api/orders/{id}``)."""

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, StrictBool, StrictStr, model_validator

from chalicelib.errors import InvalidField
from chalicelib.orders.lifecycle import OrderStatus, OrderType
from chalicelib.orders.models import _Camel

MAX_CANCEL_IDS = 100


class CancelManyRequest(_Camel):
    """Body of ``POST /api/orders/cancel``: the orders named, or all of the caller's orders
    (narrowed by the optional filters)."""

    order_ids: list[StrictStr] | None = Field(
        None, alias="orderIds", min_length=1, max_length=MAX_CANCEL_IDS,
        description=f"At most {MAX_CANCEL_IDS} order ids.",
    )  # fmt: skip
    all: StrictBool | None = Field(None, description="true: every order of yours not yet sent.")
    token_in: StrictStr | None = Field(None, alias="tokenIn", min_length=1, max_length=64)
    token_out: StrictStr | None = Field(None, alias="tokenOut", min_length=1, max_length=64)
    type: OrderType | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> "CancelManyRequest":
        if (self.order_ids is None) == (self.all is None):
            raise InvalidField("orderIds", "give one of orderIds and all")
        if self.all is False:
            raise InvalidField("all", "all must be true when given")
        filters = (self.token_in, self.token_out, self.type)
        if self.order_ids is not None and any(f is not None for f in filters):
            raise InvalidField("orderIds", "tokenIn, tokenOut and type filter all, not orderIds")
        return self


class CancelOutcomeKind(StrEnum):
    CANCELLED = "cancelled"
    NOT_CANCELLABLE = "not_cancellable"
    NOT_FOUND = "not_found"


class CancelOutcome(BaseModel):
    orderId: str
    outcome: CancelOutcomeKind
    status: OrderStatus | None = Field(
        None, description="The order's status now (none for an order not found)."
    )


class CancelManyAnswer(BaseModel):
    results: list[CancelOutcome] = Field(description="One per order named (or matched).")
    cancelled: int


AmendField = Literal["limitPrice", "triggerPrice", "maxPrice", "expiresAt", "expiresInSlots"]
