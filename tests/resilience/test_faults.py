"""Faults during a run: every accepted order still ends exactly once, history complete.

Each test runs the local runtime as a subprocess against a private Postgres, a private
Redis and moto's SQS behind a TCP proxy (see conftest.py), breaks one thing while orders
are in flight, and then checks in Postgres (``harness.verify``): no accepted order lost,
each one terminal, its history ``seq`` 1..n without gap, each status at most once, in
lifecycle order, and no row for an order the API did not accept. While a dependency is
down, the API answers (503 where it cannot do its job) within a bounded time: no hang.

Waits are generous and bounded; nothing asserts on speed.
"""

import json
import threading

import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from harness.http import auth_headers
from harness.orders import TERMINAL, order_body
from tests.integration.driver import ORDER
from tests.resilience.support import (
    assert_exactly_once,
    assert_no_internal_errors,
    leaks_traceback,
    order_rows,
    request,
    statuses,
    submit_orders,
    wait_all_terminal,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

ANSWER_WITHIN_S = 30  # "not a hang": every request gets an answer within this


def in_flight(database_url: str, ids: list[str]) -> bool:
    """Some order is being executed and some are not finished yet."""
    found = statuses(database_url, ids).values()
    return "submitted" in found and any(s not in TERMINAL for s in found)


def assert_503(method: str, url: str, body=None) -> dict:
    status, _, raw, _ = request(method, url, body, timeout_s=ANSWER_WITHIN_S)
    assert status == 503, (status, raw[:300])
    assert not leaks_traceback(raw)
    answer = json.loads(raw)
    assert answer.get("error", {}).get("code") == "dependency_unavailable" or (
        answer.get("status") == "unavailable"
    ), answer
    return answer


def recover_and_finish(rt, db: str, ids: list[str]):
    """Once the API is healthy again: 10 more orders, then every order ends exactly once."""
    wait_until(
        lambda: request("GET", f"{rt.http}/api/health/ready", timeout_s=ANSWER_WITHIN_S)[0] == 200,
        60,
        "the API to recover",
    )
    ids += submit_orders(rt, 10, offset=len(ids))
    wait_all_terminal(rt, db, ids, timeout_s=90)
    verdict = assert_exactly_once(db, ids, rt)
    assert_no_internal_errors(rt)
    return verdict


def test_runtime_killed_mid_batch_and_restarted(engine):
    """SIGKILL with orders in flight (no drain, no cleanup), then a restart on the same
    port: the queue redelivers what the dead process held, leases expire, and every order
    is confirmed once."""
    rt, db = engine(EXEC_LATENCY_MIN_MS="800", EXEC_LATENCY_MAX_MS="1500", WORKER_BATCH_SIZE="3")
    rt.start()
    ids = submit_orders(rt, 30)
    wait_until(lambda: in_flight(db, ids), 60, "an order in execution")
    rt.kill()
    left = [i for i, s in statuses(db, ids).items() if s not in TERMINAL]
    assert left, "every order finished before the kill"
    rt.start()
    ids += submit_orders(rt, 5, offset=30)
    wait_all_terminal(rt, db, ids, timeout_s=90)
    verdict = assert_exactly_once(db, ids, rt)
    assert_no_internal_errors(rt)
    # What the kill interrupted (mid-attempt, or a transaction in flight waiting for its
    # check) was finished by the restarted runtime, each status once.
    assert verdict.statuses.get("confirmed") == len(ids), verdict.summary()
    assert all(statuses(db, left)[i] == "confirmed" for i in left)


def test_postgres_restarted_during_a_run(engine, private_postgres):
    rt, db = engine()
    rt.start()
    ids = submit_orders(rt, 20)
    wait_until(lambda: in_flight(db, ids), 60, "an order in execution")
    private_postgres.stop()
    try:
        assert_503("POST", f"{rt.http}/api/orders/execute", ORDER)
        assert_503("GET", f"{rt.http}/api/orders/{ids[0]}")
        health = assert_503("GET", f"{rt.http}/api/health/ready")
        assert health["checks"]["database"] != "ok", health
    finally:
        private_postgres.start()
    verdict = recover_and_finish(rt, db, ids)
    failed = [r for r in order_rows(db, ids) if r["status"] == "failed"]
    assert all(r["failure_reason"] for r in failed), failed
    assert verdict.statuses.get("confirmed", 0) > 0


def test_redis_restarted_during_a_run(engine, private_redis):
    """Redis holds the quote cache and the WebSocket subscriptions; losing it (it comes
    back empty) costs latency and live pushes, never an order."""
    rt, db = engine()
    rt.start()
    ids = submit_orders(rt, 20)
    wait_until(lambda: in_flight(db, ids), 60, "an order in execution")
    private_redis.stop()
    try:
        health = assert_503("GET", f"{rt.http}/api/health/ready")
        assert health["checks"]["redis"] != "ok", health
        # Submitting needs Postgres and SQS only.
        status, _, raw, _ = request(
            "POST", f"{rt.http}/api/orders/execute", ORDER, timeout_s=ANSWER_WITHIN_S
        )
        assert status == 202, raw
        ids.append(json.loads(raw)["orderId"])
        # A WebSocket subscription needs Redis: the handshake is refused with a 503.
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(
                f"{rt.ws}?orderId={ids[0]}",
                additional_headers=auth_headers(rt.ws),
                open_timeout=ANSWER_WITHIN_S,
            )
        assert refused.value.response.status_code == 503
        assert not leaks_traceback(refused.value.response.body or b"")
    finally:
        private_redis.start()
    verdict = recover_and_finish(rt, db, ids)
    assert verdict.statuses.get("confirmed") == len(ids), verdict.summary()


def test_queue_unreachable_for_a_while(engine, sqs_proxy):
    """SQS refuses connections for a few seconds. Orders accepted meanwhile are stored
    and sent by the reaper later; deliveries under way come back after their visibility
    timeout; the health check says 503."""
    rt, db = engine()
    rt.start()
    ids = submit_orders(rt, 15)
    wait_until(lambda: in_flight(db, ids), 60, "an order in execution")
    sqs_proxy.cut()
    try:
        for i in range(5):
            status, _, raw, _ = request(
                "POST", f"{rt.http}/api/orders/execute", ORDER, timeout_s=ANSWER_WITHIN_S
            )
            assert status in (202, 503), (status, raw[:300])
            assert not leaks_traceback(raw)
            if status == 202:
                ids.append(json.loads(raw)["orderId"])
            assert i or status == 202, "a stored order is accepted; the reaper sends it"
        health = assert_503("GET", f"{rt.http}/api/health/ready")
        assert health["checks"]["queue"] != "ok", health
        threading.Event().wait(3)  # unreachable a while longer
    finally:
        sqs_proxy.restore()
    ids += submit_orders(rt, 5, offset=15)
    wait_all_terminal(rt, db, ids, timeout_s=120)
    verdict = assert_exactly_once(db, ids, rt)
    assert_no_internal_errors(rt)
    assert verdict.statuses.get("confirmed") == len(ids), verdict.summary()


def one_venue_every_other(i: int) -> dict:
    """Orders limited to one venue fail an attempt on each timeout; the others only when
    both venues time out."""
    body = order_body(i)
    return {**body, "venues": ["raydium"]} if i % 2 == 0 else body


def test_venue_timeouts_at_30_percent(engine):
    """A venue times out on 30% of quotes (no quote cache, so every quote is a venue
    call): attempts end, back off through the queue and retry without repeating recorded
    statuses; after three attempts an order fails once, with the reason."""
    rt, db = engine(
        VENUE_TIMEOUT_RATE="0.3",
        QUOTE_CACHE_SLOTS="0",
        QUOTE_LATENCY_MS="0",
        EXEC_LATENCY_MIN_MS="0",
        EXEC_LATENCY_MAX_MS="50",
    )
    rt.start()
    ids = submit_orders(rt, 40, make_body=one_venue_every_other)
    wait_all_terminal(rt, db, ids, timeout_s=90)
    assert_exactly_once(db, ids, rt)
    assert_no_internal_errors(rt)
    rows = order_rows(db, ids)
    retried = [r for r in rows if r["attempts"] > 1]
    assert retried, "no order was retried at a 30% venue timeout rate"
    assert any(r["status"] == "confirmed" for r in retried), "no retry succeeded"
    for r in rows:
        if r["status"] == "failed":
            assert r["failure_reason"], r
            assert r["attempts"] >= 3, r  # only after the last attempt
