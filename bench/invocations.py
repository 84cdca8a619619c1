"""Invocation-seconds: the sum of handler durations the runtime logged (its worker processes'
``REPORT <function> Duration: <ms> ms`` lines, as Lambda's), per function and per order."""

from __future__ import annotations

import asyncio
import re
import time

LAUNCHER = "localaws"  # the runtime, whose worker processes log a REPORT line per invocation
INVOKED = re.compile(r"REPORT (?P<function>\S+) Duration: (?P<ms>[\d.]+) ms")


def durations(log_text: str) -> dict[str, tuple[int, float]]:
    """Per function: (invocations, seconds) in ``log_text``."""
    out: dict[str, tuple[int, float]] = {}
    for match in INVOKED.finditer(log_text):
        count, seconds = out.get(match["function"], (0, 0.0))
        out[match["function"]] = (count + 1, seconds + float(match["ms"]) / 1000)
    return out


def per_order(log_text: str, orders: int) -> dict:
    """Invocation-seconds and invocations per order, in all and per function."""
    found = durations(log_text)
    if not found or not orders:
        return {"orders": orders, "invocation_s_per_order": None}
    total = sum(seconds for _, seconds in found.values())
    return {
        "orders": orders,
        "invocation_s_per_order": round(total / orders, 4),
        "invocations_per_order": round(sum(n for n, _ in found.values()) / orders, 2),
        "by_function": {
            name: {"invocations": n, "s_per_order": round(seconds / orders, 4)}
            for name, (n, seconds) in sorted(found.items())
        },
    }


async def settled_log(runtime, mark: int, quiet_s: float = 1.0, limit_s: float = 15.0) -> str:
    """The runtime's log from ``mark`` once no invocation has ended for ``quiet_s`` (the last
    handlers finish after their status is recorded); bounded by ``limit_s``."""
    deadline = time.monotonic() + limit_s
    seen = -1
    while time.monotonic() < deadline:
        text = runtime.log()[mark:]
        count = len(INVOKED.findall(text))
        if count == seen:
            return text
        seen = count
        await asyncio.sleep(quiet_s)
    return runtime.log()[mark:]
