"""The store's own guarantees, against real Postgres: whatever a caller does, seq only moves
forward from the value read, each status is recorded once, a terminal order never changes,
and a lease keeps a second delivery out until it runs out."""

import threading

import pytest

import harness.orders
from chalicelib.backends import postgres
from chalicelib.orders import lifecycle, store
from chalicelib.orders.lifecycle import Actor, OrderStatus
from chalicelib.orders.models import OrderRequest
from chalicelib.orders.records import StatusChange

pytestmark = pytest.mark.integration

FLOW = [OrderStatus(s) for s in harness.orders.FLOW]  # pending ... confirmed
WRITERS = 8


@pytest.fixture
def new_order(settings_env, api_key):
    """Makes an order of the tests' client, pending, as the API would."""
    from chalicelib.access import keys

    client_id = keys.client_of(api_key)
    spec = OrderRequest(type="market", tokenIn="SOL", tokenOut="USDC", amount="1.5").to_spec()

    def make():
        limits = store.Admission(max_in_flight=100, max_live_per_client=100, retry_after_s=1)
        order, created = store.create_order(
            spec, None, "fingerprint", client_id=client_id, limits=limits
        )
        assert created
        return order.id

    return make


PENDING, ROUTING, BUILDING, SUBMITTED = lifecycle.MARKET_PATH[:4]


def advance(order_id, status, seq, change_) -> int | None:
    """The seq the move recorded, or None."""
    entry = store.advance(order_id, status, seq, change_, Actor.WORKER)
    return None if entry is None else entry.seq


def change(status: OrderStatus) -> StatusChange:
    return StatusChange(status, {"by": threading.current_thread().name})


def set_lease_expired(order_id) -> None:
    with postgres.connection() as conn:
        conn.execute(
            "UPDATE orders SET lease_until = now() - interval '1 second' WHERE id = %s",
            (order_id,),
        )


def test_seq_moves_forward_only_from_the_value_read(new_order):
    order_id = new_order()
    assert advance(order_id, PENDING, 1, change(ROUTING)) == 2
    assert advance(order_id, PENDING, 1, change(ROUTING)) is None  # stale read
    assert advance(order_id, ROUTING, 3, change(BUILDING)) is None  # never read
    order = store.get_order(order_id)
    assert (order.status, order.last_seq) == (OrderStatus.ROUTING, 2)
    assert [(h.seq, h.status) for h in store.history(order_id)] == [
        (1, OrderStatus.PENDING),
        (2, OrderStatus.ROUTING),
    ]
    assert advance(order_id, ROUTING, 2, change(BUILDING)) == 3


