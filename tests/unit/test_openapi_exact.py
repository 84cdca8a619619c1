"""The OpenAPI description says exactly what the server takes: the stats window, the page
cursor, and which fields each order type needs or refuses."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import InvalidField, InvalidInput
from chalicelib.http import openapi
from chalicelib.orders import stats, store
from chalicelib.orders.models import OrderRequest

WINDOW = re.compile(openapi.STATS_WINDOW_PATTERN)


def server_takes_window(text: str) -> bool:
    try:
        stats.parse_window(text)
    except InvalidInput:
        return False
    return True


@given(st.from_regex(r"[0-9]{1,5}[mhdw]?", fullmatch=True))
def test_the_stats_window_pattern_is_the_servers_rule(text):
    assert bool(WINDOW.fullmatch(text)) == server_takes_window(text)


@pytest.mark.parametrize("text", ["9999m", "8784h", "8785h", "366d", "367d", "0d", "01h"])
def test_the_stats_window_at_its_bounds(text):
    assert bool(WINDOW.fullmatch(text)) == server_takes_window(text)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)), st.uuids())
def test_a_cursor_is_the_last_orders_created_at_and_id_and_matches_its_pattern(created, oid):
    created = created.replace(tzinfo=UTC)
    cursor = store._encode_cursor(SimpleNamespace(created_at=created, id=oid))
    assert re.fullmatch(store.CURSOR_PATTERN, cursor)
    assert store.decode_cursor(cursor) == (created, oid)


@given(st.from_regex(store.CURSOR_PATTERN, fullmatch=True))
def test_every_value_of_the_cursor_pattern_is_a_cursor(cursor):
    created, oid = store.decode_cursor(cursor)
    assert isinstance(oid, uuid.UUID) and created.tzinfo is UTC


@pytest.mark.parametrize("cursor", ["", "garbage", "1.abc", "12." + "0" * 31, " 1." + "0" * 32])
def test_anything_else_is_a_malformed_cursor(cursor):
    with pytest.raises(InvalidInput):
        store.decode_cursor(cursor)


ORDER_SCHEMA = {
    "$ref": "#/components/schemas/OrderRequest",
    "components": openapi.document()["components"],
}
PRICES = st.sampled_from([None, "0", "0.0", "1.5", "100"])
LATER = (datetime.now(UTC) + timedelta(days=1)).isoformat()
BODIES = st.fixed_dictionaries(
    {"type": st.sampled_from(["market", "limit", "sniper", "stop"])},
    optional={
        "limitPrice": PRICES,
        "maxPrice": PRICES,
        "triggerPrice": PRICES,
        "direction": st.sampled_from([None, "below", "above"]),
        "expiresAt": st.sampled_from([None, LATER]),
        "expiresInSlots": st.sampled_from([None, 100]),
    },
).map(lambda fields: {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", **fields})


def server_takes_order(body: dict) -> bool:
    try:
        OrderRequest.model_validate(body)
    except (pydantic.ValidationError, InvalidField):
        return False
    return True


@settings(max_examples=400)
@given(BODIES)
def test_the_order_schema_says_what_each_type_needs_and_refuses(body):
    valid = jsonschema.Draft202012Validator(ORDER_SCHEMA).is_valid(body)
    assert valid == server_takes_order(body), body
