"""The order request model: what it accepts and the order spec it resolves to."""

import pydantic
import pytest

from chalicelib.dex import VENUES
from chalicelib.orders.lifecycle import OrderStatus
from chalicelib.orders.models import OrderRequest
from chalicelib.tokens import TokenError, max_order, resolve, to_ui

SOL, USDC = resolve("SOL"), resolve("USDC")
BASE = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"}


def spec(**change):
    return OrderRequest.model_validate({**BASE, **change}).to_spec()


def test_a_request_resolves_to_tokens_base_units_and_defaults():
    order = spec()
    assert (order.token_in, order.token_out) == (SOL, USDC)
    assert order.amount_in == 1_500_000_000
    assert order.slippage_bps == 50
    assert order.venues == VENUES


def test_the_given_slippage_is_kept():
    assert spec(slippageBps=120).slippage_bps == 120


@pytest.mark.parametrize(
    ("venues", "expected"),
    [
        (["raydium"], ("raydium",)),
        (["meteora"], ("meteora",)),
        (["raydium", "meteora", "raydium"], ("meteora", "raydium")),
    ],
)
def test_an_allow_list_is_kept_sorted_without_repeats(venues, expected):
    assert spec(venues=venues).venues == expected


@pytest.mark.parametrize(
    ("change", "field"),
    [({"tokenIn": "DOGE"}, "tokenIn"), ({"tokenOut": "DOGE"}, "tokenOut")],
)
def test_an_unknown_token_names_its_field(change, field):
    with pytest.raises(TokenError) as refused:
        spec(**change)
    assert refused.value.field == field
    assert "DOGE" in str(refused.value)


def test_the_same_token_on_both_sides_is_refused():
    with pytest.raises(TokenError) as refused:
        spec(tokenOut="sol")
    assert refused.value.field == "tokenOut"


def test_an_order_above_the_limit_of_its_input_token_is_refused():
    limit = max_order(SOL)
    assert spec(amount=to_ui(limit, SOL)).amount_in == limit
    with pytest.raises(TokenError) as refused:
        spec(amount=to_ui(limit + 1, SOL))
    assert refused.value.field == "amount"


def test_an_amount_finer_than_the_input_token_is_refused():
    with pytest.raises(TokenError) as refused:
        spec(amount="0.0000000001")
    assert refused.value.field == "amount"


@pytest.mark.parametrize("value", [True, False])
def test_slippage_is_not_a_boolean(value):
    with pytest.raises(pydantic.ValidationError) as refused:
        OrderRequest.model_validate({**BASE, "slippageBps": value})
    # an integer or "auto": each member of the union refuses it
    assert {e["loc"][0] for e in refused.value.errors()} == {"slippageBps"}
    assert len(refused.value.errors()) == 2


def test_the_terminal_statuses_are_the_five_endings():
    assert {s for s in OrderStatus if s.terminal} == {
        OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.EXPIRED,
        OrderStatus.COMPLETED,  # a parent order's
    }  # fmt: skip


def test_only_an_order_not_yet_submitted_is_cancellable():
    assert {s for s in OrderStatus if s.cancellable} == {
        OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.ROUTING, OrderStatus.BUILDING,
        OrderStatus.WORKING,  # a parent order: its slices not yet placed
    }  # fmt: skip
