"""The authorizer's answers are kept per execution environment for ``auth_cache_ttl_s``, as
API Gateway keeps them: one key lookup per period, a revoked key refused once it has passed."""

import uuid
from types import SimpleNamespace

import pytest
from cachetools import TTLCache

from chalicelib.access import keys
from chalicelib.http import auth

KEY = "oe_0000aaaa_" + "k" * 43
CLIENT = uuid.uuid4()


@pytest.fixture
def clock(monkeypatch):
    now = SimpleNamespace(t=0.0)
    answers = TTLCache(maxsize=10, ttl=60, timer=lambda: now.t)
    monkeypatch.setattr(auth, "_answers", lambda: answers)
    monkeypatch.setattr(
        auth, "get_settings", lambda: SimpleNamespace(access=SimpleNamespace(auth_cache_ttl_s=60))
    )
    return now


@pytest.fixture
def lookups(monkeypatch):
    asked, valid = [], {KEY: CLIENT}
    monkeypatch.setattr(keys, "client_of", lambda key: asked.append(key) or valid.get(key))
    return SimpleNamespace(asked=asked, valid=valid)


def principal(key: str | None) -> str:
    return auth.authorize(SimpleNamespace(token=f"Bearer {key}" if key else None)).principal_id


def test_a_key_is_looked_up_once_per_period(clock, lookups):
    assert [principal(KEY) for _ in range(5)] == [str(CLIENT)] * 5
    assert lookups.asked == [KEY]
    clock.t = 61
    assert principal(KEY) == str(CLIENT)
    assert lookups.asked == [KEY, KEY]


def test_a_revoked_key_is_refused_once_its_answer_has_expired(clock, lookups):
    assert principal(KEY) == str(CLIENT)
    del lookups.valid[KEY]  # revoked
    clock.t = 59
    assert principal(KEY) == str(CLIENT)  # as behind API Gateway's own cache
    clock.t = 60.5
    assert principal(KEY) == "anonymous"


def test_an_unknown_key_is_remembered_too_so_a_flood_of_them_costs_one_lookup_each(clock, lookups):
    other = "oe_0000bbbb_" + "x" * 43
    assert [principal(other) for _ in range(3)] == ["anonymous"] * 3
    assert lookups.asked == [other]
