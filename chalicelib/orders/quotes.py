"""``GET /api/quote``: the route an order would take now, and the minimum it binds.

A quote is priced from the same cached pool snapshots the worker routes from
(``cache.cached_snapshot``) and passes the same guards. It is kept in Redis for as long as
it is valid (its slots x ``slot_ms``): an order that names its ``quoteId`` never fills
below the quote's ``minOut``. A quote serves the client that asked for it (to another it is
unknown) and one order only: the first order naming it spends it (``quote_used`` after).
"""

import json
import re
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

from chalicelib import tokens
from chalicelib.backends import cache, venues
from chalicelib.backends.drivers import unavailable_as
from chalicelib.config import get_settings
from chalicelib.dex import EXACT_IN, EXACT_OUT, FeeEstimate, Route, router
from chalicelib.dex.chain import DEFAULT_MAX_LAMPORTS
from chalicelib.errors import InvalidField, InvalidInput, clip
from chalicelib.orders import auto_slippage
from chalicelib.orders.models import OrderSpec, PriorityFeeEstimate, QuoteResponse, RoutePlanLeg
from chalicelib.orders.records import routing_to_json

AMOUNT_RE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)  # no sign, exponent, spaces
BPS_RE = re.compile(r"[0-9]{1,5}", re.ASCII)
QUERY_FIELDS = {"tokenIn", "tokenOut", "amount", "swapMode", "slippageBps", "maxAutoSlippageBps",
                "venues",
                "excludeVenues", "onlyDirectRoutes", "maxHops",
                "restrictIntermediateTokens"}  # fmt: skip
BOOLEANS = {"true": True, "false": False}
BOOLEAN_FIELDS = ("onlyDirectRoutes", "restrictIntermediateTokens")
HOPS = {"1": 1, "2": 2}


def _invalid(field: str, message: str) -> InvalidField:
    return InvalidField(field, message, code="invalid_order")


def query_to_body(params: dict[str, list[str]]) -> dict:
    """Query parameters (each name with all its values) as an order body, strictly: an
    amount in canonical decimal form, slippageBps in ASCII digits, venues comma-separated.
    The order model then checks the values as it checks a submitted body."""
    body: dict = {"type": "market"}
    for name, values in params.items():
        if name not in QUERY_FIELDS:
            raise _invalid(clip(name), f"unknown parameter {clip(name)!r}")
        if len(values) != 1:
            raise _invalid(clip(name), f"{clip(name)} is given more than once")
        body[name] = values[0]
    if "amount" in body and not AMOUNT_RE.fullmatch(body["amount"]):
        raise _invalid("amount", "amount must be a plain decimal like 1.5")
    for name in ("slippageBps", "maxAutoSlippageBps"):
        if name not in body or (name == "slippageBps" and body[name] == "auto"):
            continue
        if not BPS_RE.fullmatch(body[name]):
            raise _invalid(
                name, f"{name} must be ASCII digits" + " or auto" * (name == "slippageBps")
            )
        body[name] = int(body[name])
    for name in ("venues", "excludeVenues"):
        if name in body:
            body[name] = body[name].split(",")
    for name in BOOLEAN_FIELDS:
        if name in body:
            if body[name] not in BOOLEANS:
                raise _invalid(name, f"{name} must be true or false")
            body[name] = BOOLEANS[body[name]]
    if "maxHops" in body:
        if body["maxHops"] not in HOPS:
            raise _invalid("maxHops", "maxHops must be 1 or 2")
        body["maxHops"] = HOPS[body["maxHops"]]
    return body


def quote(spec: OrderSpec, client_id: uuid.UUID) -> QuoteResponse:
    """Route ``spec`` now and remember the quote; a ``DexError`` when no route passes (a
    venue timing out is worth retrying: 503, not 422)."""
    settings = get_settings()
    market = venues.market()
    stored = StoredQuote.of(spec, 0, client_id)  # as asked: "auto" slippage, not its choice
    spec = auto_slippage.choose(spec)
    route = _plan(spec)
    quote_id = uuid.uuid4().hex
    context_slot = min(leg.slot for leg in route.legs)
    expires_at = min(leg.expires_at_slot for leg in route.legs)
    now = market.current_slot()
    valid_ms = max(1, expires_at - now) * settings.market.slot_ms
    _remember(quote_id, replace(stored, bound=_bound(route)), valid_ms)
    cap = spec.max_priority_lamports
    fee = market.chain.estimate(route, now, 1, DEFAULT_MAX_LAMPORTS if cap is None else cap)
    return _answer(quote_id, spec, route, fee, context_slot, expires_at)


def _plan(spec: OrderSpec) -> Route:
    return router.plan(
        venues.cached_fetch(),
        spec.token_in,
        spec.token_out,
        spec.amount,
        spec.slippage_bps,
        get_settings().market.quote_valid_slots,
        replace(spec.route_options, venues=spec.venues),
        swap_mode=spec.swap_mode,
    )


def _bound(route: Route) -> int:
    """What a quote binds: the least output (ExactIn), or the most input (ExactOut)."""
    return route.max_in if route.swap_mode == EXACT_OUT else route.min_out


def budget(spec: OrderSpec) -> OrderSpec:
    """An exact-output order without a quote: the most it may spend is its route's maxIn
    now (``DexError`` when none passes, as a quote would say)."""
    if spec.swap_mode != EXACT_OUT or spec.amount_in:
        return spec
    return replace(spec, amount_in=_plan(spec).max_in)


