"""Parent orders: TWAP and DCA. A parent has its own row (``pending → working → completed |
cancelled | failed``) and places one child, an ordinary market order, per interval.

``{"type": "twap", "amount", "slices", "intervalSeconds"}`` splits ``amount`` into ``slices``
children of ``amount // slices`` (the remainder in the last); ``{"type": "dca",
"amountPerCycle", "cycles", "intervalSeconds", "minPrice"?, "maxPrice"?}`` places one child of
``amountPerCycle`` per cycle, and skips (and records) a cycle whose oracle price lies outside
the band. Each child has the parent's slippage bound and venues.

No invocation waits: the schedule is a delayed message per slice (``{"kind": "order",
"orderId": parent, "slice": k}``), sent again when the interval is longer than SQS's 900 s.
``run`` places slice k only when it is the parent's ``next_slice`` and due: the slice's history
row, the move of ``next_slice`` and the child's row are one transaction from the seq read, and
``UNIQUE (parent_order_id, slice_index)`` stands behind it, so a redelivered or duplicated
message never places a slice twice; a message for another slice changes nothing. A worker
killed after the commit and before its sends loses nothing: the redelivery of its message
(the slice just placed) sends them again, the reaper sends a pending child and a parent whose
next slice is overdue. Each child's end records a history row of the parent's (its fill) in
the child's own transaction, and the last of them settles the parent: ``completed``, or
``failed`` when every child failed. Cancelling the parent cancels its children not yet sent;
later slice messages find it ended.
"""

import logging
import math
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from pydantic import Field, StrictInt, StrictStr, model_validator

from chalicelib import metrics, tokens
from chalicelib.backends import queue, venues
from chalicelib.dex import VENUES, DexError
from chalicelib.dex.snapshot import ratio_to_decimal
from chalicelib.errors import InvalidField
from chalicelib.orders import intake, store
from chalicelib.orders.lifecycle import OrderStatus, OrderType
from chalicelib.orders.models import (
    CLIENT_ORDER_ID_PATTERN,
    LIMIT_PRICE_PATTERN,
    OrderSpec,
    _Camel,
)
from chalicelib.orders.moves import Publisher
from chalicelib.orders.records import OrderRecord, StatusChange
from chalicelib.tokens import MAX_BASE_UNITS

log = logging.getLogger(__name__)

MAX_SLICES = 100
MAX_INTERVAL_S = 7 * 24 * 3600  # a week between slices at most
PRICE_PLACES = 18


class _ParentRequest(_Camel):
    token_in: str = Field(alias="tokenIn", min_length=1, max_length=64, examples=["SOL"])
    token_out: str = Field(alias="tokenOut", min_length=1, max_length=64, examples=["USDC"])
    slippage_bps: StrictInt = Field(
        50, alias="slippageBps", ge=1, le=5000, description="Each child's slippage bound."
    )
    venues: list[Literal[VENUES]] | None = Field(None, min_length=1)
    interval_seconds: StrictInt = Field(
        alias="intervalSeconds", ge=1, le=MAX_INTERVAL_S, description="Between two slices."
    )
    client_order_id: StrictStr | None = Field(
        None, alias="clientOrderId", pattern=CLIENT_ORDER_ID_PATTERN
    )

    def _spec(self, order_type: OrderType, amount, field: str, slices: int) -> OrderSpec:
        token_in = tokens.resolve(self.token_in, "tokenIn")
        token_out = tokens.resolve(self.token_out, "tokenOut")
        tokens.check_pair(token_in, token_out)
        return OrderSpec(
            token_in=token_in,
            token_out=token_out,
            amount_in=tokens.to_base_units(amount, token_in, field),
            slippage_bps=self.slippage_bps,
            venues=tuple(sorted(set(self.venues))) if self.venues else VENUES,
            type=order_type,
            client_order_id=self.client_order_id,
            slices=slices,
            interval_s=self.interval_seconds,
        )


