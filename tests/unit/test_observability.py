"""JSON log lines and EMF documents of a worker run (chalicelib.logs, chalicelib.metrics).

The store and the pushes are fakes; the market is the real mock with zero latency. The SQS
handler is called as Lambda calls it, through the app's middleware.
"""

import io
import json
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from chalicelib import logs, metrics, tokens
from chalicelib.backends import queue, venues
from chalicelib.dex import VENUES, Market, NoRoute, Route
from chalicelib.orders import store, worker
from chalicelib.orders.records import HistoryRecord, OrderRecord


class FakeStore:
    """The few ``store`` functions a worker run calls, over one dict of orders; and the
    landing checks the worker queues."""

    def __init__(self):
        self.orders: dict[str, OrderRecord] = {}
        self.checks: list[str] = []

    def add(self) -> str:
        now = datetime.now(UTC)
        order = OrderRecord(
            id=uuid.uuid4(), type="market", status="pending",
            token_in=tokens.resolve("SOL"), token_out=tokens.resolve("USDC"),
            amount_in=1_500_000_000, slippage_bps=100, venues=VENUES, last_seq=1, attempts=0,
            route=None, min_out=None, tx_hash=None, tx_lands_at=None, executed_price=None,
            amount_out=None, failure_reason=None,
            last_error=None, request_hash=None, enqueued_at=now, lease_until=None,
            created_at=now - timedelta(milliseconds=250), updated_at=now,
        )  # fmt: skip
        self.orders[str(order.id)] = order
        return str(order.id)

    def get_order(self, order_id):
        return self.orders.get(str(order_id))

    def claim_and_start(self, order_id, lease_s, max_attempts):
        order = self.orders[order_id]
        attempts = order.attempts + (order.tx_lands_at is None)  # a landing check is none
        self.orders[order_id] = order = replace(order, attempts=attempts)
        return order, None

    def advance(self, order_id, from_status, from_seq, change, actor):
        order = self.orders[str(order_id)]
        if (order.status, order.last_seq) != (from_status, from_seq):
            return None
        self.orders[str(order_id)] = replace(order, status=change.status, last_seq=from_seq + 1)
        self.update_fields(order_id, **change.columns)
        return HistoryRecord(from_seq + 1, change.status, change.payload, datetime.now(UTC))

    def update_fields(self, order_id, **columns):
        if columns.get("route"):
            columns["route"] = Route.from_dict(columns["route"])
        self.orders[str(order_id)] = replace(self.orders[str(order_id)], **columns)

    def send_order(self, order_id, delay_s=0):
        """The queue delivers the check once the transaction is due: that much time passes."""
        self.checks.append(order_id)
        order = self.orders[order_id]
        if order.tx_lands_at is not None:
            due = datetime.now(UTC) - timedelta(milliseconds=1)
            self.orders[order_id] = replace(order, tx_lands_at=due)

    def release(self, order_id, error=None):
        pass


@pytest.fixture
def fakes(monkeypatch):
    import app

    fake = FakeStore()
    for name in ("get_order", "claim_and_start", "advance", "update_fields", "release"):
        monkeypatch.setattr(store, name, getattr(fake, name))
    monkeypatch.setattr(queue, "send_order", fake.send_order)
    monkeypatch.setattr(venues, "cached_snapshot", lambda venue, a, b, fetch: fetch(venue, a, b))
    publisher = SimpleNamespace(publish=lambda order_id, latest=(): None)
    monkeypatch.setattr(app, "notifier", publisher)
    # The transaction takes a while to land: the attempt ends and a later invocation checks.
    monkeypatch.setattr(Market, "landing_delay_s", lambda self, faults: 2.0)
    return SimpleNamespace(app=app, store=fake)


