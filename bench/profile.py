"""Where an order's CPU goes: ``python -m bench.profile [--seconds 15] [--top 25]``.

Private Postgres, Redis and SQS, a runtime at zero venue latency with its workers, and 10
closed-loop clients submitting for ``--seconds``. Meanwhile py-spy (``pip install py-spy``;
optional) samples every process of the runtime. Prints the CPU per confirmed order of each
process tree (bench.cpu), then the functions with the most samples, by own time and by
package (psycopg, botocore, json, logging, the engine's own modules...).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.cpu import CpuMeter
from bench.postgres import wait_terminal
from harness import client
from harness.runtime import ZERO_LATENCY
from harness.servers import Servers, fresh_database


def _package(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> the package or engine module it belongs to."""
    path = frame.rpartition("(")[2].rpartition(":")[0]
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    for root in ("chalicelib/", "localaws/", "app.py"):
        if root in path:
            return root + path.split(root)[1] if root != "app.py" else root
    return Path(path).name or frame


def summarize(collapsed: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
    if not total:
        print("py-spy took no samples")
        return
    print(f"\n{total} samples; own time by package:")
    for name, n in packages.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("own time by function:")
    for name, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")


async def main(seconds: float, top: int, concurrency: int) -> None:
    settings = {**ZERO_LATENCY, "WORKER_CONCURRENCY": str(concurrency)}
    with Servers() as services, fresh_database(services.admin_url) as db:
        log = Path(tempfile.mkdtemp(prefix="order-engine-profile-")) / "runtime.log"
        with services.runtime(db, settings, log, concurrency=concurrency) as rt:
            warm, _ = await client.submit_many(rt.http, 60, concurrency)
            await wait_terminal(db, [a.order_id for a in warm], 120)
            meter = CpuMeter.of(services, rt)
            spy, out = None, log.with_name("profile.txt")
            if shutil.which("py-spy"):
                spy = subprocess.Popen(
                    ["py-spy", "record", "--subprocesses", "--nonblocking", "-r", "200",
                     "-d", str(int(seconds)), "-f", "raw", "-o", str(out),
                     "-p", str(rt.process.pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            answers: list[client.Submitted] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while loop.time() < deadline:
                batch, _ = await client.submit_many(
                    rt.http, concurrency * 5, concurrency, offset=len(answers)
                )
                answers += batch
            ids = [a.order_id for a in answers if a.status == 202]
            await wait_terminal(db, ids, 120)
            cpu = meter.per_item_ms(len(ids))
            if spy:
                spy.wait(seconds + 30)
    print(f"{len(ids)} orders in {seconds:g}s; CPU ms per order by process tree: {cpu}")
    if spy and out.exists():
        summarize(out, top)
    else:
        print("py-spy not found: pip install py-spy for the split inside the runtime")


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--concurrency", type=int, default=10)
    a = p.parse_args()
    asyncio.run(main(a.seconds, a.top, a.concurrency))
