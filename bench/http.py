"""``POST /api/orders/execute`` as clients see it: latency and requests per second."""

from __future__ import annotations

from bench.stats import ms, percentile
from harness import client


def submit_stats(answers: list[client.Submitted], wall: float) -> dict:
    latencies = [a.latency_s for a in answers]
    codes: dict[str, int] = {}
    for a in answers:
        codes[str(a.status)] = codes.get(str(a.status), 0) + 1
    return {
        "requests": len(answers),
        "status_codes": codes,
        "req_per_s": round(len(answers) / wall, 1),
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "_latencies_s": latencies,
    }
