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


def _refused_by_postgres(conn, order_id) -> None:
    """One statement that moves the order, then breaks ``UNIQUE(order_id, seq)`` (seq 1 is
    its ``pending`` row): Postgres refuses it whole, and in a transaction its error aborts
    the transaction unless a savepoint holds it."""
    conn.execute(
        "WITH moved AS (UPDATE orders SET status = 'routing', last_seq = last_seq + 1"
        " WHERE id = %s RETURNING id)"
        " INSERT INTO order_status_history (order_id, seq, status, payload)"
        " SELECT id, 1, 'routing', '{}' FROM moved",
        (order_id,),
    )


def _queued_in_turn(group, n: int, write):
    """Writer 0 flushes first, alone, and holds its flush until the other ``n - 1`` have
    queued; those queue in turn (writer i once i - 1 others have), so the next flush runs
    writers 1 .. n - 1 in that order."""
    flushing = threading.Event()

    def first(conn):
        flushing.set()
        _until(lambda: len(group._queued) == n - 1)
        return write(0, conn)

    def held(i):
        if i == 0:
            return store._write(first)
        assert flushing.wait(10), "the first flush never started"
        _until(lambda: len(group._queued) == i - 1)
        return store._write(lambda conn: write(i, conn))

    return held


@pytest.mark.parametrize(
    ("size", "failing"), [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
)  # fmt: skip
def test_in_a_flush_of_one_two_or_three_writes_a_refused_write_fails_alone(
    new_order,  # noqa: F811
    size,
    failing,
):
    """A flush of ``size`` writes, the one at ``failing`` refused by Postgres: that writer
    gets the error and its order is unmoved; every other writer gets its seq, committed (a
    flush of one runs without a transaction, of two or more in savepoints)."""
    n = 1 + size  # the first flush (one write), then the flush under test
    ids = [new_order() for _ in range(n)]
    refused = 1 + failing
    group = store.new_commit_group()

    def write(i, conn):
        if i == refused:
            _refused_by_postgres(conn, ids[i])
        return store._advance_in(
            conn, ids[i], OrderStatus.PENDING, 1, change(OrderStatus.ROUTING)
        ).seq

    results = _in_group(group, n, _queued_in_turn(group, n, write))

    assert isinstance(results[refused], psycopg.errors.UniqueViolation), results
    assert _status_elsewhere(ids[refused]) == OrderStatus.PENDING
    assert [h.status for h in store.history(ids[refused])] == [OrderStatus.PENDING]
    others = [i for i in range(n) if i != refused]
    assert [results[i] for i in others] == [2] * len(others), results
    assert [_status_elsewhere(ids[i]) for i in others] == [OrderStatus.ROUTING] * len(others)
    assert group.commits == (2 if size > 1 else 1)  # a refused write alone commits nothing