def _fee(estimate: FeeEstimate) -> PriorityFeeEstimate:
    return PriorityFeeEstimate(
        lamports=str(estimate.fee.lamports),
        priorityLamports=str(estimate.fee.priority_lamports),
        computeUnits=estimate.fee.compute_units,
        microLamportsPerComputeUnit=estimate.fee.micro_lamports_per_cu,
        expectedSlots=estimate.expected_slots,
        landingChancePm=estimate.landing_chance_pm,
    )


def _answer(quote_id, spec: OrderSpec, route: Route, fee: FeeEstimate, context_slot, expires_at):
    def text(value: Decimal | None) -> str | None:
        return None if value is None else format(value, "f")

    plan = [
        RoutePlanLeg(
            hop=leg.hop,
            venue=leg.venue,
            percent=format(leg.percent, "f"),
            poolId=leg.pool_id,
            inputMint=leg.mint_in,
            outputMint=leg.mint_out,
            inAmount=str(leg.in_amount),
            outAmount=str(leg.out_amount),
            feeAmount=str(leg.fee),
            fee=str(leg.fee),
        )
        for leg in route.legs
    ]
    return QuoteResponse(
        quoteId=quote_id,
        tokenIn=spec.token_in.symbol,
        tokenOut=spec.token_out.symbol,
        mintIn=spec.token_in.mint,
        mintOut=spec.token_out.mint,
        inAmount=str(route.in_amount),
        outAmount=str(route.out_amount),
        minOut=str(route.min_out),
        otherAmountThreshold=str(_bound(route)),
        swapMode=route.swap_mode,
        maxIn=None if route.max_in is None else str(route.max_in),
        inAmountUi=tokens.to_ui(route.in_amount, spec.token_in),
        outAmountUi=tokens.to_ui(route.out_amount, spec.token_out),
        minOutUi=tokens.to_ui(route.min_out, spec.token_out),
        slippageBps=route.slippage_bps,
        autoSlippage=spec.auto_slippage,
        priceImpactPct=str(route.price_impact_pct),
        oraclePrice=text(route.oracle_price),
        oracleDeviationPct=text(route.oracle_deviation_pct),
        routePlan=plan,
        routeKind=route.kind,
        priorityFee=_fee(fee),
        contextSlot=context_slot,
        expiresAtSlot=expires_at,
    )


# -- quotes that orders name ---------------------------------------------------------------


@dataclass(frozen=True)
class StoredQuote:
    """What an order naming the quote must match, what it binds (the least output, or for
    an exact output the most input), and the client that asked for it (the only one that
    may use it)."""

    mint_in: str
    mint_out: str
    amount: int  # to sell, or (ExactOut) to buy
    slippage_bps: int | str  # or "auto<=cap" (``OrderSpec.slippage_asked``)
    venues: tuple[str, ...]
    bound: int
    client_id: str
    routing: str = "null"  # the routing choices (hops), as JSON
    swap_mode: str = EXACT_IN

    @classmethod
    def of(cls, spec: OrderSpec, bound: int, client_id: uuid.UUID | str) -> "StoredQuote":
        return cls(
            spec.token_in.mint,
            spec.token_out.mint,
            spec.amount,
            spec.slippage_asked,
            tuple(spec.venues),
            bound,
            str(client_id),
            json.dumps(routing_to_json(spec.route_options, None), sort_keys=True),
            spec.swap_mode,
        )

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "venues": list(self.venues), "bound": str(self.bound)})

    @classmethod
    def from_json(cls, raw: str) -> "StoredQuote":
        d = json.loads(raw)
        return cls(
            d["mint_in"],
            d["mint_out"],
            int(d["amount"]),
            d["slippage_bps"],
            tuple(d["venues"]),
            int(d["bound"]),
            d["client_id"],
            d.get("routing", "null"),
            d.get("swap_mode", EXACT_IN),
        )


def _key(quote_id: str) -> str:
    return f"quote:{quote_id}"


def _remember(quote_id: str, stored: StoredQuote, valid_ms: int) -> None:
    with unavailable_as("redis"):
        cache.redis_client().set(_key(quote_id), stored.to_json(), px=valid_ms)


USED = "used"  # what a quote's key holds once an order used it, until it would have expired

# Spend the quote: only while it still holds what the caller read, so of two orders naming
# it at once, one gets it.
_SPEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""


def _recall(quote_id: str) -> str | None:
    with unavailable_as("redis"):
        return cache.redis_client().get(_key(quote_id))


def _spend(quote_id: str, raw: str) -> bool:
    with unavailable_as("redis"):
        client = cache.redis_client()
        return bool(client.register_script(_SPEND)(keys=[_key(quote_id)], args=[raw, USED]))


def bind(spec: OrderSpec, client_id: uuid.UUID) -> OrderSpec:
    """The order with the least output it accepts: the larger of its own ``minOut`` and
    its quote's, the quote spent. ``InvalidInput`` when the quote is unknown, expired,
    another client's (as unknown), already used, or for another order."""
    if spec.quote_id is None:
        return spec
    raw = _recall(spec.quote_id)
    if raw == USED:
        raise InvalidInput("the quote was used by another order; quote again", code="quote_used")
    stored = None if raw is None else StoredQuote.from_json(raw)
    if stored is None or stored.client_id != str(client_id):
        raise InvalidInput("the quote is unknown or has expired; quote again", code="quote_expired")
    if stored != StoredQuote.of(spec, stored.bound, client_id):
        raise InvalidInput(
            "the quote was for another pair, amount, slippage, venues, hops or swap mode",
            code="quote_mismatch",
        )
    if not _spend(spec.quote_id, raw):
        raise InvalidInput("the quote was used by another order; quote again", code="quote_used")
    if spec.swap_mode == EXACT_OUT:  # it never spends more than the quote's maxIn
        return replace(spec, amount_in=stored.bound)
    return replace(spec, min_out=max(spec.min_out or 0, stored.bound))
