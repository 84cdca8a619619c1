"""The order pipeline end to end: HTTP function -> SQS (moto server) -> worker -> Postgres."""

import json
import threading

import base58
import pytest

from chalicelib.backends import postgres, queue, venues
from chalicelib.backends.aws import sqs_client
from chalicelib.orders import reaper, store
from tests.integration.driver import FLOW, ORDER, fail_attempts, poll_once, run_until

pytestmark = pytest.mark.integration


def post(client, body, key=None, raw=None, content_type="application/json"):
    headers = {"content-type": content_type}
    if key:
        headers["Idempotency-Key"] = key
    return client.http.post(
        "/api/orders/execute", headers=headers, body=raw if raw is not None else json.dumps(body)
    )


def terminal(*order_ids):
    return lambda: all(store.get_order(o).status.terminal for o in order_ids)


def statuses(order_id):
    return [h.status for h in store.history(order_id)]


def test_happy_path_records_each_status_once_in_order(client, app_module):
    answer = post(client, ORDER)
    assert answer.status_code == 202
    body = answer.json_body
    order_id = body["orderId"]
    assert body["status"] == "pending"
    assert body["wsUrl"].endswith(f"?orderId={order_id}")
    assert store.get_order(order_id).enqueued_at is not None

    run_until(app_module, terminal(order_id))

    detail = client.http.get(f"/api/orders/{order_id}").json_body
    order, history = detail["order"], detail["history"]
    assert [h["status"] for h in history] == FLOW
    assert [h["seq"] for h in history] == [1, 2, 3, 4, 5]
    assert order["status"] == "confirmed" and order["lastSeq"] == 5
    assert order["amountIn"] == "1500000000" and order["amountInUi"] == "1.5"
    assert order["mintIn"] == "So11111111111111111111111111111111111111112"
    confirmed = history[-1]["payload"]
    assert confirmed["txHash"] == order["txHash"]
    assert len(base58.b58decode(order["txHash"])) == 64
    assert int(order["amountOut"]) == int(confirmed["amountOut"]) > 0
    route = order["route"]
    assert sum(int(leg["inAmount"]) for leg in route["legs"] if leg["hop"] == 0) == 1_500_000_000
    assert int(order["amountOut"]) >= int(route["minOut"])
    assert history[2]["payload"]["route"]["legs"], "building carries the chosen route"


def test_same_key_and_body_returns_the_same_order(client):
    first = post(client, ORDER, key="k-1")
    again = post(
        client, {**ORDER, "amount": "1.50"}, key="k-1"
    )  # the same order, written otherwise
    assert first.status_code == 202 and again.status_code == 200
    assert again.json_body["orderId"] == first.json_body["orderId"]
    other = post(client, {**ORDER, "amount": "2"}, key="k-1")
    assert other.status_code == 409
    assert other.json_body["error"]["code"] == "idempotency_conflict"
    assert len(store.list_orders(None, 100, None)[0]) == 1


def test_concurrent_duplicates_make_one_order(client):
    answers = []

    def submit():
        answers.append(post(client, ORDER, key="burst"))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202]
    assert len({a.json_body["orderId"] for a in answers}) == 1
    assert len(store.list_orders(None, 100, None)[0]) == 1


def test_redelivered_message_never_duplicates_statuses(client, app_module):
    order_id = post(client, ORDER).json_body["orderId"]
    queue.send_order(order_id)  # a duplicate delivery before processing
    run_until(app_module, terminal(order_id))
    queue.send_order(order_id)  # and one after the order finished
    poll_once(app_module.process_orders, queue.queue_url(), wait_s=1)
    assert statuses(order_id) == FLOW


def test_a_check_that_dies_is_redelivered_and_spends_no_attempt(client, app_module, monkeypatch):
    """The delivery that checks a sent transaction dies: the queue redelivers the check
    after the lease, which records ``confirmed`` without starting a new attempt."""
    from chalicelib.dex import Market

    real_land = Market.land
    crashes = []

    def crash_once(self, route, faults=None):
        if not crashes:
            crashes.append(1)
            raise RuntimeError("worker killed")
        return real_land(self, route, faults)

    monkeypatch.setattr(Market, "land", crash_once)
    monkeypatch.setattr(Market, "landing_delay_s", lambda self, faults: 0.5)  # a check comes
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id), timeout_s=30)  # redelivered after the lease
    order = store.get_order(order_id)
    assert crashes and order.status == "confirmed" and order.attempts == 1
    assert statuses(order_id) == FLOW


