"""Clients and keys over the REST API: who may call, whose orders they see, how much they
may ask, and the lenient inputs that are refused (each with its code, and no row stored)."""

import json
import threading
import uuid
from collections import Counter

import pytest
from chalice import Chalice
from chalice.local import LocalChalice
from chalice.test import Client

from chalicelib.access import keys
from chalicelib.backends import postgres
from chalicelib.orders import intake, store
from tests.integration.driver import ORDER

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings_env):
    import app

    with Client(app.app, stage_name="local") as c:
        yield c


@pytest.fixture
def other_key(settings_env) -> str:
    """A second client's key (client B; the default key is client A's)."""
    return keys.create(f"client-b-{uuid.uuid4().hex[:8]}").key


def bearer(key: str | None) -> dict:
    return {"Authorization": None if key is None else f"Bearer {key}"}


def post(client, body=ORDER, key=None, headers=None, raw=None):
    headers = {"content-type": "application/json", **(headers or {})}
    if key is not None:
        headers.update(bearer(key))
    data = raw if raw is not None else json.dumps(body)
    return client.http.post("/api/orders/execute", headers=headers, body=data)


def stored() -> int:
    return len(store.list_orders(None, 100, None)[0])


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/orders", f"/api/orders/{uuid.uuid4()}"])
def test_order_routes_without_a_key_are_401(client, path):
    assert client.http.get(path, headers=bearer(None)).status_code == 401


def test_a_post_without_a_key_is_401_and_stores_nothing(client):
    answer = client.http.post(
        "/api/orders/execute",
        headers={"content-type": "application/json", **bearer(None)},
        body=json.dumps(ORDER),
    )
    assert answer.status_code == 401
    assert stored() == 0


