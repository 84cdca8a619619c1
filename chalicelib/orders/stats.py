"""``GET /api/stats``: execution quality over a window, computed in Postgres.

Everything is aggregated by SQL over the orders created in the window (and their history),
so the answer costs a few index scans whatever the number of orders (see
``chalicelib/orders/sql/004_stats.sql`` and ``python -m bench.stats_query``).
"""

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from psycopg import sql

from chalicelib.errors import InvalidInput, clip
from chalicelib.orders import store
from chalicelib.orders.lifecycle import OrderStatus
from chalicelib.orders.models import (
    ExecutionStats,
    Percentiles,
    StatusCount,
    VenueShare,
)

WINDOW_RE = re.compile(r"([1-9][0-9]{0,3})([mhd])", re.ASCII)
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_WINDOW = timedelta(days=366)
FRACTIONS = [0.5, 0.9, 0.99]
BAD = "invalid_query"

STATUS_COUNTS = """
SELECT status, count(*) AS n FROM orders WHERE created_at >= %(since)s {scope} GROUP BY status
"""
FAILURE_REASONS = """
SELECT split_part(failure_reason, ':', 1) AS reason, count(*) AS n
  FROM orders
 WHERE status = 'failed' AND created_at >= %(since)s {scope}
 GROUP BY 1
"""
VENUE_LEGS = """
SELECT venue, count(*) AS n
  FROM orders, jsonb_array_elements_text(route_venues) AS venue
 WHERE status = 'confirmed' AND created_at >= %(since)s {scope}
 GROUP BY 1
"""
# Per confirmed order: how much the chosen route beat the best single venue, the filled
# output over the order's minimum, and the time from submit to its ``confirmed`` history
# row (an order and its ``pending`` row are written in one transaction: ``created_at`` is
# that row's time). The route's figures are columns derived from it (004_stats.sql). These
# are reported ratios, not amounts: float8 keeps the sorts of the percentiles cheap.
CONFIRMED = """
WITH measured AS (
    SELECT route_split AS split,
           (route_out - best_single_out)::float8 * 10000 / nullif(best_single_out, 0)
               AS improved,
           (amount_out - min_out)::float8 * 10000 / nullif(min_out, 0) AS realized,
           extract(epoch FROM done.created_at - orders.created_at)::float8 AS latency,
           route_multihop AS multihop, fee_lamports, landing_slots
      FROM orders
      JOIN order_status_history AS done
        ON done.order_id = orders.id AND done.status = 'confirmed'
       AND done.created_at >= %(since)s
     WHERE orders.status = 'confirmed' AND orders.created_at >= %(since)s {scope}
)
SELECT count(*) AS n,
       count(*) FILTER (WHERE split) AS splits,
       count(*) FILTER (WHERE realized < 0) AS below,
       percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY improved) AS improved,
       percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY realized) AS realized,
       percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY latency) AS latency,
       count(*) FILTER (WHERE multihop) AS multihops,
       -- lamports and slots are integers: the percentiles are values that occurred
       percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY fee_lamports) AS fees,
       percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY landing_slots) AS slots
  FROM measured
"""
QUERIES = {
    "status_counts": STATUS_COUNTS,
    "failure_reasons": FAILURE_REASONS,
    "venues": VENUE_LEGS,
    "confirmed": CONFIRMED,
}


def parse_window(text: str) -> timedelta:
    """``"90m"``, ``"1h"``, ``"24h"``, ``"7d"``: a positive whole number of minutes, hours or
    days, up to a year; ``InvalidInput`` for anything else."""
    match = WINDOW_RE.fullmatch(text)
    if not match:
        raise InvalidInput(f"window must look like 1h, 24h or 7d, not {clip(text)!r}", code=BAD)
    window = timedelta(**{UNITS[match[2]]: int(match[1])})
    if window > MAX_WINDOW:
        raise InvalidInput("window must be at most 366d", code=BAD)
    return window


def statements(since: datetime, client_id: uuid.UUID | None = None) -> dict[str, tuple]:
    """The stats queries with their parameters (the bench times these same statements).

    ``client_id`` scopes every query to one client's orders (the API always passes the
    caller); None: every client's, for an operator's view.
    """
    scope = "" if client_id is None else "AND orders.client_id = %(client_id)s"
    params = {"since": since, "fractions": FRACTIONS, "client_id": client_id}
    return {name: (sql.SQL(q.format(scope=scope)), params) for name, q in QUERIES.items()}


def execution_stats(window: str, client_id: uuid.UUID | None = None) -> ExecutionStats:
    """The stats of the orders created in the last ``window`` (``InvalidInput`` if malformed)."""
    since = datetime.now(UTC) - parse_window(window)
    rows = {name: store.query(q, p) for name, q, p in _named(statements(since, client_id))}
    by_status = {r["status"]: r["n"] for r in rows["status_counts"]}
    total = sum(by_status.values())
    confirmed = rows["confirmed"][0]
    n_confirmed = confirmed["n"]
    return ExecutionStats(
        window=window,
        since=since.isoformat(),
        orders=total,
        byStatus={
            s.value: StatusCount(
                count=by_status.get(s.value, 0), share=_share(by_status.get(s.value, 0), total)
            )
            for s in OrderStatus
        },
        failureReasons={r["reason"]: r["n"] for r in rows["failure_reasons"]},
        confirmed=n_confirmed,
        splitShare=_share(confirmed["splits"], n_confirmed) if n_confirmed else None,
        venues={
            r["venue"]: VenueShare(orders=r["n"], share=_share(r["n"], n_confirmed))
            for r in rows["venues"]
        },
        priceImprovementBps=_percentiles(confirmed["improved"]),
        realizedOverMinOutBps=_percentiles(confirmed["realized"]),
        belowMinOut=confirmed["below"],
        submitToConfirmedS=_percentiles(confirmed["latency"]),
        multihopShare=_share(confirmed["multihops"], n_confirmed) if n_confirmed else None,
        feePaidLamports=_whole_percentiles(confirmed["fees"]),
        slotsToLand=_whole_percentiles(confirmed["slots"]),
    )


def _named(queries: dict[str, tuple]):
    return ((name, q, p) for name, (q, p) in queries.items())


def _share(part: int, whole: int) -> str:
    """``part / whole`` to 4 decimals, as a string (exact: no float)."""
    share = Decimal(part) / Decimal(whole) if whole else Decimal(0)
    return str(share.quantize(Decimal("0.0001")))


def _percentiles(values: list[float] | None) -> Percentiles:
    text = [None if v is None else f"{v:.2f}" for v in (values or [None] * len(FRACTIONS))]
    return Percentiles(p50=text[0], p90=text[1], p99=text[2])


def _whole_percentiles(values: list[int | None] | None) -> Percentiles:
    """Percentiles of an integer figure (lamports, slots), as whole numbers."""
    text = [None if v is None else str(v) for v in (values or [None] * len(FRACTIONS))]
    return Percentiles(p50=text[0], p90=text[1], p99=text[2])
