"""Resident memory of a process and its descendants, from ``/proc`` (Linux)."""

from pathlib import Path


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return out


def rss_kib(pid: int) -> int:
    """``VmRSS`` of one process in KiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    out, todo, seen = [], [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        out.append(current)
        todo += _children(current)
    return out


def _name(pid: int, root: int) -> str:
    if pid == root:
        return "gateway"
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        if b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes():
            name = "resource-tracker"  # multiprocessing's, for the worker processes
    except OSError:
        name = "gone"
    # Worker processes name themselves after their pool (localaws.workers); others keep
    # their interpreter's name, which is not unique.
    return name if "-" in name else f"{name}:{pid}"


def tree_rss_kib(pid: int) -> int:
    """``VmRSS`` of ``pid`` and every process under it (the runtime runs worker processes)."""
    return sum(rss_kib(p) for p in _tree(pid))


def rss_by_process(pid: int) -> dict[str, int]:
    """``VmRSS`` in KiB of ``pid`` ("gateway") and each process under it, by name
    (``rest-0``, ``websocket-1``, ...)."""
    return {_name(p, pid): rss_kib(p) for p in _tree(pid)}