@pytest.mark.parametrize(
    "header",
    [
        "Bearer oe_00000000_" + "x" * 43,  # well formed, never issued
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_an_unknown_key_is_refused(client, header):
    answer = client.http.get("/api/orders", headers={"Authorization": header})
    assert answer.status_code == 403


def test_public_routes_need_no_key(client):
    assert client.http.get("/api/health", headers=bearer(None)).status_code == 200
    assert client.http.get("/api/openapi.json", headers=bearer(None)).status_code == 200


def test_a_revoked_key_is_refused_at_once(client, other_key):
    assert post(client, key=other_key).status_code == 202
    assert keys.revoke(other_key[: len("oe_12345678")])
    assert client.http.get("/api/orders", headers=bearer(other_key)).status_code == 403
    assert post(client, key=other_key).status_code == 403
    assert stored() == 1


def test_a_revoked_key_is_no_longer_active_for_the_sockets_it_opened(settings_env, api_key):
    """``keys.active``, which an open WebSocket asks before each subscribe (uncached here:
    AUTH_CACHE_TTL_S=0): false once the key is revoked, still true for another key."""
    new = keys.create(f"active-{uuid.uuid4().hex[:8]}")
    assert keys.active(new.prefix)
    assert keys.revoke(new.prefix)
    assert not keys.active(new.prefix)
    assert keys.active(keys.prefix_of(api_key))


def test_a_key_that_cannot_be_checked_is_503_never_a_pass(client, monkeypatch):
    from chalicelib.errors import DependencyUnavailable

    def down(key):
        raise DependencyUnavailable("database", OSError("connection refused"))

    monkeypatch.setattr(keys, "client_of", down)
    for answer in (post(client), client.http.get("/api/orders")):
        assert answer.status_code == 503
        assert answer.json_body["error"]["code"] == "dependency_unavailable"
    assert stored() == 0


def test_a_key_is_stored_hashed_with_its_prefix(settings_env):
    new = keys.create("hashed")
    with postgres.connection() as conn:
        row = conn.execute(
            "SELECT prefix, key_hash FROM api_keys WHERE prefix = %s", (new.prefix,)
        ).fetchone()
    assert new.key.startswith(new.prefix + "_")
    assert new.key.encode() not in bytes(row["key_hash"]) and len(row["key_hash"]) == 32
    assert keys.client_of(new.key) == new.client_id


# -- ownership ---------------------------------------------------------------------------------


def test_client_b_never_sees_client_a_orders(client, other_key):
    a_order = post(client).json_body["orderId"]
    b_order = post(client, key=other_key).json_body["orderId"]

    listed = client.http.get("/api/orders", headers=bearer(other_key)).json_body["orders"]
    assert [o["id"] for o in listed] == [b_order]
    listed = client.http.get("/api/orders").json_body["orders"]
    assert [o["id"] for o in listed] == [a_order]

    answer = client.http.get(f"/api/orders/{a_order}", headers=bearer(other_key))
    assert answer.status_code == 404
    assert answer.json_body["error"]["code"] == "order_not_found"
    assert client.http.get(f"/api/orders/{a_order}").status_code == 200


def test_idempotency_keys_belong_to_their_client(client, other_key):
    a = post(client, headers={"Idempotency-Key": "shared"})
    assert a.status_code == 202
    # Same key, same body: B gets an order of its own, not A's.
    b = post(client, key=other_key, headers={"Idempotency-Key": "shared"})
    assert b.status_code == 202 and b.json_body["orderId"] != a.json_body["orderId"]
    # Same key, other body: B's own conflict, naming B's order, never A's.
    conflict = post(
        client, {**ORDER, "amount": "2"}, key=other_key, headers={"Idempotency-Key": "shared"}
    )
    assert conflict.status_code == 409
    assert conflict.json_body["error"]["details"] == {"orderId": b.json_body["orderId"]}
    assert a.json_body["orderId"] not in json.dumps(conflict.json_body)
    assert stored() == 2


# -- limits ------------------------------------------------------------------------------------


def test_the_open_order_limit_is_per_client_and_exact_under_200_concurrent_posts(
    client, other_key, monkeypatch, settings_env
):
    import app

    limited = settings_env.updated(**{"max_open_orders_per_client": 50})
    monkeypatch.setattr(intake, "get_settings", lambda: limited)
    # Requests side by side: the app keeps current_request per thread, as the runtime does.
    monkeypatch.setattr(app.app, "__class__", type("Threaded", (LocalChalice, Chalice), {}))
    start, answers = threading.Barrier(200), Counter()

    def one():
        start.wait()
        answers[post(client).status_code] += 1

    threads = [threading.Thread(target=one) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {202: 50, 429: 150}
    assert stored() == 50
    assert post(client, key=other_key).status_code == 202, "another client is not held back"


def test_the_rate_limit_answers_429_with_the_bucket_s_retry_after(client, monkeypatch):
    from chalicelib.access import ratelimit

    settings = ratelimit.get_settings().updated(**{"rate_limit_per_s": 0.1, "rate_limit_burst": 3})
    monkeypatch.setattr(ratelimit, "get_settings", lambda: settings)
    assert [client.http.get("/api/orders").status_code for _ in range(3)] == [200] * 3
    answer = post(client)
    assert answer.status_code == 429
    assert answer.json_body["error"]["code"] == "rate_limited"
    assert 1 <= int(answer.headers["Retry-After"]) <= 10  # one token at 0.1/s
    assert stored() == 0


def test_a_wait_under_a_second_is_a_429_with_retry_after_1(client, monkeypatch):
    """One request a second, a burst of one: the next request at once must wait under a
    second. It is refused all the same, with Retry-After rounded up to 1 (0 would say
    "now")."""
    from chalicelib.access import ratelimit

    settings = ratelimit.get_settings().updated(**{"rate_limit_per_s": 1, "rate_limit_burst": 1})
    monkeypatch.setattr(ratelimit, "get_settings", lambda: settings)
    assert client.http.get("/api/orders").status_code == 200
    answer = post(client)
    assert answer.status_code == 429, answer.json_body
    assert answer.headers["Retry-After"] == "1"
    assert stored() == 0


# -- strict input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain;application/json", "text/plain, application/json", "text/json"]
)
def test_a_content_type_that_only_mentions_json_is_415(client, content_type):
    answer = post(client, headers={"content-type": content_type})
    assert answer.status_code == 415
    assert answer.json_body["error"]["code"] == "unsupported_media_type"
    assert stored() == 0


def test_json_with_a_charset_is_json(client):
    answer = post(client, headers={"content-type": "application/json; charset=utf-8"})
    assert answer.status_code == 202


def test_duplicate_json_keys_are_400(client):
    raw = '{"type":"market","tokenIn":"SOL","tokenOut":"USDC","amount":"9","amount":"0.1"}'
    answer = post(client, raw=raw)
    assert answer.status_code == 400
    assert answer.json_body["error"]["code"] == "duplicate_key"
    assert stored() == 0


@pytest.mark.parametrize("slippage", ['"1_00"', '" 100 "', '"100"', "100.0", "1e2", "true"])
def test_slippage_is_a_json_integer_only(client, slippage):
    raw = '{"type":"market","tokenIn":"SOL","tokenOut":"USDC","amount":"1","slippageBps":%s}'
    raw %= slippage
    answer = post(client, raw=raw)
    assert answer.status_code == 422, answer.json_body
    assert answer.json_body["error"]["details"][0]["field"] == "slippageBps"
    assert stored() == 0


@pytest.mark.parametrize("token", ["ſol", "ＳＯＬ", "SOL\u200b"])
def test_token_symbols_fold_case_in_ascii_only(client, token):
    answer = post(client, {**ORDER, "tokenIn": token})
    assert answer.status_code == 422
    assert stored() == 0


def test_token_symbols_are_case_insensitive_in_ascii(client):
    assert post(client, {**ORDER, "tokenIn": "sol"}).status_code == 202


@pytest.mark.parametrize("limit", ["1_00", "٢٠", " 20", "+20", "20.0", "1e1"])
def test_limit_is_ascii_digits_only(client, limit):
    answer = client.http.get(f"/api/orders?limit={limit}")
    assert answer.status_code == 422
    assert answer.json_body["error"]["code"] == "invalid_query"


@pytest.mark.parametrize(
    "spelling",
    [
        str.upper,
        lambda o: f"urn:uuid:{o}",
        lambda o: o.replace("-", ""),
        lambda o: "{" + o + "}",
    ],
)
def test_an_order_is_found_by_its_canonical_id_only(client, spelling):
    order_id = post(client).json_body["orderId"]
    answer = client.http.get(f"/api/orders/{spelling(order_id)}")
    assert answer.status_code == 404
    assert client.http.get(f"/api/orders/{order_id}").status_code == 200


def test_long_values_are_not_echoed_whole(client):
    answer = client.http.get(f"/api/orders/{'a' * 7000}")
    assert answer.status_code == 404
    assert len(answer.json_body["error"]["message"]) < 100
    answer = client.http.get(f"/api/orders?status={'s' * 7000}")
    assert answer.status_code == 422 and len(answer.json_body["error"]["message"]) < 100
    assert stored() == 0
