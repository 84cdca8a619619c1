"""Settings from the environment: names, the old name still read, orderings refused."""

import pytest
from pydantic import ValidationError

from chalicelib.config import Settings


@pytest.mark.parametrize("name", ["MAX_ORDERS_IN_FLIGHT", "MAX_OPEN_ORDERS"])
def test_the_in_flight_ceiling_is_read_by_its_name_and_its_old_one(monkeypatch, name):
    monkeypatch.setenv(name, "42")
    assert Settings().max_orders_in_flight == 42


def test_a_waiting_retry_cap_below_the_base_delay_is_refused(monkeypatch):
    monkeypatch.setenv("RETRY_BASE_DELAY_S", "10")
    monkeypatch.setenv("WAITING_RETRY_MAX_DELAY_S", "5")
    with pytest.raises(ValidationError, match="RETRY_BASE_DELAY_S .10. must be at most"):
        Settings()
    monkeypatch.setenv("WAITING_RETRY_MAX_DELAY_S", "10")
    assert Settings().waiting_retry_max_delay_s == 10


def test_a_waiting_retry_cap_beyond_what_sqs_can_delay_is_refused(monkeypatch):
    monkeypatch.setenv("WAITING_RETRY_MAX_DELAY_S", "901")
    with pytest.raises(ValidationError, match="waiting_retry_max_delay_s"):
        Settings()