def test_a_crash_before_the_check_is_queued_loses_nothing(
    client, app_module, monkeypatch, settings_env
):
    """Sent, then the worker dies before the check message goes out: the order is in
    flight with nothing queued; the reaper finds it and the check confirms it."""
    from chalicelib.dex import Market
    from chalicelib.orders import worker

    def die(order_id, delay_s):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(Market, "landing_delay_s", lambda self, faults: 0.5)
    with monkeypatch.context() as patched:
        patched.setattr(worker, "_check_later", die)
        order_id = post(client, ORDER).json_body["orderId"]
        poll_once(app_module.process_orders, queue.queue_url(), wait_s=1)
    assert store.get_order(order_id).tx_in_flight
    with postgres.connection() as conn:  # its lease ran out long ago, on its last attempt
        conn.execute(
            "UPDATE orders SET lease_until = NULL, attempts = 3,"
            " updated_at = now() - interval '1 hour' WHERE id = %s",
            (order_id,),
        )
    assert reaper.run(app_module.notifier) == 1
    run_until(app_module, terminal(order_id), timeout_s=30)
    order = store.get_order(order_id)
    assert order.status == "confirmed" and order.attempts == 3  # checked, not failed
    assert statuses(order_id) == FLOW


def test_no_delivery_waits_for_the_transaction_to_land(client, app_module, monkeypatch, queues):
    """``submitted`` ends the delivery: the check comes as a message delayed by the landing
    time (SQS DelaySeconds), never as a sleep in the handler."""
    from chalicelib.dex import Market

    monkeypatch.setattr(Market, "landing_delay_s", lambda self, faults: 2.2)
    sent = []
    real_send = queue.send_order
    monkeypatch.setattr(
        queue, "send_order", lambda oid, delay_s=0: (sent.append(delay_s), real_send(oid, delay_s))
    )
    order_id = post(client, ORDER).json_body["orderId"]
    poll_once(app_module.process_orders, queue.queue_url(), wait_s=1)
    assert store.get_order(order_id).status == "submitted"
    assert sent[-1] == 3, "the check is delayed until the transaction lands (rounded up)"
    run_until(app_module, terminal(order_id), timeout_s=30)
    assert statuses(order_id) == FLOW


def test_a_retry_never_lowers_the_minimum_the_client_was_shown(client, app_module, monkeypatch):
    """Attempt 1 records ``building`` (with minOut) and its transaction fails to land;
    attempt 2 re-quotes at a worse price. It is sent with the recorded minimum, not its own."""
    from dataclasses import replace

    from chalicelib.dex import Market, SlippageExceeded, router

    real_land, real_plan = Market.land, router.plan
    landed_min_out = []

    def land(self, route, faults=None):
        landed_min_out.append(route.min_out)
        if len(landed_min_out) == 1:
            raise SlippageExceeded("the price moved before it landed", min_out=route.min_out)
        return real_land(self, route, faults)

    def worse_on_retry(*args, **kwargs):
        route = real_plan(*args, **kwargs)
        return replace(route, min_out=route.min_out - 1000) if landed_min_out else route

    monkeypatch.setattr(Market, "land", land)
    monkeypatch.setattr(router, "plan", worse_on_retry)
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id), timeout_s=30)
    order = store.get_order(order_id)
    building = [h for h in store.history(order_id) if h.status == "building"]
    assert int(building[0].payload["route"]["minOut"]) == landed_min_out[0] == order.min_out
    assert landed_min_out[1] == landed_min_out[0], landed_min_out
    assert order.status == "confirmed" and order.attempts == 2
    assert statuses(order_id) == FLOW


def test_a_dead_lettered_replay_does_not_fail_its_order(client, app_module, queues):
    """A subscriber's replay job that ends in the DLQ names an order: the order goes on."""
    order_id = post(client, ORDER).json_body["orderId"]
    body = json.dumps({"kind": "replay", "orderId": order_id, "connectionId": "c1", "since": 0})
    sqs_client().send_message(QueueUrl=queues.dlq, MessageBody=body)
    assert poll_once(app_module.record_dead_letters, queues.dlq, wait_s=1) == 1
    assert store.get_order(order_id).status == "pending"
    run_until(app_module, terminal(order_id))
    assert statuses(order_id) == FLOW


def test_a_dead_letter_does_not_fail_an_order_a_worker_holds(client, app_module, queues):
    order_id = post(client, ORDER).json_body["orderId"]
    assert store.claim(order_id, lease_s=60) is not None  # a delivery is working on it
    body = json.dumps({"kind": "order", "orderId": order_id})
    sqs_client().send_message(QueueUrl=queues.dlq, MessageBody=body)
    assert poll_once(app_module.record_dead_letters, queues.dlq, wait_s=1) == 1
    assert store.get_order(order_id).status == "pending"


