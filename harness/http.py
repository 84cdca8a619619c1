"""Blocking HTTP helpers and a bounded wait, for tests against a running engine."""

import json
import time
import urllib.error
import urllib.request


def request(method: str, url: str, body=None, headers=None) -> tuple[int, dict, bytes]:
    """One HTTP request: (status, headers, body), whatever the status."""
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
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
