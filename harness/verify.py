"""What Postgres must show after any run: nothing lost, nothing twice, everything finished.

For every accepted order: a row exists; it is terminal; its history is ``seq`` 1..last_seq
without gap; each status appears at most once, in lifecycle order, starting ``pending`` and
ending with exactly one terminal status; the order row agrees with its last history row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from harness.orders import FLOW, TERMINAL

ORDER = {s: i for i, s in enumerate(FLOW)} | {s: len(FLOW) for s in TERMINAL if s not in FLOW}


@dataclass
class Verdict:
    accepted: int = 0
    lost: list[str] = field(default_factory=list)  # accepted, no row
    unexpected: list[str] = field(default_factory=list)  # a row nobody was told about
    open: list[str] = field(default_factory=list)  # not terminal
    duplicated: list[str] = field(default_factory=list)  # a status recorded twice
    gaps: list[str] = field(default_factory=list)  # seq not 1..n
    out_of_order: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # order row vs last history row
    statuses: dict[str, int] = field(default_factory=dict)  # final status -> count
    history_rows: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.open
            or self.duplicated
            or self.gaps
            or self.out_of_order
            or self.mismatched
        )

    def problems(self) -> dict[str, list[str]]:
        names = ("lost", "unexpected", "open", "duplicated", "gaps", "out_of_order", "mismatched")
        return {n: getattr(self, n)[:5] for n in names if getattr(self, n)}

    def summary(self) -> str:
        counts = {
            n: len(getattr(self, n))
            for n in ("lost", "open", "duplicated", "gaps", "out_of_order", "mismatched")
        }
        return (
            f"{self.accepted} accepted, final statuses {self.statuses}, "
            f"{self.history_rows} history rows; "
            + ", ".join(f"{k}={v}" for k, v in counts.items())
            + (f"; {len(self.unexpected)} rows not accepted by us" if self.unexpected else "")
        )


def _history_ok(statuses: list[str]) -> tuple[bool, bool]:
    """(no duplicate, in lifecycle order with exactly one terminal status, last)."""
    no_dup = len(set(statuses)) == len(statuses)
    ranks = [ORDER.get(s, -1) for s in statuses]
    ordered = (
        bool(statuses)
        and statuses[0] == "pending"
        and all(a < b for a, b in zip(ranks, ranks[1:], strict=False))
        and statuses[-1] in TERMINAL
        and sum(s in TERMINAL for s in statuses) == 1
    )
    return no_dup, ordered


def verify(database_url: str, accepted_ids: list[str], require_terminal: bool = True) -> Verdict:
    """Check the invariants for ``accepted_ids`` (the orders the API answered 2xx for)."""
    verdict = Verdict(accepted=len(set(accepted_ids)))
    with psycopg.connect(database_url, autocommit=True) as conn:
        orders = {
            row[0]: row[1:]
            for row in conn.execute("SELECT id::text, status, last_seq FROM orders").fetchall()
        }
        histories: dict[str, list[tuple[int, str]]] = {}
        for order_id, seq, status in conn.execute(
            "SELECT order_id::text, seq, status FROM order_status_history ORDER BY order_id, seq"
        ):
            histories.setdefault(order_id, []).append((seq, status))
    wanted = set(accepted_ids)
    verdict.lost = sorted(wanted - orders.keys())
    verdict.unexpected = sorted(orders.keys() - wanted)
    verdict.history_rows = sum(len(h) for h in histories.values())
    for order_id in sorted(wanted & orders.keys()):
        status, last_seq = orders[order_id]
        verdict.statuses[status] = verdict.statuses.get(status, 0) + 1
        history = histories.get(order_id, [])
        seqs = [s for s, _ in history]
        statuses = [st for _, st in history]
        if status not in TERMINAL:
            verdict.open.append(order_id)
        if seqs != list(range(1, len(seqs) + 1)) or last_seq != len(seqs):
            verdict.gaps.append(order_id)
        no_dup, ordered = _history_ok(statuses)
        if not no_dup:
            verdict.duplicated.append(order_id)
        if not ordered and (require_terminal or status in TERMINAL):
            verdict.out_of_order.append(order_id)
        if not history or history[-1][1] != status:
            verdict.mismatched.append(order_id)
    return verdict


def history_in_postgres(database_url: str, order_id: str) -> list[tuple[int, str]]:
    """One order's (seq, status) history."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT seq, status FROM order_status_history WHERE order_id = %s ORDER BY seq",
            (order_id,),
        ).fetchall()
