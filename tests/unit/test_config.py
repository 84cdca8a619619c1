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


def test_stage_values_are_parsed_as_the_environment_is(monkeypatch):
    """``from_values`` (what infra/ reads a Chalice stage with) decodes a list as JSON, reads
    old names and aliases, and ignores the process environment."""
    from chalicelib import config

    monkeypatch.setenv("ORDERS_QUEUE_NAME", "from-the-shell")
    monkeypatch.setenv("WS_ALLOWED_ORIGINS", '["https://shell.example"]')
    values = {
        "WS_ALLOWED_ORIGINS": '["https://abc123defg.execute-api.us-east-1.amazonaws.com"]',
        "MAX_OPEN_ORDERS": "7",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LEASE_S": "60",
    }
    settings = config.from_values(values)
    assert settings.push.ws_allowed_origins == (
        "https://abc123defg.execute-api.us-east-1.amazonaws.com",
    )
    assert settings.access.max_orders_in_flight == 7
    assert settings.queue.aws_region == "eu-west-1"
    assert settings.lifecycle.lease_s == 60
    assert settings.queue.orders_queue_name == config.default("orders_queue_name")
    assert config.from_values({}).push.ws_allowed_origins == config.default("ws_allowed_origins")
