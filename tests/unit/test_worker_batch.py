"""The SQS handler's batch accounting, with the order work itself stubbed out."""

import json

from chalice.app import SQSEvent

from chalicelib.backends import queue
from chalicelib.orders import dead_letters, worker


def sqs_event(*bodies: str) -> SQSEvent:
    records = [
        {"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "attributes": {}}
        for i, body in enumerate(bodies)
    ]
    return SQSEvent({"Records": records}, context=None)


def test_a_failing_dead_letter_send_fails_only_its_own_message(monkeypatch):
    def queue_down(body, reason):
        raise ConnectionError("SQS unreachable")

    monkeypatch.setattr(queue, "dead_letter", queue_down)
    monkeypatch.setattr(worker, "_run_order", lambda order_id, receipt, notifier: True)
    event = sqs_event("not json", json.dumps({"kind": "order", "orderId": "o1"}))
    answer = worker.process_batch(event, publisher=None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_a_failing_dead_letter_is_logged_and_the_rest_still_handled(monkeypatch, caplog):
    failed = []

    def fail_named(body, reason, code, notifier):
        if body == "poison":
            raise ConnectionError("Postgres unreachable")
        failed.append(body)

    monkeypatch.setattr(dead_letters, "_fail_named", fail_named)
    dead_letters.handle(sqs_event("poison", "o2"), None)
    assert failed == ["o2"]
    (entry,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "m0" in entry.getMessage() and "poison" in entry.getMessage()
