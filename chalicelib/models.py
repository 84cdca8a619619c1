"""Request, response and event models; the order status enum."""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from chalicelib import tokens
from chalicelib.tokens import Token

VENUES = ("raydium", "meteora")


class OrderStatus(StrEnum):
    PENDING = "pending"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (OrderStatus.CONFIRMED, OrderStatus.FAILED)


class _Camel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class OrderRequest(_Camel):
    """Body of ``POST /api/orders/execute``."""

    type: Literal["market"] = Field(description="Only market orders are supported.")
    token_in: str = Field(alias="tokenIn", min_length=1, max_length=64, examples=["SOL"])
    token_out: str = Field(alias="tokenOut", min_length=1, max_length=64, examples=["USDC"])
    # A JSON number arrives as Decimal (the body is parsed with parse_float=Decimal),
    # so "1.5" and 1.5 convert exactly; a float never reaches the money path.
    amount: StrictStr | StrictInt | Decimal = Field(
        description='UI units of tokenIn, e.g. "1.5"', examples=["1.5"]
    )
    # A JSON integer only: not "100", 100.0, 1e2 or true.
    slippage_bps: StrictInt = Field(50, alias="slippageBps", ge=1, le=5000)
    venues: list[Literal["raydium", "meteora"]] | None = Field(
        None, min_length=1, description="Optional venue allow-list; both when omitted."
    )

    def to_spec(self) -> "OrderSpec":
        """Resolve tokens and convert the amount; raises ``tokens.TokenError``."""
        token_in = tokens.resolve(self.token_in, "tokenIn")
        token_out = tokens.resolve(self.token_out, "tokenOut")
        tokens.check_pair(token_in, token_out)
        return OrderSpec(
            token_in=token_in,
            token_out=token_out,
            amount_in=tokens.check_max_order(tokens.to_base_units(self.amount, token_in), token_in),
            slippage_bps=self.slippage_bps,
            venues=tuple(sorted(set(self.venues))) if self.venues else VENUES,
        )


@dataclass(frozen=True)
class OrderSpec:
    """A validated market order: tokens resolved, amount in base units."""

    token_in: Token
    token_out: Token
    amount_in: int
    slippage_bps: int
    venues: tuple[str, ...] = VENUES


class OrderAccepted(BaseModel):
    orderId: str
    status: OrderStatus
    wsUrl: str


class Order(BaseModel):
    id: str
    type: str
    status: OrderStatus
    tokenIn: str
    tokenOut: str
    mintIn: str
    mintOut: str
    amountIn: str = Field(description="Base units of tokenIn, as a decimal string.")
    amountInUi: str
    slippageBps: int
    venues: list[str]
    attempts: int
    lastSeq: int
    route: dict[str, Any] | None = None
    txHash: str | None = None
    executedPrice: str | None = None
    amountOut: str | None = Field(None, description="Base units of tokenOut.")
    amountOutUi: str | None = None
    failureReason: str | None = None
    createdAt: str
    updatedAt: str


class HistoryEntry(BaseModel):
    seq: int
    status: OrderStatus
    payload: dict[str, Any]
    createdAt: str


class OrderDetail(BaseModel):
    order: Order
    history: list[HistoryEntry]


class OrderPage(BaseModel):
    orders: list[Order]
    nextCursor: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorInfo


class StatusEvent(BaseModel):
    """One status change as pushed over the WebSocket: ``{"orderId","seq","status",...payload}``."""

    model_config = ConfigDict(extra="allow")
    type: Literal["status"] = "status"
    orderId: str
    seq: int
    status: OrderStatus


class SubscribeMessage(_Camel):
    action: Literal["subscribe", "unsubscribe"]
    order_id: str = Field(alias="orderId", min_length=1, max_length=64)
    since: int = Field(0, ge=0)


class PingMessage(_Camel):
    action: Literal["ping"]
