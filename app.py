"""The Chalice app: routes and event handlers only; the engine lives in chalicelib."""

from chalice import Chalice, Rate, Response

from chalicelib import logs
from chalicelib.backends import aws
from chalicelib.config import get_settings
from chalicelib.http import auth, openapi, orders, queries, requests, responses, web
from chalicelib.orders import dead_letters, limit_check, reaper, worker
from chalicelib.push import handlers as ws
from chalicelib.push.notify import Notifier

settings = get_settings()
logs.configure(settings.logging.log_format, settings.logging.log_level)
app = Chalice(app_name="order-engine")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.websocket_api.session = aws.management_session(settings)
notifier = Notifier(app.websocket_api)
app.register_middleware(responses.chalice_errors, "http")
app.register_middleware(logs.observe, "all")  # log context, metrics flushed per invocation


# Every order route needs an API key (``Authorization: Bearer <key>``); liveness, the
# OpenAPI document and the pages stay public.
@app.authorizer(ttl_seconds=settings.access.auth_cache_ttl_s)
def api_key(auth_request):
    return auth.authorize(auth_request)


@app.route(
    "/api/orders/execute",
    methods=["POST"],
    content_types=requests.ACCEPTED_CONTENT_TYPES,
    authorizer=api_key,
)
def execute_order():
    return orders.submit(app.current_request)


@app.route("/api/orders/{order_id}", methods=["GET"], authorizer=api_key)
def get_order(order_id):
    return orders.get(app.current_request, order_id)


@app.route(
    "/api/orders/{order_id}",
    methods=["PATCH"],
    content_types=requests.ACCEPTED_CONTENT_TYPES,
    authorizer=api_key,
)
def amend_order(order_id):
    return orders.amend(app.current_request, order_id, notifier)


@app.route(
    "/api/orders/cancel",
    methods=["POST"],
    content_types=requests.ACCEPTED_CONTENT_TYPES,
    authorizer=api_key,
)
def cancel_orders():
    return orders.cancel_many(app.current_request, notifier)


@app.route("/api/orders/{order_id}/cancel", methods=["POST"], authorizer=api_key)
def cancel_order(order_id):
    return orders.cancel(app.current_request, order_id, notifier)


@app.route("/api/orders", methods=["GET"], authorizer=api_key)
def list_orders():
    return orders.list_own(app.current_request)


@app.route("/api/quote", methods=["GET"], authorizer=api_key)
def get_quote():
    return queries.quote(app.current_request)


@app.route("/api/fees", methods=["GET"], authorizer=api_key)
def get_fees():
    return queries.recent_fees(app.current_request)


@app.route("/api/stats", methods=["GET"], authorizer=api_key)
def get_stats():
    return queries.execution_stats(app.current_request)


@app.route("/api/health", methods=["GET"])
def health():
    return queries.liveness()


@app.route("/api/health/ready", methods=["GET"], authorizer=api_key)
def health_ready():
    return queries.readiness(app.current_request)


@app.route("/api/openapi.json", methods=["GET"])
def openapi_document():
    return Response(body=openapi.document(), status_code=200)


@app.route("/", methods=["GET"])
def dashboard():
    return web.dashboard(app.current_request)


@app.route("/static/{name}", methods=["GET"])
def static_file(name):
    return web.asset(name)


@app.route("/api/docs", methods=["GET"])
def api_docs():
    return web.docs(app.current_request)


@app.route("/api/docs/{name}", methods=["GET"])
def api_docs_file(name):
    return web.docs_asset(name)


@app.on_sqs_message(
    queue=settings.queue.orders_queue_name,
    batch_size=settings.queue.worker_batch_size,
    maximum_concurrency=settings.queue.worker_max_concurrency,
)
def process_orders(event):
    return worker.process_batch(event, notifier)


@app.on_sqs_message(queue=settings.queue.orders_dlq_name, batch_size=10)
def record_dead_letters(event):
    dead_letters.handle(event, notifier)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def reap_stale_orders(event):
    reaper.run(notifier)


@app.schedule(Rate(settings.lifecycle.limit_check_interval_minutes, unit=Rate.MINUTES))
def check_limit_orders(event):
    limit_check.run(notifier)


@app.on_ws_connect()
def ws_connect(event):
    return ws.connect(event)


@app.on_ws_message()
def ws_message(event):
    ws.message(event, notifier)


@app.on_ws_disconnect()
def ws_disconnect(event):
    ws.disconnect(event)
