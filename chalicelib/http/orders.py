"""The order routes: submit, read, list, amend and cancel (one or many) the caller's orders."""

from chalicelib.config import get_settings
from chalicelib.errors import OrderNotFound
from chalicelib.http import requests
from chalicelib.http.auth import caller
from chalicelib.http.responses import (
    accepted,
    answers,
    detail_view,
    json_response,
    oco_accepted,
    order_view,
)
from chalicelib.orders import intake, moves, oco, parents, store
from chalicelib.orders.amend import amend as amend_order
from chalicelib.orders.cancel_many import cancel_many as cancel_orders
from chalicelib.orders.changes import (
    AmendRequest,
    CancelManyAnswer,
    CancelManyRequest,
    CancelOutcomeKind,
)
from chalicelib.orders.models import OrderPage, canonical_order_id


@answers
def submit(request):
    client_id = caller(request)
    body = requests.json_object(request)
    key = requests.idempotency_key(request.headers)
    ws_url = get_settings().push.ws_public_url
    if body.get("type") == "oco":
        pair = requests.parsed(lambda: oco.submit(oco_request(body), client_id, key), "order")
        return json_response(oco_accepted(pair, ws_url), 202 if pair.created else 200)
    if body.get("type") in ("twap", "dca"):
        spec = requests.parsed(lambda: parents.request(body).to_spec(), "order")
    else:
        spec = requests.order_spec(body)
    admitted = intake.submit(spec, client_id, key)
    return accepted(admitted.order, admitted.created, ws_url)


def oco_request(body: dict) -> oco.OcoRequest:
    return oco.OcoRequest.model_validate(body)


def _own_order(order_id: str, client_id):
    """The caller's order; another client's is no more found than a missing one."""
    canonical = canonical_order_id(order_id)
    order = None if canonical is None else store.get_order(canonical, client_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


@answers
def get(request, order_id: str):
    order = _own_order(order_id, caller(request))
    if not order.is_parent:
        return json_response(detail_view(order, store.history(order.id)))
    family = store.children(order.id), store.parent_fill(order.id)
    return json_response(detail_view(order, store.history(order.id), *family))


@answers
def list_own(request):
    client_id = caller(request)
    query = requests.orders_query(request.query_params)
    rows, cursor = store.list_orders(
        query.status, query.limit, query.cursor, client_id, query.client_order_id
    )
    return json_response(OrderPage(orders=[order_view(r) for r in rows], nextCursor=cursor))


@answers
def cancel(request, order_id: str, publisher):
    """Cancel the caller's order while nothing has been sent for it; 409 once it has."""
    client_id = caller(request)
    canonical = canonical_order_id(order_id)
    if canonical is None:
        raise OrderNotFound(order_id)
    order = moves.cancel(canonical, client_id, publisher)
    return json_response(order_view(order))


@answers
def cancel_many(request, publisher):
    """Cancel the caller's orders named (or all, filtered): one outcome per order."""
    client_id = caller(request)
    body = requests.json_object(request)
    parsed = requests.parsed(lambda: CancelManyRequest.model_validate(body), "cancel request")
    outcomes = requests.parsed(
        lambda: cancel_orders(parsed, client_id, publisher), "cancel request"
    )
    cancelled = sum(o.outcome == CancelOutcomeKind.CANCELLED for o in outcomes)
    return json_response(CancelManyAnswer(results=outcomes, cancelled=cancelled))


@answers
def amend(request, order_id: str, publisher):
    """New bounds for the caller's order waiting in open; 409 not_amendable once it is not."""
    client_id = caller(request)
    body = requests.json_object(request)
    parsed = requests.parsed(lambda: AmendRequest.model_validate(body), "amendment")
    canonical = canonical_order_id(order_id)
    if canonical is None:
        raise OrderNotFound(order_id)
    slot_ms = get_settings().market.slot_ms
    order = requests.parsed(
        lambda: amend_order(canonical, client_id, parsed, slot_ms, publisher), "amendment"
    )
    return json_response(order_view(order))
