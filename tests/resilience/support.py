"""Helpers of the resilience tests: requests with a bounded time, bounded waits."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request

import psycopg

from harness import client
from harness.http import auth_headers, wait_for
from harness.orders import TERMINAL
from harness.runtime import Runtime
from harness.verify import Verdict, verify


def request(method: str, url: str, body=None, headers=None, timeout_s: float = 30):
    """(status, headers, body bytes, seconds); a status of 0 when nothing answered."""
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    headers = {k: v for k, v in {**auth_headers(url), **(headers or {})}.items() if v is not None}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data is not None and not req.has_header("Content-type"):
        req.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as response:
            return response.status, dict(response.headers), response.read(), _since(started)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read(), _since(started)
    except (urllib.error.URLError, OSError):
        return 0, {}, b"", _since(started)


def _since(started: float) -> float:
    return time.monotonic() - started


def leaks_traceback(body: bytes | bytearray | str) -> bool:
    text = body if isinstance(body, str) else bytes(body).decode(errors="replace")
    return "Traceback (most recent call last)" in text or '.py", line ' in text


def submit_orders(
    rt: Runtime, count: int, offset: int = 0, concurrency: int = 5, make_body=None
) -> list[str]:
    """``count`` orders; every one must be accepted (202). Returns their ids."""
    answers, _ = asyncio.run(client.submit_many(rt.http, count, concurrency, offset, make_body))
    statuses = [a.status for a in answers]
    assert statuses == [202] * count, f"not all accepted: {statuses}\n{rt.tail()}"
    return [a.order_id for a in answers]


def statuses(database_url: str, ids: list[str]) -> dict[str, str]:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id::text, status FROM orders WHERE id = ANY(%s::uuid[])", (ids,)
        ).fetchall()
    return dict(rows)


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    return wait_for(predicate, timeout_s, interval_s, what)


def wait_all_terminal(rt: Runtime, database_url: str, ids: list[str], timeout_s: float = 90):
    def done() -> bool:
        found = statuses(database_url, ids)
        return len(found) == len(ids) and all(s in TERMINAL for s in found.values())

    try:
        wait_until(done, timeout_s, f"{len(ids)} orders to finish", interval_s=0.5)
    except AssertionError:
        found = statuses(database_url, ids)
        open_ = {i: s for i, s in found.items() if s not in TERMINAL}
        raise AssertionError(
            f"{len(open_)} of {len(ids)} orders still open: {list(open_.items())[:5]}\n"
            f"runtime log:\n{rt.tail(80)}"
        ) from None


def assert_exactly_once(database_url: str, ids: list[str], rt: Runtime | None = None) -> Verdict:
    """Every accepted order terminal once, with a complete contiguous history, and no
    order row that was not accepted."""
    verdict = verify(database_url, ids)
    log = f"\nruntime log:\n{rt.tail(60)}" if rt is not None else ""
    assert verdict.ok, f"{verdict.summary()}: {verdict.problems()}{log}"
    assert not verdict.unexpected, f"rows for orders never accepted: {verdict.unexpected[:5]}"
    return verdict


def order_rows(database_url: str, ids: list[str]) -> list[dict]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cur = conn.execute(
            "SELECT id::text, status, attempts, failure_reason FROM orders"
            " WHERE id = ANY(%s::uuid[])",
            (ids,),
        )
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


GATEWAY_LINE = re.compile(r"localaws\.gateway: [A-Z]+ \S+ (?P<status>\d{3}) ")
INTERNAL_ERROR_MARKS = (
    "unexpected error in",  # chalicelib.http.api: a 500
    "$connect handler failed",  # the local gateway: a WebSocket handler raised
    "$default handler failed",
)


def assert_no_internal_errors(rt: Runtime) -> None:
    """The runtime's log shows no 500 and no WebSocket handler that raised."""
    bad = []
    for line in rt.log_path.read_text(errors="replace").splitlines():
        answer = GATEWAY_LINE.search(line)
        server_error = answer is not None and answer["status"][0] == "5"
        if (
            server_error
            and answer["status"] != "503"
            or any(m in line for m in INTERNAL_ERROR_MARKS)
        ):
            bad.append(line)
    assert not bad, "internal errors in the runtime log:\n" + "\n".join(bad[:10])
