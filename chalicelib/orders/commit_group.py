"""Group commit: the status writes of one SQS batch's orders share transactions.

A batch's orders run side by side (``worker.process_batch``) and move in near lockstep: they
claim, record ``routing``, ``building``, ``submitted`` at about the same moments. Each of
those writes was a transaction of its own, and a commit (a WAL flush) is most of a write's
cost in Postgres. In a ``CommitGroup`` a write that finds no flush under way flushes at once,
with every write queued so far; writes that arrive meanwhile queue for the next flush (no
timer: a write alone waits for nothing; under load, writes gather while the previous flush
commits). A flush runs its writes in one transaction, each in a savepoint of its own, and
commits once; a flush of one write runs it on an autocommit connection (a write is one
statement: it commits alone, without a BEGIN and a COMMIT around it). Every writer gets its
own result (or its own error) only after that commit, so
nothing is pushed to a client, and no lease is relied on, before it is durable; a write whose
savepoint failed fails alone. A failed commit fails every write of the flush: each order's
delivery then fails and the queue redelivers it, as for any Postgres error.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import psycopg

Work = Callable[[psycopg.Connection], Any]

_CURRENT: contextvars.ContextVar[CommitGroup | None] = contextvars.ContextVar(
    "commit_group", default=None
)


def current() -> CommitGroup | None:
    """The group this thread's writes join, if any."""
    return _CURRENT.get()


Connect = Callable[[], AbstractContextManager[psycopg.Connection]]


class CommitGroup:
    def __init__(self, transaction: Connect, autocommit: Connect):
        self._transaction, self._autocommit = transaction, autocommit
        self._cond = threading.Condition()
        self._queued: list[tuple[Work, Future]] = []
        self._flushing = False
        self.commits = 0  # transactions committed (for tests and logs)

    def join(self) -> contextvars.Token:
        """Make the calling context's writes go through this group."""
        return _CURRENT.set(self)

    def leave(self, token: contextvars.Token) -> None:
        _CURRENT.reset(token)

    def run(self, work: Work) -> Any:
        """``work(conn)``'s result, once the transaction it ran in has committed."""
        future: Future = Future()
        with self._cond:
            self._queued.append((work, future))
            while not future.done():
                if self._flushing:  # it will be in the next flush
                    self._cond.wait()
                    continue
                batch, self._queued, self._flushing = self._queued, [], True
                self._cond.release()
                try:
                    self._flush(batch)
                finally:
                    self._cond.acquire()
                    self._flushing = False
                    self._cond.notify_all()
        return future.result()

    def _flush(self, batch: list[tuple[Work, Future]]) -> None:
        results: list[tuple[Future, Any, BaseException | None]] = []
        try:
            with (self._transaction if len(batch) > 1 else self._autocommit)() as conn:
                for work, future in batch:
                    # A savepoint, so that one write fails alone (a write alone needs none).
                    savepoint = conn.transaction() if len(batch) > 1 else nullcontext()
                    try:
                        with savepoint:
                            results.append((future, work(conn), None))
                    except Exception as e:
                        if len(batch) == 1:
                            raise  # rolls its transaction back
                        results.append((future, None, e))
        except BaseException as e:  # the commit (or the connection) failed: every write did
            for _, future in batch:
                future.set_exception(e)
            return
        self.commits += 1
        for future, result, error in results:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