class TwapRequest(_ParentRequest):
    """Body of ``POST /api/orders/execute`` for a TWAP: ``amount`` in ``slices`` child market
    orders, one every ``intervalSeconds``."""

    type: Literal["twap"]
    amount: StrictStr | StrictInt | Decimal = Field(
        description="UI units of tokenIn, in all", examples=["10"]
    )
    slices: StrictInt = Field(ge=2, le=MAX_SLICES, examples=[5])

    def to_spec(self) -> OrderSpec:
        spec = self._spec(OrderType.TWAP, self.amount, "amount", self.slices)
        tokens.check_max_order(spec.amount_in, spec.token_in)
        if spec.amount_in < self.slices:
            raise InvalidField("amount", "amount must be at least one base unit per slice")
        return spec


class DcaRequest(_ParentRequest):
    """Body of ``POST /api/orders/execute`` for a DCA: ``amountPerCycle`` each cycle, for
    ``cycles`` cycles; a cycle whose oracle price (tokenOut per tokenIn, UI units) lies outside
    ``minPrice``..``maxPrice`` is skipped."""

    type: Literal["dca"]
    amount_per_cycle: StrictStr | StrictInt | Decimal = Field(
        alias="amountPerCycle", description="UI units of tokenIn, each cycle", examples=["1"]
    )
    cycles: StrictInt = Field(ge=2, le=MAX_SLICES, examples=[10])
    min_price: StrictStr | None = Field(None, alias="minPrice", pattern=LIMIT_PRICE_PATTERN)
    max_price: StrictStr | None = Field(None, alias="maxPrice", pattern=LIMIT_PRICE_PATTERN)

    @model_validator(mode="after")
    def _band(self) -> "DcaRequest":
        for name, value in (("minPrice", self.min_price), ("maxPrice", self.max_price)):
            if value is not None and Decimal(value) <= 0:
                raise InvalidField(name, f"{name} must be positive")
        if self.min_price and self.max_price and Decimal(self.min_price) > Decimal(self.max_price):
            raise InvalidField("minPrice", "minPrice must not be above maxPrice")
        return self

    def to_spec(self) -> OrderSpec:
        spec = self._spec(OrderType.DCA, self.amount_per_cycle, "amountPerCycle", self.cycles)
        per_cycle = tokens.check_max_order(spec.amount_in, spec.token_in)
        if per_cycle * self.cycles > MAX_BASE_UNITS:
            raise InvalidField("amountPerCycle", "amountPerCycle × cycles is too large")
        return replace(
            spec,
            amount_in=per_cycle * self.cycles,
            slice_amount=per_cycle,
            band_min=None if self.min_price is None else Decimal(self.min_price),
            band_max=None if self.max_price is None else Decimal(self.max_price),
        )


def request(body: dict) -> TwapRequest | DcaRequest:
    model = TwapRequest if body.get("type") == "twap" else DcaRequest
    return model.model_validate(body)


# -- the slice job ------------------------------------------------------------------------


def run(parent: OrderRecord, slice_index: int | None, redelivered: bool, publisher) -> bool:
    """Handle one message of the parent's schedule (``slice_index`` None: the first one, or
    the reaper's). True: the message may be deleted."""
    if parent.status.terminal:
        return True  # cancelled, or ended: later slice messages are no-ops
    k, now = parent.next_slice, datetime.now(UTC)
    if slice_index is not None and slice_index != k:
        if redelivered and slice_index == k - 1:
            # This message placed slice k - 1 and was not deleted: its worker may have died
            # before its sends. Sending again is harmless (each is idempotent).
            _follow_up(parent, k - 1)
        return True
    if k >= parent.slices:  # every slice placed: the children's ends settle it
        _publish(publisher, parent, store.settle(parent.id))
        return True
    if parent.next_slice_at is not None and parent.next_slice_at > now:
        if slice_index is not None:  # early (an interval beyond SQS's 900 s): wait on
            remaining = math.ceil((parent.next_slice_at - now).total_seconds())
            queue.send_order(parent.id, delay_s=remaining, slice_index=k)
        return True  # a duplicate of a first message: the schedule has its own
    _place(parent, k, now, publisher)
    return True


