"""CPU seconds spent by process trees (a runtime, Postgres, Redis, the SQS server), from
psutil: a tree's live processes plus the children they have reaped (Postgres backends that
came and went), so a meter read before and after a run gives that run's CPU."""

from __future__ import annotations

from dataclasses import dataclass, field

import psutil


def tree_cpu_s(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            t = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


@dataclass
class CpuMeter:
    pids: dict[str, int]
    start: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = {name: tree_cpu_s(pid) for name, pid in self.pids.items()}

    @classmethod
    def of(cls, services, runtime) -> CpuMeter:
        """The runtime's tree and each private server's (given servers are not measured)."""
        return cls({"runtime": runtime.process.pid, **services.pids})

    def per_item_ms(self, items: int) -> dict[str, float] | None:
        """CPU milliseconds per item since the meter started, by tree and in all."""
        if not items:
            return None
        used = {n: tree_cpu_s(pid) - self.start[n] for n, pid in self.pids.items()}
        per = {n: round(s * 1000 / items, 2) for n, s in used.items()}
        per["all"] = round(sum(used.values()) * 1000 / items, 2)
        return per
