"""Metrics in CloudWatch embedded metric format (EMF): JSON log lines, no API calls.

Each handler invocation collects its metrics (``collect``, around every handler by the app's
middleware) and writes them when it ends, one document per set of dimensions; Lambda's log
agent turns the documents into CloudWatch metrics in the ``OrderEngine`` namespace. A metric
recorded outside an invocation is written at once. Nothing is written unless enabled
(``LOG_FORMAT=json``), so the human log stays readable locally.

A few dozen lines instead of Powertools Metrics: no dependency, no import cost, and each
metric keeps its own dimensions (Powertools shares one set per flush).
"""

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

NAMESPACE = "OrderEngine"
COUNT, MILLISECONDS = "Count", "Milliseconds"
MAX_VALUES = 100  # EMF: at most 100 values per metric in one document


@dataclass(frozen=True)
class Sample:
    name: str
    unit: str
    value: float
    dimensions: tuple[tuple[str, str], ...] = ()


class Batch:
    """One invocation's samples; the worker's order threads add to it concurrently."""

    def __init__(self) -> None:
        self._samples: list[Sample] = []
        self._lock = threading.Lock()

    def add(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def drain(self) -> list[Sample]:
        with self._lock:
            samples, self._samples = self._samples, []
        return samples


_batch: ContextVar[Batch | None] = ContextVar("metrics_batch", default=None)
_sink: Callable[[str], None] | None = None


def _stdout(line: str) -> None:
    # Straight to stdout, not through logging: the log agent reads a document only when it
    # is the whole line.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def configure(enabled: bool, sink: Callable[[str], None] = _stdout) -> None:
    global _sink
    _sink = sink if enabled else None


def count(name: str, value: int = 1, **dimensions: str) -> None:
    _record(Sample(name, COUNT, value, tuple(sorted(dimensions.items()))))


def milliseconds(name: str, value: float, **dimensions: str) -> None:
    _record(Sample(name, MILLISECONDS, round(value, 1), tuple(sorted(dimensions.items()))))


def _record(sample: Sample) -> None:
    batch = _batch.get()
    if batch is None:
        _write([sample], {})
    else:
        batch.add(sample)


@contextlib.contextmanager
def collect(properties: Callable[[], dict[str, Any]] = dict) -> Iterator[None]:
    """Collect the metrics recorded inside (in this context and copies of it) and write them
    at the end, with ``properties()`` (e.g. the request id) as searchable fields."""
    batch = Batch()
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
        _write(batch.drain(), properties())


def documents(
    samples: list[Sample], properties: dict[str, Any], timestamp_ms: int
) -> list[dict[str, Any]]:
    """EMF documents: one per dimension set. Counts are summed; timings keep every value."""
    by_dimensions: dict[tuple, dict[tuple[str, str], list[float]]] = {}
    for s in samples:
        by_dimensions.setdefault(s.dimensions, {}).setdefault((s.name, s.unit), []).append(s.value)
    docs = []
    for dimensions, metrics in by_dimensions.items():
        keys = [k for k, _ in dimensions]
        values = {
            (name, unit): [sum(vs)] if unit == COUNT else vs for (name, unit), vs in metrics.items()
        }
        while values:
            chunk = {m: vs[:MAX_VALUES] for m, vs in values.items()}
            values = {m: vs[MAX_VALUES:] for m, vs in values.items() if len(vs) > MAX_VALUES}
            doc: dict[str, Any] = {
                **properties,
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": NAMESPACE,
                            # Per dimension value, and the total across them.
                            "Dimensions": [keys, []] if keys else [[]],
                            "Metrics": [{"Name": n, "Unit": u} for n, u in chunk],
                        }
                    ],
                },
                **dict(dimensions),
            }
            for (name, _), vs in chunk.items():
                doc[name] = vs[0] if len(vs) == 1 else vs
            docs.append(doc)
    return docs


def _write(samples: list[Sample], properties: dict[str, Any]) -> None:
    sink = _sink
    if sink is None or not samples:
        return
    for doc in documents(samples, properties, int(time.time() * 1000)):
        sink(json.dumps(doc, default=str))
