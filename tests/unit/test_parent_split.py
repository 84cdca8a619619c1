"""A parent's amount in slices: the parts add up to the total exactly, the remainder in the
last; the DCA and TWAP bodies parse strictly."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import InvalidField
from chalicelib.orders.models import slice_amount, split_amount
from chalicelib.orders.parents import DcaRequest, TwapRequest
from chalicelib.tokens import MAX_BASE_UNITS


def _total_and_slices(n: int):
    return st.tuples(st.integers(min_value=n, max_value=MAX_BASE_UNITS), st.just(n))


@given(st.integers(min_value=2, max_value=100).flatmap(_total_and_slices))
def test_the_slices_conserve_the_total(case):
    total, slices = case
    parts = split_amount(total, slices)
    assert len(parts) == slices and sum(parts) == total
    assert all(p >= 1 for p in parts)
    assert len(set(parts[:-1])) <= 1 and 0 <= parts[-1] - parts[0] < slices
    assert [slice_amount(total, slices, i) for i in range(slices)] == parts


def test_fewer_base_units_than_slices_is_refused():
    with pytest.raises(ValueError):
        split_amount(2, 3)


TWAP = {"type": "twap", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "slices": 4,
        "intervalSeconds": 10}  # fmt: skip


def test_a_twap_spec_keeps_its_schedule():
    spec = TwapRequest.model_validate(TWAP).to_spec()
    assert (spec.type, spec.amount_in, spec.slices, spec.interval_s) == ("twap", 10**9, 4, 10)
    assert spec.slice_amount is None


def test_a_dca_spec_totals_its_cycles_and_keeps_its_band():
    body = {"type": "dca", "tokenIn": "USDC", "tokenOut": "SOL", "amountPerCycle": "25",
            "cycles": 4, "intervalSeconds": 60, "minPrice": "0.001",
            "maxPrice": "0.01"}  # fmt: skip
    spec = DcaRequest.model_validate(body).to_spec()
    assert (spec.amount_in, spec.slice_amount, spec.slices) == (100_000_000, 25_000_000, 4)
    assert (str(spec.band_min), str(spec.band_max)) == ("0.001", "0.01")


def test_a_twap_smaller_than_its_slices_names_amount():
    with pytest.raises(InvalidField) as refused:
        TwapRequest.model_validate({**TWAP, "amount": "0.000000003"}).to_spec()
    assert refused.value.field == "amount"
