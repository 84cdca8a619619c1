"""The API's request and response models (pydantic), and ``OrderSpec``, a validated order."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from chalicelib import tokens
from chalicelib.dex import EXACT_IN, EXACT_OUT, VENUES, RouteOptions
from chalicelib.errors import InvalidField
from chalicelib.orders.lifecycle import OrderStatus, OrderType
from chalicelib.tokens import MAX_BASE_UNITS, Token

# A client's own reference for an order: 1..64 printable ASCII characters.
CLIENT_ORDER_ID_PATTERN = r"^[\x20-\x7e]{1,64}$"
# Only the canonical form of an order id is one: lowercase, hyphenated, nothing around it.
ORDER_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
LIMIT_PRICE_PATTERN = r"^[0-9]{1,20}(\.[0-9]{1,18})?$"  # a plain decimal, like amounts
MAX_EXPIRY_SLOTS = 30 * 24 * 3600 * 1000 // 400  # about 30 days
MAX_EXPIRY = timedelta(days=30)  # expiresAt, like expiresInSlots
MAX_PRIORITY_LAMPORTS = 1_000_000_000  # a priority fee's cap: at most 1 SOL
DEFAULT_MAX_AUTO_SLIPPAGE_BPS = 300
Bps = Annotated[StrictInt, Field(ge=1, le=5000)]


def canonical_order_id(value) -> str | None:
    """The order id a client gave, if it is one (anything else names no order)."""
    return value if isinstance(value, str) and ORDER_ID_RE.fullmatch(value) else None


class _Camel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


def _absent(*names: str) -> dict:
    return {"properties": {name: {"type": "null"} for name in names}}  # or null


def _present(*names: str) -> dict:
    return {"required": list(names), "properties": {n: {"not": {"type": "null"}} for n in names}}


_ZERO = {"pattern": r"^[0.]*$"}  # a price of 0, 0.0, ...: refused where one must be positive


def _positive(name: str, optional: bool = False) -> dict:
    rule = {"anyOf": [{"type": "null"}, {"not": _ZERO}]} if optional else {"not": _ZERO}
    return {"properties": {name: rule}}


_ONE_EXPIRY = {"oneOf": [_present("expiresAt"), _present("expiresInSlots")]}
_NOT_BOTH_EXPIRIES = {"not": {"allOf": [_present("expiresAt"), _present("expiresInSlots")]}}


def _when(order_type: str, *then: dict) -> dict:
    when = {"required": ["type"], "properties": {"type": {"const": order_type}}}
    return {"if": when, "then": {"allOf": list(then)}}


# What each type needs and refuses (``OrderRequest._limit_fields``), said in the schema too.
# An expiry must also be in the future and within 30 days: that the schema cannot say.
# maxAutoSlippageBps only beside slippageBps "auto".
_AUTO_CAP = {
    "if": _present("maxAutoSlippageBps"),
    "then": {"required": ["slippageBps"], "properties": {"slippageBps": {"const": "auto"}}},
}
# ExactOut: market orders only, without minOut (they receive exactly their amount).
_EXACT_OUT = {
    "if": {"required": ["swapMode"], "properties": {"swapMode": {"const": "ExactOut"}}},
    "then": {"allOf": [{"properties": {"type": {"const": "market"}}}, _absent("minOut")]},
}
ORDER_RULES = [
    _AUTO_CAP,
    _EXACT_OUT,
    _when("market", _absent("limitPrice", "maxPrice", "expiresAt", "expiresInSlots",
                            "triggerPrice", "direction")),
    _when("limit", _present("limitPrice"), _positive("limitPrice"), _ONE_EXPIRY,
          _absent("maxPrice", "triggerPrice", "direction")),
    _when("sniper", _present("maxPrice"), _positive("maxPrice"), _NOT_BOTH_EXPIRIES,
          _absent("limitPrice", "triggerPrice", "direction")),
    _when("stop", _present("triggerPrice", "direction"), _positive("triggerPrice"),
          _positive("limitPrice", optional=True), _NOT_BOTH_EXPIRIES, _absent("maxPrice")),
]  # fmt: skip


class PriorityFeeCap(_Camel):
    """``priorityFee: {"maxLamports": n}``: the "auto" fee, spending at most ``n`` lamports
    of priority fee (a retry raises the fee within it)."""

    max_lamports: StrictInt = Field(alias="maxLamports", ge=0, le=MAX_PRIORITY_LAMPORTS)


class RoutingFields(_Camel):
    """What an order or a quote asks of the router, as Jupiter's quote API names it."""

    only_direct_routes: StrictBool = Field(
        False, alias="onlyDirectRoutes", description="Only the pair's own pools, no hops."
    )
    max_hops: StrictInt = Field(2, alias="maxHops", ge=1, le=2)
    restrict_intermediate_tokens: StrictBool = Field(
        True,
        alias="restrictIntermediateTokens",
        description="Hop only through SOL, USDC or USDT (false: any listed token).",
    )
    venues: list[Literal[VENUES]] | None = Field(
        None, min_length=1, description="Optional venue allow-list; both when omitted."
    )
    exclude_venues: list[Literal[VENUES]] | None = Field(
        None, alias="excludeVenues", min_length=1, description="Venues never to route through."
    )
    priority_fee: Literal["auto"] | PriorityFeeCap = Field(
        "auto",
        alias="priorityFee",
        description='"auto": the lowest fee expected to land within a few slots (at most'
        " 0.005 SOL); {maxLamports}: the same, within your cap.",
    )

    def route_options(self) -> RouteOptions:
        return RouteOptions(
            only_direct_routes=self.only_direct_routes,
            max_hops=self.max_hops,
            restrict_intermediate_tokens=self.restrict_intermediate_tokens,
        )

    def allowed_venues(self, default: tuple[str, ...] = VENUES) -> tuple[str, ...]:
        chosen = tuple(sorted(set(self.venues))) if self.venues else default
        allowed = tuple(venue for venue in chosen if venue not in (self.exclude_venues or ()))
        if not allowed:
            raise InvalidField("excludeVenues", "excludeVenues leaves no venue to route through")
        return allowed

    def max_priority_lamports(self) -> int | None:
        return None if self.priority_fee == "auto" else self.priority_fee.max_lamports