def _place(parent: OrderRecord, k: int, now: datetime, publisher: Publisher) -> None:
    amount = parent.amount_of_slice(k)
    columns = {"next_slice": k + 1, "next_slice_at": now + timedelta(seconds=parent.interval_s)}
    skipped = _outside_band(parent)
    if skipped is not None:
        change = StatusChange(OrderStatus.WORKING, {"slice": k, "skipped": skipped}, columns)
        child_payload = None
    else:
        child_id = str(uuid.uuid4())
        change = StatusChange(
            OrderStatus.WORKING, {"slice": k, "childOrderId": child_id, "amountIn": str(amount)},
            columns,
        )  # fmt: skip
        child_payload = {
            "tokenIn": parent.token_in.symbol, "tokenOut": parent.token_out.symbol,
            "amountIn": str(amount), "slippageBps": parent.slippage_bps, "type": "market",
            "parentOrderId": str(parent.id), "slice": k, "orderId": child_id,
        }  # fmt: skip
    placed = store.place_slice(parent, k, change, child_payload)
    if placed is None:
        log.info("parent %s slice %d: moved on elsewhere", parent.id, k)
        return
    entries, child = placed
    log.info("parent %s slice %d %s", parent.id, k, "skipped" if child is None else child.id)
    metrics.count("SlicesSkipped" if child is None else "SlicesPlaced")
    publisher.publish(str(parent.id), entries)
    _follow_up(parent, k, child)


def _follow_up(parent: OrderRecord, k: int, child: OrderRecord | None = None) -> None:
    """What follows slice k's commit: its child to the queue, the next slice's message."""
    if child is None:
        found = [c for c in store.children(parent.id) if c.slice_index == k]
        child = found[0] if found and found[0].status == OrderStatus.PENDING else None
    if child is not None:
        intake.enqueue(str(child.id))
    if k + 1 < parent.slices:
        queue.send_order(parent.id, delay_s=parent.interval_s, slice_index=k + 1)


def _publish(publisher: Publisher, parent: OrderRecord, entry) -> None:
    if entry is not None:
        publisher.publish(str(parent.id), [entry])


def oracle_price(parent: OrderRecord) -> Decimal | None:
    """The oracle's price of the parent's pair, UI units of tokenOut per tokenIn."""
    fetch, token_in, token_out = venues.cached_fetch(), parent.token_in, parent.token_out
    for venue in parent.venues:
        try:
            pair = fetch(venue, token_in, token_out).oracle_price(token_in.mint)
        except DexError as e:  # no pool on this venue, or it timed out: the others decide
            log.debug("parent %s: %s: %s", parent.id, venue, e)
            continue
        if pair is not None:
            scale = Fraction(10**token_in.decimals, 10**token_out.decimals)
            return ratio_to_decimal(pair.rate * scale, PRICE_PLACES)
    return None


def _outside_band(parent: OrderRecord) -> dict | None:
    """A DCA cycle's reason to skip: its oracle price outside the band (or unknown)."""
    if parent.band_min is None and parent.band_max is None:
        return None
    price = oracle_price(parent)
    bounds = (("minPrice", parent.band_min), ("maxPrice", parent.band_max))
    band = {k: format(v, "f") for k, v in bounds if v is not None}
    if price is None:
        return {"reason": "no_oracle_price", **band}
    below = parent.band_min is not None and price < parent.band_min
    above = parent.band_max is not None and price > parent.band_max
    if not below and not above:
        return None
    reason = "below_min_price" if below else "above_max_price"
    return {"reason": reason, "oraclePrice": format(price, "f"), **band}


def reap(grace_s: int) -> int:
    """Send the parents whose next slice is overdue (the reaper's): how many."""
    overdue = store.overdue_parents(grace_s)
    for parent_id in overdue:
        log.info("reaper: parent %s is overdue; sending its next slice", parent_id)
        queue.send_order(parent_id)
    return len(overdue)
