from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.tokens import (
    MAX_BASE_UNITS,
    MAX_ORDER_UI,
    TOKENS,
    WSOL_MINT,
    TokenError,
    by_mint,
    check_max_order,
    check_pair,
    max_order,
    resolve,
    to_base_units,
    to_ui,
)

SOL, WSOL, USDC, BONK = (resolve(s) for s in ("SOL", "WSOL", "USDC", "BONK"))


@pytest.mark.parametrize(
    ("amount", "token", "expected"),
    [
        ("1.5", SOL, 1_500_000_000),
        (" 1.5 ", SOL, 1_500_000_000),
        (Decimal("1.5"), SOL, 1_500_000_000),
        (2, SOL, 2_000_000_000),
        ("0.000000001", SOL, 1),
        ("1e-6", USDC, 1),
        ("12.34", USDC, 12_340_000),
        ("0.00001", BONK, 1),
    ],
)
def test_exact_conversion(amount, token, expected):
    assert to_base_units(amount, token) == expected


@pytest.mark.parametrize(
    ("amount", "token"),
    [
        ("1.0000000001", SOL),
        ("0.0000001", USDC),
        ("0.000001", BONK),
        (Decimal("1.1234567"), USDC),
        # More digits than Decimal's default 28-digit context: refused, not rounded.
        ("1.0000000009999999999999999999999", SOL),
        ("1e-999999999", SOL),  # a positive amount that would underflow to zero
    ],
)
def test_finer_than_the_decimals_is_refused(amount, token):
    with pytest.raises(TokenError, match="decimals"):
        to_base_units(amount, token)


@pytest.mark.parametrize("amount", ["0", "0.0", "-1", -5, Decimal("-0.5"), 0])
def test_zero_and_negative_are_refused(amount):
    with pytest.raises(TokenError, match="greater than zero"):
        to_base_units(amount, SOL)


@pytest.mark.parametrize(
    "amount", ["NaN", "nan", "Infinity", "-inf", Decimal("NaN"), Decimal("Inf")]
)
def test_nan_and_infinity_are_refused(amount):
    with pytest.raises(TokenError, match="finite"):
        to_base_units(amount, SOL)


@pytest.mark.parametrize("amount", ["abc", "", "1,5", "0x10", "1_000", "\u0661", "1e", "."])
def test_text_that_is_not_a_number_is_refused(amount):
    with pytest.raises(TokenError, match="not a decimal"):
        to_base_units(amount, SOL)


@pytest.mark.parametrize("amount", [1.5, True, None, [1]])
def test_floats_and_other_types_are_refused(amount):
    with pytest.raises(TokenError):
        to_base_units(amount, SOL)


@pytest.mark.parametrize("amount", ["1e999999999", Decimal("1E+999999999"), 10**40])
def test_a_huge_exponent_is_too_large_not_an_overflow(amount):
    with pytest.raises(TokenError, match="too large"):
        to_base_units(amount, SOL)


def test_trailing_zeros_beyond_the_decimals_are_exact():
    assert to_base_units("1.5" + "0" * 60, SOL) == 1_500_000_000


def test_too_large_is_refused():
    assert to_base_units("9223372036.854775807", SOL) == MAX_BASE_UNITS
    with pytest.raises(TokenError, match="too large"):
        to_base_units("9223372036.854775808", SOL)


def test_errors_name_the_field():
    with pytest.raises(TokenError) as err:
        to_base_units("-1", SOL, field="amount")
    assert err.value.field == "amount"
    with pytest.raises(TokenError) as err:
        resolve("DOGE", field="tokenIn")
    assert err.value.field == "tokenIn"


def test_unknown_token():
    with pytest.raises(TokenError, match="unknown token"):
        resolve("DOGE")


def test_symbols_are_case_insensitive_and_mints_resolve():
    assert resolve("usdc") is USDC
    assert resolve(USDC.mint) is USDC
    assert by_mint(USDC.mint) is USDC


def test_the_wsol_mint_is_wrapped_sol_not_native():
    assert resolve(WSOL_MINT) is WSOL
    assert by_mint(WSOL_MINT) is WSOL
    assert SOL.native and not WSOL.native
    assert SOL.mint == WSOL.mint == WSOL_MINT


def test_every_mint_but_sol_names_one_token():
    mints = [t.mint for t in TOKENS if not t.native]
    assert len(mints) == len(set(mints))


@pytest.mark.parametrize(("a", "b"), [("SOL", "WSOL"), ("WSOL", "SOL"), ("USDC", "USDC")])
def test_same_token_pair_is_rejected(a, b):
    with pytest.raises(TokenError):
        check_pair(resolve(a), resolve(b))


@pytest.mark.parametrize("a", TOKENS, ids=lambda t: t.symbol)
@pytest.mark.parametrize("b", TOKENS, ids=lambda t: t.symbol)
def test_a_pair_is_refused_exactly_when_both_sides_are_one_mint(a, b):
    if a.mint == b.mint:
        with pytest.raises(TokenError) as refused:
            check_pair(a, b)
        assert refused.value.field == "tokenOut"
    else:
        assert check_pair(a, b) is None


@given(st.sampled_from(TOKENS), st.integers(min_value=1, max_value=MAX_BASE_UNITS))
def test_to_ui_round_trips(token, base_units):
    text = to_ui(base_units, token)
    assert to_base_units(text, token) == base_units
    assert "e" not in text.lower()
    assert not (text.endswith("0") and "." in text)


def test_to_ui_examples():
    assert to_ui(1_500_000_000, SOL) == "1.5"
    assert to_ui(2_000_000_000, SOL) == "2"
    assert to_ui(1, BONK) == "0.00001"


@pytest.mark.parametrize("token", TOKENS, ids=lambda t: t.symbol)
def test_an_order_up_to_the_maximum_passes_and_one_unit_more_is_refused(token):
    limit = max_order(token, {})
    assert limit == to_base_units(MAX_ORDER_UI[token.symbol], token)
    assert check_max_order(limit, token, {}) == limit
    with pytest.raises(TokenError) as refused:
        check_max_order(limit + 1, token, {})
    assert refused.value.field == "amount"
    assert f"at most {to_ui(limit, token)} {token.symbol} per order" in str(refused.value)


def test_the_whale_order_is_refused_naming_the_limit():
    with pytest.raises(TokenError, match=r"at most 10000 SOL per order, not 9223372036\.85"):
        check_max_order(MAX_BASE_UNITS, SOL, {})


def test_maxima_are_configurable_per_symbol():
    overrides = {"sol": Decimal("2.5")}
    assert max_order(SOL, overrides) == 2_500_000_000
    assert max_order(WSOL, overrides) == to_base_units(MAX_ORDER_UI["WSOL"], WSOL)
    with pytest.raises(TokenError, match="at most 2.5 SOL"):
        check_max_order(2_500_000_001, SOL, overrides)


def test_maxima_default_to_the_settings(monkeypatch):
    from chalicelib import tokens
    from chalicelib.config import get_settings

    configured = get_settings().updated(**{"max_order_ui": {"BONK": Decimal(1000)}})
    monkeypatch.setattr(tokens, "get_settings", lambda: configured)
    assert max_order(BONK) == 1000 * 10**5
    assert max_order(USDC) == to_base_units(MAX_ORDER_UI["USDC"], USDC)