class OrderRequest(RoutingFields):
    """Body of ``POST /api/orders/execute``."""

    model_config = ConfigDict(
        populate_by_name=True, extra="forbid", json_schema_extra={"allOf": ORDER_RULES}
    )

    type: OrderType = Field(
        description="market: now; limit: once the route's price at this size meets limitPrice;"
        " sniper: buy tokenOut, a newly listed token, once its pool trades (in arrival order);"
        " stop: once the oracle price crosses triggerPrice, as market (or limit with limitPrice)."
    )
    token_in: str = Field(alias="tokenIn", min_length=1, max_length=64, examples=["SOL"])
    token_out: str = Field(alias="tokenOut", min_length=1, max_length=64, examples=["USDC"])
    # A JSON number arrives as Decimal (the body is parsed with parse_float=Decimal),
    # so "1.5" and 1.5 convert exactly; a float never reaches the money path.
    amount: StrictStr | StrictInt | Decimal = Field(
        description='UI units of tokenIn, e.g. "1.5" (swapMode ExactOut: of tokenOut, the'
        " output wanted)",
        examples=["1.5"],
    )
    swap_mode: Literal["ExactIn", "ExactOut"] = Field(
        "ExactIn",
        alias="swapMode",
        description="ExactOut (market orders): receive exactly amount of tokenOut, spending at"
        " most the quote's maxIn (or the route's at submit).",
    )
    # A JSON integer only: not "100", 100.0, 1e2 or true; or "auto".
    slippage_bps: Bps | Literal["auto"] = Field(
        50,
        alias="slippageBps",
        description='"auto": chosen from the pair\'s recent slippage and volatility, at most'
        " maxAutoSlippageBps; the answer and the order show the value chosen.",
    )
    max_auto_slippage_bps: Bps | None = Field(
        None, alias="maxAutoSlippageBps", description='With slippageBps "auto"; default 300.'
    )
    quote_id: str | None = Field(
        None,
        alias="quoteId",
        pattern=r"^[0-9a-f]{32}$",
        description="A quote from GET /api/quote: the order never fills below its minOut.",
    )
    min_out: str | None = Field(
        None,
        alias="minOut",
        pattern=r"^(0|[1-9][0-9]{0,19})$",
        description="Base units of tokenOut the order must at least fill (decimal string).",
    )
    client_order_id: StrictStr | None = Field(
        None,
        alias="clientOrderId",
        pattern=CLIENT_ORDER_ID_PATTERN,
        description="Your own reference, unique among your orders (1..64 printable ASCII).",
    )
    limit_price: StrictStr | None = Field(
        None,
        alias="limitPrice",
        pattern=LIMIT_PRICE_PATTERN,
        description="limit orders: the worst price accepted, tokenOut per tokenIn in UI units.",
        examples=["150.25"],
    )
    max_price: StrictStr | None = Field(
        None,
        alias="maxPrice",
        pattern=LIMIT_PRICE_PATTERN,
        description="sniper orders: the most paid, tokenIn per tokenOut in UI units.",
    )
    expires_at: AwareDatetime | None = Field(
        None,
        alias="expiresAt",
        description="limit orders: when it expires (ISO 8601), within 30 days.",
    )
    expires_in_slots: StrictInt | None = Field(
        None, alias="expiresInSlots", ge=1, le=MAX_EXPIRY_SLOTS,
        description="limit orders: or it expires this many slots from now.",
    )  # fmt: skip
    trigger_price: StrictStr | None = Field(
        None, alias="triggerPrice", pattern=LIMIT_PRICE_PATTERN,
        description="stop orders: the oracle price (tokenOut per tokenIn) that triggers it.",
    )  # fmt: skip
    direction: Literal["below", "above"] | None = Field(
        None, description="stop orders: trigger once the oracle price falls to triggerPrice"
        " (below) or rises to it (above).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _limit_fields(self) -> "OrderRequest":
        if self.swap_mode == EXACT_OUT and self.type != OrderType.MARKET:
            raise InvalidField("swapMode", "ExactOut is for market orders")
        if self.swap_mode == EXACT_OUT and self.min_out is not None:
            raise InvalidField("minOut", "an ExactOut order receives exactly its amount")
        if self.max_auto_slippage_bps is not None and self.slippage_bps != "auto":
            raise InvalidField("maxAutoSlippageBps", 'maxAutoSlippageBps needs slippageBps "auto"')
        if self.type.parent:
            raise InvalidField("type", "twap and dca orders have bodies of their own")
        if self.type == OrderType.STOP:
            return stop_fields(self)
        if self.trigger_price is not None or self.direction is not None:
            raise InvalidField("triggerPrice", "triggerPrice and direction belong to stop orders")
        limit_fields = (self.limit_price, self.expires_at, self.expires_in_slots)
        if self.type == OrderType.MARKET:
            if any(f is not None for f in limit_fields) or self.max_price is not None:
                raise InvalidField("type", "limitPrice, maxPrice and an expiry are not for market")
            return self
        if self.type == OrderType.SNIPER:
            return self._sniper_fields()
        if self.max_price is not None:
            raise InvalidField("maxPrice", "maxPrice belongs to sniper orders")
        if self.limit_price is None or Decimal(self.limit_price) <= 0:
            raise InvalidField("limitPrice", "a limit order needs a positive limitPrice")
        if (self.expires_at is None) == (self.expires_in_slots is None):
            raise InvalidField(
                "expiresAt", "a limit order needs one of expiresAt and expiresInSlots"
            )
        self._check_expires_at()
        return self

    def _check_expires_at(self) -> None:
        """In the future and within ``MAX_EXPIRY``: also what keeps it inside what a
        ``datetime`` holds once stored and read back in UTC."""
        if self.expires_at is None:
            return
        now = datetime.now(UTC)
        if self.expires_at <= now:
            raise InvalidField("expiresAt", "expiresAt is in the past")
        if self.expires_at - now > MAX_EXPIRY:
            raise InvalidField("expiresAt", f"expiresAt must be within {MAX_EXPIRY.days} days")

    def _auto_cap(self) -> int | None:
        if self.slippage_bps != "auto":
            return None
        return self.max_auto_slippage_bps or DEFAULT_MAX_AUTO_SLIPPAGE_BPS

    def _default_venues(self) -> tuple[str, ...]:
        return (
            ("raydium",) if self.type == OrderType.SNIPER else VENUES
        )  # new tokens list on Raydium

    def _sniper_fields(self) -> "OrderRequest":
        if self.max_price is None or Decimal(self.max_price) <= 0:
            raise InvalidField("maxPrice", "a sniper order needs a positive maxPrice")
        if self.limit_price is not None:
            raise InvalidField("limitPrice", "a sniper order is bounded by maxPrice")
        if self.expires_at is not None and self.expires_in_slots is not None:
            raise InvalidField("expiresAt", "one of expiresAt and expiresInSlots, not both")
        self._check_expires_at()
        return self

    @field_validator("min_out")
    @classmethod
    def _fits_a_bigint(cls, value: str | None) -> str | None:
        if value is not None and int(value) > MAX_BASE_UNITS:
            raise ValueError(f"minOut must be at most {MAX_BASE_UNITS}")
        return value

    def to_spec(self, slot_ms: int = 400) -> "OrderSpec":
        """Resolve tokens and convert the amount; raises ``tokens.TokenError``."""
        token_in = tokens.resolve(self.token_in, "tokenIn")
        token_out = tokens.resolve(self.token_out, "tokenOut")
        tokens.check_pair(token_in, token_out)
        if self.type == OrderType.SNIPER and token_out.mint not in tokens.LISTED:
            raise tokens.TokenError("tokenOut", f"{token_out.symbol} is not a new listing")
        expires_at = self.expires_at
        if self.expires_in_slots is not None:
            expires_at = datetime.now(UTC) + timedelta(milliseconds=self.expires_in_slots * slot_ms)
        exact_out = self.swap_mode == EXACT_OUT
        amount_token = token_out if exact_out else token_in
        amount = tokens.check_max_order(
            tokens.to_base_units(self.amount, amount_token), amount_token
        )
        return OrderSpec(
            token_in=token_in,
            token_out=token_out,
            amount_in=0 if exact_out else amount,  # ExactOut: its budget, once routed or bound
            swap_mode=self.swap_mode,
            amount_out_wanted=amount if exact_out else None,
            # "auto": chosen once admitted (``auto_slippage.choose``); until then its cap
            slippage_bps=self._auto_cap() or self.slippage_bps,
            auto_slippage=self.slippage_bps == "auto",
            venues=self.allowed_venues(self._default_venues()),
            quote_id=self.quote_id,
            min_out=None if self.min_out is None else int(self.min_out),
            type=self.type,
            client_order_id=self.client_order_id,
            limit_price=None if self.limit_price is None else Decimal(self.limit_price),
            expires_at=expires_at,
            max_price=None if self.max_price is None else Decimal(self.max_price),
            expiry=None if expires_at is None else f"{self.expires_at}|{self.expires_in_slots}",
            trigger_price=None if self.trigger_price is None else Decimal(self.trigger_price),
            trigger_direction=self.direction,
            route_options=self.route_options(),
            max_priority_lamports=self.max_priority_lamports(),
        )


def stop_fields(order: "OrderRequest") -> "OrderRequest":
    """A stop order: a positive triggerPrice, a direction, optionally a limitPrice and an
    expiry (it waits until cancelled otherwise)."""
    if order.trigger_price is None or Decimal(order.trigger_price) <= 0:
        raise InvalidField("triggerPrice", "a stop order needs a positive triggerPrice")
    if order.direction is None:
        raise InvalidField("direction", "a stop order needs a direction: below or above")
    if order.max_price is not None:
        raise InvalidField("maxPrice", "maxPrice belongs to sniper orders")
    if order.limit_price is not None and Decimal(order.limit_price) <= 0:
        raise InvalidField("limitPrice", "limitPrice must be positive")
    if order.expires_at is not None and order.expires_in_slots is not None:
        raise InvalidField("expiresAt", "one of expiresAt and expiresInSlots, not both")
    if order.expires_at is not None and order.expires_at <= datetime.now(UTC):
        raise InvalidField("expiresAt", "expiresAt is in the past")
    return order


@dataclass(frozen=True)
class OrderSpec:
    """A validated market order: tokens resolved, amount in base units."""

    token_in: Token
    token_out: Token
    amount_in: int
    slippage_bps: int
    venues: tuple[str, ...] = VENUES
    quote_id: str | None = None
    min_out: int | None = None  # the least output the client accepted (base units of tokenOut)
    type: OrderType = OrderType.MARKET
    client_order_id: str | None = None
    limit_price: Decimal | None = None  # UI units of tokenOut per tokenIn
    expires_at: datetime | None = None
    max_price: Decimal | None = None  # sniper orders: UI units of tokenIn per tokenOut
    expiry: str | None = None  # the expiry as requested: a replay with the same key matches
    trigger_price: Decimal | None = None  # stop orders: UI units of tokenOut per tokenIn
    trigger_direction: str | None = None  # "below" | "above"
    # A parent order (TWAP, DCA): its children, one per interval.
    slices: int | None = None
    interval_s: int | None = None
    slice_amount: int | None = None  # DCA: each cycle's amount (a TWAP splits amount_in)
    band_min: Decimal | None = None  # DCA: the oracle price band, tokenOut per tokenIn
    band_max: Decimal | None = None
    route_options: RouteOptions = RouteOptions()  # hops allowed; its venues are ``venues``
    max_priority_lamports: int | None = None  # the priority fee's cap (None: the default)
    # slippageBps "auto": ``slippage_bps`` is its cap until ``auto_slippage.choose`` picks
    auto_slippage: bool = False
    swap_mode: str = EXACT_IN
    amount_out_wanted: int | None = None  # ExactOut: base units of token_out, exactly

    @property
    def amount(self) -> int:
        """What the router is asked for: the input to sell, or (ExactOut) the output to buy."""
        return self.amount_out_wanted if self.swap_mode == EXACT_OUT else self.amount_in

    @property
    def slippage_asked(self) -> int | str:
        """The slippage as the client asked for it: what a replay or a quote must match."""
        return f"auto<={self.slippage_bps}" if self.auto_slippage else self.slippage_bps


def split_amount(total: int, slices: int) -> list[int]:
    """``total`` in ``slices`` parts of ``total // slices``, the remainder in the last: the
    parts add up to ``total`` exactly (each at least 1 when ``total >= slices``)."""
    if slices < 1 or total < slices:
        raise ValueError("need at least one base unit per slice")
    part = total // slices
    return [part] * (slices - 1) + [total - part * (slices - 1)]


def slice_amount(total: int, slices: int, index: int) -> int:
    """The amount of slice ``index`` of ``split_amount(total, slices)``, without the list."""
    part = total // slices
    return total - part * (slices - 1) if index == slices - 1 else part


class OrderAccepted(BaseModel):
    orderId: str
    status: OrderStatus
    wsUrl: str
    slippageBps: int | None = Field(None, description='The bound: "auto"\'s choice when asked.')
    clientOrderId: str | None = None


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
    clientOrderId: str | None = None
    limitPrice: str | None = Field(None, description="tokenOut per tokenIn, UI units.")
    maxPrice: str | None = Field(None, description="sniper orders: tokenIn per tokenOut.")
    expiresAt: str | None = None
    triggerPrice: str | None = Field(None, description="stop orders: oracle tokenOut per tokenIn.")
    direction: str | None = None
    triggeredAt: str | None = None
    linkedOrderId: str | None = Field(None, description="oco: the pair's other order.")
    parentOrderId: str | None = Field(None, description="a TWAP or DCA slice: its parent.")
    sliceIndex: int | None = Field(None, description="a slice: its index from 0.")
    schedule: "ParentSchedule | None" = Field(None, description="twap and dca: the schedule.")
    feeLamports: str | None = Field(
        None, description="The latest transaction's fee, base and priority (lamports)."
    )
    computeUnits: int | None = Field(None, description="Its compute-unit limit.")
    slotsToLand: int | None = Field(None, description="Slots it took to land once sent.")
    createdAt: str
    updatedAt: str


class ParentSchedule(BaseModel):
    slices: int = Field(description="twap: slices; dca: cycles.")
    intervalSeconds: int
    slicesDone: int = Field(description="Slices placed or (dca) skipped so far.")
    nextSliceAt: str | None = None
    amountPerSlice: str | None = Field(None, description="dca: base units per cycle.")
    minPrice: str | None = Field(None, description="dca: oracle tokenOut per tokenIn, UI units.")
    maxPrice: str | None = None


class ParentFill(BaseModel):
    """What a parent's children filled so far."""

    children: int
    confirmed: int
    failed: int
    skipped: int = Field(description="dca: cycles skipped outside the price band.")
    filledAmountIn: str = Field(description="Base units of tokenIn the confirmed children sold.")
    filledAmountOut: str = Field(description="Base units of tokenOut they got.")
    filledAmountInUi: str
    filledAmountOutUi: str
    averagePrice: str | None = Field(description="tokenOut per tokenIn, UI units.")


Order.model_rebuild()


class HistoryEntry(BaseModel):
    seq: int
    status: OrderStatus
    payload: dict[str, Any]
    createdAt: str


class OrderDetail(BaseModel):
    order: Order
    history: list[HistoryEntry]
    children: list[Order] | None = Field(None, description="twap and dca: the slices placed.")
    fill: ParentFill | None = None


class OrderPage(BaseModel):
    orders: list[Order]
    nextCursor: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorInfo


class RoutePlanLeg(BaseModel):
    hop: int = Field(description="0 for the first hop; 1 trades what hop 0 bought.")
    venue: str
    percent: str = Field(description='Share of its hop\'s input in this leg, e.g. "62.5".')
    poolId: str
    inputMint: str
    outputMint: str
    inAmount: str = Field(description="Base units of inputMint.")
    outAmount: str = Field(description="Base units of outputMint.")
    feeAmount: str = Field(description="The pool's fee, base units of inputMint.")
    fee: str = Field(description="The same as feeAmount (the earlier name).")


class PriorityFeeEstimate(BaseModel):
    """The "auto" priority fee for the quoted route, from the recent slots' fees."""

    lamports: str = Field(description="What the transaction pays: base fee and priority fee.")
    priorityLamports: str
    computeUnits: int = Field(description="The compute-unit limit the route's legs need.")
    microLamportsPerComputeUnit: int
    expectedSlots: int = Field(description="Slots to land, as recent slots predict.")
    landingChancePm: int = Field(description="The chance to land in each slot, per mille.")


class QuoteResponse(BaseModel):
    """``GET /api/quote``: what an order of these parameters would route to now."""

    quoteId: str
    tokenIn: str
    tokenOut: str
    mintIn: str
    mintOut: str
    inAmount: str = Field(description="Base units of tokenIn.")
    outAmount: str = Field(description="Base units of tokenOut.")
    minOut: str = Field(description="outAmount less slippage: the least the order accepts.")
    otherAmountThreshold: str = Field(
        description="ExactIn: the same as minOut; ExactOut: maxIn (Jupiter's name)."
    )
    swapMode: Literal["ExactIn", "ExactOut"] = "ExactIn"
    maxIn: str | None = Field(
        None, description="ExactOut: inAmount plus slippage, the most the order spends."
    )
    inAmountUi: str
    outAmountUi: str
    minOutUi: str
    slippageBps: int = Field(description='The bound used: the one asked for, or "auto"\'s choice.')
    autoSlippage: bool = Field(False, description='slippageBps was "auto"')
    priceImpactPct: str
    oraclePrice: str | None = Field(description="UI units of tokenOut per UI unit of tokenIn.")
    oracleDeviationPct: str | None
    routePlan: list[RoutePlanLeg]
    routeKind: str = Field(description="single | split | multihop | multihop_split")
    priorityFee: PriorityFeeEstimate
    contextSlot: int
    expiresAtSlot: int


class SlotFees(BaseModel):
    """Priority fees paid in a slot (or the medians over recent slots), micro-lamports per
    compute unit, by percentile; and its demand for block space, per mille of a block."""

    slot: int
    demandPm: int
    p25: int
    p50: int
    p75: int
    p90: int
    p95: int
    p99: int


class RecentFees(BaseModel):
    """``GET /api/fees``: the last slots' priority fees."""

    contextSlot: int
    recent: SlotFees = Field(description="Each percentile's median over the slots below.")
    slots: list[SlotFees] = Field(description="Newest first.")


class StatusCount(BaseModel):
    count: int
    share: str = Field(description="Of all orders in the window, 0..1 as a decimal string.")


class VenueShare(BaseModel):
    orders: int = Field(description="Confirmed orders with a leg on this venue.")
    share: str = Field(description="Of confirmed orders; a split counts for each of its venues.")


class Percentiles(BaseModel):
    p50: str | None
    p90: str | None
    p99: str | None


class ExecutionStats(BaseModel):
    """``GET /api/stats``: execution quality over a window, computed in Postgres."""

    window: str
    since: str
    orders: int
    byStatus: dict[str, StatusCount]
    failureReasons: dict[str, int] = Field(description="Failed orders by the reason's code.")
    confirmed: int
    splitShare: str | None = Field(description="Confirmed orders routed as a split, 0..1.")
    venues: dict[str, VenueShare]
    priceImprovementBps: Percentiles = Field(
        description="The route's output over the best single venue's, in bps."
    )
    realizedOverMinOutBps: Percentiles = Field(
        description="The filled output over the order's minOut, in bps."
    )
    belowMinOut: int = Field(description="Confirmed orders that filled below minOut (0).")
    submitToConfirmedS: Percentiles = Field(description="Seconds from submit to confirmed.")
    multihopShare: str | None = Field(description="Confirmed orders routed through two hops, 0..1.")
    feePaidLamports: Percentiles = Field(
        description="What confirmed orders' transactions paid, base and priority fee (lamports);"
        " null without the congestion model."
    )
    slotsToLand: Percentiles = Field(description="Slots from sending to landing.")
