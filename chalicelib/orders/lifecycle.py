"""How an order moves: which status may follow which, and who may make each move.

``TRANSITIONS`` is the one table of it. ``store.advance`` refuses a move that is not in it
(``IllegalTransition``), before any SQL runs, and its UPDATE moves the order only from the
status and seq the caller read. The sets of statuses the rest of the engine reasons about
(terminal, waiting, in flight, live) are named here once.
"""

from enum import StrEnum

from chalicelib.errors import Conflict


class OrderStatus(StrEnum):
    """A market order goes ``pending → routing → building → submitted → confirmed``; a limit
    or sniper order waits in ``open`` after ``pending``; a parent order (TWAP, DCA) goes
    ``pending → working → completed`` while its children execute."""

    PENDING = "pending"
    OPEN = "open"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    WORKING = "working"  # a parent order placing its children, one per interval
    COMPLETED = "completed"  # a parent order whose every slice was placed (or skipped) and ended

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def cancellable(self) -> bool:
        return self in CANCELLABLE


class OrderType(StrEnum):
    MARKET = "market"  # now
    LIMIT = "limit"  # once the route at its size meets limitPrice
    SNIPER = "sniper"  # buys a newly listed token once its pool trades, in arrival order
    STOP = "stop"  # once the oracle price crosses triggerPrice: then as market (or limit)
    TWAP = "twap"  # a parent: one child market order of amount / slices per interval
    DCA = "dca"  # a parent: amountPerCycle per interval, a cycle outside its price band skipped

    @property
    def parent(self) -> bool:
        return self in PARENT_TYPES


class Actor(StrEnum):
    """Who moves an order."""

    WORKER = "worker"  # an SQS delivery of the order
    CANCEL = "cancel"  # the client, through POST /api/orders/{id}/cancel
    REAPER = "reaper"  # the schedule that finds orders nobody works on
    LIMIT_CHECK = "limit_check"  # the schedule that wakes and expires waiting orders
    DEAD_LETTER = "dead_letter"  # a message that could not be processed, and the DLQ's handler
    AMEND = "amend"  # the client, through PATCH /api/orders/{id}
    OCO = "oco"  # the other order of a one-cancels-the-other pair, starting to execute
    CHILD = "child"  # a parent's child order ending: its fill recorded, the parent settled


PARENT_TYPES = frozenset({OrderType.TWAP, OrderType.DCA})


S, A = OrderStatus, Actor

TERMINAL = frozenset({S.CONFIRMED, S.FAILED, S.CANCELLED, S.EXPIRED, S.COMPLETED})
# A limit or sniper order waiting for its price or its pool; a parent for its next slice.
WAITING = frozenset({S.OPEN, S.WORKING})
# What the queue and the workers carry: the engine-wide admission ceiling counts these.
IN_FLIGHT = frozenset({S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED})
LIVE = WAITING | IN_FLIGHT  # not terminal yet: what a client's open-order limit counts
# Nothing has been sent yet: from ``submitted`` on, the transaction may land.
CANCELLABLE = frozenset({S.PENDING, S.OPEN, S.ROUTING, S.BUILDING, S.WORKING})

_FAILERS = frozenset({A.WORKER, A.REAPER, A.DEAD_LETTER})

TRANSITIONS: dict[OrderStatus, dict[OrderStatus, frozenset[Actor]]] = {
    S.PENDING: {
        S.OPEN: frozenset({A.WORKER}),
        S.WORKING: frozenset({A.WORKER}),  # a parent's first slice
        S.ROUTING: frozenset({A.WORKER}),
        S.EXPIRED: frozenset({A.WORKER}),  # a waiting order past its expiry at first delivery
        S.CANCELLED: frozenset({A.CANCEL, A.OCO}),
        S.FAILED: _FAILERS,
    },
    S.OPEN: {
        # The one move that keeps the status: a waiting order's bounds changed, recorded
        # with a seq of its own (a worker that read the order before loses its next move).
        # The check job records a stop order's trigger the same way.
        S.OPEN: frozenset({A.AMEND, A.LIMIT_CHECK}),
        S.ROUTING: frozenset({A.WORKER}),
        S.EXPIRED: frozenset({A.WORKER, A.LIMIT_CHECK}),
        S.CANCELLED: frozenset({A.CANCEL, A.OCO}),
        # The reaper leaves waiting orders to the limit check job.
        S.FAILED: frozenset({A.WORKER, A.DEAD_LETTER}),
    },
    # A parent order: each slice placed (or, DCA, skipped) by the slice job and each
    # child's end is a history row of its own (``working → working``); it completes once
    # every slice was placed and every child ended, in the transaction of the last of those.
    S.WORKING: {
        S.WORKING: frozenset({A.WORKER, A.CHILD}),
        S.COMPLETED: frozenset({A.WORKER, A.CHILD}),
        S.CANCELLED: frozenset({A.CANCEL}),
        S.FAILED: frozenset({A.WORKER, A.CHILD, A.DEAD_LETTER}),  # every child failed
    },
    S.ROUTING: {
        S.BUILDING: frozenset({A.WORKER}),
        S.CANCELLED: frozenset({A.CANCEL}),
        S.FAILED: _FAILERS,
    },
    S.BUILDING: {
        S.SUBMITTED: frozenset({A.WORKER}),
        S.CANCELLED: frozenset({A.CANCEL}),
        S.FAILED: _FAILERS,
    },
    S.SUBMITTED: {
        S.CONFIRMED: frozenset({A.WORKER}),
        S.FAILED: _FAILERS,
    },
    **{status: {} for status in TERMINAL},
}

# A market order's statuses when all goes well, in order.
MARKET_PATH = (S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED)
# How far along an order is: a delivery resumes from its recorded status and records only
# the statuses after it.
_STAGE = {S.PENDING: 0, S.OPEN: 1, S.ROUTING: 2, S.BUILDING: 3, S.SUBMITTED: 4}


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, from_status: OrderStatus, to_status: OrderStatus, actor: Actor):
        super().__init__(f"{actor} may not move an order from {from_status} to {to_status}")
        self.from_status, self.to_status, self.actor = from_status, to_status, actor


def allowed(from_status: OrderStatus, to_status: OrderStatus, actor: Actor) -> bool:
    return actor in TRANSITIONS[from_status].get(to_status, ())


def check(from_status: OrderStatus, to_status: OrderStatus, actor: Actor) -> None:
    """Raise ``IllegalTransition`` unless the table has the move for the actor."""
    if not allowed(from_status, to_status, actor):
        raise IllegalTransition(from_status, to_status, actor)


def reached(current: OrderStatus, status: OrderStatus) -> bool:
    """Whether an order now ``current`` has recorded ``status`` already (or gone past it)."""
    return current in TERMINAL or _STAGE[current] >= _STAGE[status]


def markdown_table() -> str:
    """``TRANSITIONS`` as the README shows it (a test keeps the two equal)."""
    rows = ["| from | to | by |", "| --- | --- | --- |"]
    for source, targets in TRANSITIONS.items():
        for target, actors in targets.items():
            rows.append(f"| `{source}` | `{target}` | {', '.join(sorted(actors))} |")
    return "\n".join(rows)
