"""``lifecycle.TRANSITIONS`` is the one table of how an order moves: the store refuses every
move outside it (before any SQL runs), and the README shows the table as it is."""

import itertools
import re
import uuid
from pathlib import Path

import pytest

from chalicelib.orders import lifecycle, store
from chalicelib.orders.lifecycle import Actor, IllegalTransition, OrderStatus
from chalicelib.orders.records import StatusChange

README = Path(__file__).resolve().parents[2] / "README.md"
MOVES = list(itertools.product(OrderStatus, OrderStatus, Actor))
REFUSED = [m for m in MOVES if not lifecycle.allowed(*m)]


def test_the_table_names_every_status_and_only_known_moves():
    assert set(lifecycle.TRANSITIONS) == set(OrderStatus)
    for source, targets in lifecycle.TRANSITIONS.items():
        # No status follows itself, but an amended waiting order and a working parent (a
        # history row of its own: a slice placed or skipped, a child's end).
        assert source not in targets or (source, targets[source]) in {
            (OrderStatus.OPEN, frozenset({Actor.AMEND, Actor.LIMIT_CHECK})),
            (OrderStatus.WORKING, frozenset({Actor.WORKER, Actor.CHILD})),
        }
        assert all(actors for actors in targets.values())
    assert all(not lifecycle.TRANSITIONS[s] for s in lifecycle.TERMINAL)


def test_every_live_status_can_still_fail_or_be_left_and_only_the_worker_confirms():
    for status in lifecycle.LIVE:
        assert lifecycle.allowed(status, OrderStatus.FAILED, Actor.WORKER), status
    confirming = [
        (s, a) for s, t, a in MOVES if t == OrderStatus.CONFIRMED and lifecycle.allowed(s, t, a)
    ]
    assert confirming == [(OrderStatus.SUBMITTED, Actor.WORKER)]


def test_the_sets_partition_the_statuses():
    assert set(OrderStatus) == lifecycle.LIVE | lifecycle.TERMINAL
    assert not lifecycle.LIVE & lifecycle.TERMINAL
    assert lifecycle.WAITING | lifecycle.IN_FLIGHT == lifecycle.LIVE
    assert {
        s for s in OrderStatus if lifecycle.allowed(s, OrderStatus.CANCELLED, Actor.CANCEL)
    } == lifecycle.CANCELLABLE


@pytest.mark.parametrize(("source", "target", "actor"), REFUSED, ids=lambda v: str(v))
def test_the_store_refuses_a_move_not_in_the_table(source, target, actor):
    # No database answers a unit test: the refusal comes before any SQL.
    with pytest.raises(IllegalTransition) as refused:
        store.advance(uuid.uuid4(), source, 1, StatusChange(target, {}), actor)
    assert (refused.value.from_status, refused.value.to_status) == (source, target)
    assert refused.value.code == "illegal_transition" and refused.value.status == 409


def test_a_delivery_resumes_after_what_it_recorded():
    path = lifecycle.MARKET_PATH
    for i, current in enumerate(path[:-1]):
        assert [lifecycle.reached(current, s) for s in path[:-1]] == [j <= i for j in range(4)]
    assert lifecycle.reached(OrderStatus.OPEN, OrderStatus.OPEN)
    assert not lifecycle.reached(OrderStatus.OPEN, OrderStatus.ROUTING)


def test_the_readme_shows_the_table_as_it_is():
    text = README.read_text()
    shown = text.split("<!-- transitions -->\n", 1)[1].split("\n<!-- /transitions -->", 1)[0]
    assert shown == lifecycle.markdown_table()


def test_the_readme_lifecycle_lines_follow_the_table():
    section = README.read_text().split("## Order lifecycle", 1)[1].split("\n## ", 1)[0]
    chains = re.findall(r"`([a-z]+(?: → [a-z |]+)+)`", section)
    assert chains, "the lifecycle section shows no status chain"
    for chain in chains:
        steps = [step.split(" | ") for step in chain.split(" → ")]
        for sources, targets in itertools.pairwise(steps):
            for source, target in itertools.product(sources, targets):
                assert OrderStatus(target) in lifecycle.TRANSITIONS[OrderStatus(source)], chain
