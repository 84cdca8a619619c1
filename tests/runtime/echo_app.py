"""A tiny Chalice app for the runtime's own tests: it shows what the runtime hands it.

Every event it receives is appended to a Redis list (``echo:<kind>``) the tests read.
"""

import json
import time

import redis
from chalice import Chalice, WebsocketDisconnectedError

from chalicelib.backends.aws import management_session
from chalicelib.config import get_settings

settings = get_settings()
app = Chalice(app_name="echo")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.websocket_api.session = management_session(settings)
seen = redis.Redis.from_url(settings.storage.redis_url, decode_responses=True)


def record(kind: str, value) -> None:
    seen.rpush(f"echo:{kind}", json.dumps(value))


@app.route("/api/echo/{name}", methods=["GET", "POST"])
def echo(name):
    # Reading current_request after a pause shows whether it is per request (thread).
    delay = float((app.current_request.query_params or {}).get("delay", 0))
    time.sleep(delay)
    request = app.current_request
    return {
        "name": name,
        "method": request.method,
        "query": request.query_params,
        "body": request.raw_body.decode() if request.raw_body else None,
    }


@app.on_sqs_message(
    queue=settings.queue.orders_queue_name, batch_size=settings.queue.worker_batch_size
)
def process_orders(event):
    """Bodies: ``ok``; ``fail-once``/``raise-once`` fail their first delivery (one as a
    reported failure, one by raising); ``fail`` always fails."""
    failures = []
    for message in event:
        raw = message.to_dict()
        record("sqs", raw)
        first = raw["attributes"]["ApproximateReceiveCount"] == "1"
        if message.body == "raise-once" and first:
            raise RuntimeError("raised on purpose")
        if message.body == "fail" or (message.body == "fail-once" and first):
            failures.append({"itemIdentifier": raw["messageId"]})
    return {"batchItemFailures": failures}


@app.on_sqs_message(queue=settings.queue.orders_dlq_name, batch_size=10)
def dead_letters(event):
    for message in event:
        record("dlq", message.to_dict())


@app.on_ws_connect()
def connect(event):
    raw = event.to_dict()
    record("connect", raw)
    if (raw.get("queryStringParameters") or {}).get("reject"):
        return {"statusCode": 403, "body": json.dumps({"error": "rejected"})}
    try:  # API Gateway refuses posts to a connection until $connect has returned
        app.websocket_api.send(event.connection_id, "too early")
        record("early", "sent")
    except WebsocketDisconnectedError:
        record("early", "gone")
    return {"statusCode": 200}


@app.on_ws_message()
def message(event):
    connection_id = event.connection_id
    if event.body == "raise":
        raise RuntimeError("raised on purpose")
    if event.body == "close":
        app.websocket_api.close(connection_id)
        return
    if event.body == "info":
        info = app.websocket_api.info(connection_id)
        app.websocket_api.send(connection_id, json.dumps(info, default=str))
        return
    app.websocket_api.send(
        connection_id, json.dumps({"echo": event.body, "event": event.to_dict()})
    )


@app.on_ws_disconnect()
def disconnect(event):
    record("disconnect", event.to_dict())
