"""Logging and metrics set up in one place, and the fields every line of an order carries.

``bind(orderId=...)`` and ``update(status=...)`` keep fields in a context variable; every
line written while they are set carries them (``orderId``, ``attempt``, ``status``,
``requestId``, ``connectionId``), so modules keep logging with plain ``log.info(...)``.
A context variable is per thread: the app's middleware (``observe``) binds each invocation,
the worker binds each order in its pool thread (in a copy of the invocation's context).

``LOG_FORMAT=json`` (the AWS stages): one JSON object a line, for CloudWatch Logs Insights,
and EMF metric documents (``chalicelib.metrics``). ``text`` (the default): the handler's own
format, the fields appended, no metric documents.

The standard library rather than Powertools Logger: JSON is one small formatter here, and it
keeps ``import app`` free of another package (docs/DEPLOY.md, Observability).
"""

import contextlib
import copy
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from chalice.app import Request

from chalicelib import metrics

_UNBOUND: dict[str, Any] = {}  # never mutated: bind and update set new dicts
_fields: ContextVar[dict[str, Any]] = ContextVar("log_fields", default=_UNBOUND)  # noqa: B039


def fields() -> dict[str, Any]:
    """The fields bound in this context."""
    return _fields.get()


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.value if isinstance(v, Enum) else v if isinstance(v, int | str) else str(v)
        for k, v in values.items()
        if v is not None
    }


@contextlib.contextmanager
def bind(**values: Any) -> Iterator[None]:
    """Add fields to every line logged inside; ``None`` values are left out."""
    token = _fields.set({**_fields.get(), **_plain(values)})
    try:
        yield
    finally:
        _fields.reset(token)


def update(**values: Any) -> None:
    """Add or change fields until the enclosing ``bind`` ends. Outside any ``bind`` it does
    nothing: the fields would stick to every later line of the thread."""
    current = _fields.get()
    if current is not _UNBOUND:
        _fields.set({**current, **_plain(values)})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the bound fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The handler's own format, with the bound fields after the message."""

    def __init__(self, inner: logging.Formatter | None = None):
        super().__init__()
        self._inner = inner or logging.Formatter("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        bound = fields()
        if not bound:
            return self._inner.format(record)
        record = copy.copy(record)  # other handlers get the record unchanged
        suffix = " ".join(f"{k}={v}" for k, v in bound.items())
        record.msg, record.args = f"{record.getMessage()} [{suffix}]", None
        return self._inner.format(record)


def configure(log_format: str, level: str) -> None:
    """Called once by ``app.py``: formats the root handlers (Lambda's, or the local
    runtime's) and turns the metric documents on with the JSON format."""
    logging.getLogger("chalicelib").setLevel(level)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stdout))
    for handler in root.handlers:
        if not isinstance(handler.formatter, JsonFormatter | TextFormatter):
            text = TextFormatter(handler.formatter)
            handler.setFormatter(JsonFormatter() if log_format == "json" else text)
    metrics.configure(enabled=log_format == "json")


def observe(event, get_response):
    """Chalice middleware around every handler: the invocation's ids on each line it logs,
    its metrics written when it ends."""
    lambda_context = event.lambda_context if isinstance(event, Request) else event.context
    invocation = {
        "requestId": getattr(lambda_context, "aws_request_id", None),
        "connectionId": getattr(event, "connection_id", None),
    }
    with bind(**invocation), metrics.collect(fields):
        return get_response(event)
