"""``python -m bench.sqs``: what one SQS call costs the embedded emulator at a queue depth,
moto's SQS as shipped against the runtime's (``localaws.sqs_server.faster_moto``).

In-process calls of moto's SQS backend (no HTTP), each kind in a subprocess of its own since
the runtime's change is process-wide: SendMessage, and ReceiveMessage of 10 messages, at
depths of 0 to 2,000 messages. The runtime's queue holds every order not yet picked up plus
one delayed landing-check message per order in flight, so a burst is a deep queue.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

DEPTHS = (0, 100, 1000, 2000)
CALLS = 20


def measure(faster: bool) -> dict[int, dict[str, float]]:
    if faster:
        from localaws.sqs_server import faster_moto

        faster_moto()
    from moto.sqs.models import sqs_backends

    backend = sqs_backends["123456789012"]["us-east-1"]
    queue = backend.create_queue("bench")
    out = {}
    for depth in DEPTHS:
        while len(queue._messages) < depth:
            backend.send_message("bench", "x")
        started = time.perf_counter()
        for _ in range(CALLS):
            backend.send_message("bench", "x")
        send_ms = (time.perf_counter() - started) / CALLS * 1000
        del queue._messages[depth:]
        started = time.perf_counter()
        for _ in range(CALLS):  # visibility 0: the same messages stay receivable
            backend.receive_message("bench", 10, 0, 0)
        receive_ms = (time.perf_counter() - started) / CALLS * 1000
        out[depth] = {"send_ms": round(send_ms, 3), "receive10_ms": round(receive_ms, 3)}
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("stock", "faster"):
        print(json.dumps(measure(sys.argv[1] == "faster")))
        return
    runs = {
        kind: json.loads(
            subprocess.run(
                [sys.executable, "-m", "bench.sqs", kind],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for kind in ("stock", "faster")
    }
    print("depth | SendMessage ms: moto / runtime | ReceiveMessage(10) ms: moto / runtime")
    for depth in map(str, DEPTHS):
        stock, faster = runs["stock"][depth], runs["faster"][depth]
        print(
            f"{depth:>5} | {stock['send_ms']:8.2f} / {faster['send_ms']:6.2f}"
            f" | {stock['receive10_ms']:8.2f} / {faster['receive10_ms']:6.2f}"
        )


if __name__ == "__main__":
    main()
