"""A hand mutation audit of the engine's I/O modules (``make audit``).

``make mutate`` (mutmut) covers the pure modules against the unit tests. The modules that talk
to Postgres, Redis and SQS need the integration tests, too slow for mutmut's thousands of
mutants; instead this audit holds a short list of one-line bugs a person could plausibly write
(a ``>=`` for a ``>``, a bound dropped from a query, the wrong side of a ``max``), each with
the tests that should notice it. It plants each in the working tree, alone, runs those tests,
and puts the file back, byte for byte and with its old mtime, whatever happens (a failure, ^C,
SIGTERM). It refuses to start when a file it would mutate has uncommitted changes, or when a
mutant's original text is not found exactly once.

A mutant is *caught* when its tests fail (or cannot even be collected), *survived* when they
pass: no test notices that bug. By default each distinct test selection is first run once on
the clean tree (``--no-baseline`` skips it): a test failing without a mutant would make a
mutant look caught. Needs Postgres and Redis as ``make test`` does; run it alone (it is one
pytest after another, ~7 minutes on 2 shared cores, half of it the baseline). Not in CI, not
in ``make test`` (``tests/unit/test_hand_audit.py`` only checks that the list still matches
the code). Keep each mutant's selection to the tests that should catch it: seconds, not
minutes. The score and its history: docs/BENCHMARKS.md, "Hand mutation audit".

    python -m tests.hand_audit                 # every mutant, then the score
    python -m tests.hand_audit --list          # the mutants, applied to nothing
    python -m tests.hand_audit --only quotes   # the mutants whose name contains "quotes"
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
TIMEOUT_S = 600  # a mutant whose tests run this long is counted caught (it made them hang)

IT = "tests/integration/"
UT = "tests/unit/"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository
    original: str  # found exactly once in the file
    mutated: str
    tests: tuple[str, ...]  # pytest arguments: paths, node ids, -k expressions
    breaks: str  # what the bug would do, in a few words

    def apply(self, text: str) -> str:
        return text.replace(self.original, self.mutated, 1)


MUTANTS = [
    # -- quotes, worker: the minimum an order binds
    Mutant(
        "quotes: the user's minOut wins over the quote's",
        "chalicelib/orders/quotes.py",
        "min_out=max(spec.min_out or 0, stored.bound)",
        "min_out=spec.min_out or stored.bound",
        (IT + "test_quote_stats.py", "-k", "min_out"),
        "an order with its quote and a looser minOut fills below the quote's minimum",
    ),
    Mutant(
        "quotes: a quote serves any client",
        "chalicelib/orders/quotes.py",
        "if stored is None or stored.client_id != str(client_id):",
        "if stored is None:",
        (IT + "test_quote_stats.py", "-k", "only_the_client"),
        "a client spends another client's quote",
    ),
    Mutant(
        "worker: the order's minOut does not bind the route",
        "chalicelib/orders/worker.py",
        "route = replace(route, min_out=max(route.min_out, order.min_out))",
        "route = replace(route, min_out=route.min_out)",
        (IT + "test_quote_stats.py", "-k", "min_out"),
        "an order fills below its quote's or its own minOut",
    ),
    # -- limit orders: the check job and the worker's recheck
    Mutant(
        "limits: the check wants more than the limit",
        "chalicelib/orders/limit_check.py",
        "return route.out_amount >= order.limit_min_out",
        "return route.out_amount > order.limit_min_out",
        (IT + "test_limit_orders.py", "-k", "exactly"),
        "a limit order whose route pays exactly its limit is never enqueued",
    ),
    Mutant(
        "worker: a limit met exactly goes on waiting",
        "chalicelib/orders/worker.py",
        "if waiting and route.out_amount < order.limit_min_out:",
        "if waiting and route.out_amount <= order.limit_min_out:",
        (IT + "test_limit_orders.py", "-k", "exactly"),
        "the worker leaves an order whose route pays exactly its limit waiting",
    ),
    Mutant(
        "limits: the range query misses orders at the price",
        "chalicelib/orders/store.py",
        "AND limit_price <= %(price)s AND",
        "AND limit_price < %(price)s AND",
        (IT + "test_limit_orders.py", "-k", "paging or exactly"),
        "an order whose limit equals the spot price is never read by the check",
    ),
    Mutant(
        "worker: the waiting retry delay has no cap",
        "chalicelib/orders/worker.py",
        "return min(settings.retry_base_delay_s * 2 ** min(faults_before, 16), cap)",
        "return settings.retry_base_delay_s * 2 ** min(faults_before, 16)",
        (IT + "test_limit_orders.py", "-k", "venue_timeout"),
        "a waiting order's checks drift apart without bound",
    ),
    # -- commit group
    Mutant(
        "commit group: savepoints only above two writes",
        "chalicelib/orders/commit_group.py",
        "savepoint = conn.transaction() if len(batch) > 1 else nullcontext()",
        "savepoint = conn.transaction() if len(batch) > 2 else nullcontext()",
        (IT + "test_commit_group.py",),
        "in a flush of two, a refused write rolls the other back (its writer told it committed)",
    ),
    Mutant(
        "commit group: a write alone that fails is swallowed",
        "chalicelib/orders/commit_group.py",
        "if len(batch) == 1:",
        "if len(batch) == 0:",
        (IT + "test_commit_group.py",),
        "a flush of one refused write is counted as a commit",
    ),
    # -- worker: attempts and backoff
    Mutant(
        "worker: one attempt more than max_attempts",
        "chalicelib/orders/worker.py",
        "if not e.transient or attempt >= settings.lifecycle.max_attempts:",
        "if not e.transient or attempt > settings.lifecycle.max_attempts:",
        (IT + "test_worker_promises.py", "-k", "exactly_three"),
        "an order failing every attempt is tried four times",
    ),
    Mutant(
        "worker: backoff starts at twice the base",
        "chalicelib/orders/worker.py",
        "delay = settings.lifecycle.retry_base_delay_s * 2 ** (attempt - 1)",
        "delay = settings.lifecycle.retry_base_delay_s * 2**attempt",
        (IT + "test_worker_promises.py", "-k", "backoff"),
        "retries wait twice as long as configured",
    ),
    # -- store
    Mutant(
        "store: the open-order limit is off by one",
        "chalicelib/orders/store.py",
        'if row["live"] > limits.max_live_per_client:  # the order\'s own counted: rolls back',
        'if row["live"] >= limits.max_live_per_client:  # the order\'s own counted: rolls back',
        (IT + "test_clients.py", "-k", "open_order_limit"),
        "a client gets one open order fewer than MAX_OPEN_ORDERS_PER_CLIENT",
    ),
    Mutant(
        "store: the engine ceiling is off by one",
        "chalicelib/orders/store.py",
        "return count > max_in_flight",
        "return count >= max_in_flight",
        (IT + "test_api_validation.py", "-k", "admission or ceiling or at_the_limit"),
        "the engine admits one order fewer than MAX_ORDERS_IN_FLIGHT",
    ),
    Mutant(
        "store: a held lease does not keep a second claim out",
        "chalicelib/orders/store.py",
        "WHERE id = %(id)s AND {LIVE} AND (lease_until IS NULL OR lease_until < now())",
        "WHERE id = %(id)s AND {LIVE} AND (lease_until IS NULL OR lease_until > now())",
        (IT + "test_store.py", "-k", "lease"),
        "two deliveries run one order at once",
    ),
    # -- reaper
    Mutant(
        "reaper: fails an order one attempt late",
        "chalicelib/orders/reaper.py",
        "if order.attempts >= settings.max_attempts and not order.tx_in_flight:",
        "if order.attempts > settings.max_attempts and not order.tx_in_flight:",
        (IT + "test_pipeline.py", "-k", "reaper"),
        "an order stuck past its attempts is re-sent instead of failed",
    ),
    Mutant(
        "reaper: fails an order whose transaction is in flight",
        "chalicelib/orders/reaper.py",
        "if order.attempts >= settings.max_attempts and not order.tx_in_flight:",
        "if order.attempts >= settings.max_attempts:",
        (IT + "test_pipeline.py", "-k", "reaper or crash_before_the_check"),
        "a sent transaction that may still land is failed as stuck",
    ),
    # -- keys, rate limits, api
    Mutant(
        "keys: a revoked key still authenticates",
        "chalicelib/access/keys.py",
        '"SELECT client_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",',
        '"SELECT client_id FROM api_keys WHERE key_hash = %s",',
        (IT + "test_clients.py", "-k", "revoked"),
        "a revoked key keeps working over HTTP",
    ),
    Mutant(
        "keys: a revoked key stays active on its sockets",
        "chalicelib/access/keys.py",
        '"SELECT 1 FROM api_keys WHERE prefix = %s AND revoked_at IS NULL", (prefix,)',
        '"SELECT 1 FROM api_keys WHERE prefix = %s", (prefix,)',
        (IT + "test_clients.py", "-k", "active or revoked"),
        "an open socket of a revoked key goes on subscribing",
    ),
    Mutant(
        "rate limits: the wait rounds down",
        "chalicelib/access/ratelimit.py",
        "return math.ceil(int(wait_ms) / 1000)",
        "return int(wait_ms) // 1000",
        (IT + "test_clients.py", "-k", "rate_limit or under_a_second"),
        "a request refused for under a second is let through (Retry-After 0)",
    ),
    Mutant(
        "api: a body of exactly the limit is too large",
        "chalicelib/http/requests.py",
        "if raw is not None and len(raw) > limit:",
        "if raw is not None and len(raw) >= limit:",
        (IT + "test_api_validation.py", "-k", "oversized or limit_is_taken"),
        "a body of exactly MAX_BODY_BYTES is refused 413",
    ),
    Mutant(
        "api: an Idempotency-Key replay ignores the body",
        "chalicelib/orders/intake.py",
        "if order.request_hash != request_hash:",
        "if order.request_hash is None:",
        (IT + "test_idempotency.py",),
        "the same key with another body gets the first order, not a 409",
    ),
    # -- dex
    Mutant(
        "dex: the slippage bound lets one base unit more through",
        "chalicelib/dex/staged.py",
        "if produced < route.min_out:",
        "if produced < route.min_out - 1:",
        (UT + "test_dex_market.py", UT + "test_dex_chain.py"),
        "a fill one base unit below minOut lands",
    ),
    Mutant(
        "dex: the price-impact cap refuses its own bound",
        "chalicelib/dex/guards.py",
        "if impact * BPS > guards.price_impact_cap_bps:",
        "if impact * BPS >= guards.price_impact_cap_bps:",
        (UT + "test_dex_guards.py",),
        "a route exactly at the impact cap is refused",
    ),
    Mutant(
        "dex: the oracle bound refuses its own bound",
        "chalicelib/dex/guards.py",
        "if off * BPS > guards.oracle_deviation_bps:",
        "if off * BPS >= guards.oracle_deviation_bps:",
        (UT + "test_dex_guards.py",),
        "a route exactly at the oracle-deviation bound is refused",
    ),
    # -- WebSocket: handlers, notify, subscriptions
    Mutant(
        "ws: a subscribe from the last seq of a finished order is kept",
        "chalicelib/push/handlers.py",
        "if order.status.terminal and since >= order.last_seq:",
        "if order.status.terminal and since > order.last_seq:",
        (IT + "test_ws_notify.py", "-k", "finished or since"),
        "a finished order, everything seen, still gets a subscription and a replay",
    ),
    Mutant(
        "ws: a since equal to the last seq is refused",
        "chalicelib/push/handlers.py",
        "if since > order.last_seq:",
        "if since >= order.last_seq:",
        (IT + "test_ws_notify.py", "-k", "since or finished or beyond"),
        "a client that has everything so far cannot resubscribe",
    ),
    Mutant(
        "ws: one subscription more than the bound",
        "chalicelib/push/handlers.py",
        "if not already and count >= limit:",
        "if not already and count > limit:",
        (IT + "test_ws_notify.py", "-k", "at_most"),
        "a connection watches one order more than WS_MAX_SUBSCRIPTIONS",
    ),
    Mutant(
        "notify: a delivered seq is sent again",
        "chalicelib/push/notify.py",
        "if entry.seq <= sent:",
        "if entry.seq < sent:",
        (IT + "test_ws_notify.py", "-k", "once or since"),
        "each push repeats the last status the connection already had",
    ),
    Mutant(
        "notify: a terminal status does not end the subscription",
        "chalicelib/push/notify.py",
        "sent, terminal = entry.seq, entry.status.terminal",
        "sent, terminal = entry.seq, False",
        (IT + "test_ws_notify.py", "-k", "terminal"),
        "finished orders' subscriptions stay in Redis",
    ),
    Mutant(
        "notify: a failed push queues no replay",
        "chalicelib/push/notify.py",
        "if outcome == Delivery.UNSENT:",
        "if outcome == Delivery.GONE:",
        (IT + "test_ws_notify.py", "-k", "replay"),
        "a status whose push failed never reaches the subscriber",
    ),
    Mutant(
        "subscriptions: a cursor may move back",
        "chalicelib/push/subscriptions.py",
        "if tonumber(ARGV[2]) > last then",
        "if tonumber(ARGV[2]) ~= last then",
        (IT + "test_ws_notify.py", "-k", "cursor or interleave"),
        "a slower publisher lowers a cursor: statuses sent twice",
    ),
    Mutant(
        "subscriptions: one open connection more than the bound",
        "chalicelib/push/subscriptions.py",
        "and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end",
        "and redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[3]) then return 0 end",
        (IT + "test_ws_notify.py", "-k", "open_connections or missed_disconnect"),
        "a client holds WS_MAX_CONNECTIONS_PER_CLIENT + 1 sockets",
    ),
    # -- stats
    Mutant(
        "stats: failure reasons grouped on the message",
        "chalicelib/orders/stats.py",
        "SELECT split_part(failure_reason, ':', 1) AS reason, count(*) AS n",
        "SELECT split_part(failure_reason, ':', 2) AS reason, count(*) AS n",
        (IT + "test_quote_stats.py", "-k", "stats_count"),
        "failureReasons keyed by free text, not by code",
    ),
    Mutant(
        "stats: an order filled exactly at its minimum counts as below it",
        "chalicelib/orders/stats.py",
        "count(*) FILTER (WHERE realized < 0) AS below,",
        "count(*) FILTER (WHERE realized <= 0) AS below,",
        (IT + "test_quote_stats.py", "-k", "stats_count"),
        "belowMinOut counts fills that met their minimum exactly",
    ),
]


@dataclass
class Outcome:
    mutant: Mutant
    caught: bool
    how: str  # "tests failed", "not collected", "timed out", "tests passed"
    seconds: float


def _env() -> dict[str, str]:
    # No .pyc of a mutant is ever written: a restored file the same size as its mutant,
    # within the same second, would otherwise load the mutant's bytecode.
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def _pytest(args: tuple[str, ...] | list[str]) -> tuple[int | None, str]:
    """pytest's exit code (None: timed out) and the tail of its output."""
    try:
        done = subprocess.run(
            [*PYTEST, *args],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, (done.stdout + done.stderr)[-2000:]


def _dirty(paths: list[str]) -> list[str]:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return status.splitlines()


def _check(mutants: list[Mutant]) -> None:
    for m in mutants:
        text = (ROOT / m.path).read_text()
        found = text.count(m.original)
        if found != 1:
            raise SystemExit(f"{m.name}: {m.original!r} is in {m.path} {found} times, not once")
        if m.apply(text) == text:
            raise SystemExit(f"{m.name}: the mutant is the original")


def _run(mutant: Mutant) -> Outcome:
    path = ROOT / mutant.path
    original = path.read_bytes()
    stat = path.stat()
    started = time.monotonic()
    try:
        path.write_text(mutant.apply(original.decode()))
        code, tail = _pytest(mutant.tests)
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    seconds = time.monotonic() - started
    if code is None:
        return Outcome(mutant, True, "timed out", seconds)
    if code == 0:
        return Outcome(mutant, False, "tests passed", seconds)
    if code == 1:
        return Outcome(mutant, True, "tests failed", seconds)
    if code == 2:  # interrupted by collection errors: the mutant breaks an import
        return Outcome(mutant, True, "not collected", seconds)
    raise SystemExit(f"{mutant.name}: pytest exited {code} (no tests selected?)\n{tail}")


def _baseline(mutants: list[Mutant]) -> None:
    """Every mutant's tests, once, on the clean tree: they must pass."""
    runs: dict[tuple[str, ...], None] = {m.tests: None for m in mutants}
    print(f"baseline: {len(runs)} test selections on the clean tree", flush=True)
    for tests in runs:
        code, tail = _pytest(tests)
        if code != 0:
            raise SystemExit(f"baseline: {' '.join(tests)} fails without a mutant\n{tail}")


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through _run's finally: the file is put back


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hand_audit", description=__doc__)
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("--only", action="append", default=[], help="names containing this")
    parser.add_argument("--no-baseline", action="store_true", help="skip the clean-tree run")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(o in m.name for o in args.only)]
    if not mutants:
        raise SystemExit("no mutant matches --only")
    if args.list:
        for m in mutants:
            print(f"{m.name}\n    {m.path}: {m.original!r} -> {m.mutated!r}")
            print(f"    tests: {' '.join(m.tests)}\n    breaks: {m.breaks}")
        return 0
    paths = sorted({m.path for m in mutants})
    if dirty := _dirty(paths):
        raise SystemExit("uncommitted changes to files the audit mutates:\n" + "\n".join(dirty))
    _check(mutants)
    signal.signal(signal.SIGTERM, _terminate)
    if not args.no_baseline:
        _baseline(mutants)
    outcomes = []
    for i, mutant in enumerate(mutants, 1):
        outcome = _run(mutant)
        outcomes.append(outcome)
        verdict = "caught  " if outcome.caught else "SURVIVED"
        print(
            f"[{i:2}/{len(mutants)}] {verdict} {mutant.name} ({outcome.how},"
            f" {outcome.seconds:.0f} s)",
            flush=True,
        )
    survivors = [o for o in outcomes if not o.caught]
    caught = len(outcomes) - len(survivors)
    for o in survivors:
        m = o.mutant
        print(f"survived: {m.name}\n    {m.path}: {m.original!r} -> {m.mutated!r}")
        print(f"    no test in {' '.join(m.tests)} notices that {m.breaks}")
    print(
        f"hand audit: {caught} of {len(outcomes)} mutants caught"
        f" ({100 * caught / len(outcomes):.0f} %), {len(survivors)} survived"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
