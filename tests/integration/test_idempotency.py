"""An Idempotency-Key binds every field that changes what executes.

The variations are keyed by the request model's own fields, so a field added to
``OrderRequest`` without a rule here fails the test instead of being silently left out of
the fingerprint.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from chalicelib import tokens
from chalicelib.orders import store
from chalicelib.orders.models import OrderRequest
from chalicelib.tokens import Token
from tests.integration.conftest import post

pytestmark = pytest.mark.integration

BASE = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippageBps": 100}

# A field whose type admits one value only (a one-member Literal): nothing to vary.
SINGLE_VALUE = object()
LIMIT = {**BASE, "type": "limit", "limitPrice": "100", "expiresInSlots": 1000}
SOON = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
LIMIT_AT = {**LIMIT, "expiresInSlots": None, "expiresAt": SOON.isoformat()}
SNIPER = {**BASE, "type": "sniper", "tokenIn": "USDC", "tokenOut": "IDEMNEW", "amount": "10",
          "maxPrice": "1"}  # fmt: skip
STOP = {**BASE, "type": "stop", "triggerPrice": "100", "direction": "below"}
AUTO = {**BASE, "slippageBps": "auto"}


@dataclass(frozen=True)
class Other:
    """Another order than ``base``, made by ``changes`` (a field only valid with others)."""

    base: dict
    changes: dict


# field name -> a value that makes another order than BASE, an ``Other``, or SINGLE_VALUE.
VARIATIONS = {
    "type": Other(BASE, {"type": "limit", "limitPrice": "100", "expiresInSlots": 1000}),
    "token_in": "USDT",
    "token_out": "USDT",
    "amount": "2",
    "slippage_bps": 101,
    "venues": ["raydium"],
    "quote_id": "f" * 32,  # a quote binds the order's minimum
    "min_out": "1",
    "client_order_id": "mine-1",
    "limit_price": Other(LIMIT, {"limitPrice": "101"}),
    "expires_in_slots": Other(LIMIT, {"expiresInSlots": 1001}),
    "expires_at": Other(LIMIT_AT, {"expiresAt": (SOON + timedelta(days=1)).isoformat()}),
    "max_price": Other(SNIPER, {"maxPrice": "2"}),
    "trigger_price": Other(STOP, {"triggerPrice": "101"}),
    "direction": Other(STOP, {"direction": "above"}),
    "only_direct_routes": True,
    "max_hops": 1,
    "restrict_intermediate_tokens": False,
    "exclude_venues": ["meteora"],
    "priority_fee": {"maxLamports": 1000},
    "max_auto_slippage_bps": Other(AUTO, {"maxAutoSlippageBps": 100}),
    "swap_mode": "ExactOut",
}
# The same order written otherwise: the same fingerprint.
SAME_ORDER = [
    {"amount": "1.50"},
    {"amount": "1.5e0"},
    {"tokenIn": "sol"},
    {"tokenOut": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"},  # USDC by mint
    {"venues": ["meteora", "raydium"]},  # both, as when omitted
    {"venues": ["raydium", "meteora", "raydium"]},
    {"maxHops": 2, "onlyDirectRoutes": False, "priorityFee": "auto"},  # the defaults
]


@pytest.fixture(autouse=True)
def new_token(monkeypatch):
    """A newly listed token for sniper orders, known to this test only."""
    for name in ("_BY_SYMBOL", "_BY_MINT", "LISTED"):
        monkeypatch.setattr(tokens, name, getattr(tokens, name).copy())
    tokens.list_token(Token("IDEMNEW", "IdemNew".ljust(44, "1"), 6))


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
    if not isinstance(variation, Other):
        variation = Other(BASE, {model_field.alias or field: variation})
    key = f"key-{field}"
    base = {k: v for k, v in variation.base.items() if v is not None}
    first = post(client, base, key=key)
    assert first.status_code == 202, first.json_body
    changed = {k: v for k, v in {**variation.base, **variation.changes}.items() if v is not None}
    other = post(client, changed, key=key)
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


def test_a_limit_order_replayed_later_is_the_same_order(client):
    """Its expiry is counted from the first request: a replay (a later now) is no other order."""
    first = post(client, LIMIT, key="limit-replay")
    again = post(client, LIMIT, key="limit-replay")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json_body["orderId"] == first.json_body["orderId"]
