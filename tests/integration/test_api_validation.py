"""Bad input of every field: a clear JSON error, the right status, and no row written."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from chalice.test import Client

from chalicelib.backends import postgres
from chalicelib.orders import intake, store

pytestmark = pytest.mark.integration


def days_ahead(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


GOOD = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippageBps": 100}


@pytest.fixture
def client(settings_env):
    import app

    with Client(app.app, stage_name="local") as c:
        yield c


def post(client, raw: str | bytes, headers=None):
    return client.http.post(
        "/api/orders/execute",
        headers={"content-type": "application/json", **(headers or {})},
        body=raw,
    )


def no_orders():
    return store.list_orders(None, 10, None)[0] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "iceberg"}, "type"),
        ({"type": "limit"}, "limitPrice"),
        ({"type": "limit", "limitPrice": "0", "expiresInSlots": 5}, "limitPrice"),
        ({"type": "limit", "limitPrice": "1.5e3", "expiresInSlots": 5}, "limitPrice"),
        ({"type": "limit", "limitPrice": 150, "expiresInSlots": 5}, "limitPrice"),
        ({"type": "limit", "limitPrice": "150"}, "expiresAt"),
        ({"type": "limit", "limitPrice": "150", "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ({"type": "limit", "limitPrice": "150", "expiresAt": "2999-01-01T00:00:00"}, "expiresAt"),
        ({"type": "limit", "limitPrice": "150", "expiresInSlots": 0}, "expiresInSlots"),
        # beyond what Python's datetime holds once in UTC (it was a 500)
        (
            {"type": "limit", "limitPrice": "150", "expiresAt": "9999-12-31T23:59:59-01:00"},
            "expiresAt",
        ),
        ({"type": "limit", "limitPrice": "150", "expiresAt": days_ahead(30.01)}, "expiresAt"),
        (
            {
                "type": "sniper",
                "maxPrice": "1",
                "tokenOut": "NEWCOIN",
                "expiresAt": "9999-12-31T23:59:59-01:00",
            },
            "expiresAt",
        ),
        ({"limitPrice": "150"}, "type"),
        ({"type": None}, "type"),
        ({"tokenIn": "DOGE"}, "tokenIn"),
        ({"tokenIn": ""}, "tokenIn"),
        ({"tokenIn": 7}, "tokenIn"),
        ({"tokenOut": "SOL"}, "tokenOut"),  # same token
        ({"tokenOut": "WSOL"}, "tokenOut"),  # wrapping is not a swap
        ({"tokenOut": "x" * 100}, "tokenOut"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "Infinity"}, "amount"),
        ({"amount": "0.0000000001"}, "amount"),  # finer than SOL's 9 decimals
        ({"amount": "1e30"}, "amount"),  # more than a u64 holds
        ({"amount": "1e999999999"}, "amount"),  # a decimal overflow, not a 500
        ({"amount": "1e-999999999"}, "amount"),  # would underflow to a zero amount
        ({"amount": "1_000"}, "amount"),  # Decimal() takes it; the API does not
        ({"amount": True}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"slippageBps": 0}, "slippageBps"),
        ({"slippageBps": 5001}, "slippageBps"),
        ({"slippageBps": "many"}, "slippageBps"),
        ({"slippageBps": 1.5}, "slippageBps"),
        ({"slippageBps": True}, "slippageBps"),
        ({"venues": ["orca"]}, "venues"),
        ({"venues": []}, "venues"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client, change, field):
    body = {**GOOD, **change}
    answer = post(client, json.dumps(body))
    assert answer.status_code == 422, answer.json_body
    error = answer.json_body["error"]
    assert error["code"] == "invalid_order"
    assert any(d["field"].split(".")[0] == field for d in error["details"]), error
    assert no_orders()


@pytest.mark.parametrize("missing", ["type", "tokenIn", "tokenOut", "amount"])
def test_missing_fields_are_422(client, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    answer = post(client, json.dumps(body))
    assert answer.status_code == 422
    error = answer.json_body["error"]
    assert error["code"] == "invalid_order"
    assert any(d["field"] == missing for d in error["details"]), error
    assert no_orders()


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        "",
        "nul",
        '{"type": "market",}',
        b"\xff\xfe{",
        "[" * 8000 + "]" * 8000,
        "[" * 33 + "]" * 33,
    ],
)
def test_malformed_json_is_400(client, raw):
    answer = post(client, raw)
    assert answer.status_code == 400
    assert answer.json_body["error"]["code"] == "malformed_json"
    assert no_orders()


@pytest.mark.parametrize("raw", ["[]", "1", '"order"', "null"])
def test_a_body_that_is_not_an_object_is_422(client, raw):
    answer = post(client, raw)
    assert answer.status_code == 422
    assert answer.json_body["error"]["code"] == "invalid_order"
    assert no_orders()


def test_oversized_body_is_413(client, settings_env):
    body = {**GOOD, "tokenIn": "SOL" + " " * settings_env.access.max_body_bytes}
    answer = post(client, json.dumps(body))
    assert answer.status_code == 413
    assert answer.json_body["error"]["code"] == "body_too_large"
    assert no_orders()


def test_a_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_413(client, settings_env):
    limit = settings_env.access.max_body_bytes
    raw = json.dumps(GOOD)
    at_limit = raw + " " * (limit - len(raw))  # JSON allows whitespace after the value
    assert len(at_limit.encode()) == limit
    taken = post(client, at_limit)
    assert taken.status_code == 202, taken.json_body
    over = post(client, at_limit + " ")
    assert over.status_code == 413
    assert over.json_body["error"]["code"] == "body_too_large"
    assert len(store.list_orders(None, 10, None)[0]) == 1


def test_other_content_types_are_415_in_the_error_shape(client):
    answer = client.http.post(
        "/api/orders/execute", headers={"content-type": "text/plain"}, body=json.dumps(GOOD)
    )
    assert answer.status_code == 415
    assert answer.json_body["error"]["code"] == "unsupported_media_type"
    assert no_orders()


@pytest.mark.parametrize("key", ["k" * 256, "bad\nkey"])
def test_bad_idempotency_keys_are_422(client, key):
    answer = post(client, json.dumps(GOOD), headers={"Idempotency-Key": key})
    assert answer.status_code == 422
    assert answer.json_body["error"]["code"] == "invalid_idempotency_key"
    assert no_orders()


@pytest.mark.parametrize(
    ("amount", "token", "base_units"),
    [("1.5", "SOL", 1_500_000_000), ("0.000001", "USDC", 1), ("123456.789", "BONK", 12345678900)],
)
def test_amounts_convert_exactly_from_strings_and_numbers(client, amount, token, base_units):
    out = "USDC" if token != "USDC" else "SOL"
    for raw_amount in (json.dumps(amount), amount):  # "1.5" and 1.5 in the JSON text
        raw = f'{{"type":"market","tokenIn":"{token}","tokenOut":"{out}","amount":{raw_amount}}}'
        answer = post(client, raw)
        assert answer.status_code == 202, answer.json_body
        order = store.get_order(answer.json_body["orderId"])
        assert order.amount_in == base_units
        assert order.slippage_bps == 50  # the default


def test_tokens_may_be_named_by_mint(client):
    body = {**GOOD, "tokenOut": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"}
    answer = post(client, json.dumps(body))
    assert answer.status_code == 202
    assert store.get_order(answer.json_body["orderId"]).token_out.symbol == "USDC"


def test_admission_control_answers_429_when_too_many_orders_are_in_flight(
    client, monkeypatch, settings_env
):

    limited = settings_env.updated(**{"max_orders_in_flight": 1})
    monkeypatch.setattr(intake, "get_settings", lambda: limited)
    assert post(client, json.dumps(GOOD)).status_code == 202
    answer = post(client, json.dumps({**GOOD, "amount": "2"}))
    assert answer.status_code == 429
    assert answer.json_body["error"]["code"] == "too_many_open_orders"
    assert "being executed" in answer.json_body["error"]["message"]
    assert answer.json_body["error"]["details"] == {"limit": 1, "scope": "engine"}
    assert answer.headers["Retry-After"] == "1"
    assert len(store.list_orders(None, 10, None)[0]) == 1  # the refused order left no row


def test_orders_waiting_open_leave_the_engine_ceiling_to_orders_in_flight(
    client, monkeypatch, settings_env
):
    """A thousand resting limit orders must not shut market orders out: the engine-wide
    ceiling counts what the queue and workers carry; a waiting order counts for its client."""

    limited = settings_env.updated(**{"max_orders_in_flight": 1})
    monkeypatch.setattr(intake, "get_settings", lambda: limited)
    first = post(client, json.dumps(GOOD))
    assert first.status_code == 202
    with postgres.transaction() as conn:  # as the worker leaves a limit order below its price
        conn.execute(
            "UPDATE orders SET status = 'open' WHERE id = %s", (first.json_body["orderId"],)
        )
    assert post(client, json.dumps({**GOOD, "amount": "2"})).status_code == 202
    assert post(client, json.dumps({**GOOD, "amount": "3"})).status_code == 429

    per_client = settings_env.updated(**{"max_open_orders_per_client": 2})
    monkeypatch.setattr(intake, "get_settings", lambda: per_client)
    answer = post(client, json.dumps({**GOOD, "amount": "4"}))  # the waiting one counts here
    assert answer.status_code == 429
    assert "you have 2 open orders" in answer.json_body["error"]["message"]
    assert answer.json_body["error"]["details"] == {"limit": 2, "scope": "client"}


def test_a_retry_of_an_accepted_order_is_answered_at_the_limit(client, monkeypatch, settings_env):

    limited = settings_env.updated(**{"max_orders_in_flight": 1})
    monkeypatch.setattr(intake, "get_settings", lambda: limited)
    first = post(client, json.dumps(GOOD), {"Idempotency-Key": "k-limit"})
    assert first.status_code == 202
    again = post(client, json.dumps(GOOD), {"Idempotency-Key": "k-limit"})
    assert again.status_code == 200, again.json_body
    assert again.json_body["orderId"] == first.json_body["orderId"]


def test_far_below_the_ceiling_admissions_do_not_each_count_every_open_order(
    client, monkeypatch, settings_env
):
    """The engine-wide count reads every order in flight (thousands, in a burst): within a
    second, far below the ceiling, one count serves the process's admissions."""
    counts: list[object] = []
    real = store._count_in_flight

    def counting(conn):
        counts.append(conn)
        return real(conn)

    monkeypatch.setattr(store, "_count_in_flight", counting)
    monkeypatch.setattr(store, "_in_flight_count", (0, float("-inf")))  # none read yet
    for amount in ("1", "2", "3"):
        assert post(client, json.dumps({**GOOD, "amount": amount})).status_code == 202
    assert len(counts) == 1


def test_a_min_out_beyond_what_an_order_can_hold_is_422(client):
    answer = post(client, json.dumps({**GOOD, "minOut": str(2**63)}))
    assert answer.status_code == 422, answer.body
    error = answer.json_body["error"]
    assert error["code"] == "invalid_order"
    assert [d["field"] for d in error["details"]] == ["minOut"]
    assert no_orders()


def test_an_expiry_at_the_bound_is_taken(client):
    body = {**GOOD, "type": "limit", "limitPrice": "150", "expiresAt": days_ahead(29.99)}
    answer = post(client, json.dumps(body))
    assert answer.status_code == 202, answer.json_body
