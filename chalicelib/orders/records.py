"""Typed records at the persistence boundary: what ``store`` returns and what it writes.

``StatusChange`` is the one place a status turns into both its history payload (what the
client sees in the order's history and on the WebSocket) and the order columns it sets.
"""

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from chalicelib import tokens
from chalicelib.dex import EXACT_IN, EXACT_OUT, Landing, Route, RouteOptions
from chalicelib.dex.chain import BASE_FEE_LAMPORTS, MICRO_LAMPORTS_PER_LAMPORT
from chalicelib.orders.lifecycle import OrderStatus, OrderType
from chalicelib.orders.models import OrderSpec, slice_amount
from chalicelib.tokens import Token


@dataclass(frozen=True)
class OrderRecord:
    """One row of ``orders``."""

    id: uuid.UUID
    type: OrderType
    status: OrderStatus
    token_in: Token
    token_out: Token
    amount_in: int
    slippage_bps: int
    venues: tuple[str, ...]
    last_seq: int
    attempts: int
    route: Route | None  # the route of the latest attempt
    min_out: int | None  # the minimum shown with ``building``; binds every attempt
    tx_hash: str | None
    tx_lands_at: datetime | None  # set while the order's transaction is in flight
    executed_price: Decimal | None
    amount_out: int | None
    failure_reason: str | None
    last_error: str | None
    request_hash: str | None
    enqueued_at: datetime | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    client_id: uuid.UUID | None = None  # whose order; None only in records built by hand
    client_order_id: str | None = None
    limit_price: Decimal | None = None  # limit orders: UI units of tokenOut per tokenIn
    expires_at: datetime | None = None
    max_price: Decimal | None = None  # sniper orders: UI units of tokenIn per tokenOut
    waiting_checks: int = 0  # checks that let the order go on waiting (keys their faults)
    waiting_faults: int = 0  # the last checks in a row that met a venue's fault (back-off)
    trigger_price: Decimal | None = None  # stop orders: oracle UI units of tokenOut per tokenIn
    trigger_direction: str | None = None  # "below" | "above"
    triggered_at: datetime | None = None  # when the check job saw the oracle cross it
    linked_order_id: uuid.UUID | None = None  # the other order of a one-cancels-the-other pair
    watched: bool = True  # a client subscribed to it once (unknown, in records built by hand)
    parent_order_id: uuid.UUID | None = None  # a TWAP or DCA slice: its parent
    slice_index: int | None = None
    slices: int | None = None  # a parent: its slices (cycles), one per interval
    interval_s: int | None = None
    slice_amount: int | None = None  # DCA: each cycle's amount
    next_slice: int = 0  # a parent: the next slice to place (or skip)
    next_slice_at: datetime | None = None  # and when (None: at once)
    band_min: Decimal | None = None  # DCA: the oracle price band, tokenOut per tokenIn
    band_max: Decimal | None = None
    route_options: RouteOptions = RouteOptions()  # hops allowed (its venues: ``venues``)
    max_priority_lamports: int | None = None  # the priority fee's cap (None: the default)
    # The latest attempt's transaction under the congestion model (None: not sent, or the
    # model is off): what it pays, its compute-unit limit, the slots it takes to land
    # (None once sent: it will not land before its blockhash expires).
    fee_lamports: int | None = None
    compute_units: int | None = None
    landing_slots: int | None = None
    # ExactOut: the output wanted; ``amount_in`` is then the most it may spend (what it
    # spent, once confirmed)
    swap_mode: str = EXACT_IN
    amount_out_wanted: int | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "OrderRecord":
        options, cap = routing_from_json(row.get("route_options"))
        return cls(
            id=row["id"],
            client_id=row["client_id"],
            type=OrderType(row["type"]),
            status=OrderStatus(row["status"]),
            token_in=tokens.resolve(row["token_in"]),
            token_out=tokens.resolve(row["token_out"]),
            amount_in=row["amount_in"],
            slippage_bps=row["slippage_bps"],
            venues=tuple(row["venues"]),
            last_seq=row["last_seq"],
            attempts=row["attempts"],
            route=Route.from_dict(row["route"]) if row["route"] else None,
            min_out=row["min_out"],
            tx_hash=row["tx_hash"],
            tx_lands_at=row["tx_lands_at"],
            executed_price=row["executed_price"],
            amount_out=row["amount_out"],
            failure_reason=row["failure_reason"],
            last_error=row["last_error"],
            request_hash=row["request_hash"],
            enqueued_at=row["enqueued_at"],
            lease_until=row["lease_until"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            client_order_id=row["client_order_id"],
            limit_price=row["limit_price"],
            expires_at=row["expires_at"],
            max_price=row["max_price"],
            waiting_checks=row.get("waiting_checks", 0),
            waiting_faults=row.get("waiting_faults", 0),
            trigger_price=row.get("trigger_price"),
            trigger_direction=row.get("trigger_direction"),
            triggered_at=row.get("triggered_at"),
            linked_order_id=row.get("linked_order_id"),
            watched=row.get("watched", True),
            parent_order_id=row.get("parent_order_id"),
            slice_index=row.get("slice_index"),
            slices=row.get("slices"),
            interval_s=row.get("interval_s"),
            slice_amount=row.get("slice_amount"),
            next_slice=row.get("next_slice", 0),
            next_slice_at=row.get("next_slice_at"),
            band_min=row.get("band_min"),
            band_max=row.get("band_max"),
            route_options=options,
            max_priority_lamports=cap,
            fee_lamports=row.get("fee_lamports"),
            compute_units=row.get("compute_units"),
            landing_slots=row.get("landing_slots"),
            swap_mode=row.get("swap_mode", EXACT_IN),
            amount_out_wanted=row.get("amount_out_wanted"),
        )

    @property
    def is_parent(self) -> bool:
        return self.type.parent

    def amount_of_slice(self, index: int) -> int:
        """A parent's slice ``index``: a DCA cycle's amount, or a TWAP's share of amount_in."""
        if self.slice_amount is not None:
            return self.slice_amount
        return slice_amount(self.amount_in, self.slices, index)

    @property
    def limit_min_out(self) -> int | None:
        """The least acceptable output in base units: ceil(amount * limitPrice) for a limit
        order, ceil(amount / maxPrice) for a sniper order."""
        if self.limit_price is not None:
            rate = Fraction(self.limit_price)
        elif self.max_price is not None:
            rate = 1 / Fraction(self.max_price)
        else:
            return None
        scale = Fraction(10**self.token_out.decimals, 10**self.token_in.decimals)
        return math.ceil(self.amount_in * rate * scale)

    @property
    def waits(self) -> bool:
        """A limit or sniper order: it waits in ``open`` for its price or its pool (and a
        stop order for its trigger)."""
        return self.limit_min_out is not None or self.awaits_trigger

    @property
    def awaits_trigger(self) -> bool:
        """A stop order the oracle price has not crossed yet."""
        return self.trigger_price is not None and self.triggered_at is None

    @property
    def exact_out(self) -> bool:
        return self.swap_mode == EXACT_OUT

    @property
    def last_fee_price(self) -> int:
        """What the latest transaction paid per compute unit (micro-lamports; 0: none sent)."""
        if self.fee_lamports is None or not self.compute_units:
            return 0
        priority = self.fee_lamports - BASE_FEE_LAMPORTS
        return priority * MICRO_LAMPORTS_PER_LAMPORT // self.compute_units

    @property
    def tx_dropped(self) -> bool:
        """The congestion model said the sent transaction would not land in time."""
        return self.fee_lamports is not None and self.landing_slots is None

    @property
    def tx_in_flight(self) -> bool:
        """A transaction was sent and nothing is known of it yet: the next delivery checks
        whether it landed instead of starting a new attempt."""
        return self.tx_lands_at is not None and not self.status.terminal


def routing_to_json(options: RouteOptions, max_priority_lamports: int | None) -> dict | None:
    """An order's routing choices as stored (``orders.route_options``); None: the defaults."""
    if options == RouteOptions() and max_priority_lamports is None:
        return None
    return {
        "onlyDirectRoutes": options.only_direct_routes,
        "maxHops": options.max_hops,
        "restrictIntermediateTokens": options.restrict_intermediate_tokens,
        "maxPriorityLamports": max_priority_lamports,
    }


def routing_from_json(stored: dict | None) -> tuple[RouteOptions, int | None]:
    if not stored:
        return RouteOptions(), None
    options = RouteOptions(
        only_direct_routes=stored["onlyDirectRoutes"],
        max_hops=stored["maxHops"],
        restrict_intermediate_tokens=stored["restrictIntermediateTokens"],
    )
    return options, stored.get("maxPriorityLamports")


def landing_columns(landing: Landing | None) -> dict[str, Any]:
    """The order columns a sent transaction's landing sets (none without the model)."""
    if landing is None:
        return {}
    return {
        "fee_lamports": landing.fee.lamports,
        "compute_units": landing.fee.compute_units,
        "landing_slots": None if landing.dropped else landing.slots,
    }


@dataclass(frozen=True)
class HistoryRecord:
    """One row of ``order_status_history``."""

    seq: int
    status: OrderStatus
    payload: dict[str, Any]
    created_at: datetime
    # Whether the order was watched when this row was written (``orders.watched``): if not,
    # nobody had subscribed yet, and whoever subscribes later catches up by itself. True
    # when not known (a row read back), so a push then looks for subscribers.
    watched: bool = field(default=True, compare=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "HistoryRecord":
        return cls(
            row["seq"],
            OrderStatus(row["status"]),
            row["payload"],
            row["created_at"],
            row.get("watched", True),
        )


@dataclass(frozen=True)
class StatusChange:
    """A status with its history payload and the order columns it sets."""

    status: OrderStatus
    payload: dict[str, Any]
    columns: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def pending(cls, spec: OrderSpec) -> "StatusChange":
        return cls(
            OrderStatus.PENDING,
            {
                "tokenIn": spec.token_in.symbol,
                "tokenOut": spec.token_out.symbol,
                "amountIn": str(spec.amount_in),
                **(
                    {"swapMode": spec.swap_mode, "amountOutWanted": str(spec.amount_out_wanted)}
                    if spec.amount_out_wanted is not None
                    else {}
                ),
                "slippageBps": spec.slippage_bps,
                "type": spec.type,
                **(
                    {"slices": spec.slices, "intervalSeconds": spec.interval_s}
                    if spec.slices
                    else {}
                ),
                **({"clientOrderId": spec.client_order_id} if spec.client_order_id else {}),
            },
        )

    @classmethod
    def opened(cls, order: OrderRecord) -> "StatusChange":
        bounds = {"limitPrice": order.limit_price, "maxPrice": order.max_price,
                  "triggerPrice": order.trigger_price}  # fmt: skip
        payload = {k: format(v, "f") for k, v in bounds.items() if v is not None}
        if order.expires_at is not None:
            payload["expiresAt"] = order.expires_at.isoformat()
        return cls(OrderStatus.OPEN, payload)

    @classmethod
    def triggered(cls, order: OrderRecord, oracle_price: Decimal) -> "StatusChange":
        """A stop order's trigger: it stays ``open`` (a history row of its own)."""
        payload = {"triggered": {"oraclePrice": format(oracle_price, "f"),
                                 "triggerPrice": format(order.trigger_price, "f"),
                                 "direction": order.trigger_direction}}  # fmt: skip
        return cls(OrderStatus.OPEN, payload, {"triggered_at": datetime.now(UTC)})

    @classmethod
    def cancelled(cls, from_status: OrderStatus) -> "StatusChange":
        return cls(OrderStatus.CANCELLED, {"from": from_status.value})

    @classmethod
    def expired(cls, expires_at: datetime) -> "StatusChange":
        return cls(OrderStatus.EXPIRED, {"expiresAt": expires_at.isoformat()})

    @classmethod
    def routing(cls, venues: tuple[str, ...], attempt: int) -> "StatusChange":
        return cls(OrderStatus.ROUTING, {"venues": list(venues), "attempt": attempt})

    @classmethod
    def building(cls, route: Route) -> "StatusChange":
        return cls(
            OrderStatus.BUILDING,
            {"route": route.to_dict()},
            {"route": route.to_dict(), "min_out": route.min_out},
        )

    @classmethod
    def submitted(
        cls, tx_hash: str, route: Route, lands_at: datetime, landing: Landing | None = None
    ) -> "StatusChange":
        payload: dict[str, Any] = {"txHash": tx_hash}
        if landing is not None:
            payload["priorityFee"] = landing.fee.to_dict()
            payload["sentSlot"] = landing.sent_slot
        columns = {"tx_hash": tx_hash, "route": route.to_dict(), "tx_lands_at": lands_at}
        return cls(OrderStatus.SUBMITTED, payload, {**columns, **landing_columns(landing)})

    @classmethod
    def confirmed(
        cls, tx_hash: str, route: Route, amount_out: int, price: Decimal, token_out: Token,
        attempt: int, landing: dict | None = None, spent: int | None = None,
    ) -> "StatusChange":  # fmt: skip
        """``landing``: the fee paid, compute units and slots to land, when modelled;
        ``spent``: an exact-output order's input."""
        return cls(
            OrderStatus.CONFIRMED,
            {
                "txHash": tx_hash,
                "executedPrice": str(price),
                "amountOut": str(amount_out),
                "amountOutUi": tokens.to_ui(amount_out, token_out),
                "route": route.to_dict(),
                "attempts": attempt,
                **({"landing": landing} if landing else {}),
                **({"amountIn": str(spent)} if spent is not None else {}),
            },
            {
                "tx_hash": tx_hash,
                "executed_price": price,
                "amount_out": amount_out,
                "route": route.to_dict(),
                **({"amount_in": spent} if spent is not None else {}),
            },
        )

    @classmethod
    def failed(cls, reason: str, attempts: int) -> "StatusChange":
        return cls(
            OrderStatus.FAILED,
            {"reason": reason, "attempts": attempts},
            {"failure_reason": reason},
        )
