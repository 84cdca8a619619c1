"""Request and answer models of the routes that change orders already placed: cancel many
(``POST /api/orders/cancel``) and amend (``PATCH /api/orders/{id}``)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from chalicelib.errors import InvalidField
from chalicelib.orders.lifecycle import OrderStatus, OrderType
from chalicelib.orders.models import LIMIT_PRICE_PATTERN, MAX_EXPIRY_SLOTS, _Camel

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


class AmendRequest(_Camel):
    """Body of ``PATCH /api/orders/{id}``: the new bounds of an order waiting in ``open``."""

    limit_price: StrictStr | None = Field(
        None, alias="limitPrice", pattern=LIMIT_PRICE_PATTERN,
        description="limit orders: the new worst price, tokenOut per tokenIn.",
    )  # fmt: skip
    max_price: StrictStr | None = Field(
        None, alias="maxPrice", pattern=LIMIT_PRICE_PATTERN,
        description="sniper orders: the new most paid, tokenIn per tokenOut.",
    )  # fmt: skip
    trigger_price: StrictStr | None = Field(
        None, alias="triggerPrice", pattern=LIMIT_PRICE_PATTERN,
        description="stop orders: the new oracle price that triggers it.",
    )  # fmt: skip
    expires_at: AwareDatetime | None = Field(None, alias="expiresAt")
    expires_in_slots: StrictInt | None = Field(
        None, alias="expiresInSlots", ge=1, le=MAX_EXPIRY_SLOTS
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> "AmendRequest":
        if not self.model_fields_set:
            raise InvalidField("body", "name at least one field to change")
        for name, value in self.prices().items():
            if Decimal(value) <= 0:
                raise InvalidField(name, f"{name} must be positive")
        if self.expires_at is not None and self.expires_in_slots is not None:
            raise InvalidField("expiresAt", "one of expiresAt and expiresInSlots, not both")
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise InvalidField("expiresAt", "expiresAt is in the past")
        return self

    def prices(self) -> dict[str, str]:
        """The prices named, by their API name."""
        named = {"limitPrice": self.limit_price, "maxPrice": self.max_price,
                 "triggerPrice": self.trigger_price}  # fmt: skip
        return {k: v for k, v in named.items() if v is not None}

    def new_expiry(self, slot_ms: int) -> datetime | None:
        if self.expires_in_slots is not None:
            return datetime.now(UTC) + timedelta(milliseconds=self.expires_in_slots * slot_ms)
        return self.expires_at
