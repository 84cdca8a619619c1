"""The metrics an order produces through the real pipeline: HTTP -> SQS (moto) -> worker."""

import json

import pytest

from chalicelib.dex import Faults
from chalicelib.orders import store
from tests.integration.driver import ORDER, run_until

pytestmark = pytest.mark.integration


def samples(docs, name):
    """(unit, Reason dimension or None, value) for each document carrying ``name``."""
    found = []
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
        if name in units:
            found.append((units[name], doc.get("Reason"), doc[name]))
    return found


def submit(client) -> str:
    answer = client.http.post(
        "/api/orders/execute", headers={"content-type": "application/json"}, body=json.dumps(ORDER)
    )
    assert answer.status_code == 202
    return answer.json_body["orderId"]


def test_a_confirmed_order_counts_and_times_its_confirmation(client, app_module, emf):
    order_id = submit(client)
    assert samples(emf(), "OrdersAccepted") == [("Count", None, 1)]
    run_until(app_module, lambda: store.get_order(order_id).status.terminal)

    assert store.get_order(order_id).status == "confirmed"
    assert samples(emf(), "OrdersConfirmed") == [("Count", None, 1)]
    ((unit, _, latency),) = samples(emf(), "SubmitToConfirmed")
    assert unit == "Milliseconds" and latency > 0
    assert not samples(emf(), "OrdersFailed")


def test_a_failed_order_is_counted_with_its_reason_code(client, app_module, emf, monkeypatch):
    real = Faults.for_attempt

    def expiring(seed, order_id, attempt, settings, **keys):  # every attempt's blockhash expires
        faults = real(seed, order_id, attempt, settings, **keys)
        monkeypatch.setattr(faults, "blockhash_expires", lambda: True)
        return faults

    monkeypatch.setattr(Faults, "for_attempt", staticmethod(expiring))
    order_id = submit(client)
    run_until(app_module, lambda: store.get_order(order_id).status.terminal)

    order = store.get_order(order_id)
    assert order.status == "failed" and order.attempts == 3
    assert samples(emf(), "OrdersFailed") == [("Count", "blockhash_expired", 1)]
    retries = samples(emf(), "OrderRetries")
    assert sum(n for _, _, n in retries) == 2
    assert {reason for _, reason, _ in retries} == {"blockhash_expired"}
    assert sum(n for _, _, n in samples(emf(), "OrderAttempts")) == 3
    assert not samples(emf(), "OrdersConfirmed")
