"""The Chalice app: routes and event handlers only; the engine lives in chalicelib."""

from chalice import Chalice, Rate

from chalicelib import logs
from chalicelib.backends import aws
from chalicelib.config import get_settings
from chalicelib.http import api, web
from chalicelib.orders import limit_check as limits
from chalicelib.orders import reaper, worker
from chalicelib.push import handlers as ws
from chalicelib.push.notify import Notifier

settings = get_settings()
logs.configure(settings.log_format, settings.log_level)
app = Chalice(app_name="order-engine")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.websocket_api.session = aws.management_session(settings)
notifier = Notifier(app.websocket_api)
app.register_middleware(api.error_middleware, "http")
app.register_middleware(logs.observe, "all")  # log context, metrics flushed per invocation


# Every order route needs an API key (``Authorization: Bearer <key>``); health and the
# OpenAPI document stay public.
@app.authorizer(ttl_seconds=settings.auth_cache_ttl_s)
def api_key(auth_request):
    return api.authorize(auth_request)


@app.route(
    "/api/orders/execute",
    methods=["POST"],
    content_types=api.ACCEPTED_CONTENT_TYPES,
    authorizer=api_key,
)
def execute_order():
    return api.submit_order(app.current_request)


@app.route("/api/orders/{order_id}", methods=["GET"], authorizer=api_key)
def get_order(order_id):
    return api.get_order(app.current_request, order_id)


@app.route("/api/orders/{order_id}/cancel", methods=["POST"], authorizer=api_key)
def cancel_order(order_id):
    return api.cancel_order(app.current_request, order_id, notifier)


@app.route("/api/orders", methods=["GET"], authorizer=api_key)
def list_orders():
    return api.list_orders(app.current_request)


@app.route("/api/quote", methods=["GET"], authorizer=api_key)
def get_quote():
    return api.get_quote(app.current_request)


@app.route("/api/stats", methods=["GET"], authorizer=api_key)
def get_stats():
    return api.get_stats(app.current_request)


@app.route("/api/health", methods=["GET"])
def health():
    return api.health()


@app.route("/api/openapi.json", methods=["GET"])
def openapi():
    return api.openapi_document()


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
    queue=settings.orders_queue_name,
    batch_size=settings.worker_batch_size,
    maximum_concurrency=settings.worker_max_concurrency,
)
def process_orders(event):
    return worker.process_batch(event, notifier)


@app.on_sqs_message(queue=settings.orders_dlq_name, batch_size=10)
def record_dead_letters(event):
    worker.record_dead_letters(event, notifier)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def reap_stale_orders(event):
    reaper.run(notifier)


@app.schedule(Rate(settings.limit_check_interval_minutes, unit=Rate.MINUTES))
def check_limit_orders(event):
    limits.run(notifier)


@app.on_ws_connect()
def ws_connect(event):
    return ws.connect(event)


@app.on_ws_message()
def ws_message(event):
    ws.message(event, notifier)


@app.on_ws_disconnect()
def ws_disconnect(event):
    ws.disconnect(event)