def test_concurrent_writers_record_each_status_once(new_order):
    """Writers race the order through its statuses, each advancing from what it read:
    every status lands once, in order, whoever wrote it."""
    order_id = new_order()
    start = threading.Barrier(WRITERS)
    written = []

    def writer():
        start.wait()
        while True:
            order = store.get_order(order_id)
            if order.status.terminal:
                return
            following = FLOW[FLOW.index(order.status) + 1]
            if advance(order_id, order.status, order.last_seq, change(following)) is not None:
                written.append(following)

    threads = [threading.Thread(target=writer, name=f"w{i}") for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = store.history(order_id)
    assert [(h.seq, h.status) for h in history] == list(enumerate(FLOW, start=1))
    assert sorted(written, key=FLOW.index) == FLOW[1:]  # one successful write per status
    assert store.get_order(order_id).last_seq == len(FLOW)


def test_only_one_of_concurrent_writers_from_the_same_read_wins(new_order):
    order_id = new_order()
    start = threading.Barrier(WRITERS)
    results = []

    def writer():
        start.wait()
        results.append(advance(order_id, PENDING, 1, change(ROUTING)))

    threads = [threading.Thread(target=writer, name=f"w{i}") for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [2] + [None] * (WRITERS - 1)
    assert [h.status for h in store.history(order_id)] == ["pending", "routing"]


# Every store function that writes an order, as a caller might try it on a terminal one.
# ``lease``: the lease_until of the claim the caller made before the order ended.
WRITES = {
    # from what a worker read before the order ended
    "advance": lambda o, lease: advance(o, PENDING, 1, change(ROUTING)),
    "advance again": lambda o, lease: advance(o, ROUTING, 4, StatusChange.failed("again", 1)),
    "update_fields": lambda o, lease: store.update_fields(o, lease, tx_hash="x", last_error="x"),
    "release": lambda o, lease: store.release(o, lease, error="late error"),
    "release quietly": lambda o, lease: store.release(o, lease),
    "release waiting": lambda o, lease: store.release_waiting(o, lease),
    "claim": lambda o, lease: store.claim(o, 60),
    "touch": lambda o, lease: store.touch(o),
}


@pytest.mark.parametrize("terminal", [OrderStatus.CONFIRMED, OrderStatus.FAILED])
@pytest.mark.parametrize("write", list(WRITES))
def test_a_terminal_order_never_changes(new_order, terminal, write):
    order_id = new_order()
    lease = store.claim(order_id, 60).lease_until
    for seq, status in enumerate((ROUTING, BUILDING, SUBMITTED), start=1):
        advance(order_id, lifecycle.MARKET_PATH[seq - 1], seq, change(status))
    assert advance(order_id, SUBMITTED, 4, StatusChange(terminal, {}, {"tx_hash": "final"})) == 5
    before, history = store.get_order(order_id), store.history(order_id)
    assert before.lease_until is None  # a terminal status gives its lease up

    answer = WRITES[write](order_id, lease)

    assert answer in (None, False)
    assert store.get_order(order_id) == before  # every column, updated_at included
    assert store.history(order_id) == history


def test_a_held_lease_keeps_a_second_claim_out_and_spends_no_attempt(new_order):
    order_id = new_order()
    first = store.claim(order_id, 60)
    assert first.attempts == 1 and store.is_leased(order_id)
    assert store.claim(order_id, 60) is None
    after = store.get_order(order_id)
    assert after.attempts == 1
    assert after.lease_until == first.lease_until


def test_an_expired_lease_lets_the_next_claim_in(new_order):
    order_id = new_order()
    assert store.claim(order_id, 60).attempts == 1
    set_lease_expired(order_id)  # the worker holding it died a while ago
    assert not store.is_leased(order_id)
    second = store.claim(order_id, 60)
    assert second is not None and second.attempts == 2
    assert store.is_leased(order_id)


def test_a_released_lease_lets_the_next_claim_in_at_once(new_order):
    order_id = new_order()
    store.claim(order_id, 60)
    store.release(order_id, store.get_order(order_id).lease_until, error="venue timeout")
    second = store.claim(order_id, 60)
    assert second is not None and second.attempts == 2
    assert second.last_error == "venue timeout"


def test_a_waiting_order_counts_its_faults_in_a_row(new_order):
    order_id = new_order()
    with postgres.transaction() as conn:  # as the worker leaves a limit order below its price
        conn.execute("UPDATE orders SET status = 'open' WHERE id = %s", (order_id,))

    def check(error=None):
        assert store.release_waiting(order_id, store.claim(order_id, 60).lease_until, error)
        return store.get_order(order_id)

    assert [check("venue timeout").waiting_faults for _ in range(3)] == [1, 2, 3]
    after = check()  # limit unmet: no fault, the back-off starts over
    assert (after.waiting_faults, after.waiting_checks, after.attempts) == (0, 4, 0)
    assert after.last_error == "venue timeout"


def test_a_worker_whose_lease_ran_out_changes_nothing_of_the_next_holder(new_order):
    order_id = new_order()
    late = store.claim(order_id, 60).lease_until
    set_lease_expired(order_id)  # the first worker stalled past its lease
    holder = store.claim(order_id, 60)
    assert holder is not None

    assert store.update_fields(order_id, late, tx_hash="stale", last_error="stale") is False
    assert store.release(order_id, late, error="stale") is False
    assert store.release_waiting(order_id, late) is False

    after = store.get_order(order_id)
    assert after.lease_until == holder.lease_until and store.is_leased(order_id)
    assert (after.tx_hash, after.last_error) == (holder.tx_hash, holder.last_error)
    assert store.update_fields(order_id, holder.lease_until, tx_hash="ours") is True
    assert store.release(order_id, holder.lease_until) is True
    assert not store.is_leased(order_id)


@pytest.mark.parametrize(
    "query",
    [
        f"SELECT count(*) FROM orders WHERE {store.IN_FLIGHT}",
        f"SELECT id FROM orders WHERE {store.IN_FLIGHT} ORDER BY updated_at LIMIT 100",
    ],
    ids=["admission count", "reaper scan"],
)
def test_the_in_flight_queries_match_the_partial_index(settings_env, query):
    """``IN_FLIGHT`` is built from ``OrderStatus``; the index from a migration's literal list.
    Should they part, the admission count and the reaper would read every waiting order."""
    with postgres.transaction() as conn:
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute("EXPLAIN " + query).fetchall())
    assert "orders_in_flight_idx" in plan, plan