def test_transient_faults_retry_then_succeed(client, app_module, monkeypatch):
    fail_attempts(monkeypatch, failures=2)
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id))
    order = store.get_order(order_id)
    assert order.status == "confirmed" and order.attempts == 3
    assert statuses(order_id) == FLOW


def test_retries_exhausted_fail_with_reason(client, app_module, monkeypatch):
    fail_attempts(monkeypatch, failures=99)
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id))
    order = store.get_order(order_id)
    assert order.status == "failed"
    assert order.attempts == 3  # the promise, whatever the settings say
    assert "blockhash" in order.failure_reason.lower()
    history = store.history(order_id)
    assert [h.status for h in history] == [
        "pending",
        "routing",
        "building",
        "submitted",
        "failed",
    ]
    assert history[-1].payload["reason"] == order.failure_reason


def test_unreadable_messages_go_to_the_dlq_and_fail_the_named_order(client, app_module, queues):
    order_id = post(client, ORDER).json_body["orderId"]
    # take the real message off the queue so only the poison ones are left
    sqs_client().purge_queue(QueueUrl=queues.queue)  # the test's own queue: its first purge
    sqs_client().send_message(QueueUrl=queues.queue, MessageBody="not json at all")
    sqs_client().send_message(
        QueueUrl=queues.queue, MessageBody=json.dumps({"kind": "bogus", "orderId": order_id})
    )
    while poll_once(app_module.process_orders, queues.queue, wait_s=1):
        pass
    dead = sqs_client().receive_message(
        QueueUrl=queues.dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    assert sorted(m["Body"] for m in dead) == sorted(
        ["not json at all", json.dumps({"kind": "bogus", "orderId": order_id})]
    )
    order = store.get_order(order_id)
    assert order.status == "failed" and "bogus" in order.failure_reason


def test_order_whose_send_failed_is_enqueued_by_the_reaper(
    client, app_module, monkeypatch, settings_env
):
    import botocore.exceptions

    class QueueDown:
        def send_message(self, **_):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://sqs")

    with monkeypatch.context() as patched:
        patched.setattr(queue, "sqs_client", QueueDown)
        answer = post(client, ORDER)
    assert answer.status_code == 202
    order_id = answer.json_body["orderId"]
    assert store.get_order(order_id).enqueued_at is None

    monkeypatch.setattr(
        reaper, "get_settings", lambda: settings_env.updated(**{"unsent_after_s": 0})
    )
    assert reaper.run(app_module.notifier) == 1
    run_until(app_module, terminal(order_id))
    assert statuses(order_id) == FLOW


def test_reaper_fails_an_order_stuck_past_its_attempts(client, app_module, settings_env):
    order_id = post(client, ORDER).json_body["orderId"]
    with postgres.connection() as conn:
        conn.execute(
            "UPDATE orders SET attempts = %s, last_error = 'venue timeout',"
            " updated_at = now() - interval '1 hour' WHERE id = %s",
            (settings_env.lifecycle.max_attempts, order_id),
        )
    reaper.run(app_module.notifier)
    order = store.get_order(order_id)
    assert order.status == "failed" and "venue timeout" in order.failure_reason


def test_quote_cache_serves_a_burst_on_one_pair(client, app_module, monkeypatch, settings_env):
    from chalicelib.backends import cache
    from chalicelib.backends import venues as market_module
    from chalicelib.dex import Market

    fetched = []
    real = Market.snapshot

    def counting(self, venue, token_in, token_out, faults=None):
        fetched.append((venue, frozenset((token_in.symbol, token_out.symbol))))
        return real(self, venue, token_in, token_out, faults)

    monkeypatch.setattr(Market, "snapshot", counting)
    # The slot stands still and snapshots stay cached for the whole test: the first order
    # reads each venue once, and the burst after it is served from Redis alone.
    frozen = Market(settings_env.market.order_engine_seed, settings_env.market, clock=lambda: 1_000)
    monkeypatch.setattr(market_module, "_market", frozen)
    long_cache = settings_env.updated(**{"quote_cache_slots": 10_000})
    monkeypatch.setattr(cache, "get_settings", lambda: long_cache)
    first = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(first))
    ids = [post(client, {**ORDER, "amount": str(n)}).json_body["orderId"] for n in (1, 2, 3)]
    run_until(app_module, terminal(*ids))
    assert all(store.get_order(i).status == "confirmed" for i in [first, *ids])
    # Each pool the router weighs (the pair's, and a middle token's) was read once.
    assert len(fetched) == len(set(fetched)), fetched
    assert {venue for venue, _ in fetched} == {"meteora", "raydium"}
    assert ("raydium", frozenset(("SOL", "USDC"))) in fetched


