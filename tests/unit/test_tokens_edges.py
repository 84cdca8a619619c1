"""Edges of the token conversions the first tests left open (found by ``make mutate``):
every refusal names the field it was given and says why."""

import pytest

from chalicelib.tokens import MAX_BASE_UNITS, Token, TokenError, check_pair, resolve, to_base_units

SOL, WSOL, BONK = resolve("SOL"), resolve("WSOL"), resolve("BONK")


def refusal(amount, token, field="size"):
    with pytest.raises(TokenError) as refused:
        to_base_units(amount, token, field)
    assert refused.value.field == field
    return str(refused.value)


def test_a_pair_refusal_names_both_tokens():
    with pytest.raises(TokenError, match="cannot swap SOL for WSOL"):
        check_pair(SOL, WSOL)


def test_an_amount_with_more_decimals_than_the_token_names_the_field():
    # one base unit and a bit: above one base unit, so past the magnitude check
    assert "5 decimals" in refusal("1.000001", BONK)


def test_an_amount_just_past_the_largest_base_amount_names_the_field():
    assert to_base_units("92233720368547.75807", BONK) == MAX_BASE_UNITS
    assert "too large" in refusal("92233720368547.75808", BONK)  # one base unit more
    whole = Token("WHOLE", "mint", 0)  # no decimals: the digits count alone cannot refuse it
    assert "too large" in refusal(str(MAX_BASE_UNITS + 1), whole)
