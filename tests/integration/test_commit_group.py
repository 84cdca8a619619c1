"""Group commit on real Postgres: writes that arrive while a flush is under way share the next
transaction, each writer sees its own result only once its transaction has committed, one
failing write fails alone, and a failed commit fails them all with nothing written."""

import contextlib
import threading
import time

import psycopg
import pytest

from chalicelib.backends import postgres
from chalicelib.errors import DependencyUnavailable
from chalicelib.orders import commit_group, store
from chalicelib.orders.lifecycle import OrderStatus
from tests.integration.test_store import advance, change, new_order  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def _in_group(group, n: int, write):
    """``n`` threads, each in ``group``, each calling ``write(i)``: their results or errors."""
    results: list = [None] * n
    start = threading.Barrier(n)

    def writer(i: int) -> None:
        token = group.join()
        try:
            start.wait()
            results[i] = write(i)
        except Exception as e:
            results[i] = e
        finally:
            group.leave(token)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _status_elsewhere(order_id) -> OrderStatus:
    """The order's status as another connection sees it (committed data only)."""
    with psycopg.connect(store.get_settings().storage.database_url) as conn:
        return OrderStatus(
            conn.execute("SELECT status FROM orders WHERE id = %s", (order_id,)).fetchone()[0]
        )


def _first_waits_for_the_others(group, n: int, write):
    """Writer 0 flushes first, alone, and holds its flush until the other ``n - 1`` writes
    have queued."""
    flushing = threading.Event()

    def first(conn):
        flushing.set()
        _until(lambda: len(group._queued) == n - 1)
        return write(0, conn)

    def held(i):
        if i == 0:
            return store._write(first)
        flushing.wait(10)
        return store._write(lambda conn: write(i, conn))

    return held


def _until(condition, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the other writes never queued"
        time.sleep(0.005)


def test_writes_queued_during_a_flush_share_the_next_commit(new_order):  # noqa: F811
    ids = [new_order() for _ in range(6)]
    group = store.new_commit_group()

    def write(i, conn):
        return store._advance_in(
            conn, ids[i], OrderStatus.PENDING, 1, change(OrderStatus.ROUTING)
        ).seq

    seqs = _in_group(group, len(ids), _first_waits_for_the_others(group, len(ids), write))
    assert seqs == [2] * len(ids)
    assert group.commits == 2  # the first alone, then the five that queued meanwhile
    for order_id in ids:
        assert _status_elsewhere(order_id) == OrderStatus.ROUTING
        assert [h.status for h in store.history(order_id)] == [
            OrderStatus.PENDING,
            OrderStatus.ROUTING,
        ]


def test_a_writer_sees_its_result_only_once_it_is_committed(new_order):  # noqa: F811
    ids = [new_order() for _ in range(4)]
    group = store.new_commit_group()

    def write(i):
        seq = advance(ids[i], OrderStatus.PENDING, 1, change(OrderStatus.ROUTING))
        return seq, _status_elsewhere(ids[i])  # another connection, once advance returned

    assert _in_group(group, len(ids), write) == [(2, OrderStatus.ROUTING)] * len(ids)


def test_a_failing_write_fails_alone(new_order):  # noqa: F811
    ids = [new_order() for _ in range(4)]
    group = store.new_commit_group()

    def write(i, conn):
        if i == 2:  # records its status, then fails: its savepoint is rolled back
            _advance_sql(conn, ids[i])
            return 1 / 0
        return store._advance_in(
            conn, ids[i], OrderStatus.PENDING, 1, change(OrderStatus.ROUTING)
        ).seq

    results = _in_group(group, len(ids), _first_waits_for_the_others(group, len(ids), write))
    assert group.commits == 2
    assert isinstance(results[2], ZeroDivisionError)
    assert [results[i] for i in (0, 1, 3)] == [2, 2, 2]
    assert store.get_order(ids[2]).status == OrderStatus.PENDING
    assert [store.get_order(ids[i]).status for i in (0, 1, 3)] == [OrderStatus.ROUTING] * 3


def _advance_sql(conn, order_id) -> None:
    conn.execute("UPDATE orders SET status = 'routing' WHERE id = %s", (order_id,))


def test_a_failed_commit_fails_every_write_and_keeps_none(new_order):  # noqa: F811
    ids = [new_order() for _ in range(3)]

    @contextlib.contextmanager
    def commit_fails():
        with postgres.transaction() as conn:
            yield conn
            raise psycopg.OperationalError("the server closed the connection")

    group = commit_group.CommitGroup(commit_fails, commit_fails)
    results = _in_group(
        group,
        len(ids),
        lambda i: advance(ids[i], OrderStatus.PENDING, 1, change(OrderStatus.ROUTING)),
    )
    assert all(isinstance(r, DependencyUnavailable) for r in results), results
    assert [store.get_order(i).status for i in ids] == [OrderStatus.PENDING] * 3


def test_outside_a_group_each_write_commits_by_itself(new_order):  # noqa: F811
    order_id = new_order()
    assert commit_group.current() is None
    assert advance(order_id, OrderStatus.PENDING, 1, change(OrderStatus.ROUTING)) == 2
    assert _status_elsewhere(order_id) == OrderStatus.ROUTING