# -- market safety ---------------------------------------------------------------------------


def test_the_whale_order_is_refused_at_submit(client):
    whale = {**ORDER, "amount": "9223372036.854775807"}  # 2**63 - 1 lamports
    answer = post(client, whale)
    assert answer.status_code == 422
    error = answer.json_body["error"]
    assert error["code"] == "invalid_order"
    assert error["details"] == [
        {"field": "amount", "message": "at most 10000 SOL per order, not 9223372036.854775807"}
    ]
    assert store.list_orders(None, 100, None)[0] == []


def test_an_order_beyond_the_price_impact_cap_fails_and_moves_no_pool(
    client, app_module, monkeypatch, settings_env
):
    from chalicelib.dex import VENUES
    from chalicelib.tokens import resolve

    jup, bonk = resolve("JUP"), resolve("BONK")
    market = venues.market()
    slot = market.current_slot()
    monkeypatch.setattr(market, "_clock", lambda: slot)  # nothing but this order moves pools
    before = {v: market.snapshot(v, jup, bonk).state for v in VENUES}

    big = {**ORDER, "tokenIn": "JUP", "tokenOut": "BONK", "amount": "50000",
           "onlyDirectRoutes": True}  # fmt: skip
    order_id = post(client, big).json_body["orderId"]
    run_until(app_module, terminal(order_id))

    order = store.get_order(order_id)
    assert order.status == "failed" and order.attempts == 1
    assert order.failure_reason.startswith("price_impact_too_high: ")
    assert "(cap 3%)" in order.failure_reason
    assert statuses(order_id) == ["pending", "routing", "failed"]
    assert order.route is None and order.tx_hash is None
    assert {v: market.snapshot(v, jup, bonk).state for v in VENUES} == before


# -- reading orders --------------------------------------------------------------------------


def test_list_orders_is_newest_first_and_paged(client):
    ids = [post(client, {**ORDER, "amount": str(n)}).json_body["orderId"] for n in range(1, 6)]
    seen, cursor = [], None
    while True:
        url = "/api/orders?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.http.get(url).json_body
        seen += [o["id"] for o in page["orders"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == ids[::-1]
    pending = client.http.get("/api/orders?status=pending").json_body["orders"]
    assert len(pending) == 5
    assert client.http.get("/api/orders?status=confirmed").json_body["orders"] == []


@pytest.mark.parametrize(
    "query", ["status=nope", "limit=0", "limit=101", "limit=x", "cursor=garbage"]
)
def test_list_orders_rejects_bad_queries(client, query):
    answer = client.http.get(f"/api/orders?{query}")
    assert answer.status_code == 422
    assert answer.json_body["error"]["code"] == "invalid_query"


def test_unknown_order_is_404(client):
    for order_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        answer = client.http.get(f"/api/orders/{order_id}")
        assert answer.status_code == 404
        assert answer.json_body["error"]["code"] == "order_not_found"


def test_readiness_checks_every_dependency_and_needs_a_key(client):
    answer = client.http.get("/api/health/ready")
    assert answer.status_code == 200
    assert answer.json_body["checks"] == {"database": "ok", "redis": "ok", "queue": "ok"}
    assert client.http.get("/api/health/ready", headers={"Authorization": None}).status_code == 401


def test_liveness_is_public_and_touches_no_dependency(client, monkeypatch):
    from chalicelib.backends import cache, queue
    from chalicelib.orders import store

    def touched():
        raise AssertionError("liveness touched a dependency")

    for module in (store, cache, queue):
        monkeypatch.setattr(module, "ping", touched)
    answer = client.http.get("/api/health", headers={"Authorization": None})
    assert (answer.status_code, answer.json_body) == (200, {"status": "ok"})


def test_openapi_describes_the_api_from_the_models(client):
    doc = client.http.get("/api/openapi.json").json_body
    assert doc["openapi"].startswith("3.")
    assert {"/api/orders/execute", "/api/orders/{order_id}", "/api/orders"} <= set(doc["paths"])
    request = doc["components"]["schemas"]["OrderRequest"]
    assert {"tokenIn", "tokenOut", "amount", "slippageBps"} <= set(request["properties"])
    slippage = request["properties"]["slippageBps"]["anyOf"]
    assert {"type": "integer", "minimum": 1, "maximum": 5000} in slippage
    assert {"const": "auto", "type": "string"} in slippage
