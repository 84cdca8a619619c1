"""Edges of the token conversions the first tests left open (found by ``make mutate``):
every refusal names the field it was given and says why, in the words the client sees."""

import pytest

from chalicelib.tokens import MAX_BASE_UNITS, Token, TokenError, check_pair, resolve, to_base_units

SOL, WSOL, BONK = resolve("SOL"), resolve("WSOL"), resolve("BONK")
WHOLE = Token("WHOLE", "mint", 0)  # no decimals: the digits count alone cannot refuse it


@pytest.mark.parametrize(
    ("amount", "token", "message"),
    [
        (True, SOL, "amount must be a decimal string or an integer"),
        (1.5, SOL, "amount must be a decimal string or an integer"),
        ("abc", SOL, "'abc' is not a decimal number"),
        # the pattern takes it; Decimal() does not (its exponent is out of range)
        ("1e9999999999999999999999", SOL, "'1e9999999999999999999999' is not a decimal number"),
        ("NaN", SOL, "amount must be a finite number"),
        ("0", SOL, "amount must be greater than zero"),
        ("-1", SOL, "amount must be greater than zero"),
        ("1e30", SOL, "amount is too large"),  # refused before scaling
        ("92233720368547.75808", BONK, "amount is too large"),  # one base unit past the max
        (str(MAX_BASE_UNITS + 1), WHOLE, "amount is too large"),
        ("0.0000000001", SOL, "SOL has 9 decimals; 0.0000000001 is finer than that"),
        ("1.000001", BONK, "BONK has 5 decimals; 1.000001 is finer than that"),
    ],
)
def test_a_refused_amount_names_its_field_and_why(amount, token, message):
    with pytest.raises(TokenError) as refused:
        to_base_units(amount, token, "size")
    assert refused.value.field == "size"
    assert str(refused.value) == message


def test_the_largest_amounts_are_accepted():
    assert to_base_units("92233720368547.75807", BONK) == MAX_BASE_UNITS
    assert to_base_units(str(MAX_BASE_UNITS), WHOLE) == MAX_BASE_UNITS


def test_a_pair_refusal_names_both_tokens():
    with pytest.raises(TokenError, match="^cannot swap SOL for WSOL$"):
        check_pair(SOL, WSOL)


def test_an_unknown_token_lists_the_known_ones_under_the_default_field():
    with pytest.raises(TokenError) as refused:
        resolve("DOGE")
    assert refused.value.field == "token"
    assert str(refused.value) == (
        "unknown token 'DOGE'; known symbols: SOL, WSOL, USDC, USDT, JUP, BONK, or their mints"
    )
