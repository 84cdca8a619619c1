"""Settings from the environment: names, the old name still read, orderings refused."""

import pytest
from pydantic import ValidationError

from chalicelib.config import Settings


@pytest.mark.parametrize("name", ["MAX_ORDERS_IN_FLIGHT", "MAX_OPEN_ORDERS"])
def test_the_in_flight_ceiling_is_read_by_its_name_and_its_old_one(monkeypatch, name):
    monkeypatch.setenv(name, "42")
    assert Settings().access.max_orders_in_flight == 42


def test_a_waiting_retry_cap_below_the_base_delay_is_refused(monkeypatch):
    monkeypatch.setenv("RETRY_BASE_DELAY_S", "10")
    monkeypatch.setenv("WAITING_RETRY_MAX_DELAY_S", "5")
    with pytest.raises(ValidationError, match="RETRY_BASE_DELAY_S .10. must be at most"):
        Settings()
    monkeypatch.setenv("WAITING_RETRY_MAX_DELAY_S", "10")
    assert Settings().lifecycle.waiting_retry_max_delay_s == 10


def test_a_waiting_retry_cap_beyond_what_sqs_can_delay_is_refused(monkeypatch):
    monkeypatch.setenv("WAITING_RETRY_MAX_DELAY_S", "901")
    with pytest.raises(ValidationError, match="waiting_retry_max_delay_s"):
        Settings()


def test_every_setting_is_read_somewhere():
    """A setting nothing reads is a knob that does nothing: each field is read as
    ``<group>.<name>`` (or, for the market's, by ``chalicelib.dex`` as ``settings.<name>``)."""
    import re
    from pathlib import Path

    from chalicelib import config

    root = Path(__file__).resolve().parents[2]
    sources = (
        "\n".join(
            p.read_text()
            for folder in ("chalicelib", "localaws", "infra")
            for p in (root / folder).rglob("*.py")
            if p.name != "config.py"
        )
        + (root / "app.py").read_text()
    )
    unread = [
        name
        for name, group in config._groups().items()
        if not re.search(rf"\b{group}\.{name}\b|settings\.{name}\b", sources)
    ]
    assert unread == []