@pytest.fixture
def json_lines():
    """What the ``chalicelib`` loggers write, as parsed JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("chalicelib")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def invoke(app, *order_ids, request_id="req-1"):
    records = [
        {
            "messageId": f"m-{i}",
            "receiptHandle": f"r-{i}",
            "body": json.dumps({"kind": "order", "orderId": order_id}),
            "attributes": {},
        }
        for i, order_id in enumerate(order_ids)
    ]
    return app.process_orders({"Records": records}, SimpleNamespace(aws_request_id=request_id))


def metric_values(docs, name):
    """(unit, dimensions, value) of every document that carries the metric ``name``."""
    found = []
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "OrderEngine"
        units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
        if name in units:
            dimensions = {k: doc[k] for k in directive["Dimensions"][0]}
            found.append((units[name], dimensions, doc[name]))
    return found


def run_to_confirmed(fakes, *order_ids):
    """The attempt (it sends the transaction), then the landing check it queued."""
    invoke(fakes.app, *order_ids, request_id="req-1")
    assert sorted(fakes.store.checks) == sorted(order_ids)
    invoke(fakes.app, *fakes.store.checks, request_id="req-2")
    assert {fakes.store.orders[o].status for o in order_ids} == {"confirmed"}


def test_each_line_of_an_order_carries_its_fields(fakes, json_lines, emf):
    first, second = fakes.store.add(), fakes.store.add()
    run_to_confirmed(fakes, first, second)

    lines = [e for e in json_lines() if e["logger"] == "chalicelib.orders.worker"]
    for order_id in (first, second):
        mine = [e for e in lines if order_id in e["message"]]
        assert [e["status"] for e in mine] == ["routing", "building", "submitted", "confirmed"]
        assert [e["requestId"] for e in mine] == ["req-1"] * 3 + ["req-2"]
        for entry in mine:  # each order's thread has its own fields
            assert entry["orderId"] == order_id
            assert entry["attempt"] == 1
            assert entry["messageId"].startswith("m-")
            assert entry["level"] == "INFO" and entry["timestamp"]
    assert len(lines) == 8


def test_a_confirmed_order_emits_its_metrics_once_per_invocation(fakes, json_lines, emf):
    run_to_confirmed(fakes, fakes.store.add(), fakes.store.add())
    docs = emf()
    assert [d["requestId"] for d in docs] == ["req-1", "req-2"], "one flush per invocation"
    assert metric_values(docs[:1], "OrderAttempts") == [("Count", {}, 2)]
    assert metric_values(docs[1:], "OrdersConfirmed") == [("Count", {}, 2)]
    assert not metric_values(docs[1:], "OrderAttempts"), "a landing check is no attempt"
    ((unit, dimensions, latencies),) = metric_values(docs, "SubmitToConfirmed")
    assert unit == "Milliseconds" and dimensions == {}
    assert len(latencies) == 2 and all(250 <= ms < 60_000 for ms in latencies)
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]] for d in docs)


def test_a_failed_order_is_counted_by_its_reason_code(fakes, json_lines, emf, monkeypatch):
    def no_route(*args, **kwargs):
        raise NoRoute("no pool quotes SOL -> USDC for this size")

    monkeypatch.setattr(worker.router, "plan", no_route)
    order_id = fakes.store.add()
    invoke(fakes.app, order_id)

    assert fakes.store.orders[order_id].status == "failed"
    failed = [e for e in json_lines() if e["status"] == "failed"]
    assert [(e["orderId"], e["reason"], e["attempt"]) for e in failed] == [
        (order_id, "no_route", 1)
    ]
    (doc,) = [d for d in emf() if "OrdersFailed" in d]
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Reason"], []]
    assert metric_values([doc], "OrdersFailed") == [("Count", {"Reason": "no_route"}, 1)]
    assert not metric_values(emf(), "OrdersConfirmed")


def test_documents_sum_counts_keep_timings_and_split_at_100_values():
    samples = [metrics.Sample("Pushes", metrics.COUNT, 1)] * 150 + [
        metrics.Sample("Latency", metrics.MILLISECONDS, float(i)) for i in range(150)
    ]
    docs = metrics.documents(samples, {"requestId": "r"}, timestamp_ms=1)
    assert [d.get("Pushes") for d in docs] == [150, None]
    assert [len(d["Latency"]) for d in docs] == [100, 50]
    assert docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "Latency", "Unit": "Milliseconds"}
    ]


def test_text_format_appends_the_fields_and_writes_no_metrics(capsys):
    record = logging.LogRecord(
        "chalicelib.orders.worker", logging.INFO, "", 0, "order %s", ("o1",), None
    )
    formatter = logs.TextFormatter(logging.Formatter("%(levelname)s %(message)s"))
    with logs.bind(orderId="o1", attempt=2, connectionId=None):
        assert formatter.format(record) == "INFO order o1 [orderId=o1 attempt=2]"
    assert formatter.format(record) == "INFO order o1"
    metrics.configure(enabled=False)
    metrics.count("OrdersAccepted")
    assert capsys.readouterr().out == ""


def test_update_outside_a_bind_leaves_the_thread_clean():
    logs.update(orderId="stray")
    assert logs.fields() == {}
    with logs.bind(requestId="r"):
        logs.update(orderId="o1")
        assert logs.fields() == {"requestId": "r", "orderId": "o1"}
    assert logs.fields() == {}
