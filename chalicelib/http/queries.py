"""The read-only routes beside the orders: a quote, recent fees, the caller's execution
stats, health."""

import contextlib

from chalice import Response

from chalicelib.backends import cache, queue
from chalicelib.errors import DependencyUnavailable
from chalicelib.http import requests
from chalicelib.http.auth import caller
from chalicelib.http.responses import answers, json_response
from chalicelib.orders import fees, quotes, stats, store


@answers
def quote(request):
    """``GET /api/quote``: what an order of these parameters would route to now."""
    client_id = caller(request)
    params = request.query_params
    body = quotes.query_to_body({k: params.getlist(k) for k in params} if params else {})
    return json_response(quotes.quote(requests.order_spec(body, "quote"), client_id))


@answers
def recent_fees(request):
    """``GET /api/fees``: recent priority fees (no parameters)."""
    caller(request)
    requests.no_query(request.query_params)
    return json_response(fees.recent())


@answers
def execution_stats(request):
    """``GET /api/stats?window=``: execution quality of the caller's orders."""
    client_id = caller(request)
    window = requests.stats_window(request.query_params)
    return json_response(stats.execution_stats(window, client_id=client_id))


@answers
def liveness():
    """``GET /api/health``: public; the process answers. Touches no dependency, so a flood
    of it costs nothing but the request."""
    return Response(body={"status": "ok"}, status_code=200)


@answers
def readiness(request):
    """``GET /api/health/ready``: every dependency, for a caller with a key (rate limited).
    A key that could not be checked (the database is down) still gets the detail: that
    outage is what it shows."""
    with contextlib.suppress(DependencyUnavailable):
        caller(request)
    checks = {}
    for name, ping in (("database", store.ping), ("redis", cache.ping), ("queue", queue.ping)):
        try:
            ping()
            checks[name] = "ok"
        except Exception as e:  # report every dependency, whatever its failure
            checks[name] = f"error: {type(e).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return Response(
        body={"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )
