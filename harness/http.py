"""Blocking HTTP helpers and a bounded wait, for tests against a running engine.

A request to a runtime that ``use_key`` named carries its API key (``Authorization: Bearer``)
unless the caller sets the header itself (``None`` sends none).
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

# Port -> the API key requests to it carry. By port: a runtime on this machine is reached as
# 127.0.0.1 and as localhost (the wsUrl it answers).
_KEYS: dict[int | None, str] = {}


def use_key(base: str, key: str) -> None:
    """Send ``key`` with every request (HTTP or WebSocket) to ``base``'s port."""
    _KEYS[urllib.parse.urlsplit(base).port] = key


def auth_headers(url: str) -> dict[str, str]:
    """``Authorization: Bearer <key>`` for a runtime ``use_key`` named, else nothing."""
    key = _KEYS.get(urllib.parse.urlsplit(url).port)
    return {} if key is None else {"Authorization": f"Bearer {key}"}


def _with_key(url: str, headers: dict | None) -> dict:
    headers = dict(headers or {})
    if not any(k.lower() == "authorization" for k in headers):
        headers.update(auth_headers(url))
    return {k: v for k, v in headers.items() if v is not None}


def request(method: str, url: str, body=None, headers=None) -> tuple[int, dict, bytes]:
    """One HTTP request: (status, headers, body), whatever the status."""
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=_with_key(url, headers))
    if data is not None and not req.has_header("Content-type"):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def submit(base: str, body: dict) -> dict:
    """``POST /api/orders/execute`` at ``base`` (``http://host:port``); it must be accepted."""
    status, _, answer = request("POST", f"{base}/api/orders/execute", body)
    assert status == 202, answer
    return json.loads(answer)


def get_order(base: str, order_id: str) -> dict:
    status, _, answer = request("GET", f"{base}/api/orders/{order_id}")
    assert status == 200, answer
    return json.loads(answer)


def wait_for(predicate, timeout_s: float = 20, interval_s: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval_s)
