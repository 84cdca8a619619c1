"""The worker's promises end to end: the venue allow-list, retry backoff and the attempt
limit, dead letters and the reaper. HTTP function -> SQS (moto) -> worker -> Postgres."""

import json

import pytest

from chalicelib.backends import postgres, queue
from chalicelib.backends.aws import sqs_client
from chalicelib.orders import reaper, store, worker
from chalicelib.orders.lifecycle import Actor
from chalicelib.orders.records import StatusChange
from tests.integration.conftest import post
from tests.integration.driver import FLOW, ORDER, fail_attempts, poll_once, run_until

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 3  # the product's promise, not whatever the settings say


def terminal(*order_ids):
    return lambda: all(store.get_order(o).status.terminal for o in order_ids)


def statuses(order_id):
    return [h.status for h in store.history(order_id)]


def route_venues(route: dict) -> set[str]:
    steps = {s["venue"] for s in route["steps"] if s["type"] == "swap"}
    return {leg["venue"] for leg in route["legs"]} | steps | set(route["considered"])


# -- the venue allow-list -------------------------------------------------------------------

# Each of these would take another venue, or split across both, were it not restricted;
# each on a pool of its own so they do not move each other's prices.
RESTRICTED = [
    ("SOL", "USDC", "1000", ["raydium"]),
    ("SOL", "USDT", "300", ["meteora"]),
    ("USDC", "JUP", "1.5", ["raydium"]),
    ("JUP", "BONK", "300", ["raydium"]),
]


def test_a_restricted_order_is_routed_and_executed_on_its_venues_only(client, app_module):
    orders = {}
    for token_in, token_out, amount, venues in RESTRICTED:
        body = {**ORDER, "tokenIn": token_in, "tokenOut": token_out, "amount": amount}
        answer = post(client, {**body, "venues": venues})
        assert answer.status_code == 202, answer.json_body
        orders[answer.json_body["orderId"]] = set(venues)
    run_until(app_module, terminal(*orders))
    for order_id, allowed in orders.items():
        order = store.get_order(order_id)
        assert order.status == "confirmed", order.failure_reason
        assert set(order.venues) == allowed
        assert route_venues(order.route.to_dict()) <= allowed, order.route
        for entry in store.history(order_id):
            route = entry.payload.get("route")
            if route:
                assert route_venues(route) <= allowed, (entry.status, route)
            if entry.status == "routing":
                assert set(entry.payload["venues"]) == allowed


# -- retries ----------------------------------------------------------------------------------


class RecordingSqs:
    """The real SQS client, noting the visibility timeouts asked of it. It hides nothing
    for real, so the test does not wait out the backoff."""

    def __init__(self, real):
        self.real, self.delays = real, []

    def change_message_visibility(self, **kwargs):
        self.delays.append(kwargs["VisibilityTimeout"])
        return self.real.change_message_visibility(**{**kwargs, "VisibilityTimeout": 0})

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_backoff_doubles_from_the_base_delay(client, app_module, monkeypatch, settings_env):
    settings = settings_env.updated(**{"retry_base_delay_s": 3, "max_attempts": 4})
    monkeypatch.setattr(worker, "get_settings", lambda: settings)
    recording = RecordingSqs(sqs_client())
    monkeypatch.setattr(queue, "sqs_client", lambda: recording)
    fail_attempts(monkeypatch, failures=99)
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id))
    assert recording.delays == [3, 6, 12]  # base, 2 base, 4 base; none after the last attempt
    assert store.get_order(order_id).attempts == 4


def test_an_order_failing_every_attempt_fails_after_exactly_three(client, app_module, monkeypatch):
    fail_attempts(monkeypatch, failures=99)
    order_id = post(client, ORDER).json_body["orderId"]
    run_until(app_module, terminal(order_id))
    order = store.get_order(order_id)
    assert order.status == "failed"
    assert order.attempts == MAX_ATTEMPTS
    history = store.history(order_id)
    assert [h.status for h in history] == [*FLOW[:4], "failed"]
    assert history[-1].payload["attempts"] == MAX_ATTEMPTS
    assert "blockhash" in order.failure_reason.lower()


# -- dead letters and the reaper --------------------------------------------------------------


def _dead_letter(queues, order_id: str, reason: str | None) -> None:
    attributes = {"reason": {"DataType": "String", "StringValue": reason}} if reason else {}
    sqs_client().send_message(
        QueueUrl=queues.dlq,
        MessageBody=json.dumps({"kind": "order", "orderId": order_id}),
        MessageAttributes=attributes,
    )


@pytest.mark.parametrize(
    ("reason", "recorded"),
    [("venue exploded", "venue exploded"), (None, "message dead-lettered")],
)
def test_a_dead_lettered_order_message_fails_its_order_with_the_reason(
    client, app_module, queues, reason, recorded
):
    order_id = post(client, ORDER).json_body["orderId"]
    _dead_letter(queues, order_id, reason)
    assert poll_once(app_module.record_dead_letters, queues.dlq, wait_s=1) == 1
    order = store.get_order(order_id)
    assert order.status == "failed"
    assert order.failure_reason == recorded
    history = store.history(order_id)
    assert [h.status for h in history] == ["pending", "failed"]
    assert history[-1].payload["reason"] == recorded


def _lose_the_message(queues) -> None:
    """The worker that received the order's message died: the message is gone."""
    got = sqs_client().receive_message(QueueUrl=queues.queue, WaitTimeSeconds=1)["Messages"]
    for message in got:
        sqs_client().delete_message(QueueUrl=queues.queue, ReceiptHandle=message["ReceiptHandle"])


def test_the_reaper_resends_a_stale_unleased_order_which_then_finishes(
    client, app_module, queues, settings_env
):
    order_id = post(client, ORDER).json_body["orderId"]
    _lose_the_message(queues)
    # A delivery claimed it, recorded routing, and died; its lease ran out long ago.
    order = store.claim(order_id, lease_s=60)
    change = StatusChange.routing(order.venues, 1)
    assert store.advance(order_id, order.status, order.last_seq, change, Actor.WORKER).seq == 2
    with postgres.connection() as conn:
        conn.execute(
            "UPDATE orders SET lease_until = now() - interval '1 second',"
            " updated_at = now() - make_interval(secs => %s) WHERE id = %s",
            (settings_env.lifecycle.reaper_deadline_s + 1, order_id),
        )
    assert store.get_order(order_id).enqueued_at is not None  # sent once already
    assert reaper.run(app_module.notifier) == 1
    waiting = sqs_client().get_queue_attributes(
        QueueUrl=queues.queue, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert waiting == "1", "the reaper did not send the order again"
    run_until(app_module, terminal(order_id))
    order = store.get_order(order_id)
    assert order.status == "confirmed" and order.attempts == 2
    assert statuses(order_id) == FLOW
