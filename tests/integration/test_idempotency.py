"""An Idempotency-Key binds every field that changes what executes.

The variations are keyed by the request model's own fields, so a field added to
``OrderRequest`` without a rule here fails the test instead of being silently left out of
the fingerprint.
"""

from typing import get_args

import pytest

from chalicelib import store
from chalicelib.models import OrderRequest
from tests.integration.conftest import post

pytestmark = pytest.mark.integration

BASE = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippageBps": 100}

# A field whose type admits one value only (a one-member Literal): nothing to vary.
SINGLE_VALUE = object()
# field name -> a value that makes another order than BASE (or SINGLE_VALUE).
VARIATIONS = {
    "type": SINGLE_VALUE,
    "token_in": "USDT",
    "token_out": "USDT",
    "amount": "2",
    "slippage_bps": 101,
    "venues": ["raydium"],
    "quote_id": "f" * 32,  # a quote binds the order's minimum
    "min_out": "1",
}
# The same order written otherwise: the same fingerprint.
SAME_ORDER = [
    {"amount": "1.50"},
    {"amount": "1.5e0"},
    {"tokenIn": "sol"},
    {"tokenOut": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"},  # USDC by mint
    {"venues": ["meteora", "raydium"]},  # both, as when omitted
    {"venues": ["raydium", "meteora", "raydium"]},
]


@pytest.mark.parametrize("field", list(OrderRequest.model_fields))
def test_every_field_that_changes_the_order_is_in_the_fingerprint(client, field):
    if field not in VARIATIONS:
        pytest.fail(
            f"OrderRequest.{field} has no rule in VARIATIONS: give it a value that makes "
            "another order (its reuse of a key must be a 409), or say why it cannot change "
            "what executes"
        )
    model_field, variation = OrderRequest.model_fields[field], VARIATIONS[field]
    if variation is SINGLE_VALUE:
        assert len(get_args(model_field.annotation)) == 1, f"{field} admits more than one value"
        return
    alias = model_field.alias or field
    key = f"key-{field}"
    first = post(client, BASE, key=key)
    assert first.status_code == 202, first.json_body
    other = post(client, {**BASE, alias: variation}, key=key)
    assert other.status_code == 409, (field, other.json_body)
    error = other.json_body["error"]
    assert error["code"] == "idempotency_conflict"
    assert error["details"] == {"orderId": first.json_body["orderId"]}
    assert len(store.list_orders(None, 10, None)[0]) == 1


@pytest.mark.parametrize("change", SAME_ORDER, ids=str)
def test_the_same_order_written_otherwise_is_the_same_order(client, change):
    first = post(client, BASE, key="same")
    again = post(client, {**BASE, **change}, key="same")
    assert (first.status_code, again.status_code) == (202, 200), again.json_body
    assert again.json_body["orderId"] == first.json_body["orderId"]
